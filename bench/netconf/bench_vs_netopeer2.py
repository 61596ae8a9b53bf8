#!/usr/bin/env python3
"""Our NETCONF server side by side with netopeer2 on the same sysrepo/libyang, through the same client.

    NETOPEER2_PREFIX=/opt/netopeer2 scripts/in-env python bench/netconf/bench_vs_netopeer2.py \
        [--netopeer2 PREFIX] [--sizes 100,1000,10000] [--iterations 40] [--lists nacm,truststore] \
        [--baseline TREE]

Each server gets its own private sysrepo instance (same libsysrepo and libyang: the project's environment), and
ncclient 0.7.1 talks to both from this process with its 0.1 s send-queue poll tick patched to 1 ms. For every list
(ietf-netconf-acm groups, ietf-truststore public-key bags) and size, in turn per server, each step starting with
the next server (ours, netopeer2; then netopeer2, ours; ...):

- **load**: the whole list created in one edit-config (then deleted in one edit, not measured), `--loads` times
  (default 5), interleaved; the median;
- **edit**: edit-config of one leaf (a group's user-name added and deleted; a bag's key value swapped), p50/p99;
- **get**: get-config of the list's module (subtree filter), p50;

and the RSS of each server process after the largest round. Prints the ratios ours / netopeer2 (< 1: we are
faster). `--baseline TREE` adds our server of another checkout (its `agent/` first on PYTHONPATH) to the same
turns: `ours/base` is a change's effect under the same load, which on a shared machine moves more than the change.
Without `--netopeer2` (or NETOPEER2_PREFIX) only our server runs and the ratios are left out.

netopeer2 is not part of the project: build v2.4.1 (the release matching trixie's libnetconf2 3.7.1) outside the
checkout against trixie's libnetconf2-dev and pass its install prefix; the bench expects
PREFIX/sbin/netopeer2-server, PREFIX/share/netopeer2/scripts/setup.sh, the netopeer2 modules in
PREFIX/share/yang/modules/netopeer2, and libnetconf2 (runtime libraries and YANG modules) either installed or
unpacked under PREFIX/sys (a `dpkg-deb -x` of libnetconf2-4 and libssh-4 there). scripts/in-env makes
NETOPEER2_PREFIX visible inside the environment.
"""

from __future__ import annotations

import argparse
import base64
import os
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

TOP = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(TOP))

import ncclient.transport.session  # noqa: E402
from cryptography.hazmat.primitives import serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ed25519  # noqa: E402
from ncclient import manager  # noqa: E402

from singbox_agent.repository import SysrepoInstance, project_yang_dirs  # noqa: E402
from tests.conftest import new_sysrepo_instance  # noqa: E402
from tests.netconf.conftest import ADMIN, ADMIN_PASSWORD, bootstrap, start_server, stop_server  # noqa: E402

ncclient.transport.session.TICK = 0.001  # ncclient polls its send queue every TICK (0.1 s by default)

NACM_NS = "urn:ietf:params:xml:ns:yang:ietf-netconf-acm"
TS_NS = "urn:ietf:params:xml:ns:yang:ietf-truststore"
CT_NS = "urn:ietf:params:xml:ns:yang:ietf-crypto-types"
NC_NS = "urn:ietf:params:xml:ns:netconf:base:1.0"
SBX_NS = "urn:vpp-singbox:yang:vpp-singbox"
NP2_USER = "bench"
NP2_PASSWORD = "bench-secret"


def ssh_key() -> str:
    raw = ed25519.Ed25519PrivateKey.generate().public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    return raw.split()[1].decode()


KEYS = (ssh_key(), ssh_key())


@dataclass
class BenchList:
    """A list in a module both servers have: how to fill it, edit one leaf of it and read it."""

    name: str
    module_filter: str

    def entries(self, n: int) -> str:
        if self.name == "endpoints":
            body = "".join(f"<endpoint><name>e{i:05d}</name><address>198.18.{i // 250}.{i % 250 + 1}</address>"
                           "</endpoint>" for i in range(n))
            return f'<singbox xmlns="{SBX_NS}"><client>{body}</client></singbox>'
        if self.name == "nacm":
            body = "".join(f"<group><name>g{i:05d}</name><user-name>u{i:05d}</user-name></group>" for i in range(n))
            return f'<nacm xmlns="{NACM_NS}"><groups>{body}</groups></nacm>'
        body = "".join(
            f"<public-key-bag><name>b{i:05d}</name><public-key><name>k</name>"
            f'<public-key-format xmlns:ct="{CT_NS}">ct:ssh-public-key-format</public-key-format>'
            f"<public-key>{KEYS[0]}</public-key></public-key></public-key-bag>" for i in range(n))
        return f'<truststore xmlns="{TS_NS}"><public-key-bags>{body}</public-key-bags></truststore>'

    def delete_all(self, n: int) -> str:
        if self.name == "endpoints":
            return f'<singbox xmlns="{SBX_NS}" xmlns:nc="{NC_NS}"><client nc:operation="remove"/></singbox>'
        if self.name == "nacm":
            body = "".join(f'<group nc:operation="delete"><name>g{i:05d}</name></group>' for i in range(n))
            return f'<nacm xmlns="{NACM_NS}" xmlns:nc="{NC_NS}"><groups>{body}</groups></nacm>'
        return f'<truststore xmlns="{TS_NS}" xmlns:nc="{NC_NS}"><public-key-bags nc:operation="delete"/></truststore>'

    def one_leaf(self, i: int) -> str:
        if self.name == "endpoints":  # the port of one endpoint, alternating: a real change every time
            return (f'<singbox xmlns="{SBX_NS}"><client><endpoint><name>e00000</name><port>{2000 + i % 2}</port>'
                    "</endpoint></client></singbox>")
        if self.name == "nacm":  # a user-name added, then deleted: a real change every time
            op = "merge" if i % 2 == 0 else "delete"
            return (f'<nacm xmlns="{NACM_NS}" xmlns:nc="{NC_NS}"><groups><group><name>g00000</name>'
                    f'<user-name nc:operation="{op}">extra</user-name></group></groups></nacm>')
        return (f'<truststore xmlns="{TS_NS}"><public-key-bags><public-key-bag><name>b00000</name><public-key>'
                f"<name>k</name><public-key>{KEYS[1 - i % 2]}</public-key></public-key></public-key-bag>"
                "</public-key-bags></truststore>")


LISTS = {
    "nacm": BenchList("nacm", f'<nacm xmlns="{NACM_NS}"><groups/></nacm>'),
    "truststore": BenchList("truststore", f'<truststore xmlns="{TS_NS}"/>'),
    # the product's own list, with a subscriber on its module: ours the agent (in-memory dataplane), netopeer2 a
    # subscriber that does nothing (sysrepo-python's event-only subscription)
    "endpoints": BenchList("endpoints", f'<singbox xmlns="{SBX_NS}"><client/></singbox>'),
}


def config(body: str) -> str:
    return f'<config xmlns="{NC_NS}">{body}</config>'


@dataclass
class Server:
    name: str
    pid: int
    mgr: Any
    stop: Callable[[], None]

    def rss_mb(self) -> float:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return float("nan")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def connect(port: int, user: str, password: str) -> Any:
    return manager.connect(host="127.0.0.1", port=port, username=user, password=password, hostkey_verify=False,
                           look_for_keys=False, allow_agent=False, timeout=600)


def start_subscriber(kind: str, env: dict[str, str], log: Path) -> subprocess.Popen[str]:
    """This script as a child on the instance of `env`: `agent` (singbox-agent with the in-memory dataplane) or
    `noop` (an event-only subscription doing nothing) subscribed to vpp-singbox; returns once it is subscribed.
    Its output goes to `log` (the agent logs every commit: a pipe nobody reads would fill and block its logging
    inside sysrepo's change callback until the edit timed out)."""
    with open(log, "w") as out:
        proc = subprocess.Popen([sys.executable, __file__, "--subscriber", kind], env=env, stdin=subprocess.PIPE,
                                stdout=out, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 180
    while proc.poll() is None and time.monotonic() < deadline:
        if "\nready\n" in "\n" + log.read_text():
            return proc
        time.sleep(0.1)
    proc.kill()
    proc.wait()
    raise RuntimeError(f"{kind} subscriber did not start:\n" + "".join(log.read_text().splitlines(True)[-20:]))


def stop_subscriber(proc: subprocess.Popen[str] | None) -> None:
    if proc is None:
        return
    assert proc.stdin is not None
    proc.stdin.close()  # the child ends when its stdin does
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def subscriber_main(kind: str) -> int:
    """The child of `start_subscriber`."""
    import sysrepo

    if kind == "agent":
        from singbox_agent.agent.daemon import Agent
        from singbox_agent.dataplane.memory import MemoryDataplane

        agent = Agent(MemoryDataplane())
        agent.start()
        agent.wait_idle(120)
        print("ready", flush=True)
        sys.stdin.read()
        agent.stop()
        return 0
    conn = sysrepo.SysrepoConnection()
    sess = conn.start_session("running")
    def nothing(ev_sess: Any, event: str, req_id: int, private_data: Any) -> None:
        return None

    sess.subscribe_module_change_unsafe("vpp-singbox", "/vpp-singbox:singbox", nothing)
    print("ready", flush=True)
    sys.stdin.read()
    sess.stop()
    conn.disconnect()
    return 0


def start_ours(work: Path, subscriber: bool = False, name: str = "ours", tree: Path | None = None) -> Server:
    """Our server (and the agent for the endpoints list) on a private instance; with `tree`, the singbox_agent of
    that checkout (its `agent/` directory first on PYTHONPATH) instead of this one."""
    inst = new_sysrepo_instance()  # what the product installs (the tests' instance)
    env = {**os.environ, **inst.env}
    if tree is not None:
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(tree / "agent"), env.get("PYTHONPATH", "")) if p)
    state = work / f"{name}-state"
    state.mkdir()
    bootstrap(env, state)
    info = start_server(env, state)
    mgr = connect(info.port, ADMIN, ADMIN_PASSWORD)
    agent = start_subscriber("agent", env, work / f"{name}-agent.log") if subscriber else None

    def stop() -> None:
        mgr.close_session()
        stop_subscriber(agent)
        stop_server(info)
        inst.destroy()

    return Server(name, info.process.pid, mgr, stop)


def start_netopeer2(prefix: Path, work: Path, replay: bool = True, subscriber: bool = False) -> Server:
    inst = SysrepoInstance(work / "np2", "bn" + secrets.token_hex(3))
    inst.repository.mkdir(parents=True)
    sysroot = prefix / "sys"
    ln2_modules = next(p for p in (sysroot / "usr/share/yang/modules/libnetconf2",
                                   Path("/usr/share/yang/modules/libnetconf2")) if p.is_dir())
    libdir = sysroot / "usr/lib/x86_64-linux-gnu"
    env = {**os.environ, **inst.env,
           "LD_LIBRARY_PATH": f"{libdir}:{os.environ.get('LD_LIBRARY_PATH', '')}".rstrip(":"),
           "NP2_MODULE_DIR": str(prefix / "share/yang/modules/netopeer2"), "NP2_MODULE_PERMS": "600",
           "LN2_MODULE_DIR": str(ln2_modules)}
    scripts = prefix / "share/netopeer2/scripts"
    subprocess.run(["bash", str(scripts / "setup.sh")], env=env, check=True, capture_output=True)
    subprocess.run(["bash", str(scripts / "merge_hostkey.sh")], env=env, check=True, capture_output=True)
    if subscriber:  # the product's module, for the endpoints list
        inst.install_modules(sorted((TOP / "yang").glob("vpp-singbox@*.yang")), project_yang_dirs(TOP))
    if replay:  # like ours (the product enables it at bootstrap): every notification stored for replay
        subprocess.run(["sysrepoctl", "-c", ":ALL", "-r", "on"], env=env, check=True, capture_output=True)
    port = free_port()
    hashed = subprocess.run(["openssl", "passwd", "-6", NP2_PASSWORD], check=True, capture_output=True,
                            text=True).stdout.strip()
    server_cfg = f"""<netconf-server xmlns="urn:ietf:params:xml:ns:yang:ietf-netconf-server"><listen><endpoints>
<endpoint><name>bench</name><ssh><tcp-server-parameters><local-address>127.0.0.1</local-address>
<local-port>{port}</local-port></tcp-server-parameters><ssh-server-parameters><server-identity><host-key>
<name>default-key</name><public-key><central-keystore-reference>genkey</central-keystore-reference></public-key>
</host-key></server-identity><client-authentication><users><user><name>{NP2_USER}</name>
<password>{hashed}</password></user></users></client-authentication></ssh-server-parameters></ssh></endpoint>
</endpoints></listen></netconf-server>"""
    # The same NACM shape as ours: the bench user in group admin with a permit-all rule-list (not a recovery user).
    nacm_cfg = f"""<nacm xmlns="{NACM_NS}"><groups><group><name>admin</name><user-name>{NP2_USER}</user-name></group>
</groups><rule-list><name>admin-all</name><group>admin</group><rule><name>permit-all</name><module-name>*</module-name>
<access-operations>*</access-operations><action>permit</action></rule></rule-list></nacm>"""
    for module, data in (("ietf-netconf-server", server_cfg), ("ietf-netconf-acm", nacm_cfg)):
        subprocess.run(["sysrepocfg", "--edit", "-d", "running", "-f", "xml", "-m", module], input=data.encode(),
                       env=env, check=True, capture_output=True)
    log = open(work / "netopeer2.log", "wb")
    proc = subprocess.Popen([str(prefix / "sbin/netopeer2-server"), "-d", "-v", "1", "-p", str(work / "np2.pid"),
                             "-f", str(work / "np2-files"), "-U", str(work / "np2.sock")],
                            env=env, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 30
    mgr = None
    while mgr is None:
        try:
            mgr = connect(port, NP2_USER, NP2_PASSWORD)
        except Exception:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                raise RuntimeError("netopeer2 did not start:\n" + (work / "netopeer2.log").read_text()) from None
            time.sleep(0.2)
    noop = start_subscriber("noop", env, work / "noop.log") if subscriber else None

    def stop() -> None:
        mgr.close_session()
        stop_subscriber(noop)
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        inst.destroy()

    return Server("netopeer2", proc.pid, mgr, stop)


def timed(fn: Callable[[], Any]) -> float:
    t0 = time.perf_counter()
    fn()
    return (time.perf_counter() - t0) * 1000


def percentile(samples: list[float], p: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def edit(mgr: Any, body: str) -> None:
    mgr.edit_config(target="running", config=config(body))


def round_of(servers: list[Server], blist: BenchList, n: int, iterations: int,
             loads: int = 5) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, Any]] = {s.name: {"edit": [], "get": [], "load": []} for s in servers}
    # The one-edit load, `loads` times (load, then delete all but after the last), interleaved and each time
    # starting with another server; its median is reported: one sample of a load is at the mercy of whatever
    # else the box does in that second (at load 4, one-shot loads of the same list swung 10x between runs).
    for k in range(loads):
        for s in servers[k % len(servers):] + servers[:k % len(servers)]:
            out[s.name]["load"].append(timed(lambda: edit(s.mgr, blist.entries(n))))
        time.sleep(1.1)  # sysrepo names replay files by the second: let the big load's notification have its own
        if k < loads - 1:
            for s in servers:
                edit(s.mgr, blist.delete_all(n))
            time.sleep(1.1)
    for i in range(3 + iterations):
        # each step starts with another server: none always runs right after the same one (whose CPU use, e.g.
        # netopeer2's polling threads or an agent still pushing state, would land on its turns only)
        for s in servers[i % len(servers):] + servers[:i % len(servers)]:
            t_edit = timed(lambda: edit(s.mgr, blist.one_leaf(i)))
            t_get = timed(lambda: s.mgr.get_config(source="running", filter=("subtree", blist.module_filter)))
            if i >= 3:
                out[s.name]["edit"].append(t_edit)
                out[s.name]["get"].append(t_get)
    result: dict[str, dict[str, float]] = {}
    for s in servers:
        r = out[s.name]
        result[s.name] = {"load": statistics.median(r["load"]), "edit50": statistics.median(r["edit"]),
                          "edit99": percentile(r["edit"], 99), "get50": statistics.median(r["get"]),
                          "rss": s.rss_mb()}
    for s in servers:
        edit(s.mgr, blist.delete_all(n))
    time.sleep(1.1)
    return result


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--netopeer2", default=os.environ.get("NETOPEER2_PREFIX", ""),
                    help="netopeer2 install prefix (default: $NETOPEER2_PREFIX)")
    ap.add_argument("--sizes", default="100,1000,10000")
    ap.add_argument("--iterations", type=int, default=40)
    ap.add_argument("--loads", type=int, default=5,
                    help="how many times each list is loaded in one edit (and deleted again) per size; the median "
                         "is the 'load' column")
    ap.add_argument("--lists", default="nacm,truststore,endpoints",
                    help="endpoints: the product's list with the agent subscribed to ours (in-memory dataplane) and "
                         "a no-op subscriber to netopeer2's")
    ap.add_argument("--subscriber", choices=("agent", "noop"), help=argparse.SUPPRESS)  # start_subscriber's child
    ap.add_argument("--netopeer2-replay", choices=("on", "off"), default="on",
                    help="notification replay in netopeer2's instance (default on, as ours: like for like; off is "
                         "netopeer2's own setup.sh, which stores no notification and so generates no "
                         "netconf-config-change)")
    ap.add_argument("--logs", help="copy the subscribers' and netopeer2's logs to this directory at the end")
    ap.add_argument("--baseline", metavar="TREE",
                    help="another checkout (e.g. a `git archive` of an older commit): its server runs too, as "
                         "'baseline', in the same turns; the rows 'ours/base' and 'base/np2' give the change's ratio "
                         "under the same load")
    args = ap.parse_args()
    if args.subscriber:
        return subscriber_main(args.subscriber)
    with_subscriber = "endpoints" in args.lists.split(",")
    sizes = [int(x) for x in args.sizes.split(",")]
    prefix = Path(args.netopeer2) if args.netopeer2 else None
    if prefix is not None and not (prefix / "sbin/netopeer2-server").exists():
        print(f"netopeer2 missing: no {prefix}/sbin/netopeer2-server; running ours alone")
        prefix = None
    elif prefix is None:
        print("netopeer2 missing (no --netopeer2 or NETOPEER2_PREFIX): running ours alone")
    work = Path(tempfile.mkdtemp(prefix="bnc", dir="/tmp"))
    servers: list[Server] = []
    try:
        servers.append(start_ours(work, subscriber=with_subscriber))
        if args.baseline:
            servers.append(start_ours(work, subscriber=with_subscriber, name="baseline",
                                      tree=Path(args.baseline).resolve()))
        if prefix is not None:
            servers.append(start_netopeer2(prefix, work, replay=args.netopeer2_replay == "on",
                                           subscriber=with_subscriber))
        for s in servers:  # warm-up: a first edit and read of each list (a server's first requests pay for
            for blist in LISTS.values():  # lazily built state, a first replay file), not measured
                if blist.name in args.lists.split(","):
                    edit(s.mgr, blist.entries(2))
                    s.mgr.get_config(source="running", filter=("subtree", blist.module_filter))
                    edit(s.mgr, blist.delete_all(2))
        time.sleep(1.1)
        load_avg = os.getloadavg()
        print(f"load average {load_avg[0]:.1f}; {args.iterations} iterations; netopeer2 replay "
              f"{args.netopeer2_replay}; times in ms, RSS in MB")
        header = "| list | entries | server | load | edit p50 | edit p99 | get p50 | RSS |"
        rows = [header, "|---|---:|---|---:|---:|---:|---:|---:|"]
        for name in args.lists.split(","):
            for n in sizes:
                try:
                    res = round_of(servers, LISTS[name], n, args.iterations, args.loads)
                except Exception as exc:  # noqa: BLE001 - e.g. a subscriber's change callback timing out
                    rows.append(f"| {name} | {n:,} | round failed | {str(exc)[:120]} | | | | |")
                    print(rows[-1], flush=True)
                    for s in servers:  # what was loaded goes; the rounds after start empty again
                        try:
                            edit(s.mgr, LISTS[name].delete_all(n))
                        except Exception:  # noqa: BLE001, S110 - nothing loaded there
                            pass
                    time.sleep(1.1)
                    continue
                first = len(rows)
                for s in servers:
                    r = res[s.name]
                    rows.append(f"| {name} | {n:,} | {s.name} | {r['load']:.1f} | {r['edit50']:.2f} | "
                                f"{r['edit99']:.2f} | {r['get50']:.2f} | {r['rss']:.0f} |")
                pairs = [("**ratio**", "ours", "netopeer2"), ("ours/base", "ours", "baseline"),
                         ("base/np2", "baseline", "netopeer2")]
                for label, a, b in pairs:
                    if a in res and b in res:
                        o, p = res[a], res[b]
                        rows.append(f"| {name} | {n:,} | {label} | {o['load'] / p['load']:.2f} | "
                                    f"{o['edit50'] / p['edit50']:.2f} | {o['edit99'] / p['edit99']:.2f} | "
                                    f"{o['get50'] / p['get50']:.2f} | {o['rss'] / p['rss']:.2f} |")
                print("\n".join(rows[first:]), flush=True)
        print("\n".join(rows))
    finally:
        for s in servers:
            try:
                s.stop()
            except Exception as exc:  # noqa: BLE001 - stop the others anyway
                print(f"stopping {s.name}: {exc}")
        if args.logs:
            Path(args.logs).mkdir(parents=True, exist_ok=True)
            for f in [*work.glob("*.log"), *work.glob("*/*.log")]:
                shutil.copy(f, Path(args.logs) / f.name)
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

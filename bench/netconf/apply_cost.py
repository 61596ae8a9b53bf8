#!/usr/bin/env python3
"""Where a one-leaf edit of a long list goes inside sysrepo's apply, by the options the writer's session has.

    scripts/in-env python bench/netconf/apply_cost.py [--entries 10000] [--iterations 10] [--subscriber agent]

One process on a private instance of what the product installs (tests.conftest.new_sysrepo_instance): the
endpoints list filled with `--entries` entries, a subscriber on vpp-singbox in a child (`agent`: singbox-agent over
the in-memory dataplane; `noop`: the event-only subscription bench_vs_netopeer2 gives netopeer2; `none`), then the
same one-leaf edit (`edit_batch_ly` of a parsed tree, `apply_changes`, `discard_changes`: what
netconf/ops/editing.py and netopeer2's np2srv_rpc_editconfig_cb both do) from writer sessions set up in the ways
that differ between the two servers, interleaved round by round:

- `plain`: a connection without the running cache, no NACM user, no originator (the session 8 measurement);
- `cached`: a connection with `cache_running` (our NETCONF server's and netopeer2's `SR_CONN_CACHE_RUNNING`);
- `ours`: cached + originator "netopeer2" with session-id and user (`datastore.mark_changed_by`) + NACM recovery
  user (our session when the policy is unrestricted for the user, as in the bench);
- `np2`: cached + the same originator + `sr_nacm_set_user` to the bench user (netopeer2's session);
- `worker`: `ours` from a worker thread (where our server runs edits).

Prints the writer thread's CPU (`time.thread_time`) and wall time per apply_changes: median and range per variant.
`--phases` also times the gaps between sysrepo's debug log lines (load + edit + validation before the first event,
the store between "change" and "done", ...); `--replay` turns replay support on for every module; `--install
vpp-singbox` installs only vpp-singbox (netopeer2's instance in bench_vs_netopeer2).

`--loaded-through cached|uncached` instead loads the list through the cached connection or through one without the
cache, then times one-leaf edits through the cached one (session 10: 2x after a load through the cached one).

`--load` instead times the one-edit load of `--entries` endpoints (and the delete of the list) as `datastore.apply_bulk`
writes it (a connection without the running cache, the session marked with changed-by), replay support for every
module off and on in turns (`--variants off,on,buffered`; `buffered`: replay on and `sr_session_notif_buffer` on the
writer's session, which moves the store of the notification to a sysrepo thread), with `--subscriber` on
vpp-singbox; prints the writer thread's CPU and wall time per load and delete, and the number of edits and JSON
bytes of the netconf-config-change sysrepo stored for the load.

`--servers-load` instead times the one-edit load itself through the servers, several times: ours (with the agent
for the endpoints list), netopeer2 with replay support on and netopeer2 with it off (its own setup.sh's; both with
the no-op subscriber for endpoints), each load followed by the list's delete and 1.1 s, in turns; for each list of
`--lists` and size of `--sizes` the load's wall time p50 (min-max) and each server's and subscriber's CPU per load
(/proc), the ratios ours / netopeer2 both ways, and each server's RSS at the end.

`--servers` instead starts both NETCONF servers as bench_vs_netopeer2 does for the endpoints list (ours + agent,
netopeer2 + no-op subscriber; `NETOPEER2_PREFIX`) and prints each server's and subscriber's CPU per one-leaf
edit-config (/proc, clock ticks), interleaved; attach `perf record -g -p <pid>` to either server meanwhile.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import logging
import re
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

TOP = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(TOP))
sys.path.insert(0, str(TOP / "bench" / "netconf"))

from singbox_agent.repository import project_yang_dirs  # noqa: E402
from tests.conftest import new_sysrepo_instance  # noqa: E402

SBX_NS = "urn:vpp-singbox:yang:vpp-singbox"


def entries_xml(n: int) -> str:
    body = "".join(f"<endpoint><name>e{i:05d}</name><address>198.18.{i // 250}.{i % 250 + 1}</address>"
                   "</endpoint>" for i in range(n))
    return f'<singbox xmlns="{SBX_NS}"><client>{body}</client></singbox>'


def one_leaf_xml(i: int) -> str:
    return (f'<singbox xmlns="{SBX_NS}"><client><endpoint><name>e00000</name><port>{2000 + i % 2}</port>'
            "</endpoint></client></singbox>")


class Marks(logging.Handler):
    """sysrepo's log lines (SR_LL_DBG through the binding's Python logging) with the time they were logged: the
    phases of an apply between them."""

    NUMBERS = re.compile(r"\b(ID|index|priority|remaining|Connection) \d+")

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[tuple[float, str]] = []
        self.phases: dict[str, dict[str, list[float]]] = {}

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append((time.perf_counter(), self.NUMBERS.sub(r"\1 N", record.getMessage())))

    def close_edit(self, variant: str, start: float, end: float) -> None:
        """Each line's distance from the one before (the first: from the start of apply_changes)."""
        previous = start
        phases = self.phases.setdefault(variant, {})
        for at, line in self.lines + [(end, "(apply_changes returned)")]:
            phases.setdefault(line, []).append((at - previous) * 1e3)
            previous = at
        self.lines.clear()


MARKS: Marks | None = None


def edit(sess: Any, ctx: Any, xml: str, variant: str = "") -> tuple[float, float]:
    """One edit as editing._try_apply makes it; (thread CPU, wall) in ms."""
    from singbox_agent.mgmt import datastore

    tree = ctx.parse_data_mem(xml, "xml", no_state=True, parse_only=True)
    try:
        sess.edit_batch_ly(tree, "merge")
        if MARKS is not None:
            MARKS.lines.clear()
        c0, w0 = time.thread_time(), time.perf_counter()
        try:
            datastore.apply_changes(sess)
        finally:
            c1, w1 = time.thread_time(), time.perf_counter()
            sess.discard_changes()
        if MARKS is not None and variant:
            MARKS.close_edit(variant, w0, w1)
        return (c1 - c0) * 1e3, (w1 - w0) * 1e3
    finally:
        tree.free()


def process_cpu_ms(pid: int, system: bool = False) -> float:
    """User + system (or only system) CPU of `pid` so far (ms, clock-tick resolution)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    ticks = int(fields[12]) if system else int(fields[11]) + int(fields[12])
    return ticks * 1000 / os.sysconf("SC_CLK_TCK")


def subscriber_pid(kind: str) -> int:
    """The child bench_vs_netopeer2.start_subscriber started."""
    found = _subscriber_pids(kind)
    if not found:
        raise RuntimeError(f"no {kind} subscriber")
    return found[0]


def servers_main(entries: int, iterations: int, prefix: str, restart: bool = False,
                 invalidate: bool = False) -> int:
    """Both servers as bench_vs_netopeer2 runs them for the endpoints list (ours + agent, netopeer2 + no-op), the
    same one-leaf edit-config through ncclient, interleaved: each server's and subscriber's CPU per edit."""
    import bench_vs_netopeer2 as bench

    blist = bench.LISTS["endpoints"]
    work = Path(tempfile.mkdtemp(prefix="applycost", dir="/tmp"))
    servers = [bench.start_ours(work, subscriber=True)]
    subs = [subscriber_pid("agent")]
    fresh: subprocess.Popen[bytes] | None = None
    try:
        if prefix:
            servers.append(bench.start_netopeer2(Path(prefix), work, subscriber=True))
            subs.append(subscriber_pid("noop"))
        for s in servers:
            bench.edit(s.mgr, blist.entries(entries))
        if invalidate:  # another process writes vpp-singbox once: our server's running cache is read again
            pid = servers[0].pid
            environ = dict(e.decode().split("=", 1) for e in Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
                           if e)
            subprocess.run(["sysrepocfg", "--edit", "-d", "running", "-f", "xml", "-m", "vpp-singbox"],
                           input=blist.one_leaf(1).encode(), env=environ, check=True, capture_output=True)
            print("running written by another process after the load")
        if restart:  # ours again in a fresh process: the edits without the load's leftovers in its heap
            ours = servers[0]
            proc = next(p for p in Path("/proc").iterdir() if p.name == str(ours.pid))
            argv = [a.decode() for a in (proc / "cmdline").read_bytes().split(b"\0") if a]
            environ = dict(e.decode().split("=", 1) for e in (proc / "environ").read_bytes().split(b"\0") if e)
            ready = Path(argv[argv.index("--ready-file") + 1])
            ours.mgr.close_session()
            os.kill(ours.pid, 15)
            while Path(f"/proc/{ours.pid}").exists() and (proc / "stat").read_text().split()[2] != "Z":
                time.sleep(0.05)
            ready.unlink(missing_ok=True)
            fresh = subprocess.Popen(argv, env=environ, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            while not ready.exists():
                time.sleep(0.1)
            import json
            port = json.loads(ready.read_text())["port"]
            from tests.netconf.conftest import ADMIN, ADMIN_PASSWORD
            ours.mgr = bench.connect(port, ADMIN, ADMIN_PASSWORD)
            ours.pid = fresh.pid
            print("ours restarted after the load")
        time.sleep(1.1)
        print("one-leaf edits start", flush=True)  # for `perf record -p <pid>` from outside
        rows: dict[str, list[tuple[float, float, float, float]]] = {s.name: [] for s in servers}
        for i in range(2 + iterations):
            for s, sub in zip(servers, subs):
                c0, k0, d0 = process_cpu_ms(s.pid), process_cpu_ms(s.pid, True), process_cpu_ms(sub)
                w0 = time.perf_counter()
                bench.edit(s.mgr, blist.one_leaf(i))
                w1 = time.perf_counter()
                time.sleep(0.3)  # the subscriber's done callback and whatever follows the reply
                if i >= 2:
                    rows[s.name].append((process_cpu_ms(s.pid) - c0, process_cpu_ms(sub) - d0, (w1 - w0) * 1e3,
                                         process_cpu_ms(s.pid, True) - k0))
        print(f"load average {os.getloadavg()[0]:.1f}; {entries} endpoints; {iterations} one-leaf edit-configs each")
        print(f"{'server':10} {'server CPU/edit':>16} {'of it system':>13} {'subscriber CPU/edit':>20} "
              f"{'edit wall p50':>14}")
        for name, vals in rows.items():
            n = len(vals)
            print(f"{name:10} {sum(v[0] for v in vals) / n:16.1f} {sum(v[3] for v in vals) / n:13.1f} "
                  f"{sum(v[1] for v in vals) / n:20.1f} "
                  f"{statistics.median(v[2] for v in vals):14.1f}")
    finally:
        if fresh is not None:  # the first process is gone: close and end the second, then stop the rest
            servers[0].mgr.close_session()
            fresh.terminate()
            fresh.wait(timeout=30)
        for s in servers:
            try:
                s.stop()
            except Exception:  # noqa: BLE001 - ours after --restart: its first session went with its process
                if fresh is None:
                    raise
    return 0


def servers_load_main(lists: list[str], sizes: list[int], iterations: int, prefix: str) -> int:
    """The one-edit load through ours, netopeer2 with replay on and netopeer2 with replay off, in turns."""
    import bench_vs_netopeer2 as bench

    work = Path(tempfile.mkdtemp(prefix="applycost", dir="/tmp"))
    endpoints = "endpoints" in lists
    servers = [bench.start_ours(work, subscriber=endpoints)]
    subs: dict[str, int | None] = {"ours": subscriber_pid("agent") if endpoints else None}
    try:
        for replay in ("on", "off"):
            (work / replay).mkdir()
            np2 = bench.start_netopeer2(Path(prefix), work / replay, replay=replay == "on", subscriber=endpoints)
            np2.name = f"np2-replay-{replay}"
            servers.append(np2)
            subs[np2.name] = None
            if endpoints:
                known = {pid for pid in subs.values() if pid is not None}
                subs[np2.name] = next(pid for pid in _subscriber_pids("noop") if pid not in known)
        for name in lists:  # an unmeasured load and delete of each list first (the first edit of a run is slow)
            blist = bench.LISTS[name]
            for s in servers:
                bench.edit(s.mgr, blist.entries(10))
                bench.edit(s.mgr, blist.delete_all(10))
        time.sleep(1.1)
        print(f"load average {os.getloadavg()[0]:.1f}; {iterations} loads per list, size and server; wall and CPU "
              "per load in ms")
        print(f"{'list':10} {'entries':>7} {'server':15} {'wall p50':>9} {'wall min-max':>15} {'server CPU':>10} "
              f"{'subscriber CPU':>14}")
        for name in lists:
            blist = bench.LISTS[name]
            for n in sizes:
                rows: dict[str, list[tuple[float, float, float]]] = {s.name: [] for s in servers}
                for _ in range(iterations):
                    for s in servers:
                        sub = subs[s.name]
                        c0, d0 = process_cpu_ms(s.pid), process_cpu_ms(sub) if sub else 0.0
                        w0 = time.perf_counter()
                        bench.edit(s.mgr, blist.entries(n))
                        w1 = time.perf_counter()
                        time.sleep(0.3)  # the subscriber's done and whatever follows the reply
                        rows[s.name].append(((w1 - w0) * 1e3, process_cpu_ms(s.pid) - c0,
                                             (process_cpu_ms(sub) - d0) if sub else 0.0))
                    # replay files are named by the second: the delete's config-change, and the next load's, in
                    # a second whose file no large config-change started (netopeer2 answers a failed store with
                    # an error, "...but changes were applied")
                    time.sleep(1.1)
                    for s in servers:
                        bench.edit(s.mgr, blist.delete_all(n))
                    time.sleep(1.1)
                p50 = {}
                for s in servers:
                    walls = [r[0] for r in rows[s.name]]
                    p50[s.name] = statistics.median(walls)
                    print(f"{name:10} {n:7} {s.name:15} {p50[s.name]:9.0f} {min(walls):7.0f}-{max(walls):<7.0f} "
                          f"{statistics.median(r[1] for r in rows[s.name]):10.0f} "
                          f"{statistics.median(r[2] for r in rows[s.name]):14.0f}")
                print(f"{name:10} {n:7} ratio ours / np2 replay on {p50['ours'] / p50['np2-replay-on']:.2f}, "
                      f"/ np2 replay off {p50['ours'] / p50['np2-replay-off']:.2f}")
        print("RSS after the rounds (MB): " + ", ".join(f"{s.name} {s.rss_mb():.0f}" for s in servers))
    finally:
        for s in servers:
            s.stop()
    return 0


def _subscriber_pids(kind: str) -> list[int]:
    """This process's children that bench_vs_netopeer2.start_subscriber started as `kind`."""
    out = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                cmd = (proc / "cmdline").read_bytes().split(b"\0")
                ppid = int((proc / "stat").read_text().rpartition(")")[2].split()[1])
            except OSError:
                continue
            if ppid == os.getpid() and b"--subscriber" in cmd and kind.encode() in cmd:
                out.append(int(proc.name))
    return out


def loaded_through_main(entries: int, iterations: int, through: str) -> int:
    """One process, one connection with the running cache: the list loaded through that connection (`cached`: its
    cache is then the tree the load's write built) or through a second one without the cache (`uncached`: the
    cached one reads the module from the datastore on its next use), then one-leaf edits through the cached one;
    the committing thread's CPU per edit."""
    inst = new_sysrepo_instance()
    os.environ.update(inst.env)
    import sysrepo

    cached = sysrepo.SysrepoConnection(cache_running=True)
    other = sysrepo.SysrepoConnection()
    sess, osess = cached.start_session("running"), other.start_session("running")
    try:
        with cached.get_ly_ctx() as ctx, other.get_ly_ctx() as octx:
            if through == "cached":
                edit(sess, ctx, entries_xml(entries))
            else:
                edit(osess, octx, entries_xml(entries))
            cpu = [edit(sess, ctx, one_leaf_xml(i))[0] for i in range(iterations)]
        print(f"load average {os.getloadavg()[0]:.1f}; {entries} endpoints loaded through the {through} connection; "
              f"one-leaf edit CPU p50 {statistics.median(cpu):.1f} ms (min {min(cpu):.1f}, max {max(cpu):.1f})")
    finally:
        sess.stop()
        osess.stop()
        cached.disconnect()
        other.disconnect()
        inst.destroy()
    return 0


def config_change_sizes(directory: Path, since: float) -> list[tuple[int, int]]:
    """(edits, JSON bytes) of each netconf-config-change stored since `since` (sysrepo's record: timespec, uint32
    length, the JSON)."""
    import json
    import struct

    head = struct.Struct("=qqI")
    out = []
    for path in sorted(directory.glob("ietf-netconf-notifications.notif.*")):
        data = path.read_bytes()
        off = 0
        while off + head.size <= len(data):
            sec, nsec, size = head.unpack_from(data, off)
            off += head.size
            if sec + nsec / 1e9 >= since:
                body = json.loads(data[off:off + size])
                change = body.get("ietf-netconf-notifications:netconf-config-change")
                if change is not None:
                    out.append((len(change.get("edit", [])), size))
            off += size
    return out


def load_main(entries: int, iterations: int, variants: list[str], subscriber: str) -> int:
    """The one-edit load of `entries` endpoints and its delete, replay off / on / on with the notification buffered,
    in turns: the writer thread's CPU and wall time (ms)."""
    import cffi

    inst = new_sysrepo_instance()
    os.environ.update(inst.env)
    import sysrepo

    from bench_vs_netopeer2 import start_subscriber, stop_subscriber
    from singbox_agent.mgmt import datastore, libsysrepo, replay_files

    abi = cffi.FFI()
    abi.cdef("int sr_session_notif_buffer(void *session);")  # not declared by the binding nor mgmt.libsysrepo
    abi_lib: Any = abi.dlopen("libsysrepo.so.7")
    delete = (f'<singbox xmlns="{SBX_NS}" xmlns:nc="urn:ietf:params:xml:ns:netconf:base:1.0">'
              '<client nc:operation="remove"/></singbox>')
    work = Path(tempfile.mkdtemp(prefix="applycost"))
    conn = sysrepo.SysrepoConnection()  # no cache_running: apply_bulk's connection
    sub = None
    rows: dict[tuple[str, str], list[tuple[float, float]]] = {}
    sizes: dict[str, list[tuple[int, int]]] = {}
    try:
        if subscriber != "none":
            sub = start_subscriber(subscriber, {**os.environ}, work / "subscriber.log")
        for _ in range(iterations):
            for variant in variants:
                libsysrepo.lib.sr_set_module_replay_support(libsysrepo.conn_ptr(conn), libsysrepo.ffi.NULL,
                                                            int(variant != "off"))
                sess = conn.start_session("running")
                if variant == "buffered":
                    abi_lib.sr_session_notif_buffer(
                        abi.cast("void *", int(libsysrepo.ffi.cast("uintptr_t", libsysrepo.session_ptr(sess)))))
                datastore.mark_changed_by(sess, "bench", 7)
                try:
                    with conn.get_ly_ctx() as ctx:
                        for what, xml in (("load", entries_xml(entries)), ("delete", delete)):
                            time.sleep(1.1)  # a replay file of its own second, as the bench's loads have
                            since = time.time()
                            tree = ctx.parse_data_mem(xml, "xml", no_state=True, parse_only=True, opaq=True)
                            try:
                                sess.edit_batch_ly(tree, "merge")
                                c0, w0 = time.thread_time(), time.perf_counter()
                                datastore.apply_changes(sess)
                                c1, w1 = time.thread_time(), time.perf_counter()
                            finally:
                                sess.discard_changes()
                                tree.free()
                            rows.setdefault((variant, what), []).append(((c1 - c0) * 1e3, (w1 - w0) * 1e3))
                            if what == "load":
                                sizes.setdefault(variant, []).extend(
                                    config_change_sizes(replay_files.notification_dir(), since))
                finally:
                    sess.stop()  # a buffered session's thread stores what it holds first
        print(f"load average {os.getloadavg()[0]:.1f}; subscriber {subscriber}; {entries} endpoints; "
              f"{iterations} rounds")
        print(f"{'variant':9} {'step':7} {'writer CPU p50':>15} {'CPU min-max':>13} {'wall p50':>9} {'wall min-max':>13}")
        for (variant, what), vals in rows.items():
            cpu = [c for c, _ in vals]
            wall = [w for _, w in vals]
            print(f"{variant:9} {what:7} {statistics.median(cpu):15.0f} {min(cpu):6.0f}-{max(cpu):<6.0f} "
                  f"{statistics.median(wall):9.0f} {min(wall):6.0f}-{max(wall):<6.0f}")
        for variant, found in sizes.items():
            print(f"{variant}: netconf-config-change of each load (edits, JSON bytes): {found[:3]}")
    finally:
        stop_subscriber(sub)
        conn.disconnect()
        inst.destroy()
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--entries", type=int, default=10000)
    ap.add_argument("--iterations", type=int, default=10, help="edits per variant (interleaved rounds)")
    ap.add_argument("--subscriber", choices=("agent", "noop", "none"), default="agent")
    ap.add_argument("--variants", default="plain,cached,ours,np2")
    ap.add_argument("--install", choices=("product", "vpp-singbox"), default="product",
                    help="the instance: what the product installs, or vpp-singbox alone (netopeer2's in the bench)")
    ap.add_argument("--replay", action="store_true", help="replay support on for every module")
    ap.add_argument("--phases", action="store_true",
                    help="time the phases between sysrepo's debug log lines (the logging costs a little itself)")
    ap.add_argument("--profile-seconds", type=float, default=0,
                    help="instead of the rounds: edit through the first variant this long, pid printed first")
    ap.add_argument("--servers", action="store_true",
                    help="instead: both NETCONF servers with their subscribers, CPU per one-leaf edit-config")
    ap.add_argument("--restart", action="store_true", help="with --servers: ours restarted after the load")
    ap.add_argument("--invalidate", action="store_true",
                    help="with --servers: another process writes running once after the load")
    ap.add_argument("--netopeer2", default=os.environ.get("NETOPEER2_PREFIX", ""))
    ap.add_argument("--loaded-through", choices=("cached", "uncached"),
                    help="instead: the list loaded through the cached connection or another one, then one-leaf "
                         "edits through the cached one (session 10)")
    ap.add_argument("--load", action="store_true",
                    help="instead: the one-edit load of --entries endpoints, replay off/on (--variants "
                         "off,on,buffered)")
    ap.add_argument("--servers-load", action="store_true",
                    help="instead: the one-edit load through ours, netopeer2 replay on and netopeer2 replay off")
    ap.add_argument("--lists", default="endpoints", help="with --servers-load: nacm,truststore,endpoints")
    ap.add_argument("--sizes", default="100,1000,10000", help="with --servers-load")
    args = ap.parse_args()
    if args.servers_load:
        return servers_load_main(args.lists.split(","), [int(n) for n in args.sizes.split(",")], args.iterations,
                                 args.netopeer2)
    if args.load:
        variants = args.variants.split(",") if args.variants != ap.get_default("variants") else ["off", "on"]
        return load_main(args.entries, args.iterations, variants, args.subscriber)
    if args.loaded_through:
        return loaded_through_main(args.entries, args.iterations, args.loaded_through)
    if args.servers:
        return servers_main(args.entries, args.iterations, args.netopeer2, args.restart, args.invalidate)

    if args.install == "product":
        inst = new_sysrepo_instance()
    else:  # what bench_vs_netopeer2 installs into netopeer2's instance for the endpoints list
        inst = new_sysrepo_instance(install=False)
        inst.install_modules(sorted((TOP / "yang").glob("vpp-singbox@*.yang")), project_yang_dirs(TOP))
    os.environ.update(inst.env)
    import sysrepo

    from bench_vs_netopeer2 import start_subscriber, stop_subscriber
    from singbox_agent.mgmt import datastore, nacm

    work = Path(tempfile.mkdtemp(prefix="applycost"))
    sub = None
    conns: list[Any] = []
    stack = contextlib.ExitStack()
    try:
        plain_conn = sysrepo.SysrepoConnection()
        if args.replay:  # as the product's bootstrap and the bench's netopeer2 instance: every notification stored
            from singbox_agent.mgmt import libsysrepo
            libsysrepo.lib.sr_set_module_replay_support(libsysrepo.conn_ptr(plain_conn), libsysrepo.ffi.NULL, 1)
        cached_conn = sysrepo.SysrepoConnection(cache_running=True)
        conns = [plain_conn, cached_conn]
        loader = cached_conn.start_session("running")
        ctx: Any = stack.enter_context(cached_conn.get_ly_ctx())
        nacm_cfg = ('<nacm xmlns="urn:ietf:params:xml:ns:yang:ietf-netconf-acm"><groups><group><name>admin</name>'
                    "<user-name>bench</user-name></group></groups><rule-list><name>admin-all</name><group>admin"
                    "</group><rule><name>permit-all</name><module-name>*</module-name><access-operations>*"
                    "</access-operations><action>permit</action></rule></rule-list></nacm>")
        t0 = time.perf_counter()
        for xml in (nacm_cfg, entries_xml(args.entries)):
            tree = ctx.parse_data_mem(xml, "xml", no_state=True, parse_only=True)
            try:
                loader.edit_batch_ly(tree, "merge")
                datastore.apply_changes(loader)
            finally:
                loader.discard_changes()
                tree.free()
        print(f"loaded {args.entries} endpoints in {time.perf_counter() - t0:.1f} s")
        if args.subscriber != "none":
            sub = start_subscriber(args.subscriber, {**os.environ}, work / "subscriber.log")
            print(f"subscriber {args.subscriber} ready")

        plain_ctx = stack.enter_context(plain_conn.get_ly_ctx())
        sessions: dict[str, Any] = {}
        ctxs: dict[str, Any] = {}
        for name in args.variants.split(","):
            conn = plain_conn if name == "plain" else cached_conn
            sess = conn.start_session("running")
            if name in ("ours", "np2", "worker"):
                datastore.mark_changed_by(sess, "bench", 7)
                nacm.enable_nacm(sess, "bench" if name == "np2" else None, recovery=name != "np2")
            sessions[name] = sess
            ctxs[name] = plain_ctx if name == "plain" else ctx
        if args.profile_seconds:  # edits of the first variant only, for `perf record -g -p <pid>` from outside
            name = next(iter(sessions))
            print(f"profiling pid {os.getpid()} variant {name}", flush=True)
            i, deadline = 0, time.monotonic() + args.profile_seconds
            while time.monotonic() < deadline:
                edit(sessions[name], ctxs[name], one_leaf_xml(i))
                i += 1
            print(f"{i} edits")
            args.iterations = 0
        if args.phases:
            global MARKS
            MARKS = Marks()
            logger = logging.getLogger("sysrepo")
            logger.setLevel(logging.DEBUG)
            logger.addHandler(MARKS)
            logger.propagate = False
            sysrepo.configure_logging(py_logging=True)
        results: dict[str, list[tuple[float, float]]] = {name: [] for name in sessions}
        worker = stack.enter_context(concurrent.futures.ThreadPoolExecutor(1))

        def direct(fn: Any, *fn_args: Any) -> Any:
            done: concurrent.futures.Future[Any] = concurrent.futures.Future()
            done.set_result(fn(*fn_args))
            return done

        i = 0
        for _ in range(args.iterations):
            for name, sess in sessions.items():
                # an untimed edit first: a write through the other connection leaves the cached one's copy of
                # running stale, and its next apply loads it again (what a server pays only when another
                # process wrote)
                run = worker.submit if name == "worker" else direct
                run(edit, sess, ctxs[name], one_leaf_xml(i)).result()
                results[name].append(run(edit, sess, ctxs[name], one_leaf_xml(i + 1), name).result())
                i += 2
        print(f"load average {os.getloadavg()[0]:.1f}; subscriber {args.subscriber}; {args.entries} entries; "
              f"{args.iterations} edits each; install {args.install}")
        print(f"{'variant':8} {'cpu p50':>8} {'cpu min-max':>14} {'wall p50':>9} {'wall min-max':>15}")
        for name, rows in results.items():
            cpu = [c for c, _ in rows]
            wall = [w for _, w in rows]
            print(f"{name:8} {statistics.median(cpu):8.1f} {min(cpu):6.1f}-{max(cpu):<7.1f} "
                  f"{statistics.median(wall):9.1f} {min(wall):7.1f}-{max(wall):<7.1f}")
        if MARKS is not None:
            print("\nphases (ms from the previous sysrepo log line; median over the edits):")
            for name, phases in MARKS.phases.items():
                print(f"  {name}:")
                for line, values in phases.items():
                    print(f"    {statistics.median(values):7.1f}  (x{len(values)})  {line[:110]}")
        for sess in sessions.values():
            sess.stop()
        loader.stop()
    finally:
        stack.close()
        stop_subscriber(sub)
        nacm.destroy_nacm()
        for conn in conns:
            conn.disconnect()
        inst.destroy()
    return 0


if __name__ == "__main__":
    sys.exit(main())

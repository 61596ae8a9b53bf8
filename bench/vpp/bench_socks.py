# SPDX-License-Identifier: Apache-2.0
# Copyright (c) 2026 vpp-singbox authors
"""SOCKS5 server benchmark: VPP singbox vs VPP's hs_apps proxy vs danted vs
microsocks, same topology, same run; prints absolute numbers and ratios.

    sudo VPP_PREFIX=/opt/vpp SINGBOX_PLUGIN_DIR=<build>/lib/vpp_plugins \\
        python3 bench/vpp/bench_socks.py [--seconds 5] [--mbytes 1024] [--workers 0,2]

Topology (tests/vpp/vpptopo.py plus a Linux proxy namespace)::

    client ns --veth-- VPP --veth-- origin ns        (singbox, hs_apps proxy)
    client ns --veth-- proxy ns --veth-- origin ns   (danted, microsocks)

hs_apps "test proxy" is a plain TCP splice with a fixed upstream: the cost
of the session layer with no SOCKS at all, i.e. the ceiling for singbox; it
gets the same fifo settings. It is measured twice: with the client talking
to the origin straight away, and ("SOCKS5 exchanges") with the client going
through the same SOCKS5 greeting and request as with singbox, answered by
the origin (cpsload's sink) through the splice. The second is the fair
baseline for connection rates: those exchanges put a Linux client in
delayed-ACK mode, which decides how soon VPP's FIN follows the origin's
last byte (see plugin/API.md on VPP's FIN after ACK). Memory per idle session (--idle N, first,
each VPP proxy on a fresh VPP of its own): N CONNECTed sessions with no further traffic, growth of the
proxy's proportional set size (all processes of danted; VPP's fifo segments
are mapped into VPP, so they count) and of VPP's main heap, divided by N. For
hs_apps proxy the N connections go through the same SOCKS5 exchanges, answered
by the origin through the splice: hs_apps proxy opens its upstream leg at the
client's first byte, so plain connections that send nothing would be half
sessions (one leg, one TCP connection: 1.9 KB of main heap each where both
legs take 7.0 KB, most of it VPP's TCP connection pool).
--workers 0,2 runs it all once per worker count, each on a fresh VPP, and
prints the 2-worker rates over the 0-worker ones (scaling); on a 2-core box
the two workers share one CPU (tests/vpp/vpptopo.py), so expect none there.
danted is looked up on PATH: run on a host that has it (it is not in the
project's environment). Numbers on a small VM are noisy: compare ratios
from the same run.

The veths keep their checksum/GSO offloads and VPP runs `tcp { tso }`, so
VPP's af_packet carries 64 KB segments as the kernel proxies' sockets do.
Connection rate (bench/vpp/cpsload.c, C: the Python prober capped at ~3,000/s)
is measured twice: the client closes first (HTTP/1.1 style) and the origin
closes first (HTTP/1.0 style; see plugin/API.md on VPP's FIN after ACK).
For the VPP cases it also prints VPP's CPU time per connection (all threads,
user + system, from /proc): on a shared box the rate is the CPU share VPP
gets divided by that cost, and the share moves between cases while the cost
does not. With --rx-mode interrupt it is the work alone; with polling it
includes the polls, i.e. whatever CPU the scheduler gave VPP.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent.parent / "tests" / "vpp"))
import vpptopo as vt  # noqa: E402
import loadgen  # noqa: E402
from loadgen import PYTHON_LOADGEN as LOADGEN  # noqa: E402
from loadgen import cpsload_binary  # noqa: E402

IDLE_SINK_PORT = 5201  # the idle-session memory cases' sink
# A sink port per proxy (and, at loadgen.ORIGIN_CLOSE_PORT_OFFSET, per origin-closing case): danted and
# microsocks share a namespace, and TIME_WAIT entries one left toward a sink ip:port slow the other's
# connect() (see loadgen.ORIGIN_CLOSE_PORT_OFFSET).
PROXY_SINK_PORTS = {"vpp-singbox": 5201, "vpp-hs-proxy": 5202, "danted": 5203, "microsocks": 5204}
HS_PROXY_PORT = 9000
PNS_CLIENT_IP = "198.18.3.1"
CLIENT_PNS_IP = "198.18.3.2"
PNS_ORIGIN_IP = "198.18.4.1"
ORIGIN_PNS_IP = "198.18.4.2"


def sh(*cmd: str, check: bool = True) -> None:
    r = subprocess.run(cmd, capture_output=True, text=True)
    if check and r.returncode:
        raise RuntimeError(f"{' '.join(cmd)}: {r.stderr}")


def linux_proxy_ns(topo: vt.Topology, tag: str) -> str:
    pns = f"{tag}p"
    sh("ip", "netns", "add", pns)
    topo.namespaces.append(pns)
    for inner_ns, a, b, ip_in, ip_p in (
        (topo.ns_client, f"{tag}x0", f"{tag}x1", CLIENT_PNS_IP, PNS_CLIENT_IP),
        (topo.ns_origin, f"{tag}y0", f"{tag}y1", ORIGIN_PNS_IP, PNS_ORIGIN_IP),
    ):
        sh("ip", "link", "add", a, "type", "veth", "peer", "name", b)
        sh("ip", "link", "set", a, "netns", inner_ns)
        sh("ip", "link", "set", b, "netns", pns)
        sh(*vt.ns_cmd(inner_ns, "ip", "addr", "add", f"{ip_in}/24", "dev", a))
        sh(*vt.ns_cmd(inner_ns, "ip", "link", "set", a, "up"))
        sh(*vt.ns_cmd(pns, "ip", "addr", "add", f"{ip_p}/24", "dev", b))
        sh(*vt.ns_cmd(pns, "ip", "link", "set", b, "up"))
    sh(*vt.ns_cmd(pns, "ip", "link", "set", "lo", "up"))
    return pns


def measure(topo: vt.Topology, name: str, proxy: str, pport: int, dst: str,
            args: argparse.Namespace, dport: int, origin_close_dport: int | None = None,
            cpu_pid: int | None = None) -> dict[str, float]:
    out = loadgen.measure(topo.ns_client, proxy, pport, dst, dport, args.seconds, args.mbytes,
                          args.concurrency, origin_close_dport, cpu_pid)
    print(loadgen.row(name, out), flush=True)
    return out


def warm_up(topo: vt.Topology,
            cases: "list[tuple[str, str, str, int, str, int, int | None]]",
            args: argparse.Namespace) -> None:
    """One unrecorded second of each VPP rate case, client- and origin-closing."""
    for name, _label, proxy, pport, dst, dport, oc_port in cases:
        if not name.startswith("vpp-"):
            continue
        for close, port in (("client", dport),
                            ("origin", oc_port or dport + loadgen.ORIGIN_CLOSE_PORT_OFFSET)):
            loadgen.run_json(topo.ns_client, cpsload_binary(), "cps", proxy, str(pport), dst,
                             str(port), str(args.concurrency), "1", close)


def pss_bytes(pgid: int) -> int:
    """Proportional set size of every process in a process group (danted
    forks helpers; VPP is one process), so shared pages count once."""
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[2]) != pgid:  # pgrp
                continue
            for line in (stat.parent / "smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    total += int(line.split()[1]) * 1024
        except (OSError, IndexError, ValueError):
            continue
    return total


_UNITS = {"": 1, "k": 1 << 10, "K": 1 << 10, "m": 1 << 20, "M": 1 << 20, "g": 1 << 30,
          "G": 1 << 30}


def vpp_heap_used(vpp: vt.Vpp) -> int:
    """Main heap bytes in use, from `show memory main-heap` (all threads
    share it)."""
    import re

    out = vpp.cli("show memory main-heap")
    m = re.search(r"used: ([0-9.]+)([kKmMgG]?)", out)
    if not m:
        raise RuntimeError(f"no 'used:' in show memory main-heap: {out[:300]}")
    return int(float(m.group(1)) * _UNITS[m.group(2)])


def idle_memory(topo: vt.Topology, name: str, proxy: str, pport: int, dst: str, dport: int,
                n: int, pgid: int, heap: "vt.Vpp | None" = None) -> dict[str, float]:
    """Open n sessions with no traffic (CONNECTed through a SOCKS5 proxy, or
    plain connections with proxy "-"); memory growth per session."""
    def sample() -> tuple[int, int]:
        return pss_bytes(pgid), vpp_heap_used(heap) if heap else 0

    time.sleep(1)
    pss0, heap0 = sample()
    p = subprocess.Popen(vt.ns_cmd(topo.ns_client, *LOADGEN, "idle", proxy,
                                   str(pport), dst, str(dport), str(n)),
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    out: dict[str, float] = {}
    try:
        assert p.stdin is not None and p.stdout is not None
        first = json.loads(p.stdout.readline() or "{}")
        opened = int(first.get("open", 0))
        time.sleep(2)  # let helpers settle (danted forks io processes on demand)
        pss1, heap1 = sample()
        p.stdin.write("\n")
        p.stdin.flush()
        p.stdout.readline()
        p.wait(60)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    out["idle_sessions"] = opened
    out["pss_per_session"] = (pss1 - pss0) / max(opened, 1)
    line = (f"  {name:<22} {opened:5d} idle sessions: PSS +{(pss1 - pss0) / 1e6:7.2f} MB "
            f"= {out['pss_per_session']:8.0f} B/session")
    if heap:
        out["heap_per_session"] = (heap1 - heap0) / max(opened, 1)
        line += f"   (main heap {out['heap_per_session']:.0f} B/session)"
    print(line, flush=True)
    return out


SINGBOX_CONF = "singbox { fifo-size 512k max-fifo-size 4m }"


def hs_proxy_cmd(sink_port: int) -> str:
    """hs_apps proxy toward the origin's sink, with the same fifo settings as singbox."""
    return (f"test proxy server server-uri tcp://{vt.VPP_CLIENT_IP4}:{HS_PROXY_PORT} "
            f"client-uri tcp://{vt.ORIGIN_IP4}:{sink_port} fifo-size 512k max-fifo-size 4m")


def vpp_idle_memory(args: argparse.Namespace, workers: int, name: str) -> dict[str, float]:
    """Memory per idle session of one VPP proxy, on a VPP of its own: the first sessions of a
    fresh VPP also grow VPP's own pools (sessions, TCP connections, lookup tables), which a proxy
    measured second on the same VPP finds grown already (hs_apps proxy's main heap grew 0.6 KB a
    session after singbox's, singbox's 9.1 KB on the fresh VPP)."""
    vpp = vt.Vpp(workers=workers, extra_conf=SINGBOX_CONF)
    topo = None
    try:
        topo = vt.Topology(vpp, tag=f"b{secrets.token_hex(2)}", kind=args.link)
        loadgen.set_rx_mode(vpp, (topo.vpp_if_client, topo.vpp_if_origin), args.rx_mode)
        loadgen.tune_client_ns(topo.ns_client)
        topo.spawn(topo.ns_origin, cpsload_binary(), "sink", "0.0.0.0", str(IDLE_SINK_PORT))
        vt.wait_port(topo.ns_origin, "0.0.0.0", IDLE_SINK_PORT)
        if name == "vpp-singbox":
            vpp.cli(f"singbox server start {vt.VPP_CLIENT_IP4}:1080")
            return idle_memory(topo, "VPP singbox (SOCKS5)", vt.VPP_CLIENT_IP4, 1080,
                               vt.ORIGIN_IP4, IDLE_SINK_PORT, args.idle, vpp.proc.pid, heap=vpp)
        # the same two legs and fifos: the client's SOCKS5 exchanges, answered by the
        # origin through the splice, make hs_apps proxy open its upstream leg
        vpp.cli(hs_proxy_cmd(IDLE_SINK_PORT))
        return idle_memory(topo, "VPP hs_apps proxy", vt.VPP_CLIENT_IP4, HS_PROXY_PORT,
                           vt.ORIGIN_IP4, IDLE_SINK_PORT, args.idle, vpp.proc.pid, heap=vpp)
    finally:
        if topo:
            topo.close()
        vpp.close()


def run(args: argparse.Namespace, workers: int, linux_peers: bool) -> dict[str, dict[str, float]]:
    """One VPP with `workers` workers: memory per idle session (first; the VPP
    proxies each on a fresh VPP), then every case; with linux_peers danted and
    microsocks too."""
    vpp = vt.Vpp(workers=workers, extra_conf=SINGBOX_CONF)
    topo = None
    results: dict[str, dict[str, float]] = {}
    try:
        # random: concurrent runs share the host's veth names
        tag = f"b{secrets.token_hex(2)}"
        topo = vt.Topology(vpp, tag=tag, kind=args.link)
        pns = linux_proxy_ns(topo, tag)
        loadgen.set_rx_mode(vpp, (topo.vpp_if_client, topo.vpp_if_origin), args.rx_mode)
        for ns in (topo.ns_client, pns):
            loadgen.tune_client_ns(ns)
        sink_ports = [p + off for p in PROXY_SINK_PORTS.values()
                      for off in (0, loadgen.ORIGIN_CLOSE_PORT_OFFSET)]
        for port in sink_ports:
            topo.spawn(topo.ns_origin, cpsload_binary(), "sink", "0.0.0.0", str(port))
        for port in sink_ports:
            vt.wait_port(topo.ns_origin, "0.0.0.0", port)

        vpp.cli(f"singbox server start {vt.VPP_CLIENT_IP4}:1080")
        vpp.cli(hs_proxy_cmd(PROXY_SINK_PORTS["vpp-hs-proxy"]))
        d = Path(tempfile.mkdtemp(prefix="sbb-"))
        (d / "danted.conf").write_text(
            f"logoutput: /dev/null\ninternal: {PNS_CLIENT_IP} port = 1080\n"
            f"external: {PNS_ORIGIN_IP}\nsocksmethod: none\nclientmethod: none\n"
            "user.privileged: root\nuser.unprivileged: nobody\n"
            "client pass { from: 0.0.0.0/0 to: 0.0.0.0/0 }\n"
            "socks pass { from: 0.0.0.0/0 to: 0.0.0.0/0 }\n")
        peers = []
        pgids: dict[str, int] = {"vpp-singbox": vpp.proc.pid}
        if linux_peers and shutil.which("danted"):
            pgids["danted"] = topo.spawn(pns, "danted", "-f", str(d / "danted.conf"),
                                         "-N", "2").pid
            peers.append(("danted", PNS_CLIENT_IP, 1080))
        if linux_peers and shutil.which("microsocks"):
            pgids["microsocks"] = topo.spawn(pns, "microsocks", "-i", PNS_CLIENT_IP, "-p",
                                             "1081", "-b", PNS_ORIGIN_IP).pid
            peers.append(("microsocks", PNS_CLIENT_IP, 1081))
        for _, ip, port in peers:
            vt.wait_port(pns, ip, port)
        time.sleep(0.5)

        mem: dict[str, dict[str, float]] = {}
        if args.idle:
            print(f"\nVPP workers {workers}: memory per idle session ({args.idle} open, no traffic; "
                  "each VPP proxy on a fresh VPP of its own):")
            for name in ("vpp-singbox", "vpp-hs-proxy-socks5"):
                mem[name] = vpp_idle_memory(args, workers, name)
            for name, ip, port in peers:
                mem[name] = idle_memory(topo, name, ip, port, ORIGIN_PNS_IP, IDLE_SINK_PORT,
                                        args.idle, pgids[name])

        print(f"SOCKS5 benchmark: {args.seconds:.0f} s per case, up to {args.mbytes} MiB "
              f"per bulk case, VPP workers {workers}, link {args.link}, rx-mode {args.rx_mode}; "
              f"load {os.getloadavg()[0]:.2f}")
        # (name, label, proxy, proxy port, destination, its port, origin-closing port)
        cases: list[tuple[str, str, str, int, str, int, int | None]] = [
            ("vpp-singbox", "VPP singbox (SOCKS5)", vt.VPP_CLIENT_IP4, 1080, vt.ORIGIN_IP4,
             PROXY_SINK_PORTS["vpp-singbox"], None),
            # hs_apps proxy: no SOCKS, one fixed upstream (its own sink); the client connects plainly
            ("vpp-hs-proxy", "VPP hs_apps proxy", "-", 0, vt.VPP_CLIENT_IP4, HS_PROXY_PORT,
             HS_PROXY_PORT),
            # the same splice, the client speaking SOCKS5 to the origin through it
            ("vpp-hs-proxy-socks5", "hs_apps, SOCKS5 exchanges", vt.VPP_CLIENT_IP4, HS_PROXY_PORT,
             vt.ORIGIN_IP4, PROXY_SINK_PORTS["vpp-hs-proxy"], PROXY_SINK_PORTS["vpp-hs-proxy"]),
            *((name, name, ip, port, ORIGIN_PNS_IP, PROXY_SINK_PORTS[name], None)
              for name, ip, port in peers),
        ]
        # VPP grows its TCP, session and local-port pools as connections pile up in TIME_WAIT, each
        # growth under the worker barrier (pool_program_safe_realloc_rpc; 20-100 ms each with 2
        # workers on a loaded 2-core box): unwarmed, the first VPP case of a run paid them all
        warm_up(topo, cases, args)
        rounds: dict[str, list[dict[str, float]]] = {name: [] for name, *_ in cases}
        for rnd in range(args.rounds):
            if args.rounds > 1:
                print(f" round {rnd + 1}/{args.rounds}, load {os.getloadavg()[0]:.2f}")
            for name, label, proxy, pport, dst, dport, oc_port in cases:
                rounds[name].append(measure(topo, label, proxy, pport, dst, args, dport, oc_port,
                                            vpp.proc.pid if name.startswith("vpp-") else None))
        for name, label, *_ in cases:
            # each figure's median over the rounds (with one round: that round's)
            results[name] = {k: statistics.median(x[k] for x in rounds[name])
                             for k in rounds[name][0]}
            if args.rounds > 1:
                print(loadgen.row(f"{label} (median)", results[name]), flush=True)
        print(f"load at the end {os.getloadavg()[0]:.2f}")
        for name, m in mem.items():
            results.setdefault(name, {}).update(m)
        base = results["vpp-singbox"]
        print(f"ratios (VPP singbox / other), VPP workers {workers}:")
        for name, r in results.items():
            if name == "vpp-singbox" or "gbps_1" not in r:
                continue
            print(loadgen.ratio_row(f"vs {name}", base, r))
        for name, m in mem.items():
            if name != "vpp-singbox" and m.get("idle_sessions"):
                b, o = mem["vpp-singbox"]["pss_per_session"], m["pss_per_session"]
                line = (f"  memory per idle session vs {name}: PSS x{b / max(o, 1e-9):.2f} "
                        f"({b:.0f} / {o:.0f} B)")
                if "heap_per_session" in m:
                    bh, oh = mem["vpp-singbox"]["heap_per_session"], m["heap_per_session"]
                    line += f", main heap x{bh / max(oh, 1e-9):.2f} ({bh:.0f} / {oh:.0f} B)"
                print(line)
    finally:
        if topo:
            topo.close()
        vpp.close()
    return results


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=5)
    ap.add_argument("--concurrency", type=int, default=256,
                    help="connections in flight in the connection-rate cases (enough to keep "
                    "every proxy busy: with 32 the rate is 32 / one connection's latency)")
    ap.add_argument("--mbytes", type=int, default=2048)
    ap.add_argument("--workers", default="0",
                    help="VPP worker counts, comma-separated (e.g. 0,2): one VPP each, in turn; "
                    "danted and microsocks run with the first only, and the rates at each "
                    "count are compared with the first's (scaling)")
    loadgen.add_rx_mode_option(ap)
    ap.add_argument("--rounds", type=int, default=1,
                    help="run the cases this many times, interleaved, and report each figure's "
                    "median (load on a shared box comes and goes within a case's seconds)")
    ap.add_argument("--idle", type=int, default=1000,
                    help="idle sessions opened for the memory-per-session figures")
    ap.add_argument("--link", choices=["af_packet", "tap"], default="af_packet",
                    help="how the namespaces attach to VPP (tap: tapv2 with GSO, "
                    "needs /dev/vhost-net)")
    args = ap.parse_args()
    counts = [int(w) for w in args.workers.split(",")]
    print(f"load {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")
    by_workers = {w: run(args, w, linux_peers=i == 0) for i, w in enumerate(counts)}
    if len(counts) > 1:
        first = counts[0]
        print(f"\nscaling (VPP workers N / {first}), same run:")
        for w in counts[1:]:
            for name in ("vpp-singbox", "vpp-hs-proxy", "vpp-hs-proxy-socks5"):
                print(loadgen.ratio_row(f"{name} {w}/{first}", by_workers[w][name],
                                        by_workers[first][name]))
    print(json.dumps({str(w): r for w, r in by_workers.items()}))


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Cost of one scrape of the metrics exporter at 10,000 sessions (issue 18: a scrape <= 50 ms).

1. The scrape path without HTTP (stats read + snapshot + render, what the exporter's reader thread does) with the
   in-memory source shaped like the plugin's segment: 10,000 active sessions, --interfaces client-mode interfaces,
   --endpoints endpoints, --threads VPP threads: wall and CPU time per scrape (median, p99, max), bytes of the
   text and OpenMetrics expositions, gzipped too.
2. The same over HTTPS as Prometheus does it (httpx, one keep-alive connection, Basic auth against the real user
   store on a private sysrepo instance, OpenMetrics asked): median and p99 per scrape.
3. With VPP: --vpp-sessions N starts a private VPP with the plugin (tests/vpp/vpptopo.py: VPP_PREFIX and
   SINGBOX_PLUGIN_DIR, root), opens N idle SOCKS5 sessions through its server (bench/vpp/loadgen.py idle, to a
   cpsload sink) and reads the real stats segment through VPPStats while they are open; or --vpp-stats-socket reads
   a VPP that is already running.

    scripts/in-env python bench/metrics/bench_scrape.py [--scrapes 200] [--endpoints 100] [--interfaces 16]
                                                         [--vpp-sessions 10000 | --vpp-stats-socket PATH]

Numbers are printed next to the 50 ms budget as a ratio; nothing here asserts a time.
"""

from __future__ import annotations

import argparse
import gzip
import secrets
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

TOP = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(TOP / "tests" / "metrics"))

BUDGET_MS = 50.0
SESSIONS = 10_000


def timed(fn: Callable[[], object], n: int) -> tuple[list[float], list[float]]:
    wall, cpu = [], []
    for _ in range(n):
        w, c = time.perf_counter(), time.process_time()
        fn()
        wall.append((time.perf_counter() - w) * 1e3)
        cpu.append((time.process_time() - c) * 1e3)
    return wall, cpu


def line(label: str, ms: list[float]) -> str:
    ms = sorted(ms)
    p99 = ms[min(len(ms) - 1, int(len(ms) * 0.99))]
    med = statistics.median(ms)
    return (f"  {label:<34} median {med:7.3f} ms  p99 {p99:7.3f} ms  max {ms[-1]:7.3f} ms  "
            f"budget ratio {p99 / BUDGET_MS:5.3f}")


def memory_source(interfaces: int, endpoints: int, threads: int):  # type: ignore[no-untyped-def]
    from metricsdata import plugin_segment

    src = plugin_segment(interfaces=interfaces, endpoints=endpoints, threads=threads, sessions=SESSIONS // 2)
    client = SESSIONS - SESSIONS // 2
    for i in range(1, interfaces + 1):
        src.set(f"/singbox/client/interface/{i}/active", client // interfaces + (i <= client % interfaces))
    return src


def scrape_path(source, n: int, label: str) -> None:  # type: ignore[no-untyped-def]
    from singbox_agent.metrics import render, snapshot

    def one(openmetrics: bool) -> str:
        return render.render(snapshot.build(source.read(), agent_version="bench"), openmetrics=openmetrics)

    text, om = one(False), one(True)
    snap = snapshot.build(source.read(), agent_version="bench")
    sessions = (snap.server.active_sessions if snap.server else 0) + sum(
        i.active_connections for i in snap.client_interfaces)
    print(f"{label}: {sessions} sessions, {len(snap.client_interfaces)} client interfaces, {len(snap.endpoints)} "
          f"endpoints, {len(snap.interfaces)} VPP interfaces")
    print(f"  exposition: text {len(text):,} B (gzip {len(gzip.compress(text.encode(), 1)):,} B), "
          f"OpenMetrics {len(om):,} B, {sum(1 for ln in text.splitlines() if not ln.startswith('#'))} samples")
    wall, cpu = timed(lambda: one(False), n)
    print(line("read+render text, wall", wall))
    print(line("read+render text, CPU", cpu))
    wall, _ = timed(lambda: one(True), n)
    print(line("read+render OpenMetrics, wall", wall))
    wall, _ = timed(source.read, n)
    print(line("stats read alone, wall", wall))


def https(source, n: int) -> None:  # type: ignore[no-untyped-def]
    import httpx

    from metricsdata import ADMIN, InProcessExporter, add_user
    from singbox_agent.repository import SysrepoInstance, project_yang_dirs, project_yang_files

    instance = SysrepoInstance(repository=Path(tempfile.mkdtemp(prefix="srb", dir="/tmp")),
                               shm_prefix="sbb" + secrets.token_hex(4))
    instance.install_modules(project_yang_files(TOP), project_yang_dirs(TOP))
    instance.activate()
    try:
        add_user(*ADMIN)
        state = Path(tempfile.mkdtemp(prefix="exp"))
        exporter = InProcessExporter(source, state)
        try:
            headers = {"Accept": "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5",
                       "Accept-Encoding": "gzip"}
            with httpx.Client(verify=exporter.ca, auth=ADMIN, headers=headers, timeout=30) as c:
                r = c.get(exporter.url)
                r.raise_for_status()
                print(f"HTTPS (httpx keep-alive, Basic auth, OpenMetrics, gzip): {r.num_bytes_downloaded:,} B on "
                      f"the wire")
                wall, _ = timed(lambda: c.get(exporter.url).raise_for_status(), n)
                print(line("scrape over HTTPS, wall", wall))
        finally:
            exporter.close()
    finally:
        instance.destroy()


def with_vpp_sessions(n: int, scrapes: int) -> None:
    """A private VPP holding n SOCKS5 sessions open while its segment is scraped."""
    import json
    import subprocess

    sys.path.insert(0, str(TOP / "tests" / "vpp"))
    sys.path.insert(0, str(TOP / "bench" / "vpp"))
    import vpptopo as vt
    from loadgen import PYTHON_LOADGEN, cpsload_binary

    from singbox_agent.metrics.vppstats import VppStatsSource

    sink_port = 5201
    vpp = vt.Vpp(workers=0)
    topo = None
    try:
        topo = vt.Topology(vpp, tag=f"mb{int(time.time()) % 10000}")
        topo.spawn(topo.ns_origin, cpsload_binary(), "sink", "0.0.0.0", str(sink_port))
        vt.wait_port(topo.ns_origin, vt.ORIGIN_IP4, sink_port)
        vpp.cli(f"singbox server set max-sessions {n + 1000}")
        vpp.cli(f"singbox server start {vt.VPP_CLIENT_IP4}:1080")
        p = subprocess.Popen(vt.ns_cmd(topo.ns_client, *PYTHON_LOADGEN, "idle", vt.VPP_CLIENT_IP4, "1080",
                                       vt.ORIGIN_IP4, str(sink_port), str(n)),
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        try:
            assert p.stdin is not None and p.stdout is not None
            opened = json.loads(p.stdout.readline() or "{}")
            print(f"VPP: {opened} (loadgen idle through the SOCKS5 server)")
            time.sleep(1.5)  # the plugin refreshes its gauges every 0.5 s
            source = VppStatsSource(str(vpp.stats_sock))
            scrape_path(source, scrapes, f"VPP stats segment, {opened.get('open', 0)} sessions open")
            source.close()
            p.stdin.write("\n")
            p.stdin.flush()
            p.wait(120)
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
    finally:
        if topo is not None:
            topo.close()
        vpp.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scrapes", type=int, default=200)
    parser.add_argument("--interfaces", type=int, default=16)
    parser.add_argument("--endpoints", type=int, default=100)
    parser.add_argument("--threads", type=int, default=3, help="VPP threads (main + workers) in the memory segment")
    parser.add_argument("--vpp-stats-socket", help="also read a running VPP's stats segment")
    parser.add_argument("--vpp-sessions", type=int, default=0,
                        help="also start a private VPP and read its segment with this many sessions open")
    parser.add_argument("--no-https", action="store_true", help="skip step 2 (needs sysrepo)")
    opts = parser.parse_args()
    source = memory_source(opts.interfaces, opts.endpoints, opts.threads)
    scrape_path(source, opts.scrapes, "memory source")
    if not opts.no_https:
        https(source, opts.scrapes)
    if opts.vpp_stats_socket:
        from singbox_agent.metrics.vppstats import VppStatsSource

        vpp = VppStatsSource(opts.vpp_stats_socket)
        if vpp.read() is None:
            print(f"VPP: no stats segment at {opts.vpp_stats_socket}")
        else:
            scrape_path(vpp, opts.scrapes, f"VPP stats segment {opts.vpp_stats_socket}")
        vpp.close()
    elif opts.vpp_sessions:
        with_vpp_sessions(opts.vpp_sessions, opts.scrapes)
    else:
        print("VPP: not measured (--vpp-sessions N with VPP_PREFIX and SINGBOX_PLUGIN_DIR, or --vpp-stats-socket)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

# SPDX-License-Identifier: Apache-2.0
# Copyright (c) 2026 vpp-singbox authors
"""HTTP CONNECT server mode benchmark: VPP singbox answering HTTP CONNECT on its SOCKS5 port vs the
same VPP singbox spoken to in SOCKS5 vs tinyproxy (Debian's, in a Linux proxy namespace), same
topology, same run; prints absolute numbers and ratios.

    sudo VPP_PREFIX=/opt/vpp SINGBOX_PLUGIN_DIR=<build>/lib/vpp_plugins \\
        python3 bench/vpp/bench_http.py [--seconds 5] [--mbytes 1024]

Topology as bench_socks.py: client ns --veth-- VPP --veth-- origin ns (singbox), client ns --veth--
proxy ns --veth-- origin ns (tinyproxy). Each case: bulk throughput with 1 and 8 streams, then
connections per second (CONNECT, one probe byte echoed, close) with the client closing first and with
the origin closing first (bench/vpp/cpsload.c; CPSLOAD_HTTP=1 makes it and loadgen.py ask with HTTP
CONNECT). tinyproxy is looked up on PATH (`apt-get install tinyproxy`); without it only the two VPP
cases run. Numbers on a small VM are noisy: compare ratios from the same run.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent.parent / "tests" / "vpp"))
import vpptopo as vt  # noqa: E402
import loadgen  # noqa: E402
from bench_socks import ORIGIN_PNS_IP, PNS_CLIENT_IP, linux_proxy_ns  # noqa: E402
from loadgen import cpsload_binary  # noqa: E402

# a sink per case (and its origin-closing twin at loadgen.ORIGIN_CLOSE_PORT_OFFSET): see bench_socks.py
SINK_PORTS = {"singbox-http": 5211, "singbox-socks5": 5212, "tinyproxy": 5213}
TINYPROXY_PORT = 8888


def measure(topo: vt.Topology, name: str, proxy: str, pport: int, dst: str, http: bool,
            args: argparse.Namespace, dport: int) -> dict[str, float]:
    os.environ["CPSLOAD_HTTP"] = "1" if http else "0"
    out = loadgen.measure(topo.ns_client, proxy, pport, dst, dport, args.seconds, args.mbytes,
                          args.concurrency)
    print(loadgen.row(name, out), flush=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=5)
    ap.add_argument("--concurrency", type=int, default=256)
    ap.add_argument("--mbytes", type=int, default=2048)
    ap.add_argument("--workers", type=int, default=0)
    loadgen.add_rx_mode_option(ap)
    args = ap.parse_args()

    vpp = vt.Vpp(workers=args.workers, extra_conf="singbox { fifo-size 512k max-fifo-size 4m }")
    topo = None
    results: dict[str, dict[str, float]] = {}
    try:
        tag = f"h{secrets.token_hex(2)}"
        topo = vt.Topology(vpp, tag=tag)
        pns = linux_proxy_ns(topo, tag)
        loadgen.set_rx_mode(vpp, (topo.vpp_if_client, topo.vpp_if_origin), args.rx_mode)
        for ns in (topo.ns_client, pns):
            loadgen.tune_client_ns(ns)
        ports = [p + off for p in SINK_PORTS.values() for off in (0, loadgen.ORIGIN_CLOSE_PORT_OFFSET)]
        for port in ports:
            topo.spawn(topo.ns_origin, cpsload_binary(), "sink", "0.0.0.0", str(port))
        for port in ports:
            vt.wait_port(topo.ns_origin, "0.0.0.0", port)
        vpp.cli(f"singbox server start {vt.VPP_CLIENT_IP4}:1080")

        tiny = shutil.which("tinyproxy")
        if tiny:
            d = Path(tempfile.mkdtemp(prefix="sbh-"))
            # no ConnectPort line: CONNECT to any port; enough clients for the connection-rate cases
            (d / "tinyproxy.conf").write_text(
                f"Port {TINYPROXY_PORT}\nListen {PNS_CLIENT_IP}\n"
                "Timeout 60\nMaxClients 4096\nLogLevel Critical\nUser nobody\nGroup nogroup\n")
            topo.spawn(pns, tiny, "-d", "-c", str(d / "tinyproxy.conf"))
            vt.wait_port(pns, PNS_CLIENT_IP, TINYPROXY_PORT)
        time.sleep(0.5)

        print(f"HTTP CONNECT benchmark: {args.seconds:.0f} s per case, up to {args.mbytes} MiB per bulk "
              f"case, VPP workers {args.workers}, {args.concurrency} connections in flight")
        results["singbox-http"] = measure(topo, "VPP singbox HTTP CONNECT", vt.VPP_CLIENT_IP4, 1080,
                                          vt.ORIGIN_IP4, True, args, SINK_PORTS["singbox-http"])
        results["singbox-socks5"] = measure(topo, "VPP singbox SOCKS5", vt.VPP_CLIENT_IP4, 1080,
                                            vt.ORIGIN_IP4, False, args, SINK_PORTS["singbox-socks5"])
        if tiny:
            results["tinyproxy"] = measure(topo, "tinyproxy HTTP CONNECT", PNS_CLIENT_IP,
                                           TINYPROXY_PORT, ORIGIN_PNS_IP, True, args,
                                           SINK_PORTS["tinyproxy"])
        base = results["singbox-http"]
        print("\nratios (VPP singbox HTTP CONNECT / other):")
        for name, r in results.items():
            if name != "singbox-http":
                print(loadgen.ratio_row(f"vs {name}", base, r))
        print(json.dumps(results))
    finally:
        if topo:
            topo.close()
        vpp.close()


if __name__ == "__main__":
    main()

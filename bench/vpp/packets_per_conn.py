# SPDX-License-Identifier: Apache-2.0
# Copyright (c) 2026 vpp-singbox authors
"""Packets VPP sends and receives per connection in bench_socks.py's connection-rate cases: VPP
singbox (SOCKS5) vs VPP's hs_apps proxy (plain, and with the same SOCKS5 exchanges), client- and
origin-closing, from VPP's interface counters around a cpsload run. On af_packet veths VPP's CPU
per connection follows what it sends (the peer's TCP runs in VPP's sendto, README.md), so this says
where a connection's cost comes from.

    VPP_PREFIX=/opt/vpp SINGBOX_PLUGIN_DIR=<build>/lib/vpp_plugins \\
        scripts/in-env python bench/vpp/packets_per_conn.py [--seconds 3] [--concurrency 64]
"""

from __future__ import annotations

import argparse
import re
import secrets
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent.parent / "tests" / "vpp"))
sys.path.insert(0, str(HERE))
import vpptopo as vt  # noqa: E402
import loadgen  # noqa: E402
import bench_socks as bs  # noqa: E402
from loadgen import cpsload_binary  # noqa: E402


def counters(vpp: vt.Vpp, names: tuple[str, ...]) -> dict[str, int]:
    """rx and tx packets of VPP's interfaces `names`, summed."""
    tot = {"rx": 0, "tx": 0}
    cur = None
    for line in vpp.cli("show interface").splitlines():
        w = line.split()
        if w and not line.startswith(" "):
            cur = w[0] if w[0] in names else None
        if cur:
            m = re.search(r"\b(rx|tx) packets\s+(\d+)", line)
            if m:
                tot[m.group(1)] += int(m.group(2))
    return tot


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=3)
    ap.add_argument("--concurrency", type=int, default=64)
    args = ap.parse_args()
    vpp = vt.Vpp(workers=0, extra_conf=bs.SINGBOX_CONF)
    topo = None
    try:
        topo = vt.Topology(vpp, tag=f"p{secrets.token_hex(2)}", kind="af_packet")
        loadgen.tune_client_ns(topo.ns_client)
        ports = [p + off for p in bs.PROXY_SINK_PORTS.values()
                 for off in (0, loadgen.ORIGIN_CLOSE_PORT_OFFSET)]
        for port in ports:
            topo.spawn(topo.ns_origin, cpsload_binary(), "sink", "0.0.0.0", str(port))
        for port in ports:
            vt.wait_port(topo.ns_origin, "0.0.0.0", port)
        vpp.cli(f"singbox server start {vt.VPP_CLIENT_IP4}:1080")
        vpp.cli(bs.hs_proxy_cmd(bs.PROXY_SINK_PORTS["vpp-hs-proxy"]))
        names = (topo.vpp_if_client, topo.vpp_if_origin)
        hs_sink = bs.PROXY_SINK_PORTS["vpp-hs-proxy"]
        cases: list[tuple[str, str, int, str, int, int | None]] = [
            ("singbox", vt.VPP_CLIENT_IP4, 1080, vt.ORIGIN_IP4, bs.PROXY_SINK_PORTS["vpp-singbox"],
             None),
            ("hs_apps plain", "-", 0, vt.VPP_CLIENT_IP4, bs.HS_PROXY_PORT, bs.HS_PROXY_PORT),
            ("hs_apps socks5", vt.VPP_CLIENT_IP4, bs.HS_PROXY_PORT, vt.ORIGIN_IP4, hs_sink, hs_sink),
        ]
        for name, proxy, pport, dst, dport, oc in cases:
            for close in ("client", "origin"):
                port = dport if close == "client" else (
                    oc or dport + loadgen.ORIGIN_CLOSE_PORT_OFFSET)
                cps = (cpsload_binary(), "cps", proxy, str(pport), dst, str(port),
                       str(args.concurrency))
                loadgen.run_json(topo.ns_client, *cps, "1", close)  # warm up VPP's pools
                time.sleep(1)
                c0 = counters(vpp, names)
                r = loadgen.run_json(topo.ns_client, *cps, str(args.seconds), close)
                time.sleep(2)  # the last FINs and their ACKs
                c1 = counters(vpp, names)
                n = max(int(r["connections"]), 1)
                print(f"{name:16} {close:6}-closing: {n:6d} connections, VPP sent "
                      f"{(c1['tx'] - c0['tx']) / n:5.2f}, received {(c1['rx'] - c0['rx']) / n:5.2f} "
                      "packets per connection", flush=True)
    finally:
        if topo:
            topo.close()
        vpp.close()


if __name__ == "__main__":
    main()

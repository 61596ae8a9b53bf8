# SPDX-License-Identifier: Apache-2.0
# Copyright (c) 2026 vpp-singbox authors
"""SOCKS5 server benchmark: VPP singbox vs VPP's hs_apps proxy vs danted vs
microsocks, same topology, same run; prints absolute numbers and ratios.

    sudo VPP_PREFIX=/opt/vpp SINGBOX_PLUGIN_DIR=<build>/lib/vpp_plugins \\
        python3 bench/vpp/bench_socks.py [--seconds 5] [--mbytes 1024]

Topology (tests/vpp/vpptopo.py plus a Linux proxy namespace)::

    client ns --veth-- VPP --veth-- origin ns        (singbox, hs_apps proxy)
    client ns --veth-- proxy ns --veth-- origin ns   (danted, microsocks)

hs_apps "test proxy" is a plain TCP splice with a fixed upstream: the cost
of the session layer with no SOCKS at all, i.e. the ceiling for singbox.
Numbers on a small VM are noisy: compare ratios from the same run.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent.parent / "tests" / "vpp"))
import vpptopo as vt  # noqa: E402

LOADGEN = str(HERE / "loadgen.py")
SINK_PORT = 5201
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


def run_json(ns: str, *args: str, timeout: float = 300) -> dict[str, float]:
    r = subprocess.run(vt.ns_cmd(ns, sys.executable, LOADGEN, *args), capture_output=True,
                       text=True, timeout=timeout)
    if r.returncode:
        raise RuntimeError(r.stderr)
    return json.loads(r.stdout.strip().splitlines()[-1])


def measure(topo: vt.Topology, name: str, proxy: str, pport: int, dst: str, secs: float,
            mbytes: int) -> dict[str, float]:
    out: dict[str, float] = {}
    for streams in (1, 8):
        r = run_json(topo.ns_client, "bulk", proxy, str(pport), dst, str(SINK_PORT),
                     str(streams), str(mbytes), str(secs))
        out[f"gbps_{streams}"] = r["bytes"] * 8 / r["seconds"] / 1e9
    r = run_json(topo.ns_client, "cps", proxy, str(pport), dst, str(SINK_PORT), "32", str(secs))
    out["cps"] = r["connections"] / r["seconds"]
    out["cps_errors"] = r["errors"]
    print(f"  {name:<22} 1 stream {out['gbps_1']:6.2f} Gbit/s   8 streams "
          f"{out['gbps_8']:6.2f} Gbit/s   {out['cps']:8.0f} conn/s "
          f"({int(out['cps_errors'])} errors)", flush=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=5)
    ap.add_argument("--mbytes", type=int, default=2048)
    ap.add_argument("--workers", type=int, default=0)
    ap.add_argument("--link", choices=["af_packet", "tap"], default="af_packet",
                    help="how the namespaces attach to VPP (tap: tapv2 with GSO, "
                    "needs /dev/vhost-net)")
    args = ap.parse_args()

    vpp = vt.Vpp(workers=args.workers, extra_conf="singbox { fifo-size 512k max-fifo-size 4m }")
    topo = None
    results: dict[str, dict[str, float]] = {}
    try:
        topo = vt.Topology(vpp, tag="sbb", kind=args.link)
        pns = linux_proxy_ns(topo, "sbb")
        topo.spawn(topo.ns_origin, sys.executable, LOADGEN, "sink", "0.0.0.0", str(SINK_PORT))
        vt.wait_port(topo.ns_origin, "0.0.0.0", SINK_PORT)

        vpp.cli(f"singbox server start {vt.VPP_CLIENT_IP4}:1080")
        vpp.cli(f"test proxy server server-uri tcp://{vt.VPP_CLIENT_IP4}:9000 "
                f"client-uri tcp://{vt.ORIGIN_IP4}:{SINK_PORT} fifo-size 512k")
        d = Path(tempfile.mkdtemp(prefix="sbb-"))
        (d / "danted.conf").write_text(
            f"logoutput: /dev/null\ninternal: {PNS_CLIENT_IP} port = 1080\n"
            f"external: {PNS_ORIGIN_IP}\nsocksmethod: none\nclientmethod: none\n"
            "user.privileged: root\nuser.unprivileged: nobody\n"
            "client pass { from: 0.0.0.0/0 to: 0.0.0.0/0 }\n"
            "socks pass { from: 0.0.0.0/0 to: 0.0.0.0/0 }\n")
        peers = []
        if shutil.which("danted"):
            topo.spawn(pns, "danted", "-f", str(d / "danted.conf"), "-N", "2")
            peers.append(("danted", PNS_CLIENT_IP, 1080))
        if shutil.which("microsocks"):
            topo.spawn(pns, "microsocks", "-i", PNS_CLIENT_IP, "-p", "1081",
                       "-b", PNS_ORIGIN_IP)
            peers.append(("microsocks", PNS_CLIENT_IP, 1081))
        for _, ip, port in peers:
            vt.wait_port(pns, ip, port)
        time.sleep(0.5)

        print(f"SOCKS5 benchmark: {args.seconds:.0f} s per case, up to {args.mbytes} MiB "
              f"per bulk case, VPP workers {args.workers}, link {args.link}")
        results["vpp-singbox"] = measure(topo, "VPP singbox (SOCKS5)", vt.VPP_CLIENT_IP4, 1080,
                                         vt.ORIGIN_IP4, args.seconds, args.mbytes)
        # hs_apps proxy: no SOCKS, fixed upstream; the client connects plainly
        results["vpp-hs-proxy"] = _hs(topo, args)
        for name, ip, port in peers:
            results[name] = measure(topo, name, ip, port, ORIGIN_PNS_IP, args.seconds,
                                    args.mbytes)
        base = results["vpp-singbox"]
        print("\nratios (VPP singbox / other):")
        for name, r in results.items():
            if name == "vpp-singbox":
                continue
            print(f"  vs {name:<14} 1 stream x{base['gbps_1'] / max(r['gbps_1'], 1e-9):5.2f}"
                  f"   8 streams x{base['gbps_8'] / max(r['gbps_8'], 1e-9):5.2f}"
                  f"   conn/s x{base['cps'] / max(r['cps'], 1e-9):5.2f}")
        print(json.dumps(results))
    finally:
        if topo:
            topo.close()
        vpp.close()


def _hs(topo: vt.Topology, args: argparse.Namespace) -> dict[str, float]:
    """hs_apps proxy: connect straight to its listener (it splices to the sink)."""
    out: dict[str, float] = {}
    for streams in (1, 8):
        r = run_json(topo.ns_client, "bulk", "-", "0", vt.VPP_CLIENT_IP4, "9000",
                     str(streams), str(args.mbytes), str(args.seconds))
        out[f"gbps_{streams}"] = r["bytes"] * 8 / r["seconds"] / 1e9
    r = run_json(topo.ns_client, "cps", "-", "0", vt.VPP_CLIENT_IP4, "9000", "32",
                 str(args.seconds))
    out["cps"] = r["connections"] / r["seconds"]
    out["cps_errors"] = r["errors"]
    print(f"  {'VPP hs_apps proxy':<22} 1 stream {out['gbps_1']:6.2f} Gbit/s   8 streams "
          f"{out['gbps_8']:6.2f} Gbit/s   {out['cps']:8.0f} conn/s "
          f"({int(out['cps_errors'])} errors)", flush=True)
    return out


if __name__ == "__main__":
    main()

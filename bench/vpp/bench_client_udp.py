# SPDX-License-Identifier: Apache-2.0
# Copyright (c) 2026 vpp-singbox authors
"""UDP client-mode benchmark: datagrams from the LAN relayed by VPP through sing-box with SOCKS5 UDP
ASSOCIATE, next to the same datagrams routed by VPP (UDP relaying off on the interface): the limit.
Same topology, same run, the two cases interleaved in --rounds rounds so load from elsewhere falls on
both alike; prints medians and the ratios relayed/direct.

    sudo VPP_PREFIX=/opt/vpp SINGBOX_PLUGIN_DIR=<build>/lib/vpp_plugins \\
        python3 bench/vpp/bench_client_udp.py [--workers 0] [--rounds 3] [--seconds 3] [--af-packet v2] \\
        [--parallel 1] [--plugins <before>/lib/vpp_plugins,<after>/lib/vpp_plugins]

Topology (tests/vpp/vpptopo.py)::

    client ns --veth-- VPP --veth-- origin ns (UDP echo, sing-box socks inbound)

Measured, per case, from the client namespace (tests/vpp/udp_peer.py):
- packets/s: one flow keeping --window datagrams of --size bytes in flight for --seconds; the echo
  answers each, so every datagram crosses VPP twice (answers counted);
- latency: --samples round trips, one at a time, on one flow (p50, p99): what relaying adds to each
  datagram of an established flow;
- new flow: --flows flows one after the other, one datagram and its answer each (DNS): the first
  datagram of a relayed flow waits for its association (TCP connect, SOCKS5 greeting, auth and UDP
  ASSOCIATE to sing-box).
With --parallel N the packets/s case runs N such flows at once (summed): flows that share the
plugin's flow table and, with workers, legs on several threads.
--plugins A,B compares builds of the plugin (say before and after a change): each round starts one
VPP per build, in turn (the order alternating), and the table ends with each relayed number of B
over A's.
sing-box relays in user space, so "relayed" includes sing-box's own cost. Both paths cross VPP's
af_packet input twice per round trip; with its default TPACKET_V3 rings each crossing may wait up
to 1 ms at low rates (bench_client.py's af_packet_v2 explains), which hides what relaying adds:
`--af-packet v2` removes that wait. Numbers on a small shared VM are noisy: compare ratios from the
same run.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
PEER = HERE.parent.parent / "tests" / "vpp" / "udp_peer.py"
sys.path.insert(0, str(HERE.parent.parent / "tests" / "vpp"))
import vpptopo as vt  # noqa: E402
from bench_client import add_af_packet_option, af_packet_v2  # noqa: E402

SB_PORT = 1090
ECHO_PORT = vt.free_port()  # the echo's, in the origin namespace
CASES = ("direct", "relayed")


class Bed:
    """VPP, the namespaces, the echo and sing-box; client mode enabled on the LAN interface (TCP),
    UDP relaying switched per case. A context manager."""

    def __init__(self, workers: int, af_packet: str = "v3") -> None:
        from vpp_papi import VPPApiClient  # type: ignore[import-untyped]

        self.vpp = vt.Vpp(workers=workers)
        self.topo: vt.Topology | None = None
        self.papi: Any = None
        try:
            self.topo = topo = vt.Topology(self.vpp, tag=f"sbu{int(time.time()) % 1000}")
            if af_packet == "v2":
                af_packet_v2(self.vpp, topo)
            d = Path(tempfile.mkdtemp(prefix="sbu-"))
            (d / "sing-box.json").write_text(json.dumps({
                "log": {"level": "warn"},
                "inbounds": [{"type": "socks", "tag": "in", "listen": vt.ORIGIN_IP4, "listen_port": SB_PORT,
                              "users": [{"username": "bench", "password": "benchpass"}]}],
                "outbounds": [{"type": "direct", "tag": "direct"}],
                "route": {"final": "direct"}}))
            topo.spawn(topo.ns_origin, str(vt.sing_box_binary()), "run", "-c", str(d / "sing-box.json"))
            topo.spawn(topo.ns_origin, sys.executable, str(PEER), "server", vt.ORIGIN_IP4, vt.ORIGIN_IP6,
                       str(ECHO_PORT))
            vt.wait_port(topo.ns_origin, vt.ORIGIN_IP4, SB_PORT)
            self.papi = VPPApiClient(server_address=str(self.vpp.api_sock), bootstrapapi=True,
                                     read_timeout=10)
            self.papi.connect("sbx-bench-client-udp")
            self.api = self.papi.api
            self.lan = next(i.sw_if_index for i in self.api.sw_interface_dump()
                            if i.interface_name == topo.vpp_if_client)
            r = self.api.singbox_set_endpoint(proxy_addr=vt.ORIGIN_IP4, proxy_port=SB_PORT, protocol_type=0,
                                              username="bench", password="benchpass")
            assert r.retval == 0, r
            assert self.api.singbox_enable_disable(sw_if_index=self.lan, enable_disable=True).retval == 0
        except BaseException:
            self.close()
            raise

    def relay(self, on: bool) -> None:
        if on:
            r = self.api.singbox_interface_udp_enable_disable(sw_if_index=self.lan, enable=True,
                                                              idle_timeout=30, max_flows=100000)
        else:
            r = self.api.singbox_interface_udp_enable_disable(sw_if_index=self.lan, enable=False)
        assert r.retval == 0 or (not on and r.retval == -6), r  # -6: it was off

    def peers(self, n: int, *args: str, timeout: float = 600) -> list[dict[str, Any]]:
        """n peers at once, each its own flow."""
        assert self.topo is not None
        procs = [subprocess.Popen(vt.ns_cmd(self.topo.ns_client, sys.executable, str(PEER), *args),
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(n)]
        outs = []
        try:
            for p in procs:
                out, err = p.communicate(timeout=timeout)
                if p.returncode:
                    raise RuntimeError(err.decode())
                outs.append(json.loads(out))
        finally:
            for p in procs:
                if p.poll() is None:
                    p.kill()
                    p.wait()
        return outs

    def peer(self, *args: str, timeout: float = 600) -> dict[str, Any]:
        assert self.topo is not None
        r = self.topo.run_in(self.topo.ns_client, sys.executable, str(PEER), *args, timeout=timeout)
        if r.returncode:
            raise RuntimeError(r.stderr.decode())
        out: dict[str, Any] = json.loads(r.stdout)
        return out

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


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))] if values else float("nan")


def one_round(bed: Bed, case: str, args: argparse.Namespace) -> dict[str, float]:
    bed.relay(case == "relayed")
    host = vt.ORIGIN_IP4
    floods = bed.peers(args.parallel, "flood", host, str(ECHO_PORT), str(args.seconds), str(args.window),
                       str(args.size))
    f = {"received": sum(x["received"] for x in floods), "sent": sum(x["sent"] for x in floods),
         "seconds": max(x["seconds"] for x in floods)}
    lat = bed.peer("flow", host, str(ECHO_PORT), str(args.samples), "1")
    new = bed.peer("newflows", host, str(ECHO_PORT), str(args.flows))
    expect = vt.ORIGIN_IP4 if case == "relayed" else vt.CLIENT_IP4
    if lat["sources"] != [expect]:
        raise RuntimeError(f"{case}: the echo saw {lat['sources']}, not {expect}")
    rtts = [r * 1e6 for r in lat["rtts"]]
    new_rtts = [r * 1e6 for r in new["rtts"]]
    return {"pps": f["received"] / f["seconds"], "loss": 1 - f["received"] / max(1, f["sent"]),
            "p50_us": pct(rtts, 0.5), "p99_us": pct(rtts, 0.99),
            "new_p50_us": pct(new_rtts, 0.5), "new_p99_us": pct(new_rtts, 0.99),
            "new_failures": float(new["failures"])}


def rounds_of(build: str, args: argparse.Namespace, beds: list[Bed | None], n: int,
              runs: dict[str, list[dict[str, float]]]) -> None:
    """Round n of one build: both cases, their order alternating. beds[0] is kept between rounds when
    there is one build; with several, each round has a VPP of its own per build."""
    if build:
        os.environ["SINGBOX_PLUGIN_DIR"] = build
    bed = beds[0] or Bed(args.workers, args.af_packet)
    try:
        for case in CASES if n % 2 == 0 else tuple(reversed(CASES)):
            runs[case].append(one_round(bed, case, args))
            print(f"  round {n + 1} {Path(build).parent.parent.name if build else ''} {case:8s} "
                  + " ".join(f"{k}={v:.4g}" for k, v in runs[case][-1].items()), flush=True)
        st = bed.api.singbox_interface_udp_dump(sw_if_index=bed.lan)
        if st:
            print(f"    VPP counted {st[0].flows} relayed flows, {st[0].failures} failed, {st[0].dropped} dropped")
    finally:
        if beds[0] is None:
            bed.close()


def report(label: str, runs: dict[str, list[dict[str, float]]]) -> dict[str, dict[str, float]]:
    med = {c: {k: statistics.median(r[k] for r in runs[c]) for k in runs[c][0]} for c in CASES}
    print(f"\n{label:28s}{'direct (VPP routing)':>22s}{'relayed (sing-box)':>22s}{'relayed/direct':>16s}")
    for row, key, fmt in ROWS:
        d, r = med["direct"][key], med["relayed"][key]
        ratio = f"{r / d:.2f}x" if d else "-"
        print(f"{row:28s}{fmt.format(d):>22s}{fmt.format(r):>22s}{ratio:>16s}")
    added = med["relayed"]["p50_us"] - med["direct"]["p50_us"]
    print(f"added latency per datagram (p50): {added:.0f} us; per new flow (p50): "
          f"{med['relayed']['new_p50_us'] - med['direct']['new_p50_us']:.0f} us")
    return med


ROWS = (("packets/s", "pps", "{:.0f}"), ("datagram loss", "loss", "{:.2%}"),
        ("round trip p50 (us)", "p50_us", "{:.0f}"), ("round trip p99 (us)", "p99_us", "{:.0f}"),
        ("new flow p50 (us)", "new_p50_us", "{:.0f}"), ("new flow p99 (us)", "new_p99_us", "{:.0f}"))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--workers", type=int, default=0)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=3, help="per packets/s measurement")
    ap.add_argument("--window", type=int, default=32, help="datagrams in flight per flow in the packets/s case")
    ap.add_argument("--parallel", type=int, default=1, help="flows at once in the packets/s case")
    ap.add_argument("--size", type=int, default=512, help="datagram payload, bytes")
    ap.add_argument("--samples", type=int, default=1000, help="round trips per latency case")
    ap.add_argument("--flows", type=int, default=100, help="new flows per round")
    ap.add_argument("--plugins", default="",
                    help="comma-separated plugin directories to compare, each round one VPP per build in turn "
                         "(default: SINGBOX_PLUGIN_DIR, one VPP for every round)")
    add_af_packet_option(ap)
    args = ap.parse_args()

    builds = args.plugins.split(",") if args.plugins else [""]
    runs: dict[str, dict[str, list[dict[str, float]]]] = {b: {c: [] for c in CASES} for b in builds}
    print(f"UDP client-mode benchmark: VPP workers {args.workers}, af_packet {args.af_packet}, "
          f"{args.rounds} rounds, {args.parallel} x "
          f"{args.seconds:.0f} s floods of {args.size}-byte datagrams ({args.window} in flight), "
          f"{args.samples} round trips, {args.flows} new flows per case and round; "
          f"load {os.getloadavg()[0]:.2f}", flush=True)
    beds: list[Bed | None] = [Bed(args.workers, args.af_packet) if len(builds) == 1 else None]
    try:
        for n in range(args.rounds):
            for b in builds if n % 2 == 0 else list(reversed(builds)):
                rounds_of(b, args, beds, n, runs[b])
    finally:
        if beds[0] is not None:
            beds[0].close()
    print(f"load at the end {os.getloadavg()[0]:.2f}")

    meds = {b: report(Path(b).parent.parent.name if b else "", runs[b]) for b in builds}
    if len(builds) > 1:
        first = builds[0]
        for b in builds[1:]:
            print(f"\nrelayed, {Path(b).parent.parent.name} / {Path(first).parent.parent.name}:")
            for row, key, _fmt in ROWS:
                a, r = meds[first]["relayed"][key], meds[b]["relayed"][key]
                print(f"  {row:28s}{(f'{r / a:.2f}x' if a else '-'):>10s}")
    print(json.dumps({"median": meds, "rounds": runs}))


if __name__ == "__main__":
    main()

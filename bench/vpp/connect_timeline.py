# SPDX-License-Identifier: Apache-2.0
# Copyright (c) 2026 vpp-singbox authors
"""Where a client-mode connect's time goes: the packets of sequential
connects (connect + 1-byte exchange, as bench_client.py's latency cases),
captured in every namespace with kernel timestamps, as one timeline per
path: each packet's median time after the client's SYN.

    sudo VPP_PREFIX=/opt/vpp SINGBOX_PLUGIN_DIR=<build>/lib/vpp_plugins \\
        python3 bench/vpp/connect_timeline.py [--samples 50] [--paths vpp,vpp-pool,redsocks]

Topology, sing-box and redsocks: bench_client.py's (its Bed). Paths:
vpp (VPP client mode, pooling off), vpp-pool (pooling on), redsocks (nft
redirect in the Linux router namespace), direct-vpp and direct-linux (plain
routing, the floor of each path).

Capture: an AF_PACKET socket in each namespace (no tcpdump needed), so the
client's packets are timed as they leave and enter the client namespace and
the proxy's as they enter and leave the origin namespace (where sing-box and
the sink run; sing-box's connection to the sink is on its loopback). What
happens between two lines of the client namespace and the origin namespace is
the proxy's (VPP's, including af_packet, or the router namespace's) time.

Each packet is named by namespace, connection (client = the connection the
client opened, upstream = the proxy's to sing-box, sink = sing-box's to the
sink), direction, flags and payload length, numbered when repeated; a line
says in how many of the samples that packet was seen. With pooling on, the
upstream connection used was opened before the client's SYN: its packets
start at the CONNECT; a new pooled connection opened during the sample shows
as "refill".
"""

from __future__ import annotations

import argparse
import json
import os
import select
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import bench_client as bc  # noqa: E402
from bench_client import vt  # noqa: E402

ETH_P_ALL = 0x0003
PACKET_OUTGOING = 4
SO_TIMESTAMPNS = 35
SINK_PORT = {"vpp": 5205, "vpp-pool": 5206, "redsocks": 5207, "direct-vpp": 5208,
             "direct-linux": 5209}

Packet = tuple[float, str, str, int, str, int, int, int]  # t, ns, src, sport, dst, dport, flags, len


def capture(out: str) -> None:
    """Runs in a namespace until SIGTERM: every IPv4 TCP packet on every
    interface, with the kernel's timestamp, as JSON lines into out. On
    loopback only the received copy (each packet is seen leaving and
    entering lo)."""
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    s.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
    stop = False

    def on_term(*_: object) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, on_term)
    rows = []
    print("ready", flush=True)
    while not stop:
        if not select.select([s], [], [], 0.2)[0]:
            continue
        data, anc, _flags, addr = s.recvmsg(256, 64)
        ifname, proto, pkttype = addr[0], addr[1], addr[2]
        if ifname == "lo" and pkttype == PACKET_OUTGOING:
            continue
        off = 14  # Ethernet (veth) and loopback both carry an Ethernet header
        if proto != 0x0800 or len(data) < off + 40:
            continue
        ip = data[off:]
        ihl = (ip[0] & 15) * 4
        if ip[9] != 6:
            continue
        total = struct.unpack("!H", ip[2:4])[0]
        tcp = ip[ihl:]
        doff = (tcp[12] >> 4) * 4
        ts = next((struct.unpack("qq", d[:16]) for lvl, typ, d in anc
                   if lvl == socket.SOL_SOCKET and typ == SO_TIMESTAMPNS), None)
        if ts is None:
            continue
        rows.append((ts[0] + ts[1] / 1e9, socket.inet_ntoa(ip[12:16]),
                     struct.unpack("!H", tcp[0:2])[0], socket.inet_ntoa(ip[16:20]),
                     struct.unpack("!H", tcp[2:4])[0], tcp[13], total - ihl - doff))
    Path(out).write_text("\n".join(json.dumps(r) for r in rows))


FLAGS = ((0x02, "S"), (0x01, "F"), (0x04, "R"), (0x08, "P"), (0x10, "."))


def flag_str(f: int) -> str:
    return "".join(c for bit, c in FLAGS if f & bit) or "-"


def label_sample(pkts: list[Packet], sink_port: int, client_ip: str) -> dict[str, float]:
    """One sample's packets (sorted by time, from the client's SYN on) ->
    {label: time after the SYN}."""
    t0 = pkts[0][0]
    # the upstream connection that carried the relayed byte is "upstream", others "refill"
    ups: dict[tuple[str, int], bool] = {}
    for _t, _ns, src, sport, dst, dport, _f, n in pkts:
        if dport == bc.SB_PORT:
            ups[(src, sport)] = ups.get((src, sport), False) or n == 1
        elif sport == bc.SB_PORT:
            ups.setdefault((dst, dport), False)
    seen: dict[str, int] = {}
    out: dict[str, float] = {}
    for t, ns, src, sport, dst, dport, f, n in pkts:
        if src == client_ip or dst == client_ip:
            conn, fwd = "client", src == client_ip
        elif dport == bc.SB_PORT or sport == bc.SB_PORT:
            key = (src, sport) if dport == bc.SB_PORT else (dst, dport)
            conn, fwd = ("upstream" if ups.get(key) else "refill"), dport == bc.SB_PORT
        elif dport == sink_port or sport == sink_port:
            conn, fwd = "sink", dport == sink_port
        else:
            continue
        arrow = "->" if fwd else "<-"
        what = (f"{ns:<6} {conn:<8} {arrow} {flag_str(f):<3}" + (f" len {n}" if n else "")).rstrip()
        seen[what] = seen.get(what, 0) + 1
        if seen[what] > 1:
            what += f" #{seen[what]}"
        out[what] = (t - t0) * 1e3
    return out


def timeline(bed: bc.Bed, path: str, dst: str, samples: int) -> None:
    assert bed.topo is not None
    topo = bed.topo
    where = {"client": topo.ns_client, "origin": topo.ns_origin}
    if path.startswith("redsocks") or path == "direct-linux":
        where["router"] = bed.rns
    d = Path(tempfile.mkdtemp(prefix="sbt-"))
    caps = []
    for name, ns in where.items():
        p = subprocess.Popen(vt.ns_cmd(ns, sys.executable, __file__, "--capture",
                                       str(d / f"{name}.jsonl")),
                             stdout=subprocess.PIPE, text=True)
        assert p.stdout is not None
        p.stdout.readline()
        caps.append((name, p))
    port = SINK_PORT[path]
    client_ip = vt.CLIENT_IP4 if dst == vt.ORIGIN_IP4 else bc.CLIENT_ROUTER_IP
    r = subprocess.run(vt.ns_cmd(topo.ns_client, sys.executable, str(HERE / "bench_client.py"),
                                 "--ttfb", dst, str(port), str(samples), "0.04"),
                       capture_output=True, text=True, timeout=samples * 2 + 60)
    time.sleep(0.2)
    for _name, p in caps:
        p.send_signal(signal.SIGTERM)
        p.wait(30)
    if r.returncode:
        raise RuntimeError(r.stderr)
    lat = json.loads(r.stdout.strip().splitlines()[-1])["lat"]
    pkts: list[Packet] = []
    for name, _p in caps:
        for line in (d / f"{name}.jsonl").read_text().splitlines():
            t, src, sport, dst_, dport, f, n = json.loads(line)
            pkts.append((t, name, src, sport, dst_, dport, f, n))
    pkts.sort()
    # a sample: from the client's SYN (seen in the client namespace) to the next one
    starts = [i for i, p in enumerate(pkts) if p[1] == "client" and p[2] == client_ip
              and p[5] == port and p[6] & 0x02]
    per_label: dict[str, list[float]] = {}
    order: dict[str, float] = {}
    for k, i in enumerate(starts):
        j = starts[k + 1] if k + 1 < len(starts) else len(pkts)
        for what, ms in label_sample(pkts[i:j], port, client_ip).items():
            per_label.setdefault(what, []).append(ms)
    for what, v in per_label.items():
        order[what] = statistics.median(v)
    print(f"\n{path}: {len(starts)} samples, connect + 1-byte exchange p50 "
          f"{statistics.median(lat) * 1e3:.2f} ms (client's clock, includes Python)")
    print("  median ms after the client's SYN  (namespace, connection, direction, flags, "
          "payload; -> = toward the destination)")
    prev = 0.0
    for what, ms in sorted(order.items(), key=lambda kv: kv[1]):
        n = len(per_label[what])
        if n < len(starts) / 4:
            continue  # a packet seen in few samples: retransmissions, refills, stragglers
        print(f"  {ms:7.3f}  (+{ms - prev:6.3f})  {what:<40} [{n}/{len(starts)}]")
        prev = ms


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--samples", type=int, default=50)
    ap.add_argument("--paths", default="vpp,vpp-pool,redsocks,direct-vpp,direct-linux")
    ap.add_argument("--workers", type=int, default=0)
    ap.add_argument("--vpp-cli", action="append", default=[],
                    help="a VPP CLI command to run before the cases (e.g. to try a setting)")
    bc.add_af_packet_option(ap)
    bc.loadgen.add_rx_mode_option(ap)
    ap.add_argument("--capture", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.capture:
        capture(args.capture)
        return
    paths = args.paths.split(",")
    print(f"connect timeline: {args.samples} samples per path, VPP workers {args.workers}, "
          f"af_packet {args.af_packet}, rx-mode {args.rx_mode}; load {os.getloadavg()[0]:.2f}")
    with bc.Bed(args.workers, args.rx_mode, args.af_packet) as bed:
        for cmd in args.vpp_cli:
            print(f"vpp# {cmd}\n{bed.vpp.cli(cmd)}")
        for path in ("direct-vpp", "direct-linux"):
            if path in paths:
                timeline(bed, path, vt.ORIGIN_IP4 if path == "direct-vpp" else
                         bc.ORIGIN_ROUTER_IP, args.samples)
        if "redsocks" in paths:
            bc.redirect(bed.rns, bed.r_lan, True)
            timeline(bed, "redsocks", bc.ORIGIN_ROUTER_IP, args.samples)
            bc.redirect(bed.rns, bed.r_lan, False)
        if "vpp" in paths or "vpp-pool" in paths:
            bc.enable_client_mode(bed.api, bed.lan)
        if "vpp" in paths:
            assert bed.api.singbox_set_pooling(enable=False, max_pool_size=16).retval == 0
            timeline(bed, "vpp", vt.ORIGIN_IP4, args.samples)
        if "vpp-pool" in paths:
            assert bed.api.singbox_set_pooling(enable=True, max_pool_size=16).retval == 0
            bc.wait_pool(bed.vpp, 16)
            timeline(bed, "vpp-pool", vt.ORIGIN_IP4, args.samples)


if __name__ == "__main__":
    main()

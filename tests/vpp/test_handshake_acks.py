# SPDX-License-Identifier: Apache-2.0
# Copyright (c) 2026 vpp-singbox authors
"""The ACK of the client's SOCKS5 request rides on the reply.

VPP's TCP acknowledges received data with a bare segment before the plugin
hears of the data, and the reply to a request waits for the upstream
connect: every session cost a bare ACK of its request. On af_packet each
segment VPP sends costs the peer's TCP receive path in VPP's time, so the
connection rate follows the segments VPP sends (bench/vpp/packets_per_conn.py).
The plugin now holds that ACK back until the reply (singbox_po_ack_hold,
plugin/API.md): between the method selection and the reply VPP sends the
client nothing. The hold ends at the latest at singbox-process's next expiry
(every 0.5 s) once the client waits for us, which may fall within a connect:
at least half of the connections must show it (the plugin before sent the
bare ACK in every one).

The greeting's ACK, too, rides on the method selection: the greeting comes
with (or right behind) the handshake's last ACK, and TCP programmed its ACK
before the session layer told the plugin of the session, so the session
queue sent it bare ahead of the method selection. The plugin now holds it
from its fifo tuning callback, which runs as TCP takes the bytes and before
it programs the ACK (singbox_po_ack_hold_early): in every connection, with
any number of workers, VPP's first segment after the SYN-ACK is the method
selection.

A hold waiting for the client's next message delays no ACK, and
singbox-process's expiry now leaves it alone (singbox_po_ack_release_owed):
it ended every hold, so a client that paused half a second before its
greeting or its request had that message acknowledged bare. With 2 workers
VPP sent a bare ACK before the reply in 18 of 40 connections of a loaded run
before both changes (acknowledged with the connect's SYN: with workers the
session queue can run after the app's callbacks, so TCP's ACK of a greeting
that came after an expiry rode on the method selection, and kept the
request's hold from being taken), in 3 of 120 after the first, 0 of 80 after
both."""

from __future__ import annotations

import socket
import struct
import sys
from pathlib import Path

from .conftest import ECHO_PORT, Env, worker_counts
from vpptopo import ORIGIN_IP4, VPP_CLIENT_IP4

pytestmark = worker_counts(0, 2)

CONNECTIONS = 10

# Sequential CONNECTs, no pipelining: greeting, method, request, reply, close; `pause` seconds
# before the greeting and before the request.
CLIENT = r"""
import socket, struct, sys, time
proxy, dst, port, n, pause = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5])
for i in range(n):
    with socket.create_connection((proxy, 1080), 10) as s:
        time.sleep(pause)
        s.sendall(b"\x05\x01\x00")
        assert s.recv(2) == b"\x05\x00"
        time.sleep(pause)
        s.sendall(b"\x05\x01\x00\x01" + socket.inet_aton(dst) + struct.pack("!H", port))
        r = b""
        while len(r) < 10:
            c = s.recv(10 - len(r))
            assert c, r
            r += c
        assert r[1] == 0, r
"""
# pauses spanning singbox-process's expiry (every 0.5 s)
SLOW_CONNECTIONS = 3
SLOW_PAUSE = 1.1


def vpp_segments_to_clients(path: Path) -> dict[int, list[int]]:
    """Payload lengths of the TCP segments VPP sent from the SOCKS5 port, per client port, in
    order, from a pcap file (Ethernet, IPv4)."""
    data = path.read_bytes()
    off = 24  # the file header
    out: dict[int, list[int]] = {}
    while off + 16 <= len(data):
        incl = struct.unpack("<I", data[off + 8:off + 12])[0]
        pkt = data[off + 16:off + 16 + incl]
        off += 16 + incl
        if len(pkt) < 54 or pkt[12:14] != b"\x08\x00" or pkt[23] != 6:
            continue
        ip = pkt[14:]
        ihl = (ip[0] & 15) * 4
        tcp = ip[ihl:]
        sport, dport = struct.unpack("!HH", tcp[:4])
        if socket.inet_ntoa(ip[12:16]) != VPP_CLIENT_IP4 or sport != 1080:
            continue
        total = struct.unpack("!H", ip[2:4])[0]
        out.setdefault(dport, []).append(total - ihl - (tcp[12] >> 4) * 4)
    return out


def capture_segments_to_clients(env: Env, n: int, pause: float) -> dict[int, list[int]]:
    """Run CLIENT for n connections from the client namespace while VPP captures what it sends:
    the payload lengths of its segments to each client port."""
    name = f"acks-{env.vpp.dir.name}.pcap"
    path = Path("/tmp") / name
    env.cli(f"pcap trace tx max 1000 intfc any file {name}", check=False)
    try:
        r = env.client(sys.executable, "-c", CLIENT, VPP_CLIENT_IP4, ORIGIN_IP4, str(ECHO_PORT),
                       str(n), str(pause))
        assert r.returncode == 0, r.stderr.decode()
    finally:
        env.cli("pcap trace tx off", check=False)
    try:
        return vpp_segments_to_clients(path)
    finally:
        path.unlink(missing_ok=True)


def test_request_ack_rides_on_the_reply(env: Env) -> None:
    env.start()
    conns = capture_segments_to_clients(env, CONNECTIONS, 0)
    assert len(conns) == CONNECTIONS, conns
    # each: the SYN-ACK, [bare ACK of the greeting], the method selection (2 bytes), [bare ACK of
    # the request], the reply (10 bytes)
    clean = 0
    for port, lens in conns.items():
        assert 2 in lens and 10 in lens, (port, lens)
        assert lens.index(2) == 1, (port, lens)  # the greeting's ACK is the method selection
        between = lens[lens.index(2) + 1:lens.index(10)]
        clean += not between
    assert clean >= CONNECTIONS // 2, conns


def test_hold_outlasts_a_slow_client(env: Env) -> None:
    env.start()
    conns = capture_segments_to_clients(env, SLOW_CONNECTIONS, SLOW_PAUSE)
    assert len(conns) == SLOW_CONNECTIONS, conns
    # an expiry may still fall within the connect, which owes the request's ACK: most, not all
    clean = sum(lens.index(2) == 1 and lens[lens.index(2) + 1:lens.index(10)] == []
                for lens in conns.values() if 2 in lens and 10 in lens)
    assert clean >= 2, conns

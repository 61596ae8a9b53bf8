# SPDX-License-Identifier: Apache-2.0
# Copyright (c) 2026 vpp-singbox authors
"""UDP peers for the client-mode UDP tests and bench, run inside a namespace.

  udp_peer.py server IP4 IP6 PORT          answer every datagram with "<source address>|" + the datagram
                                           (a UDP echo that says who sent it: the client, or sing-box)
  udp_peer.py flow HOST PORT COUNT WINDOW  one socket (one flow, as QUIC uses), COUNT datagrams of 20..1200
                                           bytes, WINDOW in flight at a time; prints JSON: received, bad,
                                           the sources the server saw, the round trips (seconds)
  udp_peer.py dns HOST PORT NAME           one DNS query (A); prints JSON: rcode and the addresses answered
  udp_peer.py flood HOST PORT SECONDS WINDOW SIZE
                                           one flow, WINDOW datagrams of SIZE bytes kept in flight for SECONDS;
                                           prints JSON: sent, received, seconds (bench/vpp/bench_client_udp.py)
  udp_peer.py newflows HOST PORT COUNT     COUNT flows one after the other, one datagram and its answer each
                                           (what DNS does); prints JSON: the round trips, failures
  udp_peer.py badrelay IP PORT             a SOCKS5 server (any user) whose UDP relay answers each datagram three
                                           times: a fragment (FRAG 1), one naming another source, and the echo
"""

from __future__ import annotations

import json
import os
import socket
import struct
import sys
import threading
import time


def serve(fam: int, addr: str, port: int) -> None:
    s = socket.socket(fam, socket.SOCK_DGRAM)
    if fam == socket.AF_INET6:
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
    s.bind((addr, port))
    while True:
        data, peer = s.recvfrom(65535)
        s.sendto(peer[0].encode() + b"|" + data, peer)


def flow(host: str, port: int, count: int, window: int, timeout: float = 5.0) -> dict[str, object]:
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_DGRAM)
    s.connect((host, port))
    s.settimeout(timeout)
    received, bad, sources, rtts = 0, 0, set(), []
    seq = 0
    while seq < count:
        batch = {}
        for _ in range(min(window, count - seq)):
            size = 20 + (seq * 97) % 1181
            body = struct.pack("!I", seq) + os.urandom(size - 4)
            batch[seq] = (body, time.monotonic())
            s.send(body)
            seq += 1
        while batch:
            try:
                reply = s.recv(65535)
            except socket.timeout:
                break
            src, _, body = reply.partition(b"|")
            n = struct.unpack("!I", body[:4])[0] if len(body) >= 4 else -1
            sent = batch.pop(n, None)
            if sent is None or sent[0] != body:
                bad += 1
                continue
            received += 1
            sources.add(src.decode())
            rtts.append(time.monotonic() - sent[1])
    return {"received": received, "bad": bad, "sources": sorted(sources), "rtts": rtts}


def flood(host: str, port: int, seconds: float, window: int, size: int) -> dict[str, object]:
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_DGRAM)
    s.connect((host, port))
    s.settimeout(0.5)
    body = os.urandom(size)
    sent = received = outstanding = 0
    start = time.monotonic()
    deadline = start + seconds
    while time.monotonic() < deadline:
        while outstanding < window:
            s.send(body)
            sent += 1
            outstanding += 1
        try:
            s.recv(65535)
            received += 1
            outstanding -= 1
        except socket.timeout:
            outstanding = 0  # the window's datagrams are lost: start a new one
    elapsed = time.monotonic() - start
    s.settimeout(0.2)
    try:
        while True:  # the last window's answers: they count as sent and received
            s.recv(65535)
            received += 1
    except socket.timeout:
        pass
    return {"sent": sent, "received": received, "seconds": elapsed}


def newflows(host: str, port: int, count: int) -> dict[str, object]:
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    rtts, failures = [], 0
    for i in range(count):
        with socket.socket(fam, socket.SOCK_DGRAM) as s:
            s.settimeout(2)
            t0 = time.monotonic()
            s.sendto(struct.pack("!I", i) + b"q" * 28, (host, port))
            try:
                s.recvfrom(65535)
                rtts.append(time.monotonic() - t0)
            except socket.timeout:
                failures += 1
    return {"rtts": rtts, "failures": failures}


def _read(c: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = c.recv(n - len(data))
        if not chunk:
            raise ConnectionError("closed")
        data += chunk
    return data


def _badrelay_conn(c: socket.socket, ip: str) -> None:
    """One UDP ASSOCIATE; its relay socket lives while the TCP connection does (RFC 1928 section 7)."""
    with c:
        _ver, n = _read(c, 2)
        methods = _read(c, n)
        method = 2 if 2 in methods else 0
        c.sendall(bytes([5, method]))
        if method == 2:
            _read(c, 1)
            user = _read(c, _read(c, 1)[0])
            _read(c, _read(c, 1)[0])
            c.sendall(b"\x01\x00" if user else b"\x01\x01")
        _ver, cmd, _rsv, atyp = _read(c, 4)
        _read(c, {1: 4, 4: 16}[atyp] + 2)
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        u.bind((ip, 0))
        c.sendall(b"\x05\x00\x00\x01" + socket.inet_aton(ip) + struct.pack("!H", u.getsockname()[1]))

        def relay() -> None:
            while True:
                data, peer = u.recvfrom(65535)
                hlen = {1: 10, 4: 22}.get(data[3], 0)
                if not hlen:
                    continue
                header, body = data[:hlen], data[hlen:]
                u.sendto(b"\x00\x00\x01" + header[3:] + b"fragment", peer)
                other = bytearray(header)
                other[-1] ^= 1  # another port
                u.sendto(bytes(other) + b"other source", peer)
                u.sendto(header + body, peer)

        threading.Thread(target=relay, daemon=True).start()
        while c.recv(4096):
            pass
        u.close()


def badrelay(ip: str, port: int) -> None:
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind((ip, port))
    ls.listen(64)
    while True:
        c, _ = ls.accept()
        threading.Thread(target=_badrelay_conn, args=(c, ip), daemon=True).start()


def dns(host: str, port: int, name: str) -> dict[str, object]:
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_DGRAM)
    s.settimeout(5)
    qid = int.from_bytes(os.urandom(2), "big")
    q = struct.pack("!HHHHHH", qid, 0x0100, 1, 0, 0, 0)
    q += b"".join(bytes([len(p)]) + p.encode() for p in name.split(".")) + b"\0"
    q += struct.pack("!HH", 1, 1)
    s.sendto(q, (host, port))
    r, _ = s.recvfrom(4096)
    rid, flags, _qd, an = struct.unpack("!HHHH", r[:8])
    assert rid == qid, "answer to another query"
    pos = len(q)
    addrs = []
    for _ in range(an):
        pos += 2  # compressed name
        rtype, _cls, _ttl, rlen = struct.unpack("!HHIH", r[pos:pos + 10])
        pos += 10
        if rtype == 1:
            addrs.append(socket.inet_ntop(socket.AF_INET, r[pos:pos + rlen]))
        pos += rlen
    return {"rcode": flags & 0xF, "addresses": addrs}


def main() -> None:
    mode = sys.argv[1]
    if mode == "server":
        ip4, ip6, port = sys.argv[2], sys.argv[3], int(sys.argv[4])
        threading.Thread(target=serve, args=(socket.AF_INET6, ip6, port), daemon=True).start()
        serve(socket.AF_INET, ip4, port)
    elif mode == "flow":
        print(json.dumps(flow(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]))))
    elif mode == "dns":
        print(json.dumps(dns(sys.argv[2], int(sys.argv[3]), sys.argv[4])))
    elif mode == "flood":
        print(json.dumps(flood(sys.argv[2], int(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5]),
                               int(sys.argv[6]))))
    elif mode == "badrelay":
        badrelay(sys.argv[2], int(sys.argv[3]))
    elif mode == "newflows":
        print(json.dumps(newflows(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))))
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main()

# SPDX-License-Identifier: Apache-2.0
# Copyright (c) 2026 vpp-singbox authors
"""Origin servers for the VPP tests, run inside the origin namespace.

    python3 origin.py <ip4> <ip6> <http_port> <echo_port> <udp_port> [dns_port]

HTTP: GET /bytes/<n> returns n bytes (pattern), /whoami the peer address,
anything else "hello\\n".
TCP echo: echoes until the client half-closes, then sends what it received
count as "<n>\\n" only if the first line is "COUNT", and half-closes back.
UDP echo: returns each datagram.
DNS (UDP, optional): "origin.test" -> A <ip4>, AAAA <ip6>; other names
NXDOMAIN. Answers every question of a query (VPP asks A and AAAA at once).
"""

from __future__ import annotations

import http.server
import socket
import socketserver
import struct
import sys
import threading


class Http(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:  # noqa: N802 (http.server API)
        if self.path == "/whoami":
            body = f"{self.client_address[0]}\n".encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        if self.path.startswith("/bytes/"):
            n = int(self.path.split("/")[2])
            self.send_response(200)
            self.send_header("Content-Length", str(n))
            self.end_headers()
            chunk = bytes(range(256)) * 256
            while n > 0:
                k = min(n, len(chunk))
                self.wfile.write(chunk[:k])
                n -= k
            return
        body = b"hello\n"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_PUT(self) -> None:  # noqa: N802
        n = int(self.headers.get("Content-Length", "0"))
        got = 0
        while got < n:
            b = self.rfile.read(min(65536, n - got))
            if not b:
                break
            got += len(b)
        body = f"{got}\n".encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *a: object) -> None:
        pass


class V6Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    address_family = socket.AF_INET6
    daemon_threads = True
    allow_reuse_address = True


class V4Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def echo_conn(c: socket.socket) -> None:
    """Echo; on EOF, half-close back after a short pause (tests that data
    sent after the client's FIN still reaches it)."""
    total = 0
    first = b""
    with c:
        while True:
            try:
                b = c.recv(65536)
            except OSError:
                return
            if not b:
                break
            if len(first) < 5:
                first += b[: 5 - len(first)]
            total += len(b)
            if first.startswith(b"COUNT"):
                continue
            c.sendall(b)
        try:
            if first.startswith(b"COUNT"):
                threading.Event().wait(0.3)
                c.sendall(f"{total}\n".encode())
            c.shutdown(socket.SHUT_WR)
        except OSError:
            pass


def tcp_echo(fam: int, addr: str, port: int) -> None:
    s = socket.socket(fam, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if fam == socket.AF_INET6:
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
    s.bind((addr, port))
    s.listen(4096)
    while True:
        c, _ = s.accept()
        threading.Thread(target=echo_conn, args=(c,), daemon=True).start()


def udp_echo(fam: int, addr: str, port: int) -> None:
    s = socket.socket(fam, socket.SOCK_DGRAM)
    if fam == socket.AF_INET6:
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
    s.bind((addr, port))
    while True:
        data, peer = s.recvfrom(65535)
        s.sendto(data, peer)


DNS_NAME = "origin.test"


def dns_question(query: bytes) -> tuple[int, int, str, list[int], int] | None:
    """A query's id, question count, name (lower case), question types and the end of its question section. VPP's
    resolver writes the name once and then one (type, class) pair per question, so the questions are read that
    way. moving_dns.py reads its queries with this too."""
    if len(query) < 12:
        return None
    qid, _flags, qd = struct.unpack("!HHH", query[:6])
    pos, labels = 12, []
    while query[pos]:
        n = query[pos]
        labels.append(query[pos + 1 : pos + 1 + n].decode(errors="replace"))
        pos += 1 + n
    pos += 1
    qtypes = []
    for _ in range(qd):
        qtype, _qclass = struct.unpack("!HH", query[pos : pos + 4])
        qtypes.append(qtype)
        pos += 4
    return qid, qd, ".".join(labels).lower(), qtypes, pos


def dns_reply(query: bytes, question: tuple[int, int, str, list[int], int], rcode: int,
              records: list[tuple[int, bytes, int]]) -> bytes:
    """The reply to `query`: its question section, then one answer per (type, rdata, ttl) for the asked name."""
    qid, qd, _name, _qtypes, pos = question
    answers = b"".join(b"\xc0\x0c" + struct.pack("!HHIH", qtype, 1, ttl, len(rdata)) + rdata
                       for qtype, rdata, ttl in records)
    head = struct.pack("!HHHHHH", qid, 0x8180 | rcode, qd, len(records), 0, 0)
    return head + query[12:pos] + answers


def dns_answer(query: bytes, ip4: str, ip6: str) -> bytes | None:
    """Answer A/AAAA for DNS_NAME, NXDOMAIN for any other name."""
    question = dns_question(query)
    if question is None:
        return None
    records: list[tuple[int, bytes, int]] = []
    if question[2] == DNS_NAME:
        for qtype in question[3]:
            if qtype == 1:
                records.append((qtype, socket.inet_pton(socket.AF_INET, ip4), 60))
            elif qtype == 28:
                records.append((qtype, socket.inet_pton(socket.AF_INET6, ip6), 60))
    return dns_reply(query, question, 0 if question[2] == DNS_NAME else 3, records)


def dns_server(ip4: str, ip6: str, port: int) -> None:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((ip4, port))
    while True:
        q, peer = s.recvfrom(4096)
        try:
            a = dns_answer(q, ip4, ip6)
        except (struct.error, IndexError):
            a = None
        if a:
            s.sendto(a, peer)


def main() -> None:
    ip4, ip6, http_port, echo_port, udp_port = sys.argv[1:6]
    if len(sys.argv) > 6:
        threading.Thread(target=dns_server, args=(ip4, ip6, int(sys.argv[6])),
                         daemon=True).start()
    V4Server.allow_reuse_address = True
    srv4 = V4Server((ip4, int(http_port)), Http)
    srv6 = V6Server((ip6, int(http_port)), Http)
    for target, args in (
        (srv4.serve_forever, ()),
        (srv6.serve_forever, ()),
        (tcp_echo, (socket.AF_INET, ip4, int(echo_port))),
        (tcp_echo, (socket.AF_INET6, ip6, int(echo_port))),
        (udp_echo, (socket.AF_INET, ip4, int(udp_port))),
        (udp_echo, (socket.AF_INET6, ip6, int(udp_port))),
    ):
        threading.Thread(target=target, args=args, daemon=True).start()
    threading.Event().wait()


if __name__ == "__main__":
    main()

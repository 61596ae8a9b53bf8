# SPDX-License-Identifier: Apache-2.0
# Copyright (c) 2026 vpp-singbox authors
"""Origin servers for the VPP tests, run inside the origin namespace.

    python3 origin.py <ip4> <ip6> <http_port> <echo_port> <udp_port>

HTTP: GET /bytes/<n> returns n bytes (pattern), anything else "hello\\n".
TCP echo: echoes until the client half-closes, then sends what it received
count as "<n>\\n" only if the first line is "COUNT", and half-closes back.
UDP echo: returns each datagram.
"""

from __future__ import annotations

import http.server
import socket
import socketserver
import sys
import threading


class Http(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:  # noqa: N802 (http.server API)
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


def main() -> None:
    ip4, ip6, http_port, echo_port, udp_port = sys.argv[1:6]
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

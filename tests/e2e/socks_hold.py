# SPDX-License-Identifier: Apache-2.0
# Copyright (c) 2026 vpp-singbox authors
"""Hold one SOCKS5 session open (run inside the client namespace).

    python3 socks_hold.py <proxy> <port> <user> <password> <dst> <dport>

Authenticates (RFC 1929), CONNECTs, sends "hello\\n" and checks the origin's echo, prints "established" and then
keeps the session open until stdin closes (the test decides how long) or the proxy closes it (then prints
"closed by proxy"). Exits non-zero, saying why, on any failure.
"""

from __future__ import annotations

import ipaddress
import os
import select
import socket
import sys


def recv_exact(s: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = s.recv(n - len(data))
        if not chunk:
            raise EOFError(f"closed after {len(data)} of {n} bytes")
        data += chunk
    return data


def main() -> int:
    proxy, port, user, password, dst, dport = sys.argv[1:7]
    s = socket.create_connection((proxy, int(port)), timeout=20)
    s.sendall(b"\x05\x01\x02")
    if recv_exact(s, 2) != b"\x05\x02":
        print("proxy did not choose username/password", file=sys.stderr)
        return 2
    u, p = user.encode(), password.encode()
    s.sendall(b"\x01" + bytes([len(u)]) + u + bytes([len(p)]) + p)
    if recv_exact(s, 2)[1] != 0:
        print("authentication refused", file=sys.stderr)
        return 3
    s.sendall(b"\x05\x01\x00\x01" + ipaddress.ip_address(dst).packed + int(dport).to_bytes(2, "big"))
    ver, rep, _rsv, atyp = recv_exact(s, 4)
    recv_exact(s, (4 if atyp == 1 else 16) + 2)
    if rep != 0:
        print(f"CONNECT refused: rep={rep}", file=sys.stderr)
        return 4
    s.sendall(b"hello\n")
    if recv_exact(s, 6) != b"hello\n":
        print("no echo", file=sys.stderr)
        return 5
    print("established", flush=True)
    s.settimeout(None)
    while True:
        ready = select.select([sys.stdin, s], [], [])[0]
        if s in ready:
            try:
                data = s.recv(4096)
            except ConnectionResetError:
                data = b""
            if not data:
                print("closed by proxy", flush=True)
                return 0
        if sys.stdin in ready and not os.read(sys.stdin.fileno(), 4096):
            s.close()
            return 0


if __name__ == "__main__":
    sys.exit(main())

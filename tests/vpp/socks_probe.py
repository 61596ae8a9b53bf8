# SPDX-License-Identifier: Apache-2.0
# Copyright (c) 2026 vpp-singbox authors
"""A byte-level SOCKS5 client run inside the client namespace; prints JSON.

    python3 socks_probe.py <proxy> <port> <mode> [args...]

modes:
  connect <dst> <dport> [user pass]      -> {"method", "auth", "rep", "bnd"}
  echo <dst> <dport> <nbytes>            -> CONNECT, send "COUNT"+n bytes,
                                            half-close, read until EOF
                                            -> {"rep", "reply": "<n>"}
  raw <hex>|- [secs]                     -> send bytes (hex on stdin for -),
                                            read until EOF/secs
  drip <hex> [secs]                      -> the same, one byte per write
                                            -> {"recv": "<hex>", "closed"}
  hold <seconds>                         -> TCP connect only, wait for close
                                            -> {"closed_after": s}
  idle <dst> <dport> <seconds>           -> CONNECT then wait for close
"""

from __future__ import annotations

import ipaddress
import json
import socket
import struct
import sys
import time


def recv_exact(s: socket.socket, n: int) -> bytes:
    b = b""
    while len(b) < n:
        c = s.recv(n - len(b))
        if not c:
            raise EOFError(f"closed after {len(b)} of {n} bytes")
        b += c
    return b


def addr_bytes(host: str) -> bytes:
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        h = host.encode()
        return b"\x03" + bytes([len(h)]) + h
    return (b"\x01" if ip.version == 4 else b"\x04") + ip.packed


def read_reply(s: socket.socket) -> tuple[int, str]:
    ver, rep, _rsv, atyp = recv_exact(s, 4)
    if atyp == 1:
        a = str(ipaddress.ip_address(recv_exact(s, 4)))
    elif atyp == 4:
        a = str(ipaddress.ip_address(recv_exact(s, 16)))
    else:
        a = recv_exact(s, recv_exact(s, 1)[0]).decode()
    (port,) = struct.unpack("!H", recv_exact(s, 2))
    return rep, f"{a}:{port}"


def handshake(s: socket.socket, dst: str, dport: int, user: str | None,
              pw: str | None) -> dict[str, object]:
    out: dict[str, object] = {}
    s.sendall(b"\x05\x01" + (b"\x02" if user else b"\x00"))
    ver, method = recv_exact(s, 2)
    out["method"] = method
    if method == 0xFF:
        return out
    if method == 2:
        u, p = (user or "").encode(), (pw or "").encode()
        s.sendall(b"\x01" + bytes([len(u)]) + u + bytes([len(p)]) + p)
        _v, status = recv_exact(s, 2)
        out["auth"] = status
        if status != 0:
            return out
    s.sendall(b"\x05\x01\x00" + addr_bytes(dst) + struct.pack("!H", dport))
    rep, bnd = read_reply(s)
    out["rep"] = rep
    out["bnd"] = bnd
    return out


def main() -> None:
    proxy, port, mode, *args = sys.argv[1:]
    fam = socket.AF_INET6 if ":" in proxy else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_STREAM)
    s.settimeout(30)
    t0 = time.monotonic()
    res: dict[str, object] = {}
    try:
        s.connect((proxy, int(port)))
        if mode == "connect":
            user = args[2] if len(args) > 2 else None
            pw = args[3] if len(args) > 3 else None
            res = handshake(s, args[0], int(args[1]), user, pw)
        elif mode == "echo":
            res = handshake(s, args[0], int(args[1]), None, None)
            n = int(args[2])
            payload = b"COUNT" + bytes(i % 251 for i in range(n))
            s.sendall(payload)
            s.shutdown(socket.SHUT_WR)
            data = b""
            while True:
                c = s.recv(65536)
                if not c:
                    break
                data += c
            res["reply"] = data.decode().strip()
            res["sent"] = len(payload)
        elif mode in ("raw", "drip"):
            # "-": the hex comes on stdin (longer than an argument may be)
            raw = bytes.fromhex(sys.stdin.read() if args[0] == "-" else args[0])
            if mode == "drip":  # one byte per write, 5 ms apart
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                for byte in raw:
                    s.sendall(bytes([byte]))
                    time.sleep(0.005)
            else:
                s.sendall(raw)
            s.settimeout(float(args[1]) if len(args) > 1 else 3)
            data = b""
            closed = False
            try:
                while True:
                    c = s.recv(4096)
                    if not c:
                        closed = True
                        break
                    data += c
            except socket.timeout:
                pass
            res = {"recv": data.hex(), "closed": closed}
        elif mode == "udp":
            # udp <dst> <dport> <spec>...: spec "ok:<text>" (expect echo),
            # "frag:<text>" (FRAG=1, expect nothing), "other:<text>" (from
            # another socket, expect nothing), "close", "sleep:<s>"
            s.sendall(b"\x05\x01\x00")
            recv_exact(s, 2)
            s.sendall(b"\x05\x03\x00\x01\x00\x00\x00\x00\x00\x00")
            rep, bnd = read_reply(s)
            res["rep"], res["bnd"] = rep, bnd
            host, bport = bnd.rsplit(":", 1)
            ufam = socket.AF_INET6 if ":" in host else socket.AF_INET
            u = socket.socket(ufam, socket.SOCK_DGRAM)
            other = socket.socket(ufam, socket.SOCK_DGRAM)
            u.settimeout(1.5)
            other.settimeout(1.5)
            dst, dport = args[0], int(args[1])
            hdr = b"\x00\x00\x00" + addr_bytes(dst) + struct.pack("!H", dport)
            results = []
            for spec in args[2:]:
                kind, _, text = spec.partition(":")
                if kind == "close":
                    s.close()
                    time.sleep(0.5)
                    continue
                if kind == "sleep":
                    time.sleep(float(text))
                    continue
                sock = other if kind == "other" else u
                h = hdr if kind != "frag" else b"\x00\x00\x01" + hdr[3:]
                sock.sendto(h + text.encode(), (host, int(bport)))
                try:
                    data, _peer = sock.recvfrom(65535)
                    # strip the reply's header (IPv4/IPv6 source)
                    hl = 4 + (4 if data[3] == 1 else 16) + 2
                    results.append([kind, data[hl:].decode(errors="replace"),
                                    data[:hl].hex()])
                except socket.timeout:
                    results.append([kind, None, None])
            res["results"] = results
        elif mode in ("hold", "idle"):
            if mode == "idle":
                res = handshake(s, args[0], int(args[1]), None, None)
                wait = float(args[2])
            else:
                wait = float(args[0])
            s.settimeout(wait)
            t1 = time.monotonic()
            try:
                c = s.recv(1)
                res["closed_after"] = time.monotonic() - t1
                res["got"] = c.hex()
            except socket.timeout:
                res["closed_after"] = None
            except ConnectionResetError:
                res["closed_after"] = time.monotonic() - t1
                res["reset"] = True
    except (OSError, EOFError) as e:
        res["error"] = f"{type(e).__name__}: {e}"
    res["elapsed"] = time.monotonic() - t0
    print(json.dumps(res))


if __name__ == "__main__":
    main()

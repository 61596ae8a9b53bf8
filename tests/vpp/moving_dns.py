# SPDX-License-Identifier: Apache-2.0
# Copyright (c) 2026 vpp-singbox authors
"""A DNS server whose answer moves: run in a namespace by tests/vpp/test_dns.py.

    python3 moving_dns.py <listen_ip4> <name> <addr1> <addr2> <switch_file> <lifetime_s>

Answers A queries for <name> with <addr1> (TTL 1 s) until <switch_file> exists, then with <addr2>;
no AAAA record (NOERROR, no answer), NXDOMAIN for any other name. Every query is appended to
<switch_file>.log as "<name> <answer>". Exits after <lifetime_s> seconds whatever happens.
"""

from __future__ import annotations

import os
import socket
import struct
import sys
import time

TTL = 1


def answer(query: bytes, name: str, addr: str) -> tuple[bytes, str] | None:
    """VPP's resolver writes the name once and then one (type, class) pair per question."""
    if len(query) < 12:
        return None
    qid, _flags, qd = struct.unpack("!HHH", query[:6])
    pos, labels = 12, []
    while query[pos]:
        n = query[pos]
        labels.append(query[pos + 1 : pos + 1 + n].decode(errors="replace"))
        pos += 1 + n
    pos += 1
    asked = ".".join(labels).lower()
    qtypes = []
    for _ in range(qd):
        qtype, _qclass = struct.unpack("!HH", query[pos : pos + 4])
        qtypes.append(qtype)
        pos += 4
    answers, n_ans = b"", 0
    if asked == name and 1 in qtypes:
        rdata = socket.inet_pton(socket.AF_INET, addr)
        answers = b"\xc0\x0c" + struct.pack("!HHIH", 1, 1, TTL, len(rdata)) + rdata
        n_ans = 1
    rcode = 0 if asked == name else 3
    head = struct.pack("!HHHHHH", qid, 0x8180 | rcode, qd, n_ans, 0, 0)
    return head + query[12:pos] + answers, f"{asked} {addr if n_ans else '-'}"


def main() -> None:
    listen, name, addr1, addr2, switch, lifetime = sys.argv[1:7]
    end = time.monotonic() + float(lifetime)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((listen, 53))
    while (left := end - time.monotonic()) > 0:
        s.settimeout(min(left, 1.0))
        try:
            q, peer = s.recvfrom(4096)
        except socket.timeout:
            continue
        try:
            a = answer(q, name.lower(), addr2 if os.path.exists(switch) else addr1)
        except (struct.error, IndexError):
            a = None
        if a:
            s.sendto(a[0], peer)
            with open(switch + ".log", "a") as log:
                log.write(a[1] + "\n")


if __name__ == "__main__":
    main()

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

from origin import dns_question, dns_reply  # the same directory: run as a script from it

TTL = 1


def answer(query: bytes, name: str, addr: str) -> tuple[bytes, str] | None:
    question = dns_question(query)
    if question is None:
        return None
    asked, qtypes = question[2], question[3]
    records = [(1, socket.inet_pton(socket.AF_INET, addr), TTL)] if asked == name and 1 in qtypes else []
    reply = dns_reply(query, question, 0 if asked == name else 3, records)
    return reply, f"{asked} {addr if records else '-'}"


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

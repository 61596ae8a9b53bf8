# SPDX-License-Identifier: Apache-2.0
# Copyright (c) 2026 vpp-singbox authors
"""Open N SOCKS5 sessions at once through the proxy, echo on each, hold them
all open until told (a line on stdin), then close them all; prints JSON.

    python3 many.py <proxy> <port> <dst> <dport> <n>
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import resource
import struct
import sys


async def one(proxy: str, port: int, dst: str, dport: int, i: int,
              opened: asyncio.Event, release: asyncio.Event, counter: list[int]) -> bool:
    r, w = await asyncio.wait_for(asyncio.open_connection(proxy, port), 30)
    ip = ipaddress.ip_address(dst)
    w.write(b"\x05\x01\x00" + b"\x05\x01\x00" + (b"\x01" if ip.version == 4 else b"\x04")
            + ip.packed + struct.pack("!H", dport))
    head = await asyncio.wait_for(r.readexactly(2 + 10), 30)
    if head[:2] != b"\x05\x00" or head[3] != 0:
        return False
    msg = f"session {i}\n".encode()
    w.write(msg)
    echo = await asyncio.wait_for(r.readexactly(len(msg)), 30)
    counter[0] += 1
    if counter[0] == counter[1]:
        opened.set()
    await release.wait()
    w.close()
    await w.wait_closed()
    return echo == msg


async def main() -> None:
    proxy, port, dst, dport, n = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 4 * n + 100)), hard))
    opened, release = asyncio.Event(), asyncio.Event()
    counter = [0, n]
    tasks = [asyncio.create_task(one(proxy, port, dst, dport, i, opened, release, counter))
             for i in range(n)]
    try:
        await asyncio.wait_for(opened.wait(), 60)
        print(json.dumps({"open": counter[0]}), flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    except asyncio.TimeoutError:
        print(json.dumps({"open": counter[0], "error": "timeout"}), flush=True)
    release.set()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    ok = sum(1 for x in results if x is True)
    errors = sorted({repr(x) for x in results if x is not True})[:5]
    print(json.dumps({"ok": ok, "errors": errors}), flush=True)


asyncio.run(main())

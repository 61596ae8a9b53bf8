"""A stats segment in memory shaped like the singbox plugin's, and where Prometheus' tools are."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from singbox_agent.metrics.segment import CombinedCounter, MemorySource, NameVector, SimpleCounter

SERVER_COUNTERS = ("accepted", "rejected", "rejected-max-sessions", "rejected-prefix", "auth-failures",
                   "connect-failures", "bytes-to-client", "bytes-from-client", "udp-dropped")


def prometheus_tool(name: str) -> Path | None:
    """`promtool` or `prometheus` from PATH (Debian's package `prometheus`), else from $PROMETHEUS_BIN_DIR."""
    found = shutil.which(name)
    if found:
        return Path(found)
    directory = os.environ.get("PROMETHEUS_BIN_DIR")
    if directory and (Path(directory) / name).is_file():
        return Path(directory) / name
    return None


def missing_tool_reason(name: str) -> str:
    return (f"{name} not found: install Debian's package `prometheus` (it belongs in scripts/rootfs-packages.txt) "
            f"or set PROMETHEUS_BIN_DIR")


def plugin_segment(*, interfaces: int = 2, endpoints: int = 3, threads: int = 2, sessions: int = 0,
                   deleted: tuple[int, ...] = ()) -> MemorySource:
    """VPP interfaces local0 + host-vethN (N < `interfaces`), singbox relaying enabled on every host-veth, one
    endpoint per `endpoints` (ep0 up, ep1 down, ep2 unknown, ...), counters spread over `threads`. `deleted`:
    sw_if_indexes whose name slot is empty (interfaces deleted since)."""
    names = ["local0"] + [f"host-veth{i}" for i in range(interfaces)]
    for d in deleted:
        names[d] = ""
    width = len(names)
    src = MemorySource()
    src.set("/if/names", NameVector(tuple(names)))
    src.set("/sys/boottime", 1_765_000_000)
    src.set("/if/rx", CombinedCounter(tuple(tuple((10 * i + t, 1000 * i + t) for i in range(width))
                                            for t in range(threads))))
    src.set("/if/tx", CombinedCounter(tuple(tuple((20 * i, 2000 * i) for i in range(width)) for _ in range(threads))))
    src.set("/if/drops", SimpleCounter(tuple(tuple(i for i in range(width)) for _ in range(threads))))
    for n, name in enumerate(SERVER_COUNTERS):
        src.set(f"/singbox/server/{name}", SimpleCounter(tuple((n + 1 + t,) for t in range(threads))))
    src.set("/singbox/server/udp-datagrams", CombinedCounter(tuple(((3, 300), (4, 400)) for _ in range(threads))))
    src.set("/singbox/server/active-sessions", sessions)
    src.set("/singbox/client/interface/connections",
            SimpleCounter(tuple(tuple(100 + i for i in range(width)) for _ in range(threads))))
    src.set("/singbox/client/interface/failures",
            SimpleCounter(tuple(tuple(i for i in range(width)) for _ in range(threads))))
    src.set("/singbox/client/interface/redirected",
            CombinedCounter(tuple(tuple((5 * i, 500 * i) for i in range(width)) for _ in range(threads))))
    for i in range(1, width):
        src.set(f"/singbox/client/interface/{i}/active", i)
    for e in range(endpoints):
        src.set(f"/singbox/client/endpoint/ep{e}/state", (1, 2, 0)[e % 3])
        src.set(f"/singbox/client/endpoint/ep{e}/rtt-us", 1500 + e)
        src.set(f"/singbox/client/endpoint/ep{e}/failures", e)
    return src

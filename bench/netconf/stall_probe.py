#!/usr/bin/env python3
"""Where the slow requests are: one-leaf edit + get-config of a list, iteration by iteration, and the slowest ones.

    scripts/in-env python bench/netconf/stall_probe.py [--list nacm] [--entries 100] [--iterations 300]
        [--baseline TREE] [--netopeer2 PREFIX]

Our server (and, with `--baseline`, another checkout's: its `agent/` first on PYTHONPATH) as bench_vs_netopeer2.py
starts it, through ncclient (paramiko, Nagle on, its 0.1 s poll tick at 1 ms); the servers take turns iteration by
iteration; with `--netopeer2` (or NETOPEER2_PREFIX) netopeer2 too, as bench_vs_netopeer2.py runs it (replay on).
Prints p50 / p99 / max of each operation and the iterations where an operation took over `--factor` times its
p50, with their number: a stall that comes every N iterations shows as evenly spaced numbers (issue 17's ~45 ms
every ~31 iterations was paramiko's SSH window adjust left unacknowledged by our delayed ACK, netconf/tcp_ack.py).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_vs_netopeer2 as b  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--list", default="nacm", choices=sorted(b.LISTS))
    ap.add_argument("--entries", type=int, default=100)
    ap.add_argument("--iterations", type=int, default=300)
    ap.add_argument("--factor", type=float, default=5.0)
    ap.add_argument("--baseline", metavar="TREE")
    ap.add_argument("--netopeer2", default=os.environ.get("NETOPEER2_PREFIX", ""), metavar="PREFIX")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="stall-"))
    agent = args.list == "endpoints"
    servers = [b.start_ours(work, subscriber=agent)]
    try:
        if args.baseline:
            servers.append(b.start_ours(work, subscriber=agent, name="baseline", tree=Path(args.baseline).resolve()))
        if args.netopeer2 and (Path(args.netopeer2) / "sbin/netopeer2-server").exists():
            servers.append(b.start_netopeer2(Path(args.netopeer2), work, subscriber=agent))
        blist = b.LISTS[args.list]
        for s in servers:
            b.edit(s.mgr, blist.entries(args.entries))
        time.sleep(1.1)
        times: dict[str, dict[str, list[float]]] = {s.name: {"edit": [], "get": []} for s in servers}
        for i in range(args.iterations):
            for s in servers[i % len(servers):] + servers[:i % len(servers)]:
                times[s.name]["edit"].append(b.timed(lambda: b.edit(s.mgr, blist.one_leaf(i))))
                times[s.name]["get"].append(b.timed(
                    lambda: s.mgr.get_config(source="running", filter=("subtree", blist.module_filter))))
        load = open("/proc/loadavg").read().split()[0]
        print(f"load average {load}; {args.list}, {args.entries} entries, {args.iterations} iterations; ms")
        for s in servers:
            for op, samples in times[s.name].items():
                p50 = statistics.median(samples)
                slow = [(i, t) for i, t in enumerate(samples) if t > args.factor * p50]
                print(f"{s.name:9} {op:4} p50 {p50:.2f} p99 {b.percentile(samples, 99):.2f} max {max(samples):.2f}; "
                      f"over {args.factor:g}x p50: " + (", ".join(f"#{i} {t:.1f}" for i, t in slow) or "none"))
    finally:
        for s in servers:
            s.stop()
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

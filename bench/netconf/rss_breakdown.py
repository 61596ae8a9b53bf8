"""Where the NETCONF server's resident memory goes, stage by stage (issue 17: RSS <= netopeer2's).

    scripts/in-env python bench/netconf/rss_breakdown.py [--sizes 100,10000] [--lists nacm,truststore] [--mappings 12]
        [--settle SECONDS] [--netopeer2 PREFIX]

Starts our server on a private sysrepo instance (as bench_vs_netopeer2.py does), connects with ncclient and, for
each list and size: loads the list in one edit, reads it with get-config, runs a few one-leaf edits, deletes it.
After start and after each step it prints the server's RSS split the way /proc/PID/smaps counts it — anonymous
memory (the C and Python heaps, thread stacks), sysrepo's shared memory (`/dev/shm`), shared libraries and
Python extension modules — and, at the end, the mappings holding the most. Add `--netopeer2 PREFIX` (or
NETOPEER2_PREFIX) to print netopeer2's beside ours.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_vs_netopeer2 as bench  # noqa: E402 - the servers, lists and client of the side-by-side bench


def smaps(pid: int) -> dict[str, dict[str, int]]:
    """kB per mapping name: Rss, Anonymous, Shmem-like (file-backed under /dev/shm)."""
    out: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    name = ""
    for line in Path(f"/proc/{pid}/smaps").read_text().splitlines():
        fields = line.split()
        if not fields:
            continue
        if "-" in fields[0] and not fields[0].endswith(":"):
            name = fields[5] if len(fields) > 5 else "[anon]"
            continue
        if fields[0] in ("Rss:", "Anonymous:", "Private_Dirty:"):
            out[name][fields[0][:-1]] += int(fields[1])
    return out


def category(name: str) -> str:
    if name.startswith("/dev/shm") or "sr_" in name and name.startswith("/dev"):
        return "sysrepo shm"
    if name in ("[anon]", "[heap]") or name.startswith("[anon:"):
        return "anon/heap"
    if name.startswith("[stack"):
        return "stack"
    if name.endswith(".so") or ".so." in name or ".cpython-" in name:
        return "libraries"
    if name.startswith("["):
        return "other"
    return "files"


def summary(pid: int) -> str:
    per = smaps(pid)
    cats: dict[str, int] = defaultdict(int)
    anon = 0
    for name, m in per.items():
        cats[category(name)] += m["Rss"]
        anon += m["Anonymous"]
    total = sum(cats.values())
    parts = ", ".join(f"{k} {v / 1024:.1f}" for k, v in sorted(cats.items(), key=lambda kv: -kv[1]))
    return f"RSS {total / 1024:.1f} MB (anonymous {anon / 1024:.1f}): {parts}"


def top(pid: int, count: int) -> list[str]:
    per = smaps(pid)
    ranked = sorted(per.items(), key=lambda kv: -kv[1]["Rss"])[:count]
    return [f"  {m['Rss'] / 1024:7.1f} MB rss {m['Anonymous'] / 1024:7.1f} anon  {name}" for name, m in ranked]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="100,10000")
    ap.add_argument("--lists", default="nacm,truststore")
    ap.add_argument("--mappings", type=int, default=12, help="how many of the largest mappings to list at the end")
    ap.add_argument("--netopeer2", default=os.environ.get("NETOPEER2_PREFIX", ""))
    ap.add_argument("--settle", type=float, default=0.0,
                    help="seconds to wait after each step before reading smaps (0: at once, as the bench does)")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="brss", dir="/tmp"))
    servers: list[bench.Server] = []
    try:
        servers.append(bench.start_ours(work))
        if args.netopeer2:
            servers.append(bench.start_netopeer2(Path(args.netopeer2), work))

        def show(stage: str) -> None:
            time.sleep(args.settle)
            for s in servers:
                print(f"{stage:<28} {s.name:<9} {summary(s.pid)}", flush=True)

        show("started, one session")
        for name in args.lists.split(","):
            blist = bench.LISTS[name]
            for n in (int(x) for x in args.sizes.split(",")):
                for s in servers:
                    bench.edit(s.mgr, blist.entries(n))
                show(f"{name} {n:,} loaded")
                for s in servers:
                    s.mgr.get_config(source="running", filter=("subtree", blist.module_filter))
                show(f"{name} {n:,} get-config")
                for i in range(10):
                    for s in servers:
                        bench.edit(s.mgr, blist.one_leaf(i))
                show(f"{name} {n:,} 10 edits")
                time.sleep(1.1)
                for s in servers:
                    bench.edit(s.mgr, blist.delete_all(n))
                time.sleep(1.1)
                show(f"{name} {n:,} deleted")
        for s in servers:
            print(f"largest mappings of {s.name}:")
            print("\n".join(top(s.pid, args.mappings)))
    finally:
        for s in servers:
            try:
                s.stop()
            except Exception as exc:  # noqa: BLE001 - stop the others anyway
                print(f"stopping {s.name}: {exc}")
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

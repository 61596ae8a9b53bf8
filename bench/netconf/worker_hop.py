#!/usr/bin/env python3
"""A session's hop to its worker thread: `concurrent.futures.ThreadPoolExecutor` (what sessions used) against
`netconf/worker.Worker` (a SimpleQueue), side by side in one process.

    scripts/in-env python bench/netconf/worker_hop.py [--calls 3000] [--runs 3]

round trip: a call handed over and its answer back (p50, µs); per call: the submitting thread's cost with calls
queued back to back (µs), which is what the event loop pays per request besides the wake-up.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import queue
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "agent"))
from singbox_agent.netconf.worker import Worker  # noqa: E402


def nothing() -> None:
    return None


def round_trip(submit: Any, calls: int) -> float:
    back: queue.SimpleQueue[int] = queue.SimpleQueue()
    times = []
    for _ in range(calls):
        started = time.perf_counter()
        submit(lambda: back.put(1))
        back.get()
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1e6


def per_call(submit: Any, calls: int) -> float:
    back: queue.SimpleQueue[int] = queue.SimpleQueue()
    started = time.perf_counter()
    for _ in range(calls):
        submit(nothing)
    submit(lambda: back.put(1))
    back.get()
    return (time.perf_counter() - started) / calls * 1e6


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--calls", type=int, default=3000)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    executor = concurrent.futures.ThreadPoolExecutor(max_workers=1)
    worker = Worker("bench")
    try:
        print(f"load average {open('/proc/loadavg').read().split()[0]}; µs")
        for _ in range(args.runs):
            print(f"round trip  executor {round_trip(executor.submit, args.calls):6.1f}  "
                  f"worker {round_trip(worker.call, args.calls):6.1f}   "
                  f"per call  executor {per_call(executor.submit, args.calls):6.2f}  "
                  f"worker {per_call(worker.call, args.calls):6.2f}")
    finally:
        executor.shutdown()
        worker.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())

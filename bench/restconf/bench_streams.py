#!/usr/bin/env python3
"""RESTCONF event streams: delivery latency to N concurrent SSE clients and the server's memory per stream.

N streams (JSON and XML alternating; every fourth over HTTP/2, the rest HTTP/1.1, one connection each) are opened on the real server over a private sysrepo instance. The server's RSS is read before and
after, so memory per stream = growth / N. Then K notifications are sent one after another (each waits until every
stream got the previous one); the latency of each delivery is the time from just before `notification_send` to the
client reading the event's last line. Next to it, the floor: a sysrepo subscriber in this process receiving the
same notifications directly. Also reported: streams that ended early (must be 0).

Why one HTTP/2 connection per stream here: httpx (httpcore) reads an HTTP/2 connection from whichever request
holds its read lock, so with several streams on one connection an event for one waits until the reading stream
gets data of its own (up to one 15 s keepalive: p99 15,046 ms with 25 streams on one connection). The server is
not the cause: a raw `h2` client with 25 streams on one connection got all 200 events within 57 ms. The 100-client
test (tests/restconf/test_streams.py) multiplexes, because there only delivery counts.

    scripts/in-env python bench/restconf/bench_streams.py [--clients 100] [--notifications 20]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

TOP = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(TOP / "tests" / "restconf"))
sys.path.insert(0, str(TOP / "tests"))  # first: tests/conftest.py, not tests/restconf/conftest.py


def pct(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))] if ordered else float("nan")


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def child(clients: int, notifications: int, state_dir: Path) -> dict[str, Any]:
    import httpx
    import sysrepo
    from rcserver import ADMIN, start_server, stop_server

    from singbox_agent.repository import SysrepoInstance

    instance = SysrepoInstance(Path(os.environ["SYSREPO_REPOSITORY_PATH"]), os.environ["SYSREPO_SHM_PREFIX"])
    server = start_server(instance, state_dir)
    conn = sysrepo.SysrepoConnection()
    sess = conn.start_session("running")
    floor_times: dict[int, float] = {}
    floor_seen = threading.Event()

    def on_notif(xpath: str, notif_type: str, value: dict[str, Any], timestamp: int, private_data: Any) -> None:
        floor_times[int(value["round-trip-time"])] = time.perf_counter()
        floor_seen.set()

    listener = conn.start_session("running")
    listener.subscribe_notification("vpp-singbox", "/vpp-singbox:endpoint-up", on_notif)
    sent: dict[int, float] = {}
    received: list[dict[int, float]] = [{} for _ in range(clients)]
    failures: list[str] = []

    async def stream(client: httpx.AsyncClient, idx: int, opened: asyncio.Event, count: list[int],
                     progress: asyncio.Condition) -> None:
        enc = "json" if idx % 2 else "xml"
        try:
            async with client.stream("GET", f"/restconf/streams/NETCONF/{enc}",
                                     params={"filter": "/vpp-singbox:endpoint-up"}) as resp:
                lines = resp.aiter_lines()
                await anext(lines)
                count[0] += 1
                if count[0] == clients:
                    opened.set()
                data: list[str] = []
                async for line in lines:
                    if line.startswith("data:"):
                        data.append(line[5:])
                    elif line == "" and data:
                        now = time.perf_counter()
                        text = "\n".join(data)
                        data = []
                        seq = _seq(text, enc)
                        received[idx][seq] = now
                        async with progress:
                            progress.notify_all()
                        if len(received[idx]) == notifications:
                            return
        except Exception as exc:  # noqa: BLE001 - a cut stream is what this counts
            failures.append(f"{idx} {enc}: {exc!r}")
            async with progress:
                progress.notify_all()

    async def run() -> tuple[int, int]:
        opened = asyncio.Event()
        progress = asyncio.Condition()
        count = [0]
        kw: dict[str, Any] = {"base_url": server.base_url, "verify": server.ca or False, "auth": ADMIN,
                              "timeout": httpx.Timeout(300.0),
                              "limits": httpx.Limits(max_connections=clients + 10)}
        before = rss_kib(server.process.pid)
        h2 = [httpx.AsyncClient(http2=True, **kw) for _ in range(0, clients, 4)]
        async with httpx.AsyncClient(http2=False, **kw) as h1:
            tasks = [asyncio.create_task(stream(h2[i // 4] if i % 4 == 0 else h1, i, opened, count, progress))
                     for i in range(clients)]
            await asyncio.wait_for(opened.wait(), 300)
            await asyncio.sleep(1.0)
            after = rss_kib(server.process.pid)
            for seq in range(notifications):
                floor_seen.clear()
                sent[seq] = time.perf_counter()
                await asyncio.to_thread(sess.notification_send, "/vpp-singbox:endpoint-up",
                                        {"endpoint": "bench", "round-trip-time": seq})
                async with progress:
                    await asyncio.wait_for(progress.wait_for(
                        lambda: all(seq in r for i, r in enumerate(received) if not _failed(i))), 120)
            await asyncio.gather(*tasks)
        for client in h2:
            await client.aclose()
        return before, after

    def _failed(idx: int) -> bool:
        return any(f.startswith(f"{idx} ") for f in failures)

    try:
        before, after = asyncio.run(run())
    finally:
        listener.stop()
        sess.stop()
        conn.disconnect()
        stop_server(server)
    latencies = [(r[s] - sent[s]) * 1e3 for i, r in enumerate(received) for s in r if i % 4]
    latencies_h2 = [(r[s] - sent[s]) * 1e3 for i, r in enumerate(received) for s in r if not i % 4]
    floor = [(floor_times[s] - sent[s]) * 1e3 for s in floor_times]
    return {"clients": clients, "notifications": notifications, "latency_ms": latencies, "floor_ms": floor,
            "latency_h2_ms": latencies_h2,
            "rss_before_kib": before, "rss_after_kib": after, "failures": failures,
            "delivered": sum(len(r) for r in received)}


def _seq(text: str, encoding: str) -> int:
    if encoding == "json":
        body = json.loads(text)["ietf-restconf:notification"]
        return int(body["vpp-singbox:endpoint-up"]["round-trip-time"])
    start = text.index("<round-trip-time>") + len("<round-trip-time>")
    return int(text[start:text.index("<", start)])


def report(res: dict[str, Any]) -> None:
    lat, floor = res["latency_ms"], res["floor_ms"]
    n = res["clients"]
    print(f"RESTCONF event streams: {n} clients (JSON/XML alternating, 1 in 4 over HTTP/2, a connection each), "
          f"{res['notifications']} notifications")
    print(f"delivered {res['delivered']} of {n * res['notifications']}; streams cut: {len(res['failures'])}")
    for line in res["failures"][:5]:
        print("  cut:", line)
    fp50, fp99 = pct(floor, 0.5), pct(floor, 0.99)
    p50, p99 = pct(lat, 0.5), pct(lat, 0.99)
    h2 = res["latency_h2_ms"]
    q50, q99 = pct(h2, 0.5), pct(h2, 0.99)
    print(f"{'latency ms':>12} | {'floor (sysrepo subscriber)':>27} | {'HTTP/1.1 SSE':>12} | ratio | "
          f"{'HTTP/2 SSE':>10} | ratio")
    for name, f, a, b in (("p50", fp50, p50, q50), ("p99", fp99, p99, q99)):
        print(f"{name:>12} | {f:27.2f} | {a:12.2f} | {a / f if f else float('nan'):4.1f}x | {b:10.2f} | "
              f"{b / f if f else float('nan'):4.1f}x")
    grown = res["rss_after_kib"] - res["rss_before_kib"]
    print(f"server RSS {res['rss_before_kib'] / 1024:.1f} MiB idle -> {res['rss_after_kib'] / 1024:.1f} MiB with "
          f"{n} streams: {grown / n:.0f} KiB per stream")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--clients", type=int, default=100)
    parser.add_argument("--notifications", type=int, default=20)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--state-dir", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print("RESULT " + json.dumps(child(args.clients, args.notifications, args.state_dir)))
        return 0

    from conftest import new_sysrepo_instance  # tests/conftest.py
    from rcserver import bootstrap_users

    instance = new_sysrepo_instance()
    state = Path(tempfile.mkdtemp(prefix="rcstreams"))
    try:
        bootstrap_users(instance, state)
        proc = subprocess.run(
            [sys.executable, __file__, "--child", "--clients", str(args.clients), "--notifications",
             str(args.notifications), "--state-dir", str(state)],
            env={**os.environ, **instance.env}, capture_output=True, text=True, timeout=1800,
        )
        line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")), None)
        if proc.returncode != 0 or line is None:
            print(proc.stdout[-3000:], proc.stderr[-5000:], file=sys.stderr)
            return 1
        report(json.loads(line[len("RESULT "):]))
    finally:
        instance.destroy()
        shutil.rmtree(state, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

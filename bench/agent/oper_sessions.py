#!/usr/bin/env python3
"""Operational reads with 10,000 live sessions: the agent's pull callback against the floor, and the alternatives.

    scripts/in-env python bench/agent/oper_sessions.py [--sessions 10000] [--reads 7]

Measured in one child process with its own sysrepo instance (libsysrepo binds a process to one instance), each read
as a NETCONF/RESTCONF server does it (`get_data_ly`, no conversion to Python on the reader's side):

- floor: a subscriber that returns the same tree built in advance (sysrepo + libyang only: the request round trip,
  libyang's JSON parser, sysrepo's LYB hand-over and merge);
- agent: the agent's callback over the in-memory dataplane (dataplane read + tree + the same path as the floor);
- agent, one session (`session[id='7']`) and server counters: the callback builds only what the xpath selects;
- push: the sessions written into the operational datastore (sysrepo "oper push", edit_batch_ly + apply_changes
  from an operational session) and read back with no callback; `push write` is what each refresh costs.

Target: 300 ms for 10,000 sessions. Every figure is a p50 (min-max) over --reads reads, in ms.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

TOP = "/vpp-singbox:singbox"
ROOT = Path(__file__).resolve().parents[2]


def timed(fn: Callable[[], None], n: int) -> list[float]:
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t0) * 1e3)
    return out


def child(n_sessions: int, reads: int) -> dict[str, list[float]]:
    import sysrepo

    from singbox_agent.agent import fastoper, oper
    from singbox_agent.agent.daemon import Agent
    from singbox_agent.dataplane.base import ServerState, Session
    from singbox_agent.dataplane.memory import MemoryDataplane

    dp = MemoryDataplane()
    dp.server_state = ServerState(True, 5, 1, 2, 3, 4096, n_sessions)
    dp.sessions = {i: Session(i, "server" if i % 2 else "client", "established", "198.18.1.2", 1024 + i % 60000,
                              destination_address="198.18.2.2" if i % 3 else None,
                              destination_domain=None if i % 3 else "example.com", destination_port=443,
                              interface=None if i % 2 else "tap0", endpoint=None if i % 2 else "e0",
                              username="bob" if i % 2 else None, bytes_from_client=i, bytes_to_client=i,
                              age=i % 600) for i in range(n_sessions)}
    conn = sysrepo.SysrepoConnection()
    out: dict[str, list[float]] = {}

    def read(xpath: str, expect: int | None = None) -> Callable[[], None]:
        def run() -> None:
            with op.get_data_ly(xpath) as data:
                if expect is not None:
                    got = sum(1 for _ in data.find_all(f"{TOP}/sessions/session"))
                    assert got == expect, f"{xpath}: {got} sessions, expected {expect}"
        return run

    op = conn.start_session("operational")
    try:
        # floor: the tree built in advance, handed over through the same JSON path as the agent's
        fastoper.install()
        prebuilt = oper.sessions(list(dp.sessions.values()))
        fs = conn.start_session("running")
        fs.subscribe_oper_data_request("vpp-singbox", f"{TOP}/sessions", lambda _x, _p, **_k: prebuilt)
        read(f"{TOP}/sessions", n_sessions)()  # warm-up
        out["floor"] = timed(read(f"{TOP}/sessions", n_sessions), reads)
        fs.stop()

        agent = Agent(dp)
        agent.start()
        agent.wait_idle(60)
        read(f"{TOP}/sessions", n_sessions)()
        out["agent"] = timed(read(f"{TOP}/sessions", n_sessions), reads)
        out["agent whole tree"] = timed(read(TOP, n_sessions), reads)
        out["agent one session"] = timed(read(f"{TOP}/sessions/session[id='7']", 1), reads)
        out["agent server counters"] = timed(read(f"{TOP}/server/statistics"), reads)
        agent.stop()

        # push: the same sessions stored in the operational datastore by an operational session
        pusher = conn.start_session("operational")
        text = json.dumps({"vpp-singbox:singbox": prebuilt["singbox"]}, separators=(",", ":"))

        def push() -> None:
            with conn.get_ly_ctx() as ctx:
                tree = ctx.parse_data_mem(text, "json", parse_only=True, strict=True)
            try:
                pusher.edit_batch_ly(tree, "replace")
                pusher.apply_changes()
            finally:
                tree.free()

        out["push write"] = timed(push, max(3, reads // 2))
        out["push read"] = timed(read(f"{TOP}/sessions", n_sessions), reads)
        out["push read one session"] = timed(read(f"{TOP}/sessions/session[id='7']", 1), reads)
        pusher.stop()
    finally:
        op.stop()
        conn.disconnect()
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sessions", type=int, default=10000)
    ap.add_argument("--reads", type=int, default=7)
    ap.add_argument("--child", action="store_true")
    opts = ap.parse_args()
    if opts.child:
        import logging

        from singbox_agent.logs import configure_logging

        configure_logging(logging.WARNING, json_output=True)
        print(json.dumps(child(opts.sessions, opts.reads)))
        return 0
    sys.path.insert(0, str(ROOT))
    from tests.conftest import new_sysrepo_instance

    inst = new_sysrepo_instance()
    try:
        p = subprocess.run([sys.executable, __file__, "--child", "--sessions", str(opts.sessions), "--reads",
                            str(opts.reads)], env={**os.environ, **inst.env}, capture_output=True, text=True,
                           timeout=900)
    finally:
        inst.destroy()
    if p.returncode:
        print(p.stderr[-3000:])
        return 1
    r: dict[str, list[float]] = json.loads(p.stdout.strip().splitlines()[-1])
    floor = statistics.median(r["floor"])
    print(f"operational reads with {opts.sessions:,} sessions (ms; p50 (min-max); ratio to the floor's p50); "
          f"target 300 ms")
    for name, values in r.items():
        med = statistics.median(values)
        print(f"{name:>24} {med:8.1f} ({min(values):.0f}-{max(values):.0f}) {med / floor:6.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())

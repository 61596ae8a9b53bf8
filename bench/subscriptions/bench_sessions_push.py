#!/usr/bin/env python3
"""What on-change YANG-Push of the sessions list would cost if the agent pushed the sessions (issue 18): the set of
sessions (id and the fields that do not change during a session) pushed into sysrepo's operational datastore,
counters left to the pull callback. Measured at --sessions sessions, agent over the in-memory dataplane:

- a read of /singbox/sessions (the pull callback) without and with the pushed sessions in sysrepo;
- pushing them all once (as after a VPP restart), and one session appearing / ending (one apply each);
- the latency of such a change to an srsn on-change subscriber on /singbox/sessions/session/id.

    scripts/in-env python bench/subscriptions/bench_sessions_push.py [--sessions 10000] [--changes 30]

Nothing here asserts a time.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TOP = "/vpp-singbox:singbox"


def child(n_sessions: int, changes: int, reads: int) -> dict[str, object]:
    import sysrepo

    from singbox_agent.agent.daemon import Agent
    from singbox_agent.dataplane.base import Session
    from singbox_agent.dataplane.memory import MemoryDataplane
    from singbox_agent.subscriptions import srsn

    dp = MemoryDataplane()
    dp.sessions = {i: Session(i, "server", "established", "198.18.1.2", 1024 + i % 60000,
                              destination_address="198.18.2.2", destination_port=443, username="bob",
                              bytes_from_client=i, bytes_to_client=i, age=i % 600) for i in range(n_sessions)}
    agent = Agent(dp)
    agent.start()
    assert agent.wait_idle()
    conn = sysrepo.SysrepoConnection()
    oper = conn.start_session("operational")
    push = conn.start_session("operational")

    def timed_read() -> float:
        started = time.perf_counter()
        with oper.get_data_ly(f"{TOP}/sessions") as data:
            assert data is not None
        return (time.perf_counter() - started) * 1e3

    def entry(i: int) -> dict[str, object]:
        return {"id": str(i), "mode": "server", "client-address": "198.18.1.2", "client-port": 1024 + i % 60000,
                "destination-address": "198.18.2.2", "destination-port": 443, "username": "bob"}

    out: dict[str, object] = {}
    timed_read()
    out["read_without_ms"] = [timed_read() for _ in range(reads)]
    started = time.perf_counter()
    push.edit_batch({"singbox": {"sessions": {"session": [entry(i) for i in range(n_sessions)]}}}, "vpp-singbox")
    push.apply_changes()
    out["push_all_ms"] = (time.perf_counter() - started) * 1e3
    out["read_with_ms"] = [timed_read() for _ in range(reads)]
    sub = srsn.yang_push_on_change(oper, "operational", xpath=f"{TOP}/sessions/session/id", sync_on_start=False)
    got = threading.Event()
    arrived: list[float] = []
    stop = threading.Event()

    def reader() -> None:
        with conn.get_ly_ctx() as ctx:
            while not stop.is_set():
                n = sub.read(ctx, 100)
                if n is not None:
                    arrived.append(time.perf_counter())
                    got.set()

    t = threading.Thread(target=reader, daemon=True)
    t.start()
    apply_ms: list[float] = []
    latency_ms: list[float] = []
    try:
        for k in range(changes):
            i = n_sessions + k
            for op in ("add", "end"):
                got.clear()
                arrived.clear()
                started = time.perf_counter()
                if op == "add":
                    for leaf, value in entry(i).items():
                        if leaf != "id":
                            push.set_item(f"{TOP}/sessions/session[id='{i}']/{leaf}", value)
                else:
                    push.delete_item(f"{TOP}/sessions/session[id='{i}']")
                push.apply_changes()
                apply_ms.append((time.perf_counter() - started) * 1e3)
                if got.wait(10):
                    latency_ms.append((arrived[0] - started) * 1e3)
    finally:
        stop.set()
        t.join(5)
        sub.close()
        push.stop()
        oper.stop()
        conn.disconnect()
        agent.stop()
    out["change_apply_ms"] = apply_ms
    out["change_latency_ms"] = latency_ms
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sessions", type=int, default=10000)
    ap.add_argument("--changes", type=int, default=30)
    ap.add_argument("--reads", type=int, default=5)
    ap.add_argument("--child", action="store_true")
    opts = ap.parse_args()
    if opts.child:
        import logging

        from singbox_agent.logs import configure_logging

        configure_logging(logging.WARNING, json_output=True)
        print(json.dumps(child(opts.sessions, opts.changes, opts.reads)))
        return 0
    sys.path.insert(0, str(ROOT))
    from singbox_agent.subscriptions import srsn
    from tests.conftest import new_sysrepo_instance

    inst = new_sysrepo_instance()
    try:
        args = ["sysrepoctl", "-s", str(srsn.SR_MODULE_DIR)]
        for name, features in srsn.MODULES:
            args += ["-i", str(srsn.SR_MODULE_DIR / name)] + [a for f in features for a in ("-e", f)]
        subprocess.run(args, env={**os.environ, **inst.env}, check=True, capture_output=True, timeout=120)
        p = subprocess.run([sys.executable, "-X", "faulthandler", __file__, "--child", "--sessions",
                            str(opts.sessions), "--changes", str(opts.changes), "--reads", str(opts.reads)],
                           env={**os.environ, **inst.env}, capture_output=True, text=True, timeout=1800)
    finally:
        inst.destroy()
    if p.returncode:
        print(f"child failed ({p.returncode}):", p.stdout[-2000:], p.stderr[-4000:])
        return 1
    r = json.loads(p.stdout.strip().splitlines()[-1])
    med = statistics.median
    print(f"sessions pushed for on-change, {opts.sessions} sessions:")
    print(f"  read of /singbox/sessions  without pushed sessions median {med(r['read_without_ms']):8.1f} ms")
    print(f"                             with pushed sessions    median {med(r['read_with_ms']):8.1f} ms "
          f"({med(r['read_with_ms']) / med(r['read_without_ms']):.2f}x)")
    print(f"  pushing all sessions once  {r['push_all_ms']:8.1f} ms")
    print(f"  one session added/ended    apply median {med(r['change_apply_ms']):8.1f} ms  "
          f"max {max(r['change_apply_ms']):8.1f} ms")
    lat = r["change_latency_ms"]
    if lat:
        print(f"  -> on-change subscriber    median {med(lat):8.1f} ms  max {max(lat):8.1f} ms "
              f"({len(lat)} of {len(r['change_apply_ms'])} delivered)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

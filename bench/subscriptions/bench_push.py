#!/usr/bin/env python3
"""Cost of YANG-Push of `/singbox/sessions` with 10,000 live sessions (issue 18): a 1 s periodic push, and
on-change through the agent's poll of the sessions list (agent/oper_poll.py).

The real agent (over the in-memory dataplane holding --sessions sessions) serves the operational data. Between two
pushes every session ages by a second and moves bytes, as live sessions do on VPP (that work, in this process, is
timed apart and left out). Runs on a private sysrepo instance with ietf-subscribed-notifications and
ietf-yang-push installed. --mode:

- periodic: a `srsn.yang_push_periodic` subscription on the operational datastore (sysrepo's own YANG-Push) pushes
  the sessions list every --period-ms; a reader takes each push-update from the pipe and prints it as XML, as the
  NETCONF server does before sending it;
- poll: the agent polls the sessions list every --period-ms (--sessions-poll-ms) and an on-change subscription
  (`srsn.yang_push_on_change`, no dampening) gets the difference as a push-change-update: between two polls
  --batch sessions end and as many start (the poll reads only their state, oper.SESSIONS_ON_CHANGE_XPATH, so
  the counters and ages that move too are not in it);
- idle: the agent's poll alone, nobody subscribed and no session starting or ending (counters and ages still
  move): what on-change of the sessions list costs by default (--period-ms 0: the agent without the poll).

Reported per push: the process's CPU time (agent callback + sysrepo + reading + printing, all in this one
process), the wall time between pushes, and the bytes of the notification.

    scripts/in-env python bench/subscriptions/bench_push.py [--mode periodic|poll|idle] [--sessions 10000]
        [--pushes 10] [--period-ms 1000] [--batch 1]

Nothing here asserts a time.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


def child(n_sessions: int, pushes: int, period_ms: int, mode: str, xpath: str, tree: str,
          batch: int) -> dict[str, object]:
    from dataclasses import replace

    import sysrepo

    from singbox_agent.agent import fastoper
    from singbox_agent.agent.daemon import Agent
    from singbox_agent.dataplane.base import ServerState, Session
    from singbox_agent.dataplane.memory import MemoryDataplane
    from singbox_agent.subscriptions import srsn

    import libyang

    from singbox_agent.agent import oper

    fastoper.install()
    # the agent's own part of each push, in the callback's thread: the entries (oper.sessions) and their tree
    # (fastoper: the kept sessions tree, or libyang's JSON parser)
    own = [0.0]

    def timed(f: Any) -> Any:
        def run(*args: Any, **kwargs: Any) -> Any:
            t = time.thread_time()
            try:
                return f(*args, **kwargs)
            finally:
                own[0] += time.thread_time() - t
        return run

    if tree == "parsed":  # as before the kept tree: the whole list through libyang's JSON parser at every read
        kept = oper.sessions
        oper.sessions = lambda items, only=None: fastoper.OperTree(kept(items, only))
    oper.sessions = timed(oper.sessions)
    libyang.Module.parse_data_dict = timed(libyang.Module.parse_data_dict)  # type: ignore[method-assign]
    dp = MemoryDataplane()
    dp.server_state = ServerState(True, 5, 1, 2, 3, 4096, n_sessions)
    dp.sessions = {i: Session(i, "server" if i % 2 else "client", "established", "198.18.1.2", 1024 + i % 60000,
                              destination_address="198.18.2.2", destination_port=443,
                              interface=None if i % 2 else "tap0", endpoint=None if i % 2 else "e0",
                              username="bob" if i % 2 else None, bytes_from_client=i, bytes_to_client=i,
                              age=i % 600) for i in range(n_sessions)}
    template = dp.sessions[n_sessions - 1]
    agent = Agent(dp, sessions_poll_ms=period_ms if mode in ("poll", "idle") else 0)
    agent.start()
    assert agent.wait_idle()
    if mode == "idle":
        return idle(agent, dp, pushes, max(period_ms, 1000), own)
    conn = sysrepo.SysrepoConnection()
    sess = conn.start_session("operational")
    if mode == "periodic":
        sub = srsn.yang_push_periodic(sess, "operational", period_ms=period_ms, xpath=xpath)
        want = "<push-update"
    else:
        sub = srsn.yang_push_on_change(sess, "operational", xpath=xpath, sync_on_start=False)
        want = "<push-change-update"
    cpu: list[float] = []
    gaps: list[float] = []
    agent_cpu: list[float] = []
    sizes: list[int] = []
    try:
        last_wall = last_cpu = None
        while len(sizes) < pushes + 1:  # the first push is not timed (no interval before it)
            # a second of live sessions (its CPU is not the push's)
            t0 = time.process_time()
            dp.sessions = {i: replace(s, age=s.age + 1, bytes_from_client=s.bytes_from_client + 100,
                                      bytes_to_client=s.bytes_to_client + 1000) for i, s in dp.sessions.items()}
            k = len(sizes) * batch  # and sessions end, others start (what a filter on the entries still hears)
            for j in range(k, k + batch):
                dp.sessions.pop(j, None)
                dp.sessions[n_sessions + j] = replace(template, id=n_sessions + j, age=0)
            aging = time.process_time() - t0
            if not sub.poll(60 * period_ms):
                raise RuntimeError("no push within 60 periods")
            with conn.get_ly_ctx() as ctx:
                n = sub.read(ctx, 0)
            assert n is not None and n.content.startswith(want), n.content[:200] if n else None
            # the interval between two pushes by their eventTime (when srsn built them), not by when this reader
            # got to them
            now_wall, now_cpu = n.time.timestamp(), time.process_time()
            if last_wall is not None and last_cpu is not None:
                gaps.append((now_wall - last_wall) * 1e3)
                cpu.append((now_cpu - last_cpu - aging) * 1e3)
                agent_cpu.append(own[0] * 1e3)
            own[0] = 0.0
            last_wall, last_cpu = now_wall, now_cpu
            sizes.append(len(n.content.encode()))
            if mode == "periodic" and xpath.endswith("/sessions"):
                assert n.content.count("<session>") == n_sessions, n.content.count("<session>")
    except BaseException:
        import traceback

        traceback.print_exc()  # now: closing the subscription may be what fails next
        sys.stderr.flush()
        raise
    finally:
        sub.close()
        sess.stop()
        conn.disconnect()
        agent.stop()
    return {"cpu_ms": cpu, "agent_ms": agent_cpu, "gap_ms": gaps, "bytes": sizes[1:]}


def idle(agent: Any, dp: Any, periods: int, period_ms: int, own: list[float]) -> dict[str, object]:
    """CPU of the process per period while the sessions only age and move bytes (nobody subscribed)."""
    from dataclasses import replace

    cpu: list[float] = []
    agent_cpu: list[float] = []
    try:
        time.sleep(period_ms / 1e3)
        for _ in range(periods):
            w0, t0 = time.perf_counter(), time.process_time()
            dp.sessions = {i: replace(s, age=s.age + 1, bytes_from_client=s.bytes_from_client + 100)
                           for i, s in dp.sessions.items()}
            aging = time.process_time() - t0
            own[0] = 0.0
            time.sleep(max(0.0, period_ms / 1e3 - (time.perf_counter() - w0)))
            cpu.append((time.process_time() - t0 - aging) * 1e3)
            agent_cpu.append(own[0] * 1e3)
    finally:
        agent.stop()
    return {"cpu_ms": cpu, "agent_ms": agent_cpu, "gap_ms": [float(period_ms)], "bytes": [0]}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sessions", type=int, default=10000)
    ap.add_argument("--pushes", type=int, default=10)
    ap.add_argument("--period-ms", type=int, default=1000)
    ap.add_argument("--mode", choices=("periodic", "poll", "idle"), default="periodic")
    ap.add_argument("--batch", type=int, default=1, help="sessions that end and start between two polls")
    ap.add_argument("--xpath", default="/vpp-singbox:singbox/sessions", help="the subscription's filter")
    ap.add_argument("--tree", choices=("kept", "parsed"), default="kept",
                    help="the agent's sessions tree kept between reads (sessions_tree.py), or parsed at every read")
    ap.add_argument("--child", action="store_true")
    opts = ap.parse_args()
    if opts.child:
        import logging

        from singbox_agent.logs import configure_logging

        configure_logging(logging.WARNING, json_output=True)
        print(json.dumps(child(opts.sessions, opts.pushes, opts.period_ms, opts.mode, opts.xpath, opts.tree,
                               opts.batch)))
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
        p = subprocess.run([sys.executable, "-X", "faulthandler", __file__, "--child", "--sessions", str(opts.sessions), "--pushes",
                            str(opts.pushes), "--period-ms", str(opts.period_ms), "--mode", opts.mode, "--xpath", opts.xpath, "--tree", opts.tree,
                            "--batch", str(opts.batch)], env={**os.environ, **inst.env},
                           capture_output=True, text=True, timeout=1800)
    finally:
        inst.destroy()
    if p.returncode:
        print(f"child failed ({p.returncode}):", p.stdout[-2000:], p.stderr[-4000:])
        return 1
    r = json.loads(p.stdout.strip().splitlines()[-1])
    med = statistics.median
    if opts.mode == "idle":
        poll = f"polled every {opts.period_ms} ms" if opts.period_ms else "not polled"
        print(f"the agent, {opts.sessions} live sessions {poll}, nobody subscribed, {len(r['cpu_ms'])} s:")
        print(f"  CPU per second    median {med(r['cpu_ms']):8.1f} ms  max {max(r['cpu_ms']):8.1f} ms "
              f"(the agent's callback {med(r['agent_ms']):.1f} ms)")
        return 0
    what = ("periodic YANG-Push" if opts.mode == "periodic"
            else f"on-change YANG-Push (the agent's poll), {opts.batch} sessions ending and {opts.batch} starting "
                 "per poll,")
    print(f"{what} of {opts.xpath} (sessions tree {opts.tree}), {opts.sessions} sessions, period {opts.period_ms} ms, "
          f"{len(r['cpu_ms'])} pushes timed:")
    print(f"  CPU per push      median {med(r['cpu_ms']):8.1f} ms  max {max(r['cpu_ms']):8.1f} ms "
          f"({med(r['cpu_ms']) / opts.period_ms:.2f} of a core at this period)")
    print(f"  of which the agent's callback (entries and their tree) median {med(r['agent_ms']):8.1f} ms")
    print(f"  interval          median {med(r['gap_ms']):8.1f} ms  max {max(r['gap_ms']):8.1f} ms")
    print(f"  notification size median {med(r['bytes']) / 1e6:8.2f} MB")
    print("  each push (CPU ms, interval ms, KB):",
          ", ".join(f"{c:.0f}/{g:.0f}/{b / 1e3:.0f}" for c, g, b in zip(r["cpu_ms"], r["gap_ms"], r["bytes"])))
    return 0


if __name__ == "__main__":
    sys.exit(main())

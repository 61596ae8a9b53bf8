#!/usr/bin/env python3
"""Commit -> applied latency of singbox-agent against the floor: the same commit through sysrepo with a subscriber
that does nothing, measured in the same run, at 100, 1,000 and 10,000 configured list entries (half endpoints,
half interfaces). Operational reads with 10,000 live sessions: bench/agent/oper_sessions.py.

    scripts/in-env python bench/agent/commit_latency.py [--sizes 100,1000,10000] [--commits 200]
        [--baseline /run/host/<another checkout>] [--log-level info|warning]

With --baseline, the agent of that checkout (its `agent/` first on PYTHONPATH) runs too, its children alternating
with ours, and a last column gives ours/base agent p50. The agent logs at info, as the product does (one line per
commit), unless --log-level says otherwise.

Each size runs in a child process with its own sysrepo instance (libsysrepo binds a process to one instance).
The agent applies synchronously in the `change` event, so apply_changes() returning means the dataplane
(in-memory here; the plugin's own call cost is the VPP benchmark's business) holds the change.
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

TOP = "/vpp-singbox:singbox"
ROOT = Path(__file__).resolve().parents[2]


def pct(values: list[float], p: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(round(p / 100 * (len(s) - 1))))]


def populate(sess: Any, n: int) -> None:
    half = n // 2
    config: dict[str, Any] = {"singbox": {"client": {
        "endpoint": [{"name": f"e{i}", "address": f"198.18.{i // 250}.{i % 250 + 1}"} for i in range(half)],
        "interface": [{"name": f"tap{i}", "endpoint": f"e{i}"} for i in range(n - half)],
    }}}
    sess.replace_config(config, "vpp-singbox")


_serial = [0]


def commit_loop(sess: Any, commits: int, on_commit: Any = None) -> list[float]:
    """One-leaf commits that each really change something (a commit without a change never reaches a subscriber)."""
    times: list[float] = []
    for _ in range(commits):
        k = _serial[0] = _serial[0] + 1
        sess.set_item(f"{TOP}/client/endpoint[name='e{k % 50}']/port", 2000 + k % 1000)
        t0 = time.perf_counter()
        sess.apply_changes()
        times.append((time.perf_counter() - t0) * 1e3)
        if on_commit:
            on_commit()
    return times


def child(n: int, commits: int, blocks: int) -> dict[str, Any]:
    import sysrepo

    from singbox_agent.agent.daemon import Agent
    from singbox_agent.dataplane.memory import MemoryDataplane

    out: dict[str, Any] = {"size": n, "floor": [], "agent": [], "plan": [], "apply": [], "startup_ms": []}
    conn = sysrepo.SysrepoConnection()
    sess = conn.start_session("running")
    populate(sess, n)
    commit_loop(sess, 5)  # warm-up

    def nothing(event: str, req_id: int, changes: Any, priv: Any) -> None:
        return None

    dp = MemoryDataplane()
    per_block = max(10, commits // blocks)
    agent: Agent | None = None
    # Floor and agent blocks alternate, so load from other processes on the machine hits both alike.
    for _ in range(blocks):
        c = sysrepo.SysrepoConnection()
        s = c.start_session("running")
        s.subscribe_module_change("vpp-singbox", TOP, nothing)
        commit_loop(sess, 3)
        out["floor"] += commit_loop(sess, per_block)
        s.stop()
        c.disconnect()

        agent = Agent(dp)
        inner = agent._on_change  # noqa: SLF001 - time spent inside the agent's own callback, per event

        def make_timed(inner: Any) -> Any:
            def timed(ev_sess: Any, event: str, req_id: int, priv: Any) -> None:
                t = time.perf_counter()
                try:
                    inner(ev_sess, event, req_id, priv)
                finally:
                    out.setdefault("cb_" + event, []).append((time.perf_counter() - t) * 1e3)
            return timed

        agent._on_change = make_timed(inner)  # type: ignore[method-assign]  # noqa: SLF001
        t0 = time.perf_counter()
        agent.start()
        agent.wait_idle(120)
        out["startup_ms"].append((time.perf_counter() - t0) * 1e3)
        assert agent.status.in_sync, "agent did not sync"
        commit_loop(sess, 3)
        a = agent

        def record() -> None:
            out["plan"].append(a.last_timing[0])
            out["apply"].append(a.last_timing[1])

        out["agent"] += commit_loop(sess, per_block, record)
        assert dp.objects == agent.running.desired()
        agent.stop()

    sess.stop()
    conn.disconnect()
    return out


def run_size(n: int, commits: int, blocks: int, log_level: str, tree: str | None = None) -> dict[str, Any]:
    sys.path.insert(0, str(ROOT / "tests"))
    from conftest import new_sysrepo_instance  # type: ignore[import-not-found]

    instance = new_sysrepo_instance()
    env = {**os.environ, **instance.env}
    if tree is not None:
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(Path(tree) / "agent"), env.get("PYTHONPATH", "")) if p)
    try:
        proc = subprocess.run([sys.executable, __file__, "--child", str(n), "--commits", str(commits),
                               "--blocks", str(blocks), "--log-level", log_level],
                              env=env, capture_output=True, text=True, timeout=900)
        if proc.returncode != 0:
            raise RuntimeError(f"size {n} failed:\n{proc.stderr[-3000:]}")
        result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
        return result
    finally:
        instance.destroy()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="100,1000,10000")
    ap.add_argument("--commits", type=int, default=200)
    ap.add_argument("--blocks", type=int, default=4, help="alternating floor/agent blocks per size")
    ap.add_argument("--baseline", help="another checkout whose agent runs alternately with ours")
    ap.add_argument("--log-level", default="info", choices=("info", "warning"))
    ap.add_argument("--child", type=int)
    opts = ap.parse_args()
    if opts.child:
        import logging

        from singbox_agent.logs import configure_logging

        configure_logging(logging.INFO if opts.log_level == "info" else logging.WARNING, json_output=True)
        print(json.dumps(child(opts.child, opts.commits, opts.blocks)))
        return 0

    print("commit -> applied, one-leaf change (endpoint port), ms; floor = same commit, do-nothing subscriber;")
    print("agent share = agent p50 - floor p50; plan/apply = the agent's own work inside the change callback;")
    print("startup = agent start to in sync (initial config load + dataplane diff)")
    print("callback = the agent's Python callback for the change / done events (sysrepo-python builds the change")
    print("list before it, for the floor's subscriber too)")
    print(f"{'entries':>8} {'floor p50':>10} {'floor p99':>10} {'agent p50':>10} {'agent p99':>10} "
          f"{'p50 ratio':>10} {'agent share p50':>16} {'plan p50':>9} {'apply p50':>10} {'cb change':>10} "
          f"{'cb done':>8} {'startup':>9}" + (f" {'ours/base':>10}" if opts.baseline else ""))
    ok = True
    for n in (int(s) for s in opts.sizes.split(",")):
        commits = opts.commits if n < 10000 else max(40, opts.commits // 2)
        trees: list[tuple[str, str | None]] = [("ours", None)] + ([("base", opts.baseline)] if opts.baseline else [])
        runs: dict[str, dict[str, Any]] = {}
        for _ in range(2 if opts.baseline else 1):  # ours, base, ours, base: load hits both alike
            for name, tree in trees:
                r = run_size(n, commits // (2 if opts.baseline else 1), opts.blocks, opts.log_level, tree)
                for k, v in r.items():
                    if isinstance(v, list):
                        runs.setdefault(name, {}).setdefault(k, []).extend(v)
        for name, r in runs.items():
            f50, f99 = pct(r["floor"], 50), pct(r["floor"], 99)
            a50, a99 = pct(r["agent"], 50), pct(r["agent"], 99)
            ratio = a50 / f50
            if name == "ours":
                ok &= ratio <= 1.5 and (n > 100 or a50 < 10)
            vs = f" {a50 / pct(runs['base']['agent'], 50):>9.2f}x" if opts.baseline and name == "ours" else ""
            label = f"{n}" if name == "ours" else f"{n} base"
            print(f"{label:>8} {f50:>10.2f} {f99:>10.2f} {a50:>10.2f} {a99:>10.2f} {ratio:>9.2f}x {a50 - f50:>15.2f} "
                  f"{pct(r['plan'], 50):>9.3f} {pct(r['apply'], 50):>10.3f} {pct(r['cb_change'], 50):>10.3f} "
                  f"{pct(r['cb_done'], 50):>8.3f} {statistics.median(r['startup_ms']):>8.0f}ms{vs}")
    print("targets (p50 <= 1.5x floor at every size, < 10 ms at 100):", "met" if ok else "NOT met")
    return 0


if __name__ == "__main__":
    sys.exit(main())

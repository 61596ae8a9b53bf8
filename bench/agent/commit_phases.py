#!/usr/bin/env python3
"""Where a one-leaf commit's time goes when singbox-agent is subscribed, against a subscriber that does nothing
(what netopeer2 is given in bench/netconf/bench_vs_netopeer2.py), each in its own process as in the product.

    scripts/in-env python bench/agent/commit_phases.py [--entries 100] [--commits 200] [--rounds 4]
        [--baseline TREE]

A private sysrepo instance holds `--entries` endpoints; this process commits one endpoint's port (a real change
every time, 2 ms apart) with `apply_changes`, while the subscriber child runs: `noop` (an unsafe module-change
subscription returning at once), `agent` (singbox-agent, in-memory dataplane, logging at info like the product) and,
with `--baseline`, `base` (the agent of another checkout: its `agent/` first on PYTHONPATH). Variants alternate
round by round, so the machine's load hits them alike. The children stamp CLOCK_MONOTONIC at the entry and exit of
their change and done callbacks, which splits each commit into:

- to change: apply_changes called until the callback runs (the writer's work, the subscriber's wake-up, its GIL);
- change, done: the callbacks themselves (the agent: read the diff, plan, apply to the dataplane);
- between: the change callback's return until the done callback (the writer stores the data, then the wake-up);
- after done: the done callback's return until apply_changes returns.

Also printed, per commit: the subscriber process's CPU and its threads' voluntary context switches (wake-ups).
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
PHASES = ("to change", "change", "between", "done", "after done", "total")


def _threads() -> tuple[float, int]:
    """This process's CPU seconds and its threads' voluntary context switches."""
    switches = 0
    for tid in os.listdir("/proc/self/task"):
        try:
            for line in Path(f"/proc/self/task/{tid}/status").read_text().splitlines():
                if line.startswith("voluntary_ctxt_switches"):
                    switches += int(line.split()[1])
        except OSError:
            pass  # a thread that ended
    return time.process_time(), switches


def subscriber(kind: str) -> None:
    """The child: subscribes, says "ready", stamps callbacks until stdin closes, prints its record as JSON."""
    import sysrepo

    stamps: list[tuple[str, int]] = []
    agent: Any = None
    if kind == "noop":
        conn = sysrepo.SysrepoConnection()
        sess = conn.start_session("running")

        def nothing(_sess: Any, event: str, _req_id: int, _priv: Any) -> None:
            stamps.append((event, time.monotonic_ns()))
            stamps.append((event + " end", time.monotonic_ns()))

        sess.subscribe_module_change_unsafe("vpp-singbox", TOP, nothing)
    else:
        import logging

        from singbox_agent.agent.daemon import Agent
        from singbox_agent.dataplane.memory import MemoryDataplane
        from singbox_agent.logs import configure_logging

        configure_logging(logging.INFO, json_output=True)
        agent = Agent(MemoryDataplane())
        inner = agent._on_change  # noqa: SLF001 - the callback sysrepo calls, stamped

        def stamped(ev_sess: Any, event: str, req_id: int, priv: Any) -> None:
            stamps.append((event, time.monotonic_ns()))
            try:
                inner(ev_sess, event, req_id, priv)
            finally:
                stamps.append((event + " end", time.monotonic_ns()))

        agent._on_change = stamped  # noqa: SLF001
        agent.start()
        agent.wait_idle(120)
    before = _threads()
    print("ready", file=sys.stderr, flush=True)
    sys.stdin.read()
    after = _threads()
    if agent is not None:
        agent.stop()
    else:
        sess.stop()
        conn.disconnect()
    print(json.dumps({"stamps": stamps, "cpu_s": after[0] - before[0], "switches": after[1] - before[1]}))


def start(kind: str, baseline: str | None) -> subprocess.Popen[str]:
    env = dict(os.environ)
    if kind == "base" and baseline:
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(Path(baseline) / "agent"), env.get("PYTHONPATH", "")) if p)
    proc = subprocess.Popen([sys.executable, __file__, "--subscriber", kind], env=env, stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stderr is not None
    for line in proc.stderr:  # the agent's log lines go to stdout; stderr says ready
        if line.strip() == "ready":
            return proc
    raise RuntimeError(f"{kind} subscriber did not start: {proc.wait()}")


def commits(sess: Any, count: int, serial: list[int]) -> list[tuple[int, int]]:
    spans = []
    for _ in range(count):
        serial[0] += 1
        sess.set_item(f"{TOP}/client/endpoint[name='e00000']/port", 2000 + serial[0] % 2)
        t0 = time.monotonic_ns()
        sess.apply_changes()
        spans.append((t0, time.monotonic_ns()))
        time.sleep(0.002)
    return spans


def phases(spans: list[tuple[int, int]], stamps: list[tuple[str, int]]) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {name: [] for name in PHASES}
    i = 0
    for t0, t1 in spans:
        seen: dict[str, int] = {}
        while i < len(stamps) and stamps[i][1] <= t1:
            if stamps[i][1] >= t0:
                seen.setdefault(stamps[i][0], stamps[i][1])
            i += 1
        marks = [t0] + [seen.get(k, -1) for k in ("change", "change end", "done", "done end")] + [t1]
        if -1 in marks:
            continue  # a commit whose events the child did not stamp (none expected)
        for name, a, b in zip(PHASES, marks, marks[1:]):
            out[name].append((b - a) / 1e6)
        out["total"].append((t1 - t0) / 1e6)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--entries", type=int, default=100)
    ap.add_argument("--commits", type=int, default=200, help="per variant and round")
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--baseline", help="another checkout whose agent runs as variant 'base'")
    ap.add_argument("--subscriber", help=argparse.SUPPRESS)
    opts = ap.parse_args()
    if opts.subscriber:
        subscriber(opts.subscriber)
        return 0

    sys.path.insert(0, str(ROOT / "tests"))
    from conftest import new_sysrepo_instance

    instance = new_sysrepo_instance()
    os.environ.update(instance.env)
    import sysrepo

    kinds = ["noop", "agent"] + (["base"] if opts.baseline else [])
    results: dict[str, dict[str, list[float]]] = {k: {name: [] for name in PHASES} for k in kinds}
    cost: dict[str, list[tuple[float, float]]] = {k: [] for k in kinds}
    load = [os.getloadavg()[0]]
    try:
        conn = sysrepo.SysrepoConnection()
        sess = conn.start_session("running")
        sess.replace_config({"singbox": {"client": {"endpoint": [
            {"name": f"e{i:05d}", "address": f"198.18.{i // 250}.{i % 250 + 1}"} for i in range(opts.entries)]}}},
            "vpp-singbox")
        serial = [0]
        for _ in range(opts.rounds):
            for kind in kinds:
                proc = start(kind, opts.baseline)
                commits(sess, 5, serial)  # warm-up
                spans = commits(sess, opts.commits, serial)
                out, _ = proc.communicate("")
                record = json.loads(out.strip().splitlines()[-1])
                for name, values in phases(spans, [tuple(s) for s in record["stamps"]]).items():
                    results[kind][name] += values
                cost[kind].append((record["cpu_s"] * 1e3 / (opts.commits + 5), record["switches"] / (opts.commits + 5)))
            load.append(os.getloadavg()[0])
        sess.stop()
        conn.disconnect()
    finally:
        instance.destroy()

    print(f"{opts.entries} endpoints, {opts.rounds} rounds x {opts.commits} one-leaf commits per variant; "
          f"load average {min(load):.1f}-{max(load):.1f}; p50 ms (mean)")
    print(f"{'variant':8}" + "".join(f"{name:>16}" for name in PHASES) + f"{'cpu ms/commit':>15}{'wake-ups':>10}")
    for kind in kinds:
        cells = "".join(f"{statistics.median(v):>8.3f} ({statistics.mean(v):5.2f})" if v else f"{'-':>16}"
                        for v in (results[kind][name] for name in PHASES))
        cpu = statistics.median(c for c, _ in cost[kind])
        wake = statistics.median(w for _, w in cost[kind])
        print(f"{kind:8}{cells}{cpu:>15.3f}{wake:>10.2f}")
    noop = statistics.median(results["noop"]["total"])
    for kind in kinds[1:]:
        print(f"{kind}/noop total p50: {statistics.median(results[kind]['total']) / noop:.2f}")
    if opts.baseline:
        ratio = statistics.median(results["agent"]["total"]) / statistics.median(results["base"]["total"])
        print(f"agent/base total p50: {ratio:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Server CPU per one-leaf edit-config, this checkout's NETCONF server against another checkout's, interleaved.

    scripts/in-env python bench/netconf/edit_cpu.py --baseline TREE [--list nacm] [--entries 100] [--rounds 6]
        [--per-round 150] [--restconf]

Wall times of small edits move by more than a 0.1 ms change on the shared 2-core machine; the CPU a server spends
per edit (all its threads, /proc utime + stime, clock ticks) moves less. Both servers as bench_vs_netopeer2.py starts
them (each on its own sysrepo instance, the agent subscribed for `endpoints`), the list filled with `--entries`,
then rounds of `--per-round` one-leaf edits per server, the order swapped every round. `--restconf` also runs each
checkout's RESTCONF server on its instance (as the appliance does): its subscriptions then count in the NETCONF
edit's wall time (not in the CPU column, which is the NETCONF server's). TREE: a directory holding the other
checkout's `agent/` (e.g. `git archive REV agent | tar -x -C .scratch-base`, then /src/.scratch-base).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_vs_netopeer2 as b  # noqa: E402


def cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def start_restconf(inst: Any, tree: Path | None, state: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, **inst.env}
    if tree is not None:
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(tree / "agent"), env.get("PYTHONPATH", "")) if p)
    state.mkdir()
    ready = state / "ready.json"
    with open(state / "restconf.log", "wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "singbox_agent.restconf", "--listen", "127.0.0.1:0",
                                 "--state-dir", str(state), "--ready-file", str(ready)], env=env, stdout=log,
                                stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while not ready.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError("restconf did not start:\n" + (state / "restconf.log").read_text())
        time.sleep(0.05)
    return proc


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--baseline", required=True, help="a directory holding the other checkout's agent/")
    ap.add_argument("--list", default="nacm", choices=sorted(b.LISTS))
    ap.add_argument("--entries", type=int, default=100)
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("--per-round", type=int, default=150)
    ap.add_argument("--restconf", action="store_true", help="each checkout's RESTCONF server runs on its instance")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="edit-cpu-"))
    base = Path(args.baseline)
    instances: list[Any] = []
    new_instance = b.new_sysrepo_instance

    def remembered() -> Any:
        instances.append(new_instance())
        return instances[-1]

    b.new_sysrepo_instance = remembered  # start_ours makes the instance; RESTCONF joins it
    agent = args.list == "endpoints"
    servers = [b.start_ours(work, subscriber=agent), b.start_ours(work, subscriber=agent, name="baseline", tree=base)]
    restconf: list[subprocess.Popen[bytes]] = []
    try:
        if args.restconf:
            restconf = [start_restconf(instances[0], None, work / "ours-rc"),
                        start_restconf(instances[1], base, work / "baseline-rc")]
        blist = b.LISTS[args.list]
        for s in servers:
            b.edit(s.mgr, blist.entries(args.entries))
        time.sleep(1.1)
        cpu: dict[str, list[float]] = {s.name: [] for s in servers}
        wall: dict[str, list[float]] = {s.name: [] for s in servers}
        k = 0
        for r in range(args.rounds):
            for s in servers if r % 2 == 0 else servers[::-1]:
                c0 = cpu_s(s.pid)
                for _ in range(args.per_round):
                    wall[s.name].append(b.timed(lambda: b.edit(s.mgr, blist.one_leaf(k))))
                    k += 1
                cpu[s.name].append((cpu_s(s.pid) - c0) * 1000 / args.per_round)
        print(f"load average {os.getloadavg()[0]:.1f}; {args.list}, {args.entries} entries, {args.rounds} rounds of "
              f"{args.per_round} edits{', RESTCONF running' if args.restconf else ''}")
        for s in servers:
            print(f"{s.name:8s} server CPU per edit {statistics.median(cpu[s.name]):.3f} ms (rounds: "
                  f"{', '.join(f'{x:.2f}' for x in cpu[s.name])}), edit wall p50 {statistics.median(wall[s.name]):.2f} ms")
        ratio = statistics.median(cpu["ours"]) / statistics.median(cpu["baseline"])
        print(f"ours/baseline: CPU {ratio:.2f}, wall p50 "
              f"{statistics.median(wall['ours']) / statistics.median(wall['baseline']):.2f}")
    finally:
        for proc in restconf:
            proc.terminate()
            proc.wait(timeout=30)
        for s in servers:
            s.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())

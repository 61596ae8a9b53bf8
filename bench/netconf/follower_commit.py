#!/usr/bin/env python3
"""What a settings follower costs each commit of its module: change + done events against done only (issue 17).

    scripts/in-env python bench/netconf/follower_commit.py [--commits 300] [--rounds 8] [--process same|other]

A private sysrepo instance; commits of one leaf of the NETCONF server's login-back-off settings (a module only its
followers subscribe to), timed around `apply_changes` in this process, with the follower subscribed
- `none`: no subscriber (sysrepo's floor);
- `change+done`: as FollowedSettings was (sysrepo-python's passive subscription: change and done events, a
  `Change` object per changed node);
- `done`: as it was after 21c4d17 (change_notice's passive done-only subscription);
- `stamps`: as it is now (change_notice.RunningStamps: no subscription). After each commit returned the follower
  looks (`generation()`; in the child: asked through a pipe, outside the timed call) and the commits it did not see
  moved are counted as `missed` (sysrepo renames the module's file before apply_changes returns: always 0), with
  the look's own cost (`look p50`, µs, this process only).
The follower runs in this process (`--process same`: the NETCONF and RESTCONF servers' case) or in a child
(`other`). Variants take turns round by round; p50 and mean of each, in ms.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

TOP = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(TOP))

MODULE = "vpp-singbox-netconf-server"
XPATH = f"/{MODULE}:netconf-server/login-backoff"


def follow(sess: Any, variant: str) -> Any:
    from singbox_agent.mgmt import change_notice

    if variant == "stamps":
        stamps = change_notice.RunningStamps([MODULE])
        assert not stamps.unwatched
        return stamps
    if variant == "change+done":
        def changed(event: str, req_id: int, changes: Any, private_data: Any) -> None:
            return None

        sess.subscribe_module_change(MODULE, XPATH, changed, passive=True)
    elif variant == "done":
        change_notice.subscribe(sess, MODULE, XPATH, lambda event, ev_sess: None, done_only=True)
    return None


def child(variant: str) -> int:
    import sysrepo

    with sysrepo.SysrepoConnection() as conn:
        sess = conn.start_session("running")
        stamps = follow(sess, variant)
        last = stamps.generation() if stamps is not None else 0  # before "ready": the first commit comes then
        print("ready", flush=True)
        for _line in sys.stdin:  # one line after each commit: did it move?
            now = stamps.generation() if stamps is not None else last + 1
            print(int(now != last), flush=True)
            last = now
        sess.stop()
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--commits", type=int, default=300)
    ap.add_argument("--rounds", type=int, default=8)
    ap.add_argument("--process", choices=("same", "other"), default="same")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        return child(args.child)
    from tests.conftest import new_sysrepo_instance

    inst = new_sysrepo_instance()
    os.environ.update(inst.env)
    import sysrepo

    variants = ["none", "change+done", "done", "stamps"]
    times: dict[str, list[float]] = {v: [] for v in variants}
    missed = 0
    looks: list[float] = []
    try:
        with sysrepo.SysrepoConnection() as conn:
            writer = conn.start_session("running")
            value = 0
            for r in range(args.rounds):
                for variant in variants[r % 4:] + variants[:r % 4]:
                    proc = None
                    stamps = None
                    sub = conn.start_session("running")
                    if args.process == "same":
                        stamps = follow(sub, variant)
                    else:
                        proc = subprocess.Popen([sys.executable, __file__, "--child", variant], stdin=subprocess.PIPE,
                                                stdout=subprocess.PIPE, text=True)
                        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
                    for _ in range(args.commits):
                        value = value % 50 + 1
                        writer.set_item(f"{XPATH}/free-failures", str(value))
                        t0 = time.perf_counter()
                        writer.apply_changes()
                        times[variant].append((time.perf_counter() - t0) * 1000)
                        if stamps is not None:
                            last = stamps._generation
                            t1 = time.perf_counter()
                            missed += stamps.generation() == last
                            looks.append((time.perf_counter() - t1) * 1e6)
                        elif proc is not None and variant == "stamps":
                            assert proc.stdin is not None and proc.stdout is not None
                            proc.stdin.write("?\n")
                            proc.stdin.flush()
                            missed += proc.stdout.readline().strip() != "1"
                    if stamps is not None:
                        stamps.close()
                    sub.stop()
                    if proc is not None:
                        assert proc.stdin is not None
                        proc.stdin.close()
                        proc.wait(30)
            writer.stop()
    finally:
        inst.destroy()
    print(f"load average {os.getloadavg()[0]:.1f}; {args.rounds} rounds of {args.commits} commits; follower in the "
          f"{args.process} process; apply_changes in ms")
    print("| follower | p50 | mean |\n|---|---:|---:|")
    for v in variants:
        print(f"| {v} | {statistics.median(times[v]):.3f} | {statistics.fmean(times[v]):.3f} |")
    print(f"stamps: commits not seen by the look right after apply_changes returned: {missed}"
          + (f"; look p50 {statistics.median(looks):.1f} µs" if looks else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())

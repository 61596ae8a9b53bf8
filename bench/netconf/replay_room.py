"""The edits right after a large one: what making room for their config-change costs them
(`mgmt.datastore.wait_for_replay_room`), with the code under test and with another checkout's agent
(`--old-agent DIR`, e.g. a `git archive` of the commit before), in alternating turns on one sysrepo instance.

    scripts/in-env python bench/netconf/replay_room.py --old-agent /src/.scratch-x/agent [--entries 10000]

Each round replaces ietf-truststore's public-key bags with `--entries` new ones in one edit-config (its
config-change, every bag deleted and created, is several MB: it starts and fills its second's replay file), then makes two
one-bag edits right after it. Before, the first of them waited for the next second (sysrepo would refuse its
config-change in the full file of this second); the client's wall time of each is printed, p50 and max per agent,
with the ratio. ncclient's 0.1 s poll tick is patched to 1 ms.

2026-12-07 22:23, old = 7afab00 (before the renaming of the full file), `--rounds 5 --turns 2`, load 9-18:

| | old p50 | new p50 | ratio | old max | new max |
|---|---:|---:|---:|---:|---:|
| load (s) | 0.664 | 0.74 | 1.11x | 0.868 | 1.24 |
| 2nd edit (ms) | 381 | 38.7 | 0.10x | 691 | 275 |
| 3rd edit (ms) | 982 | 20.6 | 0.02x | 1010 | 43.7 |

The old 3rd edit waited a whole second: the 2nd one's config-change, stored in the next second, started a file
there (the newest was full), and the 3rd found that file started in its own second. The new max of the 2nd edit is a
round whose load ended past .8 s of its second (`datastore.RETIRE_BEFORE_S`: waited for the next one).
"""

from __future__ import annotations

import argparse
import os
import secrets
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

TOP = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(TOP / "agent"))
sys.path.insert(0, str(TOP))

import ncclient.transport.session  # noqa: E402
from ncclient import manager  # noqa: E402

from singbox_agent.repository import (  # noqa: E402
    SysrepoInstance,
    project_yang_dirs,
    project_yang_files,
    sysrepo_modules,
)
from tests.netconf.conftest import ADMIN, ADMIN_PASSWORD, bootstrap, start_server, stop_server  # noqa: E402

ncclient.transport.session.TICK = 0.001  # ncclient polls its send queue every TICK (0.1 s by default)
TS = "urn:ietf:params:xml:ns:yang:ietf-truststore"
NC = "urn:ietf:params:xml:ns:netconf:base:1.0"


def bags(prefix: str, n: int) -> str:
    entries = "".join(f"<public-key-bag><name>{prefix}{i:05d}</name></public-key-bag>" for i in range(n))
    return (f'<config xmlns="{NC}"><truststore xmlns="{TS}" xmlns:nc="{NC}"><public-key-bags nc:operation="replace">'
            f"{entries}</public-key-bags></truststore></config>")


def one_bag(name: str) -> str:
    return (f'<config xmlns="{NC}"><truststore xmlns="{TS}"><public-key-bags><public-key-bag><name>{name}</name>'
            "</public-key-bag></public-key-bags></truststore></config>")


def turn(env: dict[str, str], state: Path, tag: str, entries: int, rounds: int) -> list[tuple[float, float, float]]:
    """(load s, 2nd edit ms, 3rd edit ms) per round, for one server run."""
    info = start_server(env, state)
    out = []
    try:
        with manager.connect(host=info.host, port=info.port, username=ADMIN, password=ADMIN_PASSWORD,
                             hostkey_verify=False, look_for_keys=False, allow_agent=False, timeout=300) as m:
            for r in range(rounds):
                time.sleep(1.02 - time.time() % 1)  # the load starts early in a second: the edits after it meet
                t0 = time.perf_counter()         # its full replay file (a load ending past .8 s: the old way)
                m.edit_config(target="running", config=bags(f"{tag}{r}-", entries))
                t1 = time.perf_counter()
                m.edit_config(target="running", config=one_bag(f"{tag}{r}-a"))
                t2 = time.perf_counter()
                m.edit_config(target="running", config=one_bag(f"{tag}{r}-b"))
                t3 = time.perf_counter()
                out.append((t1 - t0, (t2 - t1) * 1000, (t3 - t2) * 1000))
    finally:
        stop_server(info)
    return out


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--old-agent", required=True, help="an agent/ directory to compare with (PYTHONPATH)")
    parser.add_argument("--entries", type=int, default=10000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--turns", type=int, default=2)
    args = parser.parse_args()

    repo = Path(tempfile.mkdtemp(prefix="srrr", dir="/tmp"))
    instance = SysrepoInstance(repository=repo, shm_prefix="sbr" + secrets.token_hex(4))
    instance.install_modules(project_yang_files(TOP), project_yang_dirs(TOP), with_features=sysrepo_modules())
    instance.activate()
    env = {**os.environ, **instance.env}
    agents = {"old": {**env, "PYTHONPATH": args.old_agent}, "new": env}
    state = Path(tempfile.mkdtemp(prefix="rrbench"))
    bootstrap(env, state)
    runs: dict[str, list[tuple[float, float, float]]] = {"old": [], "new": []}
    try:
        for t in range(args.turns):
            for name, agent_env in agents.items():
                runs[name] += turn(agent_env, state, f"{name}{t}-", args.entries, args.rounds)
    finally:
        instance.destroy()
    print(f"{args.entries} bags replaced per round, {len(runs['new'])} rounds per agent, load average "
          f"{os.getloadavg()[0]:.1f}")
    print("| | old p50 | new p50 | ratio | old max | new max |")
    print("|---|---:|---:|---:|---:|---:|")
    for i, label in ((0, "load (s)"), (1, "2nd edit (ms)"), (2, "3rd edit (ms)")):
        old = [r[i] for r in runs["old"]]
        new = [r[i] for r in runs["new"]]
        print(f"| {label} | {statistics.median(old):.3g} | {statistics.median(new):.3g} | "
              f"{statistics.median(new) / statistics.median(old):.2f}x | {max(old):.3g} | {max(new):.3g} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())

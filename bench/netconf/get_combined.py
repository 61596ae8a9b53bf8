"""What <get>'s merge of running (mgmt/combined.py) costs the NETCONF server: its CPU time per <get> and the
client's p50, with the code under test and with another checkout's agent (`--old-agent DIR`, e.g. a `git archive`
of the commit before), in alternating turns on one sysrepo instance.

    scripts/in-env python bench/netconf/get_combined.py --old-agent /src/.scratch-x/agent [--sizes 100,1000,10000]

vpp-singbox holds n endpoints with a change subscriber in this process (the agent's part: its configuration is in
operational too, so the merge has everything twice — the worst case); ietf-truststore holds n public-key bags and
ietf-system a hostname, with no subscriber (operational lacks their configuration: the merge adds all of it).

2026-12-07, loaded 2-core box (load ~10), `--sizes 100,10000 --iterations 10 --turns 2`, old = ad2fa58~:

| n | query | server CPU ms/get, old | new | ratio | p50 ms, old | new | ratio |
|---|---|---|---|---|---|---|---|
| 100 | whole <get> | 12.5 | 14.5 | 1.16x | 113.8 | 116.1 | 1.02x |
| 100 | <get> vpp-singbox | 2.0 | 3.0 | 1.50x | 103.4 | 104.1 | 1.01x |
| 100 | <get> hostname | 1.5 | 1.5 | 1.00x | 102.0 | 102.3 | 1.00x |
| 10000 | whole <get> | 126 | 240 | 1.90x | 240 | 343 | 1.43x |
| 10000 | <get> vpp-singbox | 100 | 179 | 1.79x | 213 | 278 | 1.31x |
| 10000 | <get> hostname | 2.0 | 1.0 | - | 102.3 | 102.6 | 1.00x |

(CPU from /proc in 10 ms ticks; the ~100 ms p50 floor is the client's.) A selection the agent's module fills is
read twice and merged node by node: ~1.8x the server's CPU at 10,000 entries; a small selection costs nothing more.

2026-12-07 22:20, the merge spending running's selection (combined.Running, LYD_MERGE_DESTRUCT) against d3c58d1~
(old), `--sizes 10000 --iterations 12 --turns 2`, load 12-18 (p50s meaningless at that load; CPU is the number):

| n | query | server CPU ms/get, old | new | ratio |
|---|---|---|---|---|
| 10000 | whole <get> | 278 | 239 | 0.86x |
| 10000 | <get> vpp-singbox (subscribed: merged node by node, as before) | 180 | 185 | 1.03x |
| 10000 | <get> hostname | 1 | 1 | 1.00x |
| 10000 | <get> truststore (10,000 bags, no subscriber: moved, not copied) | 42 | 35 | 0.83x |

The same at 22:26, load ~5: whole <get> 287 -> 274 ms (0.95x), vpp-singbox 213 -> 192 (0.90x), hostname 2 -> 2,
truststore 46 -> 38 (0.83x); p50 0.93-1.02x.
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

from ncclient import manager  # noqa: E402

from singbox_agent.mgmt import datastore  # noqa: E402
from singbox_agent.repository import (  # noqa: E402
    SysrepoInstance,
    project_yang_dirs,
    project_yang_files,
    sysrepo_modules,
)
from tests.netconf.conftest import ADMIN, ADMIN_PASSWORD, bootstrap, start_server, stop_server  # noqa: E402

SBX = "urn:vpp-singbox:yang:vpp-singbox"
SYS = "urn:ietf:params:xml:ns:yang:ietf-system"
TS = "urn:ietf:params:xml:ns:yang:ietf-truststore"
NC = "urn:ietf:params:xml:ns:netconf:base:1.0"
TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def populate(conn: Any, n: int) -> None:
    sess = conn.start_session("running")
    entries = "".join(f"<endpoint><name>e{i:05d}</name><address>198.18.{i // 256 % 256}.{i % 256}</address>"
                      f"</endpoint>" for i in range(n))
    xml = (f'<singbox xmlns="{SBX}"><client>{entries}</client></singbox>')
    with sess.get_ly_ctx() as ctx:
        tree = ctx.parse_data_mem(xml, "xml", strict=True, no_state=True, parse_only=True)
        sess.replace_config_ly(tree, "vpp-singbox", timeout_ms=120_000)  # the subscriber, loaded box
    bags = "".join(f"<public-key-bag><name>b{i:05d}</name></public-key-bag>" for i in range(n))
    with sess.get_ly_ctx() as ctx:
        tree = ctx.parse_data_mem(f'<truststore xmlns="{TS}"><public-key-bags>{bags}</public-key-bags></truststore>',
                                  "xml", strict=True, no_state=True, parse_only=True)
        sess.replace_config_ly(tree, "ietf-truststore")
    sess.set_item("/ietf-system:system/hostname", "bench")
    datastore.apply_changes(sess)  # right after the large config-changes: room for its own first
    sess.stop()


def turn(env: dict[str, str], state: Path, queries: dict[str, Any], iterations: int) -> dict[str, tuple[float, float]]:
    """{query: (server CPU ms per <get>, client p50 ms)} for one server run."""
    info = start_server(env, state)
    out: dict[str, tuple[float, float]] = {}
    try:
        with manager.connect(host=info.host, port=info.port, username=ADMIN, password=ADMIN_PASSWORD,
                             hostkey_verify=False, look_for_keys=False, allow_agent=False, timeout=300) as m:
            for name, flt in queries.items():
                for _ in range(2):
                    m.get(filter=flt) if flt else m.get()
                before = cpu_seconds(info.process.pid)
                walls = []
                for _ in range(iterations):
                    t0 = time.perf_counter()
                    m.get(filter=flt) if flt else m.get()
                    walls.append(time.perf_counter() - t0)
                cpu = (cpu_seconds(info.process.pid) - before) / iterations
                out[name] = (cpu * 1000, statistics.median(walls) * 1000)
    finally:
        stop_server(info)
    return out


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--old-agent", required=True, help="an agent/ directory to compare with (PYTHONPATH)")
    parser.add_argument("--sizes", default="100,1000,10000")
    parser.add_argument("--iterations", type=int, default=20)
    parser.add_argument("--turns", type=int, default=2)
    args = parser.parse_args()

    repo = Path(tempfile.mkdtemp(prefix="srgc", dir="/tmp"))
    instance = SysrepoInstance(repository=repo, shm_prefix="sbg" + secrets.token_hex(4))
    instance.install_modules(project_yang_files(TOP), project_yang_dirs(TOP), with_features=sysrepo_modules())
    instance.activate()
    env = {**os.environ, **instance.env}
    old_env = {**env, "PYTHONPATH": args.old_agent}
    state = Path(tempfile.mkdtemp(prefix="gcbench"))
    bootstrap(env, state)
    queries: dict[str, Any] = {
        "whole <get>": None,
        "<get> vpp-singbox": ("subtree", f'<singbox xmlns="{SBX}"/>'),
        "<get> hostname": ("subtree", f'<system xmlns="{SYS}"><hostname/></system>'),
        "<get> truststore": ("subtree", f'<truststore xmlns="{TS}"/>'),
    }
    print("| n | query | server CPU ms/get, old | new | ratio | p50 ms, old | new | ratio |")
    print("|---|---|---|---|---|---|---|---|")
    try:
        compare(args, env, old_env, state, queries)
    finally:
        instance.destroy()
    return 0


def compare(args: argparse.Namespace, env: dict[str, str], old_env: dict[str, str], state: Path,
            queries: dict[str, Any]) -> None:
    import sysrepo

    with sysrepo.SysrepoConnection() as conn:
        agent = conn.start_session("running")
        agent.subscribe_module_change("vpp-singbox", None, lambda event, req_id, changes, private: None)
        for n in [int(s) for s in args.sizes.split(",")]:
            populate(conn, n)
            time.sleep(1.1)  # the populate's config-change fills the second's replay file
            iterations = args.iterations if n < 10000 else max(5, args.iterations // 4)
            runs: dict[str, list[dict[str, tuple[float, float]]]] = {"old": [], "new": []}
            for _ in range(args.turns):
                runs["old"].append(turn(old_env, state, queries, iterations))
                runs["new"].append(turn(env, state, queries, iterations))
            for q in queries:
                old_cpu = statistics.median(r[q][0] for r in runs["old"])
                new_cpu = statistics.median(r[q][0] for r in runs["new"])
                old_p50 = statistics.median(r[q][1] for r in runs["old"])
                new_p50 = statistics.median(r[q][1] for r in runs["new"])
                print(f"| {n} | {q} | {old_cpu:.2f} | {new_cpu:.2f} | {new_cpu / old_cpu:.2f}x | {old_p50:.2f} | "
                      f"{new_p50:.2f} | {new_p50 / old_p50:.2f}x |", flush=True)


if __name__ == "__main__":
    sys.exit(main())

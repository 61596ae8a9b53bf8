#!/usr/bin/env python3
"""VPP restart -> dataplane equal to the running config again: time from the new VPP's API socket appearing to the
agent reporting in sync, with N endpoints + N server users + N allowed prefixes configured, next to the floor measured
in the same run: connecting a fresh vpp-papi client and dumping the same objects (what any resync must at least do).

    VPP_PREFIX=/opt/vpp SINGBOX_PLUGIN_DIR=... scripts/in-env python bench/agent/vpp_resync.py [--sizes 100,1000]

Target: under 2 s. Needs VPP and the plugin (tests/vpp/vpptopo.py starts it); says what is missing otherwise.

Where the time goes is printed too: `connect` (socket up -> API client connected, message check done), and the
agent's resync `read` (dumps), `apply` (every add, pipelined). `--no-health-check` configures the endpoints without
health checks, to compare: the plugin spreads first probes over each endpoint's interval (a burst of 32/s, at most 64
starts per poll), so with health checks on a resync no longer waits behind thousands of TCP connects. `--sizes N`
configures N endpoints, N users and N allowed prefixes (3·N objects).
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
TOP = "/vpp-singbox:singbox"
HASH = "$6$saltsalt$1q7hOQNmD4hGCzJVaqKZ1J8b6T2a7LpyiS7wXqfjBmm5nU5aAhZ/pB2Xm5wcjFZ3Ue5XpGvRiMS2tf7h1XcQ4."


def child(n: int, rounds: int, users: bool, health_check: bool = True) -> dict[str, Any]:
    sys.path.insert(0, str(ROOT / "tests" / "vpp"))
    import sysrepo
    import vpptopo  # type: ignore[import-not-found]

    from singbox_agent.agent.__main__ import default_api_json
    from singbox_agent.agent.daemon import Agent
    from singbox_agent.dataplane.vpp import VppDataplane

    vpp = vpptopo.Vpp()
    out: dict[str, Any] = {"size": n, "resync": [], "floor": [], "connect": [], "read": [], "apply": []}
    conn = sysrepo.SysrepoConnection()
    sess = conn.start_session("running")
    sess.replace_config({"singbox": {
        "client": {"endpoint": [{"name": f"e{i}", "address": f"198.18.{i // 250}.{i % 250 + 1}",
                                 "health-check": {"enabled": health_check}} for i in range(n)]},
        "server": {"authentication": {"user": [{"username": f"u{i}", "password": HASH} for i in range(n if users else 0)]},
                   "allowed-client-prefix": [f"10.{i // 250}.{i % 250}.0/24" for i in range(n)]}}}, "vpp-singbox")
    dp = VppDataplane(str(vpp.api_sock), default_api_json())
    agent = Agent(dp)
    agent.start()

    def wait(cond: Any, timeout: float = 60) -> float:
        t0 = time.monotonic()
        while not cond():
            if time.monotonic() - t0 > timeout:
                raise RuntimeError(f"timeout; agent: {agent.status}")
            time.sleep(0.005)
        return time.monotonic() - t0

    wait(lambda: agent.status.in_sync and not agent.status.pending)
    try:
        for _ in range(rounds):
            vpp.proc.kill()
            vpp.proc.wait(10)
            # the agent must have seen VPP go (else its old in-sync would end the measurement at once)
            wait(lambda: not dp.connected and not agent.status.connected and not agent.status.in_sync)
            vpp.proc = subprocess.Popen([str(vpp.prefix / "bin" / "vpp"), "-c", str(vpp.dir / "startup.conf")],
                                        stdout=open(vpp.dir / "stdout2", "w"), stderr=subprocess.STDOUT,
                                        env=vpp.env, start_new_session=True)
            wait(lambda: vpp.api_sock.exists(), 30)
            t0 = time.monotonic()
            out["connect"].append(wait(lambda: dp.connected))
            wait(lambda: dp.connected and agent.status.in_sync and not agent.status.pending)
            out["resync"].append(time.monotonic() - t0)
            out["read"].append(agent.last_resync_timing[0] / 1e3)
            out["apply"].append(agent.last_resync_timing[2] / 1e3)
            # floor: a fresh client connects and dumps the same objects
            probe = VppDataplane(str(vpp.api_sock), default_api_json(), client_name="floor")
            t0 = time.monotonic()
            try:
                probe._connect()  # noqa: SLF001
                probe.read_config()
                out["floor"].append(time.monotonic() - t0)
            finally:
                probe._close()  # noqa: SLF001
        # the agent restarts against a VPP that is already right: only what the dumps cannot show is re-sent
        agent.stop()
        agent = Agent(VppDataplane(str(vpp.api_sock), default_api_json()))
        t0 = time.monotonic()
        agent.start()
        wait(lambda: agent.status.in_sync and not agent.status.pending)
        out["agent_restart"] = time.monotonic() - t0
        out["agent_restart_read"] = agent.last_resync_timing[0] / 1e3
    finally:
        agent.stop()
        sess.stop()
        conn.disconnect()
        vpp.close()
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="100,1000")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--no-users", action="store_true", help="leave server users out")
    ap.add_argument("--no-health-check", action="store_true", help="endpoints without health checks")
    ap.add_argument("--child", type=int)
    opts = ap.parse_args()
    if opts.child:
        import faulthandler
        import logging

        faulthandler.dump_traceback_later(float(os.environ.get("BENCH_STALL_S", "300")), exit=True)

        from singbox_agent.logs import configure_logging

        configure_logging(logging.WARNING, json_output=True)
        print(json.dumps(child(opts.child, opts.rounds, not opts.no_users, not opts.no_health_check)))
        return 0
    sys.path.insert(0, str(ROOT / "tests" / "vpp"))
    import vpptopo

    try:
        vpptopo.find_vpp()
    except vpptopo.VppNotFound as exc:
        print(f"skipped: {exc}")
        return 0
    sys.path.insert(0, str(ROOT))
    from tests.conftest import new_sysrepo_instance

    print("VPP restart -> in sync again (s); floor = fresh client connect + dump of the same objects (s)")
    print(f"{'objects':>8} {'resync p50':>11} {'max':>7} {'floor p50':>10} {'ratio':>7} {'connect':>8} {'read':>6} "
          f"{'apply':>6}  target < 2 s;  agent restart -> in sync (dump)"
          + ("  (endpoints without health checks)" if opts.no_health_check else ""))
    for n in (int(x) for x in opts.sizes.split(",")):
        inst = new_sysrepo_instance()
        try:
            p = subprocess.run([sys.executable, __file__, "--child", str(n), "--rounds", str(opts.rounds)]
                               + (["--no-users"] if opts.no_users else [])
                               + (["--no-health-check"] if opts.no_health_check else []),
                               env={**os.environ, **inst.env}, capture_output=True, text=True, timeout=600)
            if p.returncode:
                errors = [ln for ln in p.stderr.splitlines() if "Error" in ln and not ln.startswith(" ")]
                print(f"{(2 if opts.no_users else 3) * n:>8} failed: {errors[-1] if errors else p.stderr[-2000:]}")
                continue
            r = json.loads(p.stdout.strip().splitlines()[-1])
        finally:
            inst.destroy()
        rs, fl = sorted(r["resync"]), sorted(r["floor"])
        med, fmed = rs[len(rs) // 2], fl[len(fl) // 2]
        phases = [statistics.median(r[k]) for k in ("connect", "read", "apply")]
        print(f"{(2 if opts.no_users else 3) * n:>8} {med:>11.3f} {rs[-1]:>7.3f} {fmed:>10.3f} {med / fmed:>6.1f}x "
              f"{phases[0]:>8.3f} {phases[1]:>6.3f} {phases[2]:>6.3f}  {'met' if rs[-1] < 2 else 'NOT met':<7}  "
              f"{r['agent_restart']:.3f} s ({r['agent_restart_read']:.3f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())

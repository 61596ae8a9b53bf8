"""`python -m singbox_agent.agent --state-dir DIR [--ready-file FILE] --vpp-api-socket PATH|none`.

Ready (the ready file written, systemd told READY=1 under `Type=notify`) once its sysrepo subscriptions are in place
and a reachable VPP was given a moment to sync; an absent VPP does not hold readiness (config is stored pending).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading
import time
from pathlib import Path
from types import FrameType

import structlog

from singbox_agent.agent import oper_poll, resolve
from singbox_agent.agent.daemon import Agent
from singbox_agent.dataplane.base import Dataplane
from singbox_agent.logs import configure_logging
from singbox_agent.mgmt import shm_guard, systemd

log = structlog.get_logger("agent")

READY_WAIT_S = 3.0


def make_dataplane(socket: str | None, api_json: list[Path], stats_socket: str | None = None) -> Dataplane:
    from singbox_agent.dataplane.vpp import VppDataplane

    return VppDataplane(socket, api_json, stats_socket=stats_socket)


def default_api_json() -> list[Path]:
    """The plugin's singbox.api.json (SINGBOX_API_JSON) and VPP's API files ($VPP_PREFIX/share/vpp/api, where an
    installed plugin also puts its file). Without the plugin's file the client loads the definitions from VPP."""
    files: list[Path] = []
    plugin = os.environ.get("SINGBOX_API_JSON")
    if plugin:
        files.append(Path(plugin))
    for prefix in (os.environ.get("VPP_PREFIX"), "/usr"):
        if prefix:
            api_dir = Path(prefix) / "share" / "vpp" / "api"
            if api_dir.is_dir():
                files += sorted(api_dir.glob("**/*.api.json"))
                break
    return files


def dataplane_status(agent: Agent, socket: str | None) -> str:
    """The agent's line in `systemctl status`: VPP connected or not, and whether committed config waits for it."""
    if agent.dataplane.connected:
        waiting = not agent.status.in_sync or agent.status.pending
        return f"VPP at {socket}" + (": config not all applied yet, retrying" if waiting else "")
    return f"VPP absent ({socket or 'none configured'}): config stored pending"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--state-dir", type=Path, required=True)
    parser.add_argument("--ready-file", type=Path, help="JSON file written once ready (make run's supervisor)")
    parser.add_argument("--vpp-api-socket", default="none", help="VPP's API socket, or 'none' (dataplane absent)")
    parser.add_argument("--api-json", type=Path, action="append", default=None,
                        help="API definition files (default: $SINGBOX_API_JSON and $VPP_PREFIX/share/vpp/api)")
    parser.add_argument("--vpp-stats-socket", default=None,
                        help="VPP's stats segment socket (default: stats.sock next to the API socket)")
    parser.add_argument("--resolve-timeout", type=float, default=resolve.TIMEOUT_S, metavar="S",
                        help="an endpoint host name without an answer after S seconds counts as unresolvable "
                             f"(default {resolve.TIMEOUT_S:g}); no commit ever waits for a lookup")
    parser.add_argument("--resolve-refresh", type=float, default=resolve.REFRESH_S, metavar="S",
                        help=f"look endpoint host names up again every S seconds (default {resolve.REFRESH_S:g})")
    parser.add_argument("--oper-poll-ms", type=int, default=oper_poll.PERIOD_MS, metavar="MS",
                        help="on-change YANG-Push of counters: compare /singbox client, server and dataplane state "
                             f"every MS ms, 0: never (default {oper_poll.PERIOD_MS})")
    parser.add_argument("--sessions-poll-ms", type=int, default=oper_poll.SESSIONS_PERIOD_MS, metavar="MS",
                        help="on-change YANG-Push of the sessions list: compare each session's state every MS ms "
                             "(sessions starting, ending, changing state; agent/README.md), 0: never "
                             f"(default {oper_poll.SESSIONS_PERIOD_MS})")
    parser.add_argument("--debug", action="store_true")
    opts = parser.parse_args(argv)
    configure_logging(logging.DEBUG if opts.debug else logging.INFO)
    shm_guard.start()  # sysrepo's subscription SHM of ours not other-readable (mgmt/shm_guard.py)

    socket = None if opts.vpp_api_socket == "none" else opts.vpp_api_socket
    # WATCHDOG=1 from the worker's loop, which handles every commit's follow-up, resync and dataplane event: a
    # worker wedged for longer than the unit's WatchdogSec= has systemd kill and restart the agent
    agent = Agent(make_dataplane(socket, opts.api_json or default_api_json(), opts.vpp_stats_socket),
                  resolver=resolve.Resolver(timeout_s=opts.resolve_timeout, refresh_s=opts.resolve_refresh),
                  oper_poll_ms=opts.oper_poll_ms, sessions_poll_ms=opts.sessions_poll_ms,
                  heartbeat=systemd.Heartbeat().beat)
    stop = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        log.info("stopping", signal=signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    agent.start()
    if socket is not None:
        # Give a reachable VPP a moment, so commits right after "ready" go straight to the dataplane; an absent
        # VPP does not delay readiness beyond this (commits are then stored as pending).
        deadline = time.monotonic() + READY_WAIT_S
        while not agent.status.in_sync and time.monotonic() < deadline and not stop.is_set():
            time.sleep(0.02)
    opts.state_dir.mkdir(parents=True, exist_ok=True)
    connected = agent.dataplane.connected
    if opts.ready_file:
        tmp = opts.ready_file.with_suffix(".tmp")
        tmp.write_text(json.dumps({"service": "agent", "pid": os.getpid(), "vpp_api_socket": socket,
                                   "dataplane_connected": connected}) + "\n")
        tmp.replace(opts.ready_file)
    log.info("agent ready", dataplane_connected=connected, vpp_api_socket=socket)
    status = systemd.StatusLine()
    status.update(dataplane_status(agent, socket), ready=True)
    while not stop.wait(1.0):
        status.update(dataplane_status(agent, socket))  # `systemctl status` follows VPP coming and going
    systemd.notify_stopping()
    agent.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())

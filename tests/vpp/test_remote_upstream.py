# SPDX-License-Identifier: Apache-2.0
# Copyright (c) 2026 vpp-singbox authors
"""An upstream leg on another thread than its session record (plugin/API.md, "Threads"): the leg
keeps a side context on its own thread and talks to the record by message, and crosses onto the
client's fifos when the record's thread asks. That path needs the SYN-ACK to come in on another
worker than the client's SYN, which 2 workers on this 2-core machine rarely survive (tests/vpp
README); VPP started with SINGBOX_TEST_REMOTE_UPSTREAM=1 sends every upstream leg that way, on any
thread, so it runs with 0 and 1 worker here. Server mode (direct and chained through client mode)
and client mode through sing-box, each with its usual tests, imported, against this VPP."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator

import pytest

from .conftest import ECHO_PORT, WORKER_COUNTS, Env, running_env
from vpptopo import ORIGIN_IP4, VPP_CLIENT_IP4

# server mode, direct: the reply written on the record's thread into the client's fifo, the leg
# crossing on its own thread; relaying both ways, half-closes, bulk, the destination closing first
from .test_vpp_server import (  # noqa: F401
    test_curl_bulk_download_and_upload,
    test_destination_close_not_held_by_the_clients_delayed_ack,
    test_half_close_no_data_loss,
    test_ncat_echo,
    test_pipelined_handshake,
    test_reply_after_connect_with_bnd,
    test_sessions_closed_by_the_destination_free_their_slot,
    test_session_dump_and_disconnect,
    test_thousand_concurrent_sessions,
)
# client mode: the SOCKS5 handshake written and its replies read on the record's thread on the
# leg's own fifos, pooled connections, the proxy refusing, failing, closing
from .test_vpp_client import (  # noqa: F401
    test_connection_pooling,
    test_original_destination_in_sing_box_log_and_half_close,
    test_sing_box_stopped_mid_flow_and_restarted,
    test_tcp_relayed_through_sing_box,
    test_upstream_replies_longer_than_one_peek,
    test_wrong_credentials_reset_and_counted,
    upstream,
)

HERE = Path(__file__).parent
N_SESSIONS = 8


@pytest.fixture(scope="module", params=WORKER_COUNTS, ids=[f"workers{w}" for w in WORKER_COUNTS])
def vpp_env(request: pytest.FixtureRequest) -> Iterator[Env]:
    """conftest's vpp_env, with every upstream leg on the other-thread path."""
    yield from running_env(request.param, {"SINGBOX_TEST_REMOTE_UPSTREAM": "1"})


def _remote_legs(env: Env) -> int:
    m = re.search(r"Upstream legs of other threads' records: (\d+)", env.cli("show singbox server"))
    assert m, env.cli("show singbox server")
    return int(m.group(1))


def test_upstream_legs_take_the_other_thread_path(env: Env) -> None:
    """While sessions relay, each has its leg context (so the imported tests above ran that
    path, not the local one); once they end, none is left, nor a record."""
    env.start()
    procs = [subprocess.Popen(
        ["ip", "netns", "exec", env.t.ns_client, sys.executable, str(HERE / "socks_probe.py"),
         VPP_CLIENT_IP4, "1080", "idle", ORIGIN_IP4, str(ECHO_PORT), "30"],
        stdout=subprocess.PIPE) for _ in range(N_SESSIONS)]
    try:
        deadline = time.monotonic() + 20
        while len([s for s in env.sessions() if s.state == 5]) < N_SESSIONS:
            assert time.monotonic() < deadline, env.cli("show singbox sessions verbose")
            time.sleep(0.1)
        assert _remote_legs(env) == N_SESSIONS, env.cli("show singbox server")
    finally:
        for p in procs:
            p.kill()
            p.wait()
    deadline = time.monotonic() + 20
    while _remote_legs(env):
        assert time.monotonic() < deadline, env.cli("show singbox sessions verbose")
        time.sleep(0.1)

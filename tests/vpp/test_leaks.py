# SPDX-License-Identifier: Apache-2.0
# Copyright (c) 2026 vpp-singbox authors
"""Records the suite's leak check (conftest: Env.check_no_records) found left behind, each
checked within a bound of its own: what the plugin's own timeouts promise, not VPP's."""

from __future__ import annotations

import time

from .conftest import Env, sw_if_index, worker_counts
from vpptopo import ORIGIN_IP4, SILENT_IP4, VPP_CLIENT_IP4

pytestmark = worker_counts(0, 1, 2)

CONNECT_TIMEOUT = 2
# the connect timeout, the 0.5 s expiry poll and slack for a loaded machine; VPP's own SYN_SENT
# timeout is more than a minute (tcp_timer_retransmit_syn_handler: until the RTO reaches
# TCP_ESTABLISH_TIME / 2, doubling from 1 s after three retries)
BOUND = CONNECT_TIMEOUT + 8


def _half_opens(env: Env) -> list[str]:
    return [ln for ln in env.cli("show session verbose 2").splitlines() if "SYN_SENT" in ln]


def _gone(env: Env, since: float) -> None:
    """No record and no half-open of ours left, BOUND seconds after `since` at the latest."""
    while (left := env.new_records(quick=True) or _half_opens(env)) and time.monotonic() < since + BOUND:
        time.sleep(0.5)
    left = env.new_records() + _half_opens(env)
    assert not left, "\n".join(left) + "\n" + env.cli("show singbox sessions verbose")


def test_server_connect_timeout_ends_the_upstream_connect(env: Env) -> None:
    """A CONNECT to a destination that never answers (ARP: nothing there) gets REP 6 at the
    connect timeout; the upstream connect must end with it. It stayed VPP's half-open, and the
    record with it (client leg closed, upstream leg 'connecting'), until VPP's own SYN timeout,
    more than a minute later: a flood of such CONNECTs kept a record and a half-open each."""
    env.configure(connect_timeout=CONNECT_TIMEOUT)
    env.start()
    res = env.probe(VPP_CLIENT_IP4, "1080", "connect", SILENT_IP4, "80")
    assert res.get("rep") == 0x06, res
    _gone(env, time.monotonic())


def test_client_endpoint_connect_timeout_ends_the_upstream_connect(env: Env) -> None:
    """Client mode, an endpoint that never answers: the intercepted connection fails at the
    endpoint's connect timeout, and the upstream connect ends with it."""
    r = env.api.singbox_endpoint_add_del(
        is_add=True, name="silent", proxy_addr=SILENT_IP4, proxy_port=1080, protocol_type=0,
        username="", password="", priority=0, connect_timeout=CONNECT_TIMEOUT,
        health_check_enabled=False, health_check_interval=0, health_check_timeout=0,
        failure_threshold=0, recovery_threshold=0, table_id=0)
    assert r.retval == 0, r
    idx = sw_if_index(env, env.t.vpp_if_client)
    try:
        assert env.api.singbox_enable_disable(sw_if_index=idx, enable_disable=True,
                                              endpoint_name="silent").retval == 0
        r2 = env.client("curl", "-sS", "-m", str(CONNECT_TIMEOUT + 10),
                        f"http://{ORIGIN_IP4}:8080/whoami", timeout=CONNECT_TIMEOUT + 20)
        assert r2.returncode != 0, r2  # nothing relays it
        _gone(env, time.monotonic())
    finally:
        env.api.singbox_enable_disable(sw_if_index=idx, enable_disable=False)

# SPDX-License-Identifier: Apache-2.0
# Copyright (c) 2026 vpp-singbox authors
"""Operations an orchestrator relies on, checked where they matter — in the dataplane: confirmed-commit rollback,
the RPCs (disconnect-session over RESTCONF, clear-statistics over NETCONF), and an agent restart while VPP keeps
running with stale state."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from typing import Any


from .conftest import ECHO_PORT, SBX_NS, Stack, end_hold, hold_socks_session, wait_for
from ncclient.xml_ import to_ele
from .test_e2e_server import ALT_PORT, PASSWORD, USER, cfg, configure, proxy, running_server
from vpptopo import ORIGIN_IP4, VPP_CLIENT_IP4, VPP_ORIGIN_IP4


def works(stack: Stack, url: str) -> bool:
    r = stack.curl_socks(url, max_time=5)
    return r.returncode == 0 and r.stdout.decode().strip() == VPP_ORIGIN_IP4


def refused(stack: Stack, url: str) -> bool:
    return stack.curl_socks(url, max_time=5).returncode != 0


def test_confirmed_commit_not_confirmed_rolls_the_dataplane_back(stack: Stack) -> None:
    configure(stack)
    disable = cfg("<server><enabled>false</enabled></server>")
    with stack.netconf_session() as m:
        before = running_server(m)
        # cancel-commit: back at once
        m.edit_config(target="candidate", config=disable)
        m.commit(confirmed=True, timeout="120")
        wait_for(lambda: refused(stack, proxy()), "server stopped by the confirmed commit")
        m.cancel_commit()
        assert running_server(m) == before
        wait_for(lambda: works(stack, proxy()), "server back after cancel-commit")
        # the confirm timeout expires: back without anybody asking
        m.edit_config(target="candidate", config=disable)
        m.commit(confirmed=True, timeout="5")
        wait_for(lambda: refused(stack, proxy()), "server stopped by the second confirmed commit")
        wait_for(lambda: running_server(m) == before, "running config restored after the confirm timeout",
                 timeout=60)
        wait_for(lambda: works(stack, proxy()), "server back after the confirm timeout", timeout=30)
        # a confirmed commit that is confirmed stays
        m.edit_config(target="candidate", config=disable)
        m.commit(confirmed=True, timeout="5")
        m.commit()
    time.sleep(7)  # past the first timeout: nothing may roll back now
    assert refused(stack, proxy())


def hold_session(stack: Stack) -> subprocess.Popen[bytes]:
    return hold_socks_session(stack, 1080, USER, PASSWORD, ORIGIN_IP4, ECHO_PORT)


def server_sessions(stack: Stack) -> list[dict[str, Any]]:
    data = stack.restconf_get("vpp-singbox:singbox/sessions") or {}
    return [s for s in data.get("vpp-singbox:sessions", {}).get("session", []) if s.get("mode") == "server"]


def held_session_id(stack: Stack) -> str:
    return str(wait_for(lambda: [s for s in server_sessions(stack) if s.get("destination-port") == ECHO_PORT],
                        "the held session over RESTCONF")[0]["id"])


def assert_closed_by_proxy(stack: Stack, hold: subprocess.Popen[bytes], session_id: str) -> None:
    assert hold.stdout is not None
    # the client sees its session end (bounded: the proxy's RST/FIN or the test's timeout)
    line = hold.stdout.readline()
    assert line == b"closed by proxy\n", (line, hold.stderr.read() if hold.stderr and hold.poll() is not None else b"")
    wait_for(lambda: not [s for s in server_sessions(stack) if s["id"] == session_id],
             "the disconnected session gone from RESTCONF")


def test_disconnect_session_over_restconf(stack: Stack) -> None:
    configure(stack)
    hold = hold_session(stack)
    try:
        session_id = held_session_id(stack)
        with stack.restconf_client() as c:
            r = c.post("/restconf/operations/vpp-singbox:disconnect-session",
                       json={"vpp-singbox:input": {"id": session_id}},
                       headers={"Content-Type": "application/yang-data+json"})
            assert r.status_code in (200, 204), r.text
            assert_closed_by_proxy(stack, hold, session_id)
            # an unknown id: data-missing (the YANG contract), nothing else touched
            r = c.post("/restconf/operations/vpp-singbox:disconnect-session",
                       json={"vpp-singbox:input": {"id": session_id}},
                       headers={"Content-Type": "application/yang-data+json"})
            assert r.status_code >= 400 and "data-missing" in r.text, (r.status_code, r.text)
    finally:
        end_hold(hold)
    assert works(stack, proxy())


def test_disconnect_session_over_netconf(stack: Stack) -> None:
    configure(stack)
    hold = hold_session(stack)
    try:
        session_id = held_session_id(stack)
        with stack.netconf_session() as m:
            reply = m.dispatch(to_ele(f'<disconnect-session xmlns="{SBX_NS}"><id>{session_id}</id>'
                                      "</disconnect-session>"))
            assert reply.ok, reply.xml
        assert_closed_by_proxy(stack, hold, session_id)
    finally:
        end_hold(hold)


def server_stats(stack: Stack) -> dict[str, Any]:
    data = stack.restconf_get("vpp-singbox:singbox/server/statistics")
    assert data is not None
    return dict(data["vpp-singbox:statistics"])


def check_clear_statistics(stack: Stack, clear: Callable[[], None]) -> None:
    configure(stack)
    wait_for(lambda: int(server_stats(stack)["connections-accepted"]) >= 1, "accepted >= 1")
    first = server_stats(stack)
    clear()
    cleared = wait_for(lambda: (s := server_stats(stack)) and int(s["connections-accepted"]) == 0 and s,
                       "server counters cleared, seen over RESTCONF")
    assert cleared.get("discontinuity-time") and cleared["discontinuity-time"] != first.get("discontinuity-time")
    assert works(stack, proxy())
    wait_for(lambda: int(server_stats(stack)["connections-accepted"]) == 1, "counting again after the clear")


def test_clear_statistics_over_restconf(stack: Stack) -> None:
    def clear() -> None:
        with stack.restconf_client() as c:
            r = c.post("/restconf/operations/vpp-singbox:clear-statistics",
                       json={"vpp-singbox:input": {"server": [None]}},
                       headers={"Content-Type": "application/yang-data+json"})
        assert r.status_code in (200, 204), r.text

    check_clear_statistics(stack, clear)


def test_clear_statistics_over_netconf(stack: Stack) -> None:
    def clear() -> None:
        with stack.netconf_session() as m:
            # an RPC without output: <ok/> (it once came back as the rpc-error 'sr_rpc_send_tree returned NULL')
            reply = m.dispatch(to_ele(f'<clear-statistics xmlns="{SBX_NS}"><server/></clear-statistics>'))
            assert reply.ok, reply.xml

    check_clear_statistics(stack, clear)


def restart_agent_with_change(stack: Stack, bob_password: str) -> None:
    """Stop the agent, change the server over NETCONF (delete listener 'alt', add user bob), start it again."""
    configure(stack)
    assert stack.agent.stop() == 0
    stack.services.remove(stack.agent)
    # the dataplane keeps serving without the agent
    assert works(stack, proxy())
    with stack.netconf_session() as m:
        m.edit_config(target="running", config=cfg(
            '<server><listen xmlns:nc="urn:ietf:params:xml:ns:netconf:base:1.0" nc:operation="delete">'
            "<name>alt</name></listen><authentication><user><username>bob</username>"
            f"<password>{bob_password}</password></user></authentication></server>"))
    assert works(stack, proxy(ALT_PORT))  # VPP still has the old config: nobody told it
    stack.agent = stack._start("agent", "--vpp-api-socket", str(stack.vpp.api_sock))  # noqa: SLF001


def test_agent_restart_applies_what_changed_while_it_was_away(stack: Stack) -> None:
    from singbox_agent.mgmt.crypt import hash_password as sha512_crypt

    restart_agent_with_change(stack, sha512_crypt("builder-pw"))
    wait_for(lambda: refused(stack, proxy(ALT_PORT)), "the listener deleted while the agent was away is gone",
             timeout=60)
    wait_for(lambda: works(stack, f"socks5://bob:builder-pw@{VPP_CLIENT_IP4}:1080"),
             "the user added while the agent was away works", timeout=60)
    assert works(stack, proxy())
    state = stack.restconf_get("vpp-singbox:singbox/dataplane")
    assert state is not None and state["vpp-singbox:dataplane"]["connected"] is True
    assert not state["vpp-singbox:dataplane"].get("config-pending", False), state


def test_clear_text_password_committed_while_the_agent_was_away(stack: Stack) -> None:
    # RFC 7317: '$0$' is hashed by the server, also when the agent was not running at commit time
    restart_agent_with_change(stack, "$0$builder-pw")
    wait_for(lambda: refused(stack, proxy(ALT_PORT)), "the listener deleted while the agent was away is gone",
             timeout=60)
    try:
        wait_for(lambda: works(stack, f"socks5://bob:builder-pw@{VPP_CLIENT_IP4}:1080"),
                 "the user added (clear text) while the agent was away works", timeout=30)
    finally:
        with stack.netconf_session() as m:
            stored = running_server(m)
    assert "$0$" not in stored, "clear-text password still in running"

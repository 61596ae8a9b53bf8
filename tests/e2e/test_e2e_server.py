# SPDX-License-Identifier: Apache-2.0
# Copyright (c) 2026 vpp-singbox authors
"""Server mode through the whole chain: NETCONF edit-config -> sysrepo -> agent -> VPP plugin -> SOCKS5 clients in
the client namespace -> origin; RESTCONF shows the counters and sessions the plugin keeps."""

from __future__ import annotations

from typing import Any

import pytest
from .conftest import ECHO_PORT, SBX_NS, Stack, end_hold, hold_socks_session, wait_for
from ncclient.operations import RPCError
from vpptopo import ORIGIN_IP4, VPP_CLIENT_IP4, VPP_ORIGIN_IP4

USER, PASSWORD = "alice", "wonder-land"
MAIN_PORT, ALT_PORT = 1080, 1081


def cfg(body: str) -> str:
    return (f'<config xmlns="urn:ietf:params:xml:ns:netconf:base:1.0">'
            f'<singbox xmlns="{SBX_NS}">{body}</singbox></config>')


# Two listeners: the YANG model wants an enabled server to listen somewhere, so one can be deleted while the other
# proves the server still runs. The password is given as $0$ clear text: the agent must hash it (RFC 7317) and the
# plugin must verify the hash.
SERVER = cfg(f"""
<server>
  <enabled>true</enabled>
  <listen><name>lan</name><address>{VPP_CLIENT_IP4}</address><port>{MAIN_PORT}</port></listen>
  <listen><name>alt</name><address>{VPP_CLIENT_IP4}</address><port>{ALT_PORT}</port></listen>
  <authentication>
    <method>username-password</method>
    <user><username>{USER}</username><password>$0${PASSWORD}</password></user>
  </authentication>
</server>""")


def proxy(port: int = MAIN_PORT, user: str = USER, password: str = PASSWORD) -> str:
    return f"socks5://{user}:{password}@{VPP_CLIENT_IP4}:{port}"


def counters(stack: Stack) -> dict[str, int]:
    data = stack.restconf_get("vpp-singbox:singbox/server/statistics")
    assert data is not None, "no server statistics over RESTCONF"
    stats = data["vpp-singbox:statistics"]
    return {k: int(v) for k, v in stats.items() if k != "discontinuity-time"}


def running_server(m: Any) -> str:
    flt = f'<singbox xmlns="{SBX_NS}"><server/></singbox>'
    return str(m.get_config(source="running", filter=("subtree", flt)).data_xml)


def configure(stack: Stack) -> None:
    with stack.netconf_session() as m:
        m.edit_config(target="candidate", config=SERVER)
        m.commit()
    wait_for(lambda: stack.curl_socks(proxy()).returncode == 0, "SOCKS5 through VPP after the commit", timeout=30)


def test_socks5_server_configured_over_netconf_serves_and_is_monitored(stack: Stack) -> None:
    configure(stack)
    wait_for(lambda: (stack.restconf_get("vpp-singbox:singbox/server/oper-status") or {})
             .get("vpp-singbox:oper-status") == "running", "server oper-status running over RESTCONF")
    before = counters(stack)

    # curl, as RFC 1928/1929 client, through VPP: the origin sees VPP's address (VPP made the connection)
    r = stack.curl_socks(proxy())
    assert r.returncode == 0, r.stderr
    assert r.stdout.decode().strip() == VPP_ORIGIN_IP4
    # socks5h: the destination goes to VPP as given (an address literal here: no resolver configured)
    r = stack.curl_socks(f"socks5h://{USER}:{PASSWORD}@{VPP_CLIENT_IP4}:{MAIN_PORT}", path="/bytes/100000")
    assert r.returncode == 0 and len(r.stdout) == 100000, r.stderr

    # a wrong password and an unknown user are refused
    bad = stack.curl_socks(proxy(password="not-" + PASSWORD))
    assert bad.returncode != 0 and VPP_ORIGIN_IP4 not in bad.stdout.decode()
    bad = stack.curl_socks(proxy(user="mallory"))
    assert bad.returncode != 0 and VPP_ORIGIN_IP4 not in bad.stdout.decode()

    def moved() -> dict[str, int] | None:
        now = counters(stack)
        ok = (now["connections-accepted"] >= before["connections-accepted"] + 4
              and now["auth-failures"] >= before["auth-failures"] + 2
              and now["bytes-forwarded"] >= before["bytes-forwarded"] + 100000)
        return now if ok else None

    # counters reach RESTCONF through the stats segment (updated every second): wait, bounded
    after = wait_for(moved, "server counters over RESTCONF: accepted +4, auth-failures +2, bytes +100000")
    assert after["connections-rejected"] == before["connections-rejected"]  # auth failures are not rejections
    user = stack.restconf_get(f"vpp-singbox:singbox/server/authentication/user={USER}/statistics")
    assert user is not None and int(user["vpp-singbox:statistics"]["auth-failures"]) >= 1

    # a live session shows in /singbox/sessions with the user, the client and the destination
    hold = hold_socks_session(stack, MAIN_PORT, USER, PASSWORD, ORIGIN_IP4, ECHO_PORT)
    try:

        def held_session() -> dict[str, Any] | None:
            data = stack.restconf_get("vpp-singbox:singbox/sessions") or {}
            for s in data.get("vpp-singbox:sessions", {}).get("session", []):
                if s.get("mode") == "server" and s.get("destination-port") == ECHO_PORT \
                        and s.get("state") == "established":
                    return dict(s)
            return None

        session = wait_for(held_session, "the held session over RESTCONF")
        assert session["username"] == USER
        assert session["destination-address"] == ORIGIN_IP4
        assert session["client-address"] == "198.18.1.2"
        active = wait_for(lambda: counters(stack)["active-sessions"] >= 1, "active-sessions >= 1")
        assert active
    finally:
        rc = end_hold(hold)
    assert rc == 0


def test_deleting_a_listen_entry_over_netconf_stops_new_connections(stack: Stack) -> None:
    configure(stack)
    assert stack.curl_socks(proxy(ALT_PORT)).returncode == 0
    with stack.netconf_session() as m:
        m.edit_config(target="candidate", config=cfg(
            '<server><listen xmlns:nc="urn:ietf:params:xml:ns:netconf:base:1.0" nc:operation="delete">'
            "<name>lan</name></listen></server>"))
        m.commit()
        assert "<name>lan</name>" not in running_server(m)

    def refused() -> bool:
        return stack.curl_socks(proxy(), max_time=5).returncode != 0

    wait_for(refused, f"connections to the deleted listener {VPP_CLIENT_IP4}:{MAIN_PORT} fail", timeout=30)
    # the other listener was not touched
    r = stack.curl_socks(proxy(ALT_PORT))
    assert r.returncode == 0 and r.stdout.decode().strip() == VPP_ORIGIN_IP4, r.stderr
    listeners = stack.restconf_get("vpp-singbox:singbox/server/listen") or {}
    names = {entry["name"] for entry in listeners.get("vpp-singbox:listen", [])}
    assert names == {"alt"}

    # disabling the server stops the remaining listener too
    with stack.netconf_session() as m:
        m.edit_config(target="running", config=cfg("<server><enabled>false</enabled></server>"))
    wait_for(lambda: stack.curl_socks(proxy(ALT_PORT), max_time=5).returncode != 0,
             "connections fail once the server is disabled", timeout=30)


@pytest.mark.parametrize("target", ["running", "candidate"])
def test_edit_the_dataplane_refuses_is_an_rpc_error_and_changes_nothing(stack: Stack, target: str) -> None:
    configure(stack)
    with stack.netconf_session() as m:
        before = running_server(m)
        full_before = str(m.get_config(source="running").data_xml)
        # Valid YANG (0.0.0.0 is an inet:host) that the plugin refuses (INVALID_VALUE for a zero proxy address),
        # in one edit with changes the plugin would accept: the whole edit must be refused and undone.
        bad = cfg("<log-level>debug</log-level>"
                  f"<server><listen><name>extra</name><address>{VPP_CLIENT_IP4}</address><port>1082</port></listen>"
                  "</server>"
                  "<client><endpoint><name>zero</name><address>0.0.0.0</address></endpoint></client>")
        with pytest.raises(RPCError) as err:
            if target == "running":
                m.edit_config(target="running", config=bad)
            else:
                m.edit_config(target="candidate", config=bad)
                m.commit()
        message = str(err.value.message or err.value)
        # the agent's own words reach the orchestrator
        assert "endpoint 'zero'" in message and "INVALID_VALUE" in message, err.value.xml
        if target == "candidate":
            m.discard_changes()
        assert running_server(m) == before
        assert str(m.get_config(source="running").data_xml) == full_before
    # and the dataplane still does what the unchanged config says
    assert stack.curl_socks(proxy()).returncode == 0
    assert stack.curl_socks(f"socks5://{USER}:{PASSWORD}@{VPP_CLIENT_IP4}:1082", max_time=5).returncode != 0
    state = stack.restconf_get("vpp-singbox:singbox/dataplane")
    assert state is not None and state["vpp-singbox:dataplane"]["connected"] is True


def test_refused_and_finished_sessions_do_not_stay_active(stack: Stack) -> None:
    configure(stack)
    for i in range(10):
        assert stack.curl_socks(proxy(password=f"wrong-{i}"), max_time=5).returncode != 0
        assert stack.curl_socks(proxy()).returncode == 0

    def server_sessions() -> list[dict[str, object]]:
        data = stack.restconf_get("vpp-singbox:singbox/sessions") or {}
        return [s for s in data.get("vpp-singbox:sessions", {}).get("session", []) if s.get("mode") == "server"]

    def drained() -> dict[str, int] | None:
        now = counters(stack)
        return now if now["active-sessions"] == 0 and now["auth-failures"] >= 10 else None

    # bounded by the plugin's timeouts (handshake 10 s, TCP close-wait 30 s in the harness), not a performance claim
    wait_for(drained, "active-sessions back to 0 over RESTCONF after refused and finished sessions", timeout=90)
    # a session no longer counts as active once we end its client leg; its record goes when that leg's
    # TIME_WAIT (10 s) is over
    wait_for(lambda: server_sessions() == [], "no server session listed any more", timeout=30)

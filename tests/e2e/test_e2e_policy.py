# SPDX-License-Identifier: Apache-2.0
# Copyright (c) 2026 vpp-singbox authors
"""Server policy configured over NETCONF or RESTCONF, enforced by the plugin, reported back: client prefixes,
max-sessions with its notification, an IPv6 listener, and a RESTCONF edit the dataplane refuses."""

from __future__ import annotations

import time

from .conftest import SBX_NS, Stack, end_hold, wait_for
from .test_e2e_operations import hold_session, refused, server_stats, works
from .test_e2e_server import PASSWORD, USER, cfg, configure, proxy, running_server
from vpptopo import VPP_CLIENT_IP4, VPP_CLIENT_IP6, VPP_ORIGIN_IP4

JSON = {"Content-Type": "application/yang-data+json"}


def test_allowed_client_prefix_refuses_other_clients(stack: Stack) -> None:
    configure(stack)
    with stack.netconf_session() as m:
        m.edit_config(target="running", config=cfg(
            "<server><allowed-client-prefix>10.0.0.0/8</allowed-client-prefix></server>"))
    wait_for(lambda: refused(stack, proxy()), "the client (198.18.1.2) refused outside 10.0.0.0/8")
    wait_for(lambda: int(server_stats(stack)["connections-rejected"]) >= 1, "connections-rejected over RESTCONF")
    with stack.netconf_session() as m:
        m.edit_config(target="running", config=cfg(
            "<server><allowed-client-prefix>198.18.1.0/24</allowed-client-prefix></server>"))
    wait_for(lambda: works(stack, proxy()), "the client allowed by 198.18.1.0/24")


def test_max_sessions_refuses_and_notifies(stack: Stack) -> None:
    configure(stack)
    with stack.netconf_session() as m:
        m.edit_config(target="running", config=cfg("<server><max-sessions>1</max-sessions></server>"))
    with stack.netconf_session() as events:
        events.create_subscription()
        hold = hold_session(stack)
        try:
            wait_for(lambda: int(server_stats(stack)["active-sessions"]) >= 1, "active-sessions 1 over RESTCONF")
            r = stack.curl_socks(proxy(), max_time=5)
            assert r.returncode != 0, "a second session beyond max-sessions 1 was served"
            wait_for(lambda: int(server_stats(stack)["connections-rejected"]) >= 1,
                     "connections-rejected over RESTCONF")
            deadline = time.monotonic() + 60
            seen = []
            while time.monotonic() < deadline:
                n = events.take_notification(block=True, timeout=5)
                if n is None:
                    continue
                seen.append(n.notification_xml)
                if "<session-limit-reached" in n.notification_xml and SBX_NS in n.notification_xml:
                    assert "<server" in n.notification_xml and "<limit>1</limit>" in n.notification_xml, \
                        n.notification_xml
                    break
            else:
                raise AssertionError(f"no session-limit-reached notification within 60 s; got {seen}")
        finally:
            end_hold(hold)
    wait_for(lambda: works(stack, proxy()), "served again once the held session ended")


def test_ipv6_listener(stack: Stack) -> None:
    configure(stack)
    with stack.netconf_session() as m:
        m.edit_config(target="running", config=cfg(
            f"<server><listen><name>v6</name><address>{VPP_CLIENT_IP6}</address><port>1086</port></listen>"
            "</server>"))
    url = f"socks5://{USER}:{PASSWORD}@[{VPP_CLIENT_IP6}]:1086"
    wait_for(lambda: works(stack, url), "SOCKS5 over the IPv6 listener")
    listen = stack.restconf_get("vpp-singbox:singbox/server/listen=v6")
    assert listen is not None and listen["vpp-singbox:listen"][0].get("listening") is True, listen


def test_restconf_edit_the_dataplane_refuses_changes_nothing(stack: Stack) -> None:
    configure(stack)
    with stack.netconf_session() as m:
        before = running_server(m)
    body = {"vpp-singbox:singbox": {
        "server": {"max-sessions": 7},
        "client": {"endpoint": [{"name": "zero", "address": "0.0.0.0"}]},
    }}
    with stack.restconf_client() as c:
        r = c.patch("/restconf/data/vpp-singbox:singbox", json=body, headers=JSON)
    assert r.status_code >= 400, (r.status_code, r.text)
    assert "endpoint 'zero'" in r.text and "INVALID_VALUE" in r.text, r.text
    with stack.netconf_session() as m:
        assert running_server(m) == before
    data = stack.restconf_get("vpp-singbox:singbox/client/endpoint=zero")
    assert data is None
    r2 = stack.curl_socks(proxy())
    assert r2.returncode == 0 and r2.stdout.decode().strip() == VPP_ORIGIN_IP4
    assert VPP_CLIENT_IP4

# SPDX-License-Identifier: Apache-2.0
# Copyright (c) 2026 vpp-singbox authors
"""Client mode through the whole chain: an endpoint (the real sing-box, password-protected, in the origin
namespace) and an enabled interface configured over NETCONF; TCP from the LAN namespace is relayed through sing-box;
RESTCONF shows the interface's and the endpoint's state. The origin's /whoami tells who connected to it: sing-box
(198.18.2.2), VPP itself (198.18.2.1, a bypassed flow) or the client (198.18.1.2, plain routing)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from .conftest import ECHO_PORT, HTTP_PORT, Stack, wait_for
from .test_e2e_server import cfg
from vpptopo import CLIENT_IP4, ORIGIN_IP4, VPP_ORIGIN_IP4, sing_box_binary, wait_port

SB_PORT = 1090
SB_USER, SB_PASSWORD = "vpp", "s3cret"


@pytest.fixture
def upstream(stack: Stack, tmp_path: Path) -> Iterator[Stack]:
    """sing-box with a password-protected SOCKS inbound in the origin namespace."""
    conf = {
        "log": {"level": "warn"},
        "inbounds": [{"type": "socks", "tag": "in", "listen": ORIGIN_IP4, "listen_port": SB_PORT,
                      "users": [{"username": SB_USER, "password": SB_PASSWORD}]}],
        "outbounds": [{"type": "direct", "tag": "direct"}],
        "route": {"final": "direct"},
    }
    (tmp_path / "sing-box.json").write_text(json.dumps(conf))
    start_sing_box(stack, tmp_path / "sing-box.json")
    yield stack


def start_sing_box(stack: Stack, conf: Path) -> subprocess.Popen[bytes]:
    proc = stack.t.spawn(stack.t.ns_origin, str(sing_box_binary()), "run", "-c", str(conf))
    wait_port(stack.t.ns_origin, ORIGIN_IP4, SB_PORT, timeout=30)
    return proc


def whoami(stack: Stack) -> tuple[int, str]:
    r = stack.t.run_in(stack.t.ns_client, "curl", "-sS", "-m", "10", f"http://{ORIGIN_IP4}:{HTTP_PORT}/whoami",
                       timeout=30)
    return r.returncode, r.stdout.decode().strip()


def client_cfg(stack: Stack, interface: str, password: str = SB_PASSWORD) -> str:
    return cfg(f"""
<client>
  <default-endpoint>sing-box</default-endpoint>
  <endpoint>
    <name>sing-box</name><address>{ORIGIN_IP4}</address><port>{SB_PORT}</port>
    <username>{SB_USER}</username><password>{password}</password>
  </endpoint>
  <interface><name>{stack.t.vpp_if_client}</name>{interface}</interface>
</client>""")


def interface_stats(stack: Stack) -> dict[str, int]:
    data = stack.restconf_get(f"vpp-singbox:singbox/client/interface={stack.t.vpp_if_client}/statistics")
    assert data is not None, "no interface statistics over RESTCONF"
    return {k: int(v) for k, v in data["vpp-singbox:statistics"].items() if k != "discontinuity-time"}


def test_interface_enabled_over_netconf_relays_through_sing_box(upstream: Stack) -> None:
    stack = upstream
    assert whoami(stack) == (0, CLIENT_IP4)  # nothing configured: plain routing
    with stack.netconf_session() as m:
        m.edit_config(target="candidate", config=client_cfg(stack, "<enabled>true</enabled>"))
        m.commit()
    wait_for(lambda: whoami(stack) == (0, ORIGIN_IP4), "HTTP relayed through sing-box", timeout=30)
    r = stack.t.run_in(stack.t.ns_client, "ncat", ORIGIN_IP4, str(ECHO_PORT), input=b"intercepted\n", timeout=30)
    assert r.stdout == b"intercepted\n", r.stderr

    itf = stack.restconf_get(f"vpp-singbox:singbox/client/interface={stack.t.vpp_if_client}")
    assert itf is not None
    entry = itf["vpp-singbox:interface"][0]
    assert entry["oper-status"] == "active" and entry.get("effective-endpoint") == "sing-box", entry
    # a flow's packets and bytes are counted when it ends: wait until both flows have
    stats = wait_for(lambda: (s := interface_stats(stack))["total-connections"] >= 2
                     and s["active-connections"] == 0 and s,
                     "interface total-connections >= 2 and no active connection over RESTCONF")
    assert stats["connection-failures"] == 0 and stats["bytes-redirected"] > 0, stats

    # a bypass prefix added over NETCONF: VPP splices that flow itself
    with stack.netconf_session() as m:
        m.edit_config(target="running", config=cfg(
            f"<client><interface><name>{stack.t.vpp_if_client}</name>"
            f"<bypass-prefix>{ORIGIN_IP4}/32</bypass-prefix></interface></client>"))
    wait_for(lambda: whoami(stack) == (0, VPP_ORIGIN_IP4), "bypassed flow spliced by VPP", timeout=30)

    # disabled over NETCONF: plain routing again
    with stack.netconf_session() as m:
        m.edit_config(target="running", config=cfg(
            f"<client><interface><name>{stack.t.vpp_if_client}</name><enabled>false</enabled></interface>"
            "</client>"))
    wait_for(lambda: whoami(stack) == (0, CLIENT_IP4), "plain routing once disabled", timeout=30)
    itf = stack.restconf_get(f"vpp-singbox:singbox/client/interface={stack.t.vpp_if_client}/oper-status")
    assert itf is not None and itf["vpp-singbox:oper-status"] == "disabled", itf


def test_wrong_endpoint_password_is_counted_over_restconf(upstream: Stack) -> None:
    stack = upstream
    with stack.netconf_session() as m:
        m.edit_config(target="running", config=client_cfg(stack, "<enabled>true</enabled>", password="wrong"))
    rc, out = whoami(stack)
    assert rc != 0 and out != CLIENT_IP4  # refused by sing-box, not routed around the proxy
    stats = wait_for(lambda: (s := interface_stats(stack))["connection-failures"] >= 1 and s,
                     "interface connection-failures >= 1 over RESTCONF")
    assert stats["total-connections"] >= 1
    ep = stack.restconf_get("vpp-singbox:singbox/client/endpoint=sing-box/statistics")
    assert ep is not None and int(ep["vpp-singbox:statistics"]["connection-failures"]) >= 1, ep

    # the right password, changed over NETCONF, fixes it
    with stack.netconf_session() as m:
        m.edit_config(target="running", config=client_cfg(stack, "<enabled>true</enabled>"))
    wait_for(lambda: whoami(stack) == (0, ORIGIN_IP4), "relayed once the password is right", timeout=30)


def endpoint_events(m: Any, wanted: str, timeout: float = 90) -> str:
    """The first endpoint-up/endpoint-down notification named `wanted` for our endpoint (bounded)."""
    deadline = time.monotonic() + timeout
    seen: list[str] = []
    while time.monotonic() < deadline:
        n = m.take_notification(block=True, timeout=5)
        if n is None:
            continue
        xml = str(n.notification_xml)
        seen.append(xml)
        if f"<{wanted}" in xml and "<endpoint>sing-box</endpoint>" in xml:
            return xml
    raise AssertionError(f"no {wanted} for endpoint sing-box within {timeout:.0f} s; got {seen}")


def endpoint_status(stack: Stack) -> str | None:
    data = stack.restconf_get("vpp-singbox:singbox/client/endpoint=sing-box/oper-status")
    return None if data is None else str(data["vpp-singbox:oper-status"])


def test_endpoint_health_checks_reach_netconf_and_restconf(upstream: Stack, tmp_path: Path) -> None:
    stack = upstream
    health = ("<health-check><enabled>true</enabled><interval>5</interval><timeout>2</timeout>"
              "<failure-threshold>1</failure-threshold><recovery-threshold>1</recovery-threshold></health-check>")
    config = client_cfg(stack, "<enabled>true</enabled>").replace("</password>", "</password>" + health)
    with stack.netconf_session() as events:
        events.create_subscription()
        with stack.netconf_session() as m:
            m.edit_config(target="running", config=config)
        wait_for(lambda: endpoint_status(stack) == "up", "endpoint oper-status up over RESTCONF", timeout=60)
        singbox = [p for p in stack.t.procs if p.poll() is None][-1]
        os.killpg(singbox.pid, signal.SIGKILL)
        singbox.wait(timeout=10)
        down = endpoint_events(events, "endpoint-down")
        assert "<reason>" in down, down
        wait_for(lambda: endpoint_status(stack) == "down", "endpoint oper-status down over RESTCONF")
        assert whoami(stack)[0] != 0  # the only endpoint is down: no relaying, and no leak around the proxy
        start_sing_box(stack, tmp_path / "sing-box.json")
        endpoint_events(events, "endpoint-up")
        wait_for(lambda: endpoint_status(stack) == "up", "endpoint oper-status up again over RESTCONF")
    wait_for(lambda: whoami(stack) == (0, ORIGIN_IP4), "relayed again once sing-box is back", timeout=30)

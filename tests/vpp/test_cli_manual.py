# SPDX-License-Identifier: Apache-2.0
# Copyright (c) 2026 vpp-singbox authors
"""The product manual's CLI typed as the manual writes it, in the manual's order, on a real VPP: what it
configures, what it prints, and that no order of commands crashes VPP or leaves half a configuration.

Most tests start a VPP of their own (`bare`): nothing enabled yet is part of what they check."""

from __future__ import annotations

import re
import time
from typing import Any, Iterator

import pytest

import vpptopo
from vppfixtures import skip_reason, vpp_output

from .conftest import HERE, HTTP_PORT, Env, worker_counts
from .test_vpp_client import SB_PORT, upstream, whoami  # noqa: F401 - upstream: sing-box, a fixture

# the CLI's checks and outputs: the worker count changes nothing; most tests start a VPP with none

ORIGIN_IP4 = vpptopo.ORIGIN_IP4
VPP_CLIENT_IP4 = vpptopo.VPP_CLIENT_IP4
ADDRESS_NOT_FOUND_FOR_INTERFACE = -60  # vnet/error.h


def _start(without: tuple[str, ...] = ()) -> vpptopo.Vpp:
    reason = skip_reason()
    if reason:
        pytest.skip(reason)
    return vpptopo.Vpp(workers=0, without=without)


def _stop(vpp: vpptopo.Vpp) -> None:
    out = vpp_output(vpp)
    alive = vpp.alive()
    vpp.close()
    assert alive, "VPP died:\n" + out


@pytest.fixture
def bare() -> Iterator[vpptopo.Vpp]:
    """A fresh VPP (with the hsi plugin), nothing configured."""
    vpp = _start()
    try:
        yield vpp
    finally:
        _stop(vpp)


def _papi(vpp: vpptopo.Vpp) -> Any:
    from vpp_papi import VPPApiClient  # type: ignore[import-untyped]

    c = VPPApiClient(server_address=str(vpp.api_sock), bootstrapapi=True, read_timeout=10)
    c.connect("sbx-cli-manual")
    return c


def _polls(vpp: vpptopo.Vpp) -> None:
    """Let singbox-process run its periodic work (the pool is filled every 0.2 s) a few times."""
    for _ in range(8):
        time.sleep(0.25)
        assert vpp.alive(), vpp_output(vpp)


def _endpoints(vpp: vpptopo.Vpp) -> list[str]:
    return re.findall(r"^  Endpoint (\S+?)(?: \(default\))?:", vpp.cli("show singbox"), re.M)


def test_pooling_before_the_first_interface(bare: vpptopo.Vpp) -> None:
    """The manual's Performance Tuning order: an endpoint, pooling, and only then an interface. Pooling with no
    interface enabled opened connections from an app client mode had not attached yet: SIGSEGV in vnet_connect."""
    bare.cli("singbox set endpoint 127.0.0.1:1080 socks5")
    bare.cli("singbox set pooling enable")
    bare.cli("singbox set max-pool-size 4")
    _polls(bare)
    assert "Connection pooling: enabled" in bare.cli("show singbox")
    # client mode starts: now the pool is filled (nothing listens on 127.0.0.1:1080, so it keeps trying)
    bare.cli("create loopback interface")
    bare.cli("singbox enable loop0")
    _polls(bare)
    bare.cli("singbox disable loop0")
    _polls(bare)


def test_api_orders_before_client_mode(bare: vpptopo.Vpp) -> None:
    """The same through the binary API in the agent's order (endpoints, pooling, then interfaces), and what else
    runs before client mode: an endpoint with health checks (probes), made default, then the first interface."""
    papi = _papi(bare)
    try:
        api = papi.api
        r = api.singbox_set_endpoint(proxy_addr="127.0.0.1", proxy_port=1080, protocol_type=0)
        assert r.retval == 0
        assert api.singbox_set_pooling(enable=True, max_pool_size=3).retval == 0
        _polls(bare)  # the crash: pooled connections from an app not attached yet
        r = api.singbox_endpoint_add_del(is_add=True, name="hc", proxy_addr="127.0.0.1", proxy_port=1081,
                                         health_check_enabled=True, health_check_interval=2,
                                         health_check_timeout=1)
        assert r.retval == 0
        assert api.singbox_set_pooling(enable=True, max_pool_size=3).retval == 0
        assert api.singbox_set_default_endpoint(name="hc").retval == 0
        _polls(bare)
        bare.cli("create loopback interface")
        idx = next(i.sw_if_index for i in api.sw_interface_dump() if i.interface_name == "loop0")
        assert api.singbox_enable_disable(sw_if_index=idx, enable_disable=True).retval == 0
        _polls(bare)
        assert api.singbox_enable_disable(sw_if_index=idx, enable_disable=False).retval == 0
        assert api.singbox_set_pooling(enable=False, max_pool_size=0).retval == 0
        _polls(bare)
    finally:
        papi.disconnect()


def test_interface_proxy_endpoint_follows_the_interface(bare: vpptopo.Vpp) -> None:
    """`singbox enable <itf> proxy A:P` makes the interface's own endpoint "if-<n>": it goes when the interface
    is enabled again without a proxy and when it is disabled (it stayed, unused, shown in `show singbox`)."""
    bare.cli("singbox set endpoint 127.0.0.1:1080 socks5")
    bare.cli("create loopback interface")
    bare.cli("singbox enable loop0 proxy 10.0.0.5:1080")
    assert _endpoints(bare) == ["default", "if-1"]
    assert "Proxy: 10.0.0.5:1080 (endpoint if-1)" in bare.cli("show singbox loop0")
    bare.cli("singbox enable loop0 max-connections 1000")
    assert _endpoints(bare) == ["default"]
    show = bare.cli("show singbox loop0")
    assert "Proxy: 127.0.0.1:1080 (endpoint default)" in show and "Max connections: 1000" in show
    bare.cli("singbox enable loop0 proxy 10.0.0.6:1080")
    assert "if-1: 10.0.0.6:1080 (SOCKS5)" in bare.cli("show singbox")
    bare.cli("singbox disable loop0")
    assert _endpoints(bare) == ["default"]
    # the binary API's singbox_enable_disable with the manual's proxy fields: the same
    papi = _papi(bare)
    try:
        api = papi.api
        r = api.singbox_enable_disable(sw_if_index=1, enable_disable=True, proxy_addr="10.0.0.5", proxy_port=1080)
        assert r.retval == 0
        assert [e.name for e in api.singbox_endpoint_dump()] == ["default", "if-1"]
        assert api.singbox_enable_disable(sw_if_index=1, enable_disable=False).retval == 0
        assert [e.name for e in api.singbox_endpoint_dump()] == ["default"]
    finally:
        papi.disconnect()


def test_failed_enable_changes_nothing() -> None:
    """Without the hsi plugin client mode cannot start: the enable fails, says why, and leaves no "if-<n>"
    endpoint behind (it did: the endpoint was made before interception was tried)."""
    vpp = _start(without=("hsi_plugin.so",))
    try:
        vpp.cli("create loopback interface")
        out = vpp.cli("singbox enable loop0 proxy 10.0.0.5:1080", check=False)
        assert "client mode needs the hsi plugin" in out, out
        assert _endpoints(vpp) == []
        assert "Interface loop0" not in vpp.cli("show singbox")
        papi = _papi(vpp)
        try:
            r = papi.api.singbox_enable_disable(sw_if_index=1, enable_disable=True, proxy_addr="10.0.0.5",
                                                proxy_port=1080)
            assert r.retval != 0
            assert list(papi.api.singbox_endpoint_dump()) == []
        finally:
            papi.disconnect()
    finally:
        _stop(vpp)


def test_server_start_on_an_address_vpp_does_not_have(bare: vpptopo.Vpp) -> None:
    """The manual's Security Enforcement command on an address no VPP interface has: as in the YANG model
    (listen/listening) the listener stays configured, not listening, and the user IS added (the handler stopped
    before it, leaving a server without the authentication asked for); the error names the cause (it was
    "Unspecified Error"). The binary API returns a precise code too."""
    out = bare.cli("singbox server start 10.0.0.1:1080 auth username security password complex_pass_123",
                   check=False)
    assert "listener 10.0.0.1-1080 is not listening: 10.0.0.1 is not an address of any VPP interface in table 0" \
        in out, out
    show = bare.cli("show singbox server")
    assert "SOCKS5 Server Status: Running" in show
    assert "Listen address: 10.0.0.1:1080 (name 10.0.0.1-1080, not listening)" in show
    assert "Authentication: Required" in show and "user security:" in show
    papi = _papi(bare)
    try:
        assert papi.api.singbox_server_enable_disable(enable=True).retval == ADDRESS_NOT_FOUND_FOR_INTERFACE
    finally:
        papi.disconnect()
    # once the address is there, starting again listens
    bare.cli("create loopback interface")
    bare.cli("set interface ip address loop0 10.0.0.1/24")
    bare.cli("set interface state loop0 up")
    bare.cli("singbox server start")
    assert "Listen address: 10.0.0.1:1080 (name 10.0.0.1-1080, listening)" in bare.cli("show singbox server")
    # bad input changes nothing: a table that does not exist
    out = bare.cli("singbox server start 10.0.0.2:1080 table 7 auth username other password x", check=False)
    assert "No such FIB" in out, out
    show = bare.cli("show singbox server")
    assert "10.0.0.2" not in show and "user other" not in show


def test_manual_outputs(bare: vpptopo.Vpp) -> None:
    """The manual's example lines appear as written (more fields after them are fine)."""
    assert re.search(r"singbox_plugin\.so\s+2\.0\.0", bare.cli("show plugins"))  # Version History: 2.0.0
    bare.cli("singbox set endpoint 127.0.0.1:1080 socks5")
    bare.cli("create loopback interface")
    bare.cli("singbox enable loop0")
    bare.cli("singbox set pooling enable")
    show = bare.cli("show singbox")
    for line in ("Sing-box Global Configuration:", "  Default endpoint: 127.0.0.1:1080 (SOCKS5)",
                 "  Session timeout: 300 seconds", "  Connection pooling: enabled",
                 "  Verbose logging: disabled", "Interface loop0:", "  Status: enabled",
                 "  Proxy: 127.0.0.1:1080", "  Active connections: 0", "  Total connections: 0",
                 "  Packets redirected: 0", "  Bytes redirected: 0", "  Connection failures: 0"):
        assert re.search("^" + re.escape(line), show, re.M), (line, show)
    # the protocol printed is the endpoint's (it was always "(SOCKS5)")
    bare.cli("singbox set endpoint 127.0.0.1:8080 http-connect")
    assert "  Default endpoint: 127.0.0.1:8080 (HTTP CONNECT)" in bare.cli("show singbox")
    bare.cli("singbox server start 0.0.0.0:1080")
    show = bare.cli("show singbox server")
    for line in ("SOCKS5 Server Status: Running", "  Listen address: 0.0.0.0:1080", "  Authentication: None",
                 "  Connections accepted: 0", "  Connections rejected: 0", "  Auth failures: 0",
                 "  Bytes forwarded: 0", "  Active sessions: 0"):
        assert re.search("^" + re.escape(line), show, re.M), (line, show)


def test_verbose_log_reaches_vpp_log_and_show_logging(bare: vpptopo.Vpp) -> None:
    """The manual's Logging: `singbox set verbose enable`, then `tail -f /var/log/vpp/vpp.log | grep singbox`
    (VPP's `unix { log FILE }`, where VPP itself writes only the CLI's commands) and `show logging` show the
    plugin's lines (they went to stderr/syslog only)."""
    bare.cli("singbox set verbose enable")
    bare.cli("singbox set endpoint 127.0.0.1:1080 socks5")
    bare.cli("singbox set pooling enable")
    bare.cli("create loopback interface")
    bare.cli("singbox enable loop0")  # the pool now connects to 127.0.0.1:1080: logged at debug level
    deadline = time.monotonic() + 20
    while "connect 127.0.0.1:1080" not in bare.log.read_text():
        assert time.monotonic() < deadline, bare.log.read_text()[-3000:]
        time.sleep(0.2)
    line = next(ln for ln in bare.log.read_text().splitlines() if "connect 127.0.0.1:1080" in ln)
    assert re.match(r"\d{4}/\d\d/\d\d \d\d:\d\d:\d\d:\d{3}\[\d+\]: singbox: session \d+ connect", line), line
    assert re.search(r"singbox\s+session \d+ connect 127\.0\.0\.1:1080", bare.cli("show logging", check=False))


@worker_counts(0)
def test_session_line_as_the_manual(env: Env) -> None:
    """`show singbox sessions`: "[0] dst=93.184.216.34:443 state=established tx=1024 rx=2048" first; the mode,
    client, age and user after."""
    import subprocess
    import sys

    env.start()
    holder = subprocess.Popen(
        ["ip", "netns", "exec", env.t.ns_client, sys.executable, str(HERE / "socks_probe.py"),
         VPP_CLIENT_IP4, "1080", "idle", ORIGIN_IP4, str(HTTP_PORT), "20"], stdout=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 10
        while not env.sessions():
            assert time.monotonic() < deadline
            time.sleep(0.1)
        out = env.cli("show singbox sessions")
        assert re.search(rf"^\[\d+\] dst={re.escape(ORIGIN_IP4)}:{HTTP_PORT} state=\S+ tx=\d+ rx=\d+ "
                         rf"server client={re.escape(vpptopo.CLIENT_IP4)}:\d+ age=\d+s", out, re.M), out
    finally:
        holder.kill()
        holder.wait()


def test_host_name_needs_vpp_resolver(bare: vpptopo.Vpp) -> None:
    """The manual's `singbox set endpoint secure-proxy.corp.com:1080 ...` and `singbox enable X proxy
    obfuscated-proxy.example.com:443` (host names were "unknown input"): with VPP's resolver not configured
    they fail naming the fix, and change nothing."""
    out = bare.cli("singbox set endpoint secure-proxy.corp.com:1080 socks5 username corp password secret",
                   check=False)
    assert "configure it first: 'dns name-server <ip>' and 'dns enable'" in out, out
    bare.cli("create loopback interface")
    out = bare.cli("singbox enable loop0 proxy obfuscated-proxy.example.com:443", check=False)
    assert "'dns name-server <ip>' and 'dns enable'" in out, out
    show = bare.cli("show singbox")
    assert "Default endpoint: none" in show and "Endpoint" not in show and "Interface loop0" not in show
    # a name server VPP cannot reach yet: taken, shown by name, no address until it answers
    bare.cli("dns name-server 198.18.99.1")
    bare.cli("dns enable")
    bare.cli("singbox set endpoint secure-proxy.corp.com:1080 socks5 username corp password secret")
    show = bare.cli("show singbox")
    assert "Default endpoint: secure-proxy.corp.com:1080 (SOCKS5)" in show
    assert "address unresolved state down" in show
    # digits and dots only: a mistyped address, not a name
    assert "unknown input" in bare.cli("singbox set endpoint 300.1.1.1:1080", check=False)


@worker_counts(0)
def test_host_name_endpoint_resolved_by_vpp(upstream: Env) -> None:
    """A proxy given by name is resolved by VPP's dns plugin (never blocking a VPP thread) and flows go
    through it: here sing-box in the origin namespace, "origin.test" answered by the origin's DNS server."""
    env = upstream
    env.cli(f"dns name-server {ORIGIN_IP4}")
    env.cli("dns enable")
    env.cli(f"singbox set endpoint origin.test:{SB_PORT} socks5 username vpp password s3cret")
    deadline = time.monotonic() + 20
    while f"address {ORIGIN_IP4}" not in (show := env.cli("show singbox")):
        assert time.monotonic() < deadline, show
        time.sleep(0.2)
    assert f"Default endpoint: origin.test:{SB_PORT} (SOCKS5)" in show
    env.cli(f"singbox enable {env.t.vpp_if_client}")
    assert f"Proxy: origin.test:{SB_PORT} (endpoint default)" in env.cli(f"show singbox {env.t.vpp_if_client}")
    assert whoami(env) == (0, ORIGIN_IP4)  # sing-box made the connection

# SPDX-License-Identifier: Apache-2.0
# Copyright (c) 2026 vpp-singbox authors
"""Client mode, UDP: datagrams arriving on a singbox-enabled VPP interface with UDP relaying on
are relayed through the real sing-box's socks inbound with SOCKS5 UDP ASSOCIATE (RFC 1928 §7),
one association per client flow, the original destination in every datagram's header.

The origin runs a UDP echo that prefixes each answer with the address it came from
(udp_peer.py server): sing-box (198.18.2.2 / 2001:2:0:2::2, it runs in the origin namespace) or
the client (198.18.1.2 / 2001:2:0:1::2, plain routing) — and the origin's DNS server (port 53).
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Iterator

import pytest

from .conftest import HERE, Env, sw_if_index
from vpptopo import sing_box_binary
from vpptopo import CLIENT_IP4, CLIENT_IP6, ORIGIN_IP4, ORIGIN_IP6, VPP_CLIENT_IP4, free_port, wait_port

SB_PORT = 1095
FLOW_STATE_ASSOCIATED = 2


@pytest.fixture
def udp_upstream(env: Env) -> Iterator[tuple[Env, int, Path]]:
    """sing-box with a password-protected socks inbound (UDP ASSOCIATE included) and the
    source-telling UDP echo, both in the origin ns; yields the echo's port and sing-box's log."""
    d = Path(tempfile.mkdtemp(prefix="sbx-cudp-"))
    log = d / "sing-box.log"
    cfg = {
        "log": {"level": "info", "output": str(log), "timestamp": False},
        "inbounds": [{"type": "socks", "tag": "in", "listen": ORIGIN_IP4, "listen_port": SB_PORT,
                      "users": [{"username": "vpp", "password": "s3cret"}]}],
        "outbounds": [{"type": "direct", "tag": "direct"}],
        "route": {"final": "direct"},
    }
    (d / "config.json").write_text(json.dumps(cfg))
    sb = env.t.spawn(env.t.ns_origin, str(sing_box_binary()), "run", "-c", str(d / "config.json"))
    echo_port = free_port()
    echo = env.t.spawn(env.t.ns_origin, sys.executable, str(HERE / "udp_peer.py"), "server",
                       ORIGIN_IP4, ORIGIN_IP6, str(echo_port))
    wait_port(env.t.ns_origin, ORIGIN_IP4, SB_PORT)
    try:
        yield env, echo_port, log
    finally:
        for itf in env.api.singbox_interface_udp_dump(sw_if_index=0xFFFFFFFF):
            env.api.singbox_interface_udp_enable_disable(sw_if_index=itf.sw_if_index, enable=False)
        for itf in env.api.singbox_interface_dump(sw_if_index=0xFFFFFFFF):
            env.api.singbox_enable_disable(sw_if_index=itf.sw_if_index, enable_disable=False)
        for ep in env.api.singbox_endpoint_dump():
            env.api.singbox_endpoint_add_del(is_add=False, name=ep.name)
        sb.kill()
        echo.kill()


def enable(env: Env, password: str = "s3cret", udp: bool = True, **udp_kw: Any) -> int:
    r = env.api.singbox_set_endpoint(proxy_addr=ORIGIN_IP4, proxy_port=SB_PORT, protocol_type=0,
                                     username="vpp", password=password)
    assert r.retval == 0
    idx = sw_if_index(env, env.t.vpp_if_client)
    assert env.api.singbox_enable_disable(sw_if_index=idx, enable_disable=True).retval == 0
    if udp:
        r = env.api.singbox_interface_udp_enable_disable(sw_if_index=idx, enable=True, **udp_kw)
        assert r.retval == 0
    return idx


def flow(env: Env, host: str, port: int, count: int = 1, window: int = 1) -> dict[str, Any]:
    r = env.client(sys.executable, str(HERE / "udp_peer.py"), "flow", host, str(port), str(count),
                   str(window), timeout=120)
    assert r.returncode == 0, r.stderr.decode()
    out: dict[str, Any] = json.loads(r.stdout)
    return out


def udp_details(env: Env, idx: int) -> Any:
    d = env.api.singbox_interface_udp_dump(sw_if_index=idx)
    assert len(d) == 1
    return d[0]


def wait_for(cond: Any, what: Any, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, what() if callable(what) else what
        time.sleep(0.2)


def test_dns_through_sing_box(udp_upstream: tuple[Env, int, Path]) -> None:
    env, echo_port, log = udp_upstream
    # client mode for TCP only: UDP is routed as before
    idx = enable(env, udp=False)
    assert flow(env, ORIGIN_IP4, echo_port)["sources"] == [CLIENT_IP4]
    assert env.api.singbox_interface_udp_enable_disable(sw_if_index=idx, enable=True).retval == 0
    r = env.client(sys.executable, str(HERE / "udp_peer.py"), "dns", ORIGIN_IP4, "53",
                   "origin.test", timeout=30)
    assert r.returncode == 0, r.stderr.decode() + env.cli("show singbox udp flows")
    assert json.loads(r.stdout) == {"rcode": 0, "addresses": [ORIGIN_IP4]}
    # sing-box was asked for the original destination in the datagram's header
    wait_for(lambda: f"inbound packet connection to {ORIGIN_IP4}:53" in log.read_text(),
             lambda: log.read_text())
    flows = env.api.singbox_udp_flow_dump(sw_if_index=idx)
    assert len(flows) == 1, env.cli("show singbox udp flows")
    f = flows[0]
    assert (int(f.state), str(f.dst_addr), f.dst_port) == (FLOW_STATE_ASSOCIATED, ORIGIN_IP4, 53)
    assert (str(f.client_addr), str(f.relay_addr)) == (CLIENT_IP4, ORIGIN_IP4)
    assert f.relay_port not in (0, SB_PORT) and f.endpoint_name == "default"
    assert (f.packets_to_proxy, f.packets_from_proxy) == (1, 1)
    d = udp_details(env, idx)
    assert (d.flows, d.failures, d.active_flows) == (1, 0, 1)
    assert d.packets_to_proxy == 1 and d.packets_from_proxy == 1 and d.bytes_from_proxy > 0
    ep = env.api.singbox_endpoint_dump()[0]
    assert ep.connections == 1  # the association's control connection
    out = env.cli("show singbox udp flows")
    assert f"{CLIENT_IP4}:" in out and f"-> {ORIGIN_IP4}:53 associated" in out
    # clear-statistics for the interface clears its UDP counters; the open flow stays
    assert env.api.singbox_clear_stats(scope=2, sw_if_index=idx).retval == 0
    d = udp_details(env, idx)
    assert (d.flows, d.packets_to_proxy, d.bytes_from_proxy, d.active_flows) == (0, 0, 0, 1)


def test_quic_like_flow(udp_upstream: tuple[Env, int, Path]) -> None:
    """One long flow with many datagrams both ways, up to 1,200 bytes (QUIC's size), 16 in
    flight: every one comes back intact through sing-box, over one association."""
    env, echo_port, _log = udp_upstream
    idx = enable(env)
    out = flow(env, ORIGIN_IP4, echo_port, count=600, window=16)
    assert out["sources"] == [ORIGIN_IP4] and out["bad"] == 0, out
    # UDP may lose datagrams on a loaded machine; the relay must not lose many
    assert out["received"] >= 590, (out["received"], env.cli("show singbox udp flows"))
    d = udp_details(env, idx)
    assert d.flows == 1 and d.failures == 0
    assert d.packets_to_proxy == 600 and d.packets_from_proxy >= out["received"]
    f = env.api.singbox_udp_flow_dump(sw_if_index=idx)[0]
    assert f.bytes_to_proxy == sum(20 + (i * 97) % 1181 for i in range(600))
    # the same numbers in the stats segment, summed over the threads that relayed
    from vpp_papi.vpp_stats import VPPStats  # type: ignore[import-untyped]

    st = VPPStats(str(env.vpp.stats_sock))
    st.connect()
    try:
        to_proxy = st.get_counter("/singbox/client/interface/udp-to-proxy")
        assert sum(t[idx]["packets"] for t in to_proxy) == 600
        assert sum(t[idx]["bytes"] for t in to_proxy) == f.bytes_to_proxy
        assert st.get_counter("/singbox/client/interface/udp-flows")[:, idx].sum() == 1
        wait_for(lambda: st[f"/singbox/client/interface/{idx}/udp-active"] == 1,
                 "udp-active gauge")  # refreshed every second
    finally:
        st.disconnect()


def test_bypass_prefix_is_routed(udp_upstream: tuple[Env, int, Path]) -> None:
    env, echo_port, _log = udp_upstream
    idx = enable(env)
    assert flow(env, ORIGIN_IP4, echo_port)["sources"] == [ORIGIN_IP4]
    assert env.api.singbox_interface_bypass_add_del(sw_if_index=idx, is_add=True,
                                                    prefix=f"{ORIGIN_IP4}/32").retval == 0
    # a new flow to the bypassed destination is not intercepted; IPv6 still is
    assert flow(env, ORIGIN_IP4, echo_port)["sources"] == [CLIENT_IP4]
    assert flow(env, ORIGIN_IP6, echo_port)["sources"] == [ORIGIN_IP6]
    assert udp_details(env, idx).flows == 2


def test_ipv6_through_ipv4_endpoint(udp_upstream: tuple[Env, int, Path]) -> None:
    """An IPv6 flow through the IPv4 endpoint: the DST in the header is IPv6 (ATYP 4)."""
    env, echo_port, log = udp_upstream
    assert flow(env, ORIGIN_IP6, echo_port)["sources"] == [CLIENT_IP6]  # not enabled
    idx = enable(env)
    out = flow(env, ORIGIN_IP6, echo_port, count=50, window=8)
    assert out["sources"] == [ORIGIN_IP6] and out["received"] >= 48 and out["bad"] == 0, out
    wait_for(lambda: f"inbound packet connection to [{ORIGIN_IP6}]:{echo_port}"
             in log.read_text(), lambda: log.read_text())
    f = env.api.singbox_udp_flow_dump(sw_if_index=idx)[0]
    assert (str(f.client_addr), str(f.dst_addr)) == (CLIENT_IP6, ORIGIN_IP6)
    assert str(f.relay_addr) == ORIGIN_IP4


def test_idle_timeout_and_disable_end_flows(udp_upstream: tuple[Env, int, Path]) -> None:
    env, echo_port, _log = udp_upstream
    idx = enable(env, idle_timeout=2)
    assert flow(env, ORIGIN_IP4, echo_port)["sources"] == [ORIGIN_IP4]
    assert udp_details(env, idx).active_flows == 1
    wait_for(lambda: not env.api.singbox_udp_flow_dump(sw_if_index=idx),
             lambda: env.cli("show singbox udp flows"))
    assert udp_details(env, idx).active_flows == 0
    # the same 5-tuple again is a new flow with a new association
    assert flow(env, ORIGIN_IP4, echo_port)["sources"] == [ORIGIN_IP4]
    assert udp_details(env, idx).flows == 2
    # UDP relaying off: flows end, datagrams are routed again
    assert env.api.singbox_interface_udp_enable_disable(sw_if_index=idx, enable=False).retval == 0
    assert not env.api.singbox_udp_flow_dump(sw_if_index=0xFFFFFFFF)
    assert flow(env, ORIGIN_IP4, echo_port)["sources"] == [CLIENT_IP4]
    # and client mode off takes UDP relaying with it
    assert env.api.singbox_interface_udp_enable_disable(sw_if_index=idx, enable=True).retval == 0
    assert env.api.singbox_enable_disable(sw_if_index=idx, enable_disable=False).retval == 0
    assert not env.api.singbox_interface_udp_dump(sw_if_index=0xFFFFFFFF)


def test_refused_association_is_counted(udp_upstream: tuple[Env, int, Path]) -> None:
    env, echo_port, _log = udp_upstream
    idx = enable(env, password="wrong")
    r = env.client(sys.executable, str(HERE / "udp_peer.py"), "flow", ORIGIN_IP4,
                   str(echo_port), "1", "1", timeout=60)
    assert json.loads(r.stdout)["received"] == 0
    wait_for(lambda: udp_details(env, idx).failures == 1,
             lambda: env.cli("show singbox udp flows"))
    d = udp_details(env, idx)
    assert d.active_flows == 0 and d.packets_to_proxy == 0


def test_udp_needs_client_mode_and_valid_values(udp_upstream: tuple[Env, int, Path]) -> None:
    env, _port, _log = udp_upstream
    idx = sw_if_index(env, env.t.vpp_if_client)
    FEATURE_DISABLED, INVALID_VALUE = -30, -7
    r = env.api.singbox_interface_udp_enable_disable(sw_if_index=idx, enable=True)
    assert r.retval == FEATURE_DISABLED
    enable(env, udp=False)
    r = env.api.singbox_interface_udp_enable_disable(sw_if_index=idx, enable=True,
                                                     idle_timeout=86401)
    assert r.retval == INVALID_VALUE
    assert not env.api.singbox_interface_udp_dump(sw_if_index=0xFFFFFFFF)
    env.cli(f"singbox udp enable {env.t.vpp_if_client} idle-timeout 30 max-flows 10")
    d = udp_details(env, idx)
    assert (d.idle_timeout, d.max_flows) == (30, 10)
    assert "Idle timeout: 30s, max flows: 10" in env.cli("show singbox udp")
    help_text = env.cli("help singbox udp", check=False)
    for option in ("enable", "disable", "idle-timeout", "max-flows"):
        assert option in help_text, help_text
    env.cli(f"singbox udp disable {env.t.vpp_if_client}")
    assert not env.api.singbox_interface_udp_dump(sw_if_index=0xFFFFFFFF)


def test_max_flows_drops_datagrams_of_new_flows(udp_upstream: tuple[Env, int, Path]) -> None:
    env, echo_port, _log = udp_upstream
    idx = enable(env, max_flows=1)
    assert flow(env, ORIGIN_IP4, echo_port, count=3)["sources"] == [ORIGIN_IP4]  # flow 1, still open
    # a second flow (another source port) beyond max-flows: dropped, not routed around the proxy
    assert flow(env, ORIGIN_IP4, echo_port)["received"] == 0
    d = udp_details(env, idx)
    assert (d.flows, d.active_flows) == (1, 1) and d.dropped >= 1


def test_http_connect_endpoint_cannot_relay_udp(udp_upstream: tuple[Env, int, Path]) -> None:
    """UDP ASSOCIATE is SOCKS5's: through an HTTP CONNECT endpoint a flow fails, counted, and its datagrams are
    not routed around the proxy either."""
    env, echo_port, _log = udp_upstream
    assert env.api.singbox_endpoint_add_del(
        is_add=True, name="web", proxy_addr=ORIGIN_IP4, proxy_port=SB_PORT, protocol_type=1, username="",
        password="", priority=0, connect_timeout=5, health_check_enabled=False, health_check_interval=0,
        health_check_timeout=0, failure_threshold=0, recovery_threshold=0, table_id=0).retval == 0
    idx = sw_if_index(env, env.t.vpp_if_client)
    assert env.api.singbox_enable_disable(sw_if_index=idx, enable_disable=True, endpoint_name="web").retval == 0
    assert env.api.singbox_interface_udp_enable_disable(sw_if_index=idx, enable=True).retval == 0
    assert flow(env, ORIGIN_IP4, echo_port)["received"] == 0
    d = udp_details(env, idx)
    assert d.failures >= 1 and d.active_flows == 0 and d.packets_to_proxy == 0


def test_replies_not_from_the_destination_or_fragmented_are_dropped(env: Env) -> None:
    """A SOCKS5 relay (udp_peer.py badrelay) that answers each datagram with a fragment (FRAG 1, RFC 1928 §7: no
    reassembly), then with a header naming another source than the flow's destination, then with the echo: only
    the echo reaches the client, the other two are counted as dropped."""
    port = free_port()
    relay = env.t.spawn(env.t.ns_origin, sys.executable, str(HERE / "udp_peer.py"), "badrelay", ORIGIN_IP4,
                        str(port))
    wait_port(env.t.ns_origin, ORIGIN_IP4, port)
    try:
        r = env.api.singbox_set_endpoint(proxy_addr=ORIGIN_IP4, proxy_port=port, protocol_type=0,
                                         username="vpp", password="pw")
        assert r.retval == 0
        idx = sw_if_index(env, env.t.vpp_if_client)
        assert env.api.singbox_enable_disable(sw_if_index=idx, enable_disable=True).retval == 0
        assert env.api.singbox_interface_udp_enable_disable(sw_if_index=idx, enable=True).retval == 0
        # the relay echoes what it got: our own datagram, so the "source" the echo names is the client
        r = env.client(sys.executable, "-c", f"""
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(3)
s.sendto(b"ping", ("{ORIGIN_IP4}", 9999))
got = [s.recv(100)]
try:
    got.append(s.recv(100))
except socket.timeout:
    pass
print(got)
""", timeout=30)
        assert r.stdout.decode().strip() == "[b'ping']", r.stdout + r.stderr
        wait_for(lambda: udp_details(env, idx).dropped == 2, lambda: env.cli("show singbox udp flows"))
        d = udp_details(env, idx)
        assert (d.packets_to_proxy, d.packets_from_proxy) == (1, 1)
    finally:
        for itf in env.api.singbox_interface_dump(sw_if_index=0xFFFFFFFF):
            env.api.singbox_enable_disable(sw_if_index=itf.sw_if_index, enable_disable=False)
        for ep in env.api.singbox_endpoint_dump():
            env.api.singbox_endpoint_add_del(is_add=False, name=ep.name)
        relay.kill()


def test_udp_through_an_endpoint_group(udp_upstream: tuple[Env, int, Path]) -> None:
    """An interface relaying through an endpoint group: each UDP flow takes the member the group's policy picks,
    counted on it while the flow lives (as a TCP connection is)."""
    env, echo_port, _log = udp_upstream
    assert env.api.singbox_endpoint_add_del(
        is_add=True, name="sb", proxy_addr=ORIGIN_IP4, proxy_port=SB_PORT, protocol_type=0, username="vpp",
        password="s3cret", priority=0, connect_timeout=5, health_check_enabled=False, health_check_interval=0,
        health_check_timeout=0, failure_threshold=0, recovery_threshold=0, table_id=0).retval == 0
    r = env.api.singbox_endpoint_group_add_del(is_add=True, name="g", policy=2, n_members=1,
                                               members=[{"endpoint_name": "sb", "weight": 1, "priority": 0}])
    assert r.retval == 0, r
    idx = sw_if_index(env, env.t.vpp_if_client)
    try:
        assert env.api.singbox_interface_endpoint_group_enable(sw_if_index=idx, group_name="g",
                                                               max_connections=100).retval == 0
        assert env.api.singbox_interface_udp_enable_disable(sw_if_index=idx, enable=True,
                                                            idle_timeout=2).retval == 0
        assert flow(env, ORIGIN_IP4, echo_port, count=5)["sources"] == [ORIGIN_IP4]
        assert env.api.singbox_udp_flow_dump(sw_if_index=idx)[0].endpoint_name == "sb"

        def member() -> Any:
            g = [g for g in env.api.singbox_endpoint_group_dump() if g.name == "g"][0]
            return g.members[0]

        assert (member().connections, member().active_connections) == (1, 1)
        wait_for(lambda: member().active_connections == 0, "the flow's member released at its idle timeout")
    finally:
        env.api.singbox_enable_disable(sw_if_index=idx, enable_disable=False)
        env.api.singbox_endpoint_group_add_del(is_add=False, name="g", n_members=0, members=[])


def test_a_flow_to_a_port_vpp_uses_leaves_the_port_to_vpp(udp_upstream: tuple[Env, int, Path]) -> None:
    """A relayed flow has a session on its destination port in VPP's UDP transport. VPP's own resolver (server
    mode's name resolution, the dns plugin) takes its answers on UDP port 53053: a flow to that port must leave it
    to the resolver when it ends. The origin answers NXDOMAIN for nosuch.test at once; with the answer dropped VPP
    would wait its 5 s timeout."""
    env, _port, _log = udp_upstream
    echo = env.t.spawn(env.t.ns_origin, sys.executable, str(HERE / "udp_peer.py"), "server", ORIGIN_IP4,
                       ORIGIN_IP6, "53053")
    try:
        env.configure(dns_enabled=True, dns_server=ORIGIN_IP4)
        env.start()
        res = env.probe(VPP_CLIENT_IP4, "1080", "connect", "nosuch.test", "80")
        assert res.get("rep") == 0x04 and res["elapsed"] < 2.5, res
        idx = enable(env, idle_timeout=1)
        assert flow(env, ORIGIN_IP4, 53053)["sources"] == [ORIGIN_IP4]
        wait_for(lambda: not env.api.singbox_udp_flow_dump(sw_if_index=idx), "the flow's idle timeout")
        time.sleep(0.5)  # the flow's sessions are cleaned up after it ends
        res = env.probe(VPP_CLIENT_IP4, "1080", "connect", "nosuch.test", "80")
        assert res.get("rep") == 0x04 and res["elapsed"] < 2.5, res
    finally:
        echo.kill()


def test_fragmented_datagrams_are_relayed_not_routed_around_the_proxy(udp_upstream: tuple[Env, int, Path]) -> None:
    """A datagram larger than the link's MTU arrives in IP fragments: it is reassembled and relayed like any
    other (fragments passed on would reach the destination around the proxy)."""
    env, echo_port, _log = udp_upstream
    idx = enable(env)
    # VPP's af_packet interfaces say 9000 while the veths they sit on take 1500: VPP fragments to its MTU
    mtus = {i: int(env.cli(f"show interface {i}").splitlines()[1].split()[3].split("/")[0])
            for i in (env.t.vpp_if_client, env.t.vpp_if_origin)}
    for i in mtus:
        env.cli(f"set interface mtu 1500 {i}")
    try:
        relay_large(env, echo_port)
    finally:
        for i, mtu in mtus.items():
            env.cli(f"set interface mtu {mtu} {i}")
    assert udp_details(env, idx).packets_to_proxy == 2


def relay_large(env: Env, echo_port: int) -> None:
    for host in (ORIGIN_IP4, ORIGIN_IP6):
        r = env.client(sys.executable, "-c", f"""
import socket
fam = socket.AF_INET6 if ":" in "{host}" else socket.AF_INET
s = socket.socket(fam, socket.SOCK_DGRAM)
s.settimeout(5)
body = bytes(range(256)) * 16  # 4096 bytes: three fragments on a 1500-byte link
s.sendto(body, ("{host}", {echo_port}))
src, _, echoed = s.recv(65535).partition(b"|")
print(src.decode(), echoed == body)
""", timeout=30)
        assert r.stdout.decode().split() == [host, "True"], (r.stdout, r.stderr, env.cli("show singbox udp flows"))


def test_flow_is_in_the_agents_sessions_list(udp_upstream: tuple[Env, int, Path]) -> None:
    """A flow through sing-box is in the agent's operational sessions list (/singbox/sessions/session, protocol
    udp), read by the agent's own VPP adapter and valid against the model; disconnect-session refuses its id."""
    import libyang

    from singbox_agent.agent import oper
    from singbox_agent.agent.__main__ import default_api_json
    from singbox_agent.dataplane.base import is_udp_session_id
    from singbox_agent.dataplane.objects import DataplaneError, ErrorCode
    from singbox_agent.dataplane.vpp import VppDataplane

    env, echo_port, _log = udp_upstream
    idx = enable(env)
    assert flow(env, ORIGIN_IP4, echo_port, count=3)["sources"] == [ORIGIN_IP4]
    f = env.api.singbox_udp_flow_dump(sw_if_index=idx)[0]
    dp = VppDataplane(str(env.vpp.api_sock), default_api_json(), client_name="udpsess-test")
    dp.start()
    try:
        wait_for(lambda: dp.connected, "the agent's adapter connected to VPP")
        got = [s for s in dp.read_sessions() if s.protocol == "udp"]
        assert len(got) == 1, got
        s = got[0]
        assert is_udp_session_id(s.id) and s.id & ~(1 << 31) == f.flow_id
        assert (s.mode, s.state, s.interface, s.endpoint) == ("client", "established", env.t.vpp_if_client,
                                                              "default")
        assert (s.client_address, s.destination_address, s.destination_port) == (CLIENT_IP4, ORIGIN_IP4,
                                                                                  echo_port)
        assert (s.packets_from_client, s.packets_to_client) == (3, 3)
        assert s.bytes_from_client == f.bytes_to_proxy > 0 and s.bytes_to_client == f.bytes_from_proxy > 0
        # the agent's operational data of it, as the sessions callback builds it, valid against the model
        tree = oper.sessions(got)
        ctx = libyang.Context(f"{HERE.parent.parent / 'yang'}:/usr/share/yang/modules/sysrepo")
        try:
            ctx.load_module("vpp-singbox")
            text = json.dumps({"vpp-singbox:singbox": tree["singbox"]})
            data = ctx.parse_data_mem(text, "json", strict=True, validate_present=True)
            try:
                entry = data.print_dict()["singbox"]["sessions"]["session"][0]
            finally:
                data.free()
        finally:
            ctx.destroy()
        assert entry["id"] == s.id and entry["protocol"] == "udp" and entry["packets-to-client"] == 3
        assert entry["client-address"] == CLIENT_IP4 and entry["destination-port"] == echo_port
        with pytest.raises(DataplaneError, match="is a UDP flow") as exc:
            dp.disconnect_session(s.id)
        assert exc.value.code == ErrorCode.UNIMPLEMENTED
        assert len(env.api.singbox_udp_flow_dump(sw_if_index=idx)) == 1  # still there
    finally:
        dp.stop()


def _flow_thread(flow_id: int) -> int:
    """The thread that owns a flow: its id is generation << 32 | thread << 24 | index (plugin/API.md, "Threads")."""
    return (flow_id >> 24) & 0x7F


def _rx_thread(env: Env, itf: str) -> int:
    """The thread polling the interface's rx queue (`show interface rx-placement`)."""
    thread = -1
    for line in env.cli("show interface rx-placement").splitlines():
        if line.startswith("Thread "):
            thread = int(line.split()[1])
        elif line.split()[:1] == [itf]:
            return thread
    raise AssertionError(env.cli("show interface rx-placement"))


def _place_rx(env: Env, itf: str, thread: int) -> None:
    env.cli(f"set interface rx-placement {itf} queue 0 " + (f"worker {thread - 1}" if thread else "main"))
    assert _rx_thread(env, itf) == thread


def _send_from(env: Env, src_port: int, echo_port: int) -> None:
    """One datagram and its echo from the client's source port `src_port`: the same 5-tuple is the same flow."""
    r = env.client(sys.executable, "-c", f"""
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("{CLIENT_IP4}", {src_port}))
s.settimeout(15)  # a new flow's first datagram waits for its association (a loaded machine is slow)
s.sendto(b"hello", ("{ORIGIN_IP4}", {echo_port}))
print(s.recv(100).decode())
""", timeout=30)
    assert r.stdout.decode().strip() == f"{ORIGIN_IP4}|hello", (r.stdout, r.stderr)


def _thread_lines(env: Env) -> dict[int, int]:
    """`show singbox udp`'s per-thread flow counts ("thread 1: 2 flows", with workers)."""
    out: dict[int, int] = {}
    for line in env.cli("show singbox udp").splitlines():
        words = line.split()
        if len(words) == 4 and words[0] == "thread" and words[3] == "flows":
            out[int(words[1].rstrip(":"))] = int(words[2])
    return out


def test_flows_live_on_their_client_legs_thread(udp_upstream: tuple[Env, int, Path]) -> None:
    """Per-thread flow records (plugin/API.md, "Threads"): a flow lives on the thread whose rx queue took its first
    datagram (its client leg's), its id names that thread, and the API, the CLI and turning UDP off reach the flows
    of every thread. With workers the client interface's queue moves to another thread between two flows: each
    flow is then owned by a different thread, and the first one keeps relaying while its datagrams now land on the
    other thread, which hands them to the flow's (the relay leg's replies land on the origin interface's worker, a
    third thread for the flow on main). Fails on the old code with a worker: flow A's datagram after the move was
    dropped (udp-input: "wrong thread"), and flow ids named no thread."""
    env, echo_port, _log = udp_upstream
    idx = enable(env)
    itf = env.t.vpp_if_client
    first = _rx_thread(env, itf) if env.vpp.workers else 0
    # another thread for the second flow: the other worker, or main with one worker
    second = (first % env.vpp.workers) + 1 if env.vpp.workers > 1 else 0
    port_a, port_b = free_port(), free_port()
    try:
        _send_from(env, port_a, echo_port)
        (fa,) = env.api.singbox_udp_flow_dump(sw_if_index=idx)
        if env.vpp.workers:
            _place_rx(env, itf, second)
        _send_from(env, port_b, echo_port)
        # flow A again: its datagram lands on the new thread, and goes to the flow's (udp-input alone would drop
        # it: a connected session does not move once it is READY)
        _send_from(env, port_a, echo_port)
        flows = {f.client_port: f for f in env.api.singbox_udp_flow_dump(sw_if_index=idx)}
        assert set(flows) == {port_a, port_b}, env.cli("show singbox udp flows")
        assert flows[port_a].flow_id == fa.flow_id
        assert not fa.flow_id & (1 << 31), fa.flow_id  # the agent's UDP flow bit stays free
        assert _flow_thread(fa.flow_id) == first, (fa.flow_id, first, env.cli("show singbox udp flows"))
        assert (flows[port_a].packets_to_proxy, flows[port_a].packets_from_proxy) == (2, 2)
        assert _flow_thread(flows[port_b].flow_id) == (second if env.vpp.workers else 0), \
            env.cli("show singbox udp flows")
        d = udp_details(env, idx)
        assert (d.flows, d.active_flows, d.packets_to_proxy, d.packets_from_proxy) == (2, 2, 3, 3)
        if env.vpp.workers:
            per_thread = _thread_lines(env)
            assert set(per_thread) == set(range(env.vpp.workers + 1)), env.cli("show singbox udp")
            assert (per_thread[first], per_thread[second]) == (1, 1), per_thread
            assert f"thread {first}" in env.cli("show singbox udp flows")
        # UDP relaying off ends the flows of every thread
        assert env.api.singbox_interface_udp_enable_disable(sw_if_index=idx, enable=False).retval == 0
        assert not env.api.singbox_udp_flow_dump(sw_if_index=0xFFFFFFFF)
        assert env.api.singbox_interface_udp_enable_disable(sw_if_index=idx, enable=True).retval == 0
        d = udp_details(env, idx)
        assert (d.flows, d.active_flows) == (0, 0)
    finally:
        if env.vpp.workers:
            _place_rx(env, itf, first)


def test_concurrent_flows(udp_upstream: tuple[Env, int, Path]) -> None:
    """Flows started at the same time, each with datagrams in flight both ways, all relayed and counted; with
    workers their legs are on several threads at once (the plugin built with -DSINGBOX_THREAD_CHECKS=1 panics on a
    callback on the wrong thread)."""
    env, echo_port, _log = udp_upstream
    idx = enable(env)
    n, count = 8, 100
    procs = [subprocess.Popen(["ip", "netns", "exec", env.t.ns_client, sys.executable, str(HERE / "udp_peer.py"),
                               "flow", ORIGIN_IP4, str(echo_port), str(count), "8"], stdout=subprocess.PIPE)
             for _ in range(n)]
    outs = []
    try:
        for p in procs:
            out, _ = p.communicate(timeout=120)
            assert p.returncode == 0
            outs.append(json.loads(out))
    finally:
        for p in procs:
            p.kill()
            p.wait()
    for out in outs:
        assert out["sources"] == [ORIGIN_IP4] and out["bad"] == 0, out
        assert out["received"] >= count - 5, (out["received"], env.cli("show singbox udp flows"))
    flows = env.api.singbox_udp_flow_dump(sw_if_index=idx)
    assert len(flows) == n and len({f.flow_id for f in flows}) == n, env.cli("show singbox udp flows")
    assert all(f.packets_to_proxy == count for f in flows), env.cli("show singbox udp flows")
    d = udp_details(env, idx)
    assert (d.flows, d.active_flows, d.packets_to_proxy) == (n, n, n * count)
    assert d.packets_from_proxy == sum(f.packets_from_proxy for f in flows)

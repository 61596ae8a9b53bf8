# SPDX-License-Identifier: Apache-2.0
# Copyright (c) 2026 vpp-singbox authors
"""The dual-mode chain: a sing-box client -> VPP server mode -> VPP client
mode -> sing-box upstream -> origin.

Why two VPP instances here: this is the deployment of an edge appliance
running server mode whose upstream traffic is routed through a transparent
gateway running client mode (B intercepts A's upstream leg as it arrives).
Both modes in ONE VPP chain without interception: a server session routed
out of a client-mode interface takes that interface's upstream itself
(plugin/API.md "Proxy chain", tests/vpp/test_proxy_chain.py). So::

    [ns C] sing-box (mixed 127.0.0.1:2080, socks outbound, user "edge")
        | 198.18.1.2 -- 198.18.1.1
    [VPP A] server mode, listener 198.18.1.1:1080, auth required
        | 198.18.3.1 -- 198.18.3.2     (veth in the root ns, af_packet both ends)
    [VPP B] client mode enabled on the link from A, endpoint sing-box
        | 198.18.2.1 -- 198.18.2.2
    [ns O] sing-box upstream (socks inbound 198.18.2.2:1090, users, direct)
           origin HTTP/echo servers on 198.18.2.2

The origin's /whoami says who connected to it: 198.18.3.1 when B only
routes (A's upstream leg arrives unchanged) and 198.18.2.2 when B hands the
flow to sing-box. Everything is configured through vpp_papi, as the agent
does.
"""

from __future__ import annotations

import json
import secrets
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Iterator

import pytest

from .conftest import ECHO_PORT, HERE, HTTP_PORT, UDP_PORT, _skip_reason
from vpptopo import sing_box_binary
import vpptopo as vt

A_LINK_IP4 = "198.18.3.1"
B_LINK_IP4 = "198.18.3.2"
UPSTREAM_PORT = 1090
EDGE_PORT = 1080
MIXED_PORT = 2080


def _veth_to_vpp(vpp: vt.Vpp, ns: str, inner: str, outer: str, ip: str, gw: str, ip6: str,
                 gw6: str) -> None:
    """A namespace behind one VPP (the same wiring as vpptopo.Topology)."""
    vt.run(["ip", "link", "add", inner, "type", "veth", "peer", "name", outer])
    vt.run(["ip", "link", "set", inner, "netns", ns])
    vt.run(["ip", "link", "set", outer, "up"])
    for cmd in (["ip", "link", "set", "lo", "up"], ["ip", "link", "set", inner, "up"],
                ["ip", "addr", "add", f"{ip}/24", "dev", inner],
                ["ip", "-6", "addr", "add", f"{ip6}/64", "dev", inner, "nodad"],
                ["ip", "route", "add", "198.18.0.0/15", "via", gw]):
        vt.run(vt.ns_cmd(ns, *cmd))
    vpp.cli(f"create host-interface name {outer}")
    vpp.cli(f"set interface state host-{outer} up")
    vpp.cli(f"set interface ip address host-{outer} {gw}/24")
    vpp.cli(f"set interface ip address host-{outer} {gw6}/64")


def _papi(vpp: vt.Vpp, name: str) -> Any:
    from vpp_papi import VPPApiClient  # type: ignore[import-untyped]

    c = VPPApiClient(server_address=str(vpp.api_sock), bootstrapapi=True, read_timeout=10)
    c.connect(name)
    return c


def _sw_if_index(api: Any, name: str) -> int:
    for itf in api.sw_interface_dump():
        if itf.interface_name == name:
            return int(itf.sw_if_index)
    raise AssertionError(f"{name} not in VPP")


def _wait_ping(vpp: vt.Vpp, ip: str) -> None:
    deadline = time.monotonic() + 15
    while "bytes from" not in vpp.cli(f"ping {ip} repeat 1", check=False):
        assert time.monotonic() < deadline, f"VPP does not reach {ip}"
        time.sleep(0.3)


class Chain:
    """Two VPPs, two namespaces, two sing-boxes (see the module docstring)."""

    def __init__(self) -> None:
        # pids are tiny in scripts/in-env's pid namespace: names must not
        # collide with another run's in the shared network namespace
        tag = f"dm{secrets.token_hex(2)}"
        self.ns_client, self.ns_origin = f"{tag}c", f"{tag}o"
        self.links: list[str] = []
        self.namespaces: list[str] = []
        self.procs: list[subprocess.Popen[bytes]] = []
        self.papis: list[Any] = []
        self.vpps: list[vt.Vpp] = []
        self.dir = Path(tempfile.mkdtemp(prefix="sbx-dual-"))
        try:
            self.a = vt.Vpp()
            self.vpps.append(self.a)
            self.b = vt.Vpp()
            self.vpps.append(self.b)
            for ns in (self.ns_client, self.ns_origin):
                vt.run(["ip", "netns", "add", ns])
                self.namespaces.append(ns)
            _veth_to_vpp(self.a, self.ns_client, f"{tag}c0", f"{tag}c1", vt.CLIENT_IP4,
                         vt.VPP_CLIENT_IP4, vt.CLIENT_IP6, vt.VPP_CLIENT_IP6)
            self.links.append(f"{tag}c1")
            _veth_to_vpp(self.b, self.ns_origin, f"{tag}o0", f"{tag}o1", vt.ORIGIN_IP4,
                         vt.VPP_ORIGIN_IP4, vt.ORIGIN_IP6, vt.VPP_ORIGIN_IP6)
            self.links.append(f"{tag}o1")
            la, lb = f"{tag}la", f"{tag}lb"
            vt.run(["ip", "link", "add", la, "type", "veth", "peer", "name", lb])
            self.links.append(la)
            for link, vpp, ip in ((la, self.a, A_LINK_IP4), (lb, self.b, B_LINK_IP4)):
                # Linux keeps out of the link: no IPv6 autoconfiguration noise
                vt.run(["sysctl", "-qw", f"net.ipv6.conf.{link}.disable_ipv6=1"], check=False)
                vt.run(["ip", "link", "set", link, "up"])
                vpp.cli(f"create host-interface name {link}")
                vpp.cli(f"set interface state host-{link} up")
                vpp.cli(f"set interface ip address host-{link} {ip}/24")
            self.a_link, self.b_link = f"host-{la}", f"host-{lb}"
            self.a.cli(f"ip route add 198.18.2.0/24 via {B_LINK_IP4}")
            for vpp, ip in ((self.a, vt.CLIENT_IP4), (self.a, B_LINK_IP4),
                            (self.b, vt.ORIGIN_IP4), (self.b, A_LINK_IP4)):
                _wait_ping(vpp, ip)
            self.spawn(self.ns_origin, sys.executable, str(HERE / "origin.py"), vt.ORIGIN_IP4,
                       vt.ORIGIN_IP6, str(HTTP_PORT), str(ECHO_PORT), str(UDP_PORT))
            vt.wait_port(self.ns_origin, vt.ORIGIN_IP4, HTTP_PORT)
            vt.wait_port(self.ns_origin, vt.ORIGIN_IP4, ECHO_PORT)
            self.api_a = self._connect(self.a, "sbx-dual-a")
            self.api_b = self._connect(self.b, "sbx-dual-b")
        except Exception:
            self.close()
            raise

    def _connect(self, vpp: vt.Vpp, name: str) -> Any:
        c = _papi(vpp, name)
        self.papis.append(c)
        return c.api

    def spawn(self, ns: str, *cmd: str) -> subprocess.Popen[bytes]:
        p = subprocess.Popen(vt.ns_cmd(ns, *cmd), start_new_session=True,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.procs.append(p)
        return p

    def sing_box(self, ns: str, name: str, cfg: dict[str, Any]) -> Path:
        """Start a sing-box; returns its log file."""
        log = self.dir / f"{name}.log"
        cfg["log"] = {"level": "info", "output": str(log), "timestamp": False}
        conf = self.dir / f"{name}.json"
        conf.write_text(json.dumps(cfg))
        self.spawn(ns, str(sing_box_binary()), "run", "-c", str(conf))
        return log

    def edge(self, auth: bool) -> None:
        """VPP A in server mode on the LAN side, as the agent configures it."""
        a = self.api_a
        assert a.singbox_server_config(
            auth_required=auth, allow_connect=True, allow_udp_associate=False, max_sessions=64,
            handshake_timeout=10, idle_timeout=60, connect_timeout=10, udp_idle_timeout=60,
            udp_public_address="0.0.0.0", dns_enabled=False, dns_server="0.0.0.0",
            dns_server_port=0).retval == 0
        if auth:
            assert a.singbox_server_user_add_del(is_add=True, username="edge",
                                                 password="edgepass").retval == 0
        assert a.singbox_server_listener_add_del(is_add=True, name="lan",
                                                 addr=vt.VPP_CLIENT_IP4, port=EDGE_PORT,
                                                 table_id=0).retval == 0
        assert a.singbox_server_enable_disable(enable=True).retval == 0

    def upstream(self) -> Path:
        """The sing-box behind VPP B (users, direct outbound); returns its log."""
        log = self.sing_box(self.ns_origin, "upstream", {
            "inbounds": [{"type": "socks", "tag": "gw", "listen": vt.ORIGIN_IP4,
                          "listen_port": UPSTREAM_PORT,
                          "users": [{"username": "gw", "password": "gwpass"}]}],
            "outbounds": [{"type": "direct", "tag": "direct"}],
            "route": {"final": "direct"}})
        vt.wait_port(self.ns_origin, vt.ORIGIN_IP4, UPSTREAM_PORT)
        return log

    def gateway(self, password: str) -> int:
        """VPP B relays what arrives from A through the upstream sing-box; returns the
        sw_if_index of its link to A."""
        b = self.api_b
        assert b.singbox_endpoint_add_del(
            is_add=True, name="sb", proxy_addr=vt.ORIGIN_IP4, proxy_port=UPSTREAM_PORT,
            protocol_type=0, username="gw", password=password, priority=0, connect_timeout=5,
            health_check_enabled=False, health_check_interval=0, health_check_timeout=0,
            failure_threshold=0, recovery_threshold=0, table_id=0).retval == 0
        b_link = _sw_if_index(b, self.b_link)
        assert b.singbox_enable_disable(sw_if_index=b_link, enable_disable=True,
                                        endpoint_name="sb").retval == 0
        return b_link

    def curl(self, path: str) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run(
            vt.ns_cmd(self.ns_client, "curl", "-sS", "-m", "15", "--socks5",
                      f"127.0.0.1:{MIXED_PORT}", f"http://{vt.ORIGIN_IP4}:{HTTP_PORT}{path}"),
            capture_output=True, timeout=20)

    def close(self) -> None:
        for c in self.papis:
            try:
                c.disconnect()
            except Exception:
                pass
        for p in self.procs:
            if p.poll() is None:
                p.kill()
                p.wait(5)
        for link in self.links:
            subprocess.run(["ip", "link", "del", link], capture_output=True)
        for ns in self.namespaces:
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)
        for vpp in self.vpps:
            vpp.close()


@pytest.fixture
def chain() -> Iterator[Chain]:
    reason = _skip_reason()
    if reason:
        pytest.skip(reason)
    sing_box_binary()  # skips when sing-box is missing
    c = Chain()
    try:
        yield c
        for vpp in c.vpps:
            assert vpp.alive(), "VPP died:\n" + vpp.log.read_text()[-3000:]
    finally:
        c.close()


def _wait(cond: Any, what: str, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, what
        time.sleep(0.2)


def test_sing_box_to_vpp_server_to_vpp_client_to_sing_box(chain: Chain) -> None:
    c = chain
    a, b = c.api_a, c.api_b
    c.edge(auth=True)
    # the client's sing-box: everything to VPP A's SOCKS5 server
    c.sing_box(c.ns_client, "client", {
        "inbounds": [{"type": "mixed", "tag": "in", "listen": "127.0.0.1",
                      "listen_port": MIXED_PORT}],
        "outbounds": [{"type": "socks", "tag": "edge", "server": vt.VPP_CLIENT_IP4,
                       "server_port": EDGE_PORT, "version": "5", "username": "edge",
                       "password": "edgepass"}],
        "route": {"final": "edge"}})
    vt.wait_port(c.ns_client, "127.0.0.1", MIXED_PORT)
    up_log = c.upstream()

    # B only routes yet: the origin sees A's upstream leg itself
    r = c.curl("/whoami")
    assert r.returncode == 0 and r.stdout.decode().strip() == A_LINK_IP4, r

    # the gateway: VPP B relays what arrives from A through sing-box
    b_link = c.gateway("gwpass")

    r = c.curl("/whoami")
    assert r.returncode == 0 and r.stdout.decode().strip() == vt.ORIGIN_IP4, r
    r = c.curl("/bytes/300000")
    assert r.returncode == 0 and len(r.stdout) == 300000, r.stderr
    r = subprocess.run(
        vt.ns_cmd(c.ns_client, "ncat", "--proxy-type", "socks5", "--proxy",
                  f"127.0.0.1:{MIXED_PORT}", vt.ORIGIN_IP4, str(ECHO_PORT)),
        input=b"through both modes\n", capture_output=True, timeout=20)
    assert r.stdout == b"through both modes\n", r.stderr

    # the upstream sing-box was asked for the original destinations, by VPP B
    _wait(lambda: f"{vt.ORIGIN_IP4}:{ECHO_PORT}" in up_log.read_text(),
          "upstream sing-box log has no echo connection")
    log = up_log.read_text()
    assert f"inbound connection to {vt.ORIGIN_IP4}:{HTTP_PORT}" in log, log
    assert f"inbound connection to {vt.ORIGIN_IP4}:{ECHO_PORT}" in log, log
    assert f"inbound connection from {vt.VPP_ORIGIN_IP4}:" in log, log

    # each VPP accounted its own leg: A 4 SOCKS5 sessions, B 3 relayed flows
    st = a.singbox_server_get_stats()
    assert st.retval == 0 and st.accepted == 4 and st.auth_failures == 0, st
    users = {u.username: u.sessions for u in a.singbox_server_user_dump()}
    assert users == {"edge": 4}, users
    bst = b.singbox_get_stats(sw_if_index=b_link)
    assert bst.retval == 0 and bst.total_connections == 3, bst
    assert bst.connection_failures == 0, bst
    _wait(lambda: b.singbox_get_stats(sw_if_index=b_link).active_connections == 0,
          "B's relayed flows did not end")
    assert b.singbox_get_stats(sw_if_index=b_link).bytes_redirected > 300000
    _wait(lambda: not list(a.singbox_session_dump(mode=1, sw_if_index=0xFFFFFFFF)),
          "A's SOCKS5 sessions did not end")


def test_chain_upstream_refusal_reaches_the_edge_client(chain: Chain) -> None:
    """B's upstream refuses (wrong password): B resets A's upstream leg, A
    answers its client, and neither VPP keeps a session."""
    c = chain
    a, b = c.api_a, c.api_b
    c.edge(auth=False)
    c.upstream()
    b_link = c.gateway("wrong")
    # curl speaks SOCKS5 to A directly; A's CONNECT succeeds (B completes the
    # TCP handshake before it knows the upstream's answer), then B resets
    r = subprocess.run(
        vt.ns_cmd(c.ns_client, "curl", "-sS", "-m", "10", "--socks5",
                  f"{vt.VPP_CLIENT_IP4}:{EDGE_PORT}", f"http://{vt.ORIGIN_IP4}:{HTTP_PORT}/"),
        capture_output=True, timeout=15)
    assert r.returncode != 0 and b"hello" not in r.stdout, r
    _wait(lambda: b.singbox_get_stats(sw_if_index=b_link).connection_failures == 1,
          "B did not count the refusal")
    _wait(lambda: not list(a.singbox_session_dump(mode=1, sw_if_index=0xFFFFFFFF)),
          "A kept the session after B's reset")

# SPDX-License-Identifier: Apache-2.0
# Copyright (c) 2026 vpp-singbox authors
"""The manual's proxy chain in ONE VPP (section "6. Proxy Chain (Both Modes)"):

    [SOCKS5 client, ns C] -> [VPP server mode 198.18.1.1:1080, auth]
        -> [VPP client mode's upstream of the interface towards ns O]
        -> [sing-box, ns O, socks inbound 198.18.2.2:1090, its own users]
        -> origin (ns O)

A server session whose destination is routed out of an interface with client
mode enabled goes through that interface's upstream (or every CONNECT when the
server has an explicit upstream interface: `singbox server upstream <if>`).
The origin's /whoami tells who connected to it: sing-box (198.18.2.2, it runs
in the origin namespace) through the chain, VPP (198.18.2.1) directly.
sing-box's log (level info) names each destination it is asked for and who
asked.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Iterator

import pytest

from .conftest import CLOSED_PORT, ECHO_PORT, HERE, HTTP_PORT, Env, sw_if_index
from vpptopo import ORIGIN_IP4, VPP_CLIENT_IP4, VPP_ORIGIN_IP4, sing_box_binary, wait_port

SB_PORT = 1090
SB_USER, SB_PASS = "upstream", "pass2"
NO_UPSTREAM_PORT = 1093  # nothing listens there


class Chain:
    def __init__(self, env: Env, log: Path) -> None:
        self.env = env
        self.log = log
        self.origin_if = sw_if_index(env, env.t.vpp_if_origin)

    def endpoint(self, password: str = SB_PASS, port: int = SB_PORT, name: str = "up",
                 protocol: int = 0, enable: bool = True) -> None:
        """The manual's `singbox set endpoint ... socks5 username upstream password pass2`,
        as a named endpoint (protocol 1: HTTP CONNECT), and `singbox enable <interface towards
        the origin>`."""
        api = self.env.api
        assert api.singbox_endpoint_add_del(
            is_add=True, name=name, proxy_addr=ORIGIN_IP4, proxy_port=port, protocol_type=protocol,
            username=SB_USER, password=password, priority=0, connect_timeout=5,
            health_check_enabled=False, health_check_interval=0, health_check_timeout=0,
            failure_threshold=0, recovery_threshold=0, table_id=0).retval == 0
        if enable:
            assert api.singbox_enable_disable(sw_if_index=self.origin_if, enable_disable=True,
                                              endpoint_name=name).retval == 0

    def server(self, **kw: Any) -> None:
        """The manual's `singbox server start 0.0.0.0:8080 auth username client password pass1`
        (on 198.18.1.1:1080)."""
        assert self.env.api.singbox_server_user_add_del(is_add=True, username="client",
                                                        password="pass1").retval == 0
        self.env.configure(auth_required=True, **kw)
        self.env.start()

    def ep(self) -> Any:
        return {e.name: e for e in self.env.api.singbox_endpoint_dump()}["up"]

    def probe(self, dst: str, port: int) -> dict[str, Any]:
        return self.env.probe(VPP_CLIENT_IP4, "1080", "connect", dst, str(port), "client", "pass1")

    def whoami(self) -> tuple[int, str]:
        r = self.env.client("curl", "-sS", "-m", "15", "--socks5", f"{VPP_CLIENT_IP4}:1080",
                            "-U", "client:pass1", f"http://{ORIGIN_IP4}:{HTTP_PORT}/whoami",
                            timeout=20)
        return r.returncode, r.stdout.decode().strip()

    def wait_log(self, text: str) -> None:
        deadline = time.monotonic() + 10
        while text not in self.log.read_text():
            assert time.monotonic() < deadline, f"{text!r} not in sing-box's log:\n" + self.log.read_text()
            time.sleep(0.2)


@pytest.fixture
def chain(env: Env) -> Iterator[Chain]:
    """sing-box with a password-protected socks inbound in the origin namespace; it resolves
    names with the origin's DNS server ("origin.test")."""
    d = Path(tempfile.mkdtemp(prefix="sbx-chain-"))
    log = d / "sing-box.log"
    cfg = {
        "log": {"level": "info", "output": str(log), "timestamp": False},
        "dns": {"servers": [{"type": "udp", "tag": "origin", "server": ORIGIN_IP4,
                             "server_port": 53}]},
        # mixed: SOCKS5 and HTTP CONNECT on one port, the same users
        "inbounds": [{"type": "mixed", "tag": "in", "listen": ORIGIN_IP4, "listen_port": SB_PORT,
                      "users": [{"username": SB_USER, "password": SB_PASS}]}],
        "outbounds": [{"type": "direct", "tag": "direct"}],
        "route": {"final": "direct", "default_domain_resolver": "origin"},
    }
    (d / "config.json").write_text(json.dumps(cfg))
    p = env.t.spawn(env.t.ns_origin, str(sing_box_binary()), "run", "-c", str(d / "config.json"))
    wait_port(env.t.ns_origin, ORIGIN_IP4, SB_PORT)
    c = Chain(env, log)
    try:
        yield c
    finally:
        env.api.singbox_server_set_upstream(sw_if_index=0xFFFFFFFF)
        for itf in env.api.singbox_interface_dump(sw_if_index=0xFFFFFFFF):
            env.api.singbox_enable_disable(sw_if_index=itf.sw_if_index, enable_disable=False)
        for g in env.api.singbox_endpoint_group_dump():
            env.api.singbox_endpoint_group_add_del(is_add=False, name=g.name, n_members=0, members=[])
        for ep in env.api.singbox_endpoint_dump():
            env.api.singbox_endpoint_add_del(is_add=False, name=ep.name)
        p.kill()


def test_manual_chain_goes_through_the_upstream(chain: Chain) -> None:
    """The manual's three commands: a server session to a destination behind the client-mode
    interface reaches it through sing-box, with the upstream's credentials; counted by the server
    (accepted, bytes, the user) and by the endpoint (connections)."""
    env = chain.env
    chain.endpoint()
    chain.server()
    assert chain.whoami() == (0, ORIGIN_IP4)  # sing-box connected, not VPP (198.18.2.1)
    chain.wait_log(f"inbound connection to {ORIGIN_IP4}:{HTTP_PORT}")
    chain.wait_log(f"inbound connection from {VPP_ORIGIN_IP4}:")
    # bulk data both ways through the crossed legs
    r = env.client("curl", "-sS", "-m", "20", "--socks5", f"{VPP_CLIENT_IP4}:1080", "-U",
                   "client:pass1", f"http://{ORIGIN_IP4}:{HTTP_PORT}/bytes/1000000", "-o",
                   "/dev/null", "-w", "%{size_download}", timeout=25)
    assert r.returncode == 0 and r.stdout == b"1000000", r.stderr
    env.wait_no_sessions()  # a session's last bytes are counted when it ends
    st = env.stats()
    assert st["accepted"] == 2 and st["connect_failures"] == 0, st
    assert st["bytes_to_client"] >= 1000000, st
    assert {u.username: u.sessions for u in env.api.singbox_server_user_dump()}["client"] == 2
    ep = chain.ep()
    assert ep.connections == 2 and ep.failures == 0, ep
    # no flow was intercepted: the interface's own counters stay at zero
    assert env.api.singbox_get_stats(sw_if_index=chain.origin_if).total_connections == 0


def test_chained_session_shows_its_endpoint(chain: Chain) -> None:
    """While it relays, the server session names its endpoint (API dump and show)."""
    env = chain.env
    chain.endpoint()
    env.configure()  # socks_probe's idle mode sends no credentials
    env.start()
    holder = env.t.spawn(env.t.ns_client, sys.executable, str(HERE / "socks_probe.py"),
                         VPP_CLIENT_IP4, "1080", "idle", ORIGIN_IP4, str(ECHO_PORT), "30")
    try:
        deadline = time.monotonic() + 15
        while not [s for s in env.sessions() if s.state == 5]:  # established
            assert time.monotonic() < deadline, env.cli("show singbox sessions verbose")
            time.sleep(0.2)
        (s,) = env.sessions()
        assert s.endpoint_index == chain.ep().endpoint_index
        assert "via endpoint up" in env.cli("show singbox sessions verbose")
    finally:
        holder.kill()


def test_upstream_refusals_reach_the_client_as_rep(chain: Chain) -> None:
    """The upstream's REP for the destination is passed on as is; our own failures towards the
    upstream (its credentials refused, the proxy unreachable) are a general failure (0x01), not a
    refusal by the destination. Each counts as a connect failure of the server and a failure of
    the endpoint."""
    env = chain.env
    chain.server()
    # what sing-box itself answers for a closed port of the origin
    direct = env.t.run_in(env.t.ns_origin, sys.executable, str(HERE / "socks_probe.py"),
                          ORIGIN_IP4, str(SB_PORT), "connect", ORIGIN_IP4, str(CLOSED_PORT),
                          SB_USER, SB_PASS, timeout=40)
    sb_rep = json.loads(direct.stdout)["rep"]
    assert sb_rep != 0
    chain.endpoint()
    assert chain.probe(ORIGIN_IP4, CLOSED_PORT)["rep"] == sb_rep
    assert chain.ep().failures == 1
    chain.wait_log(f"inbound connection to {ORIGIN_IP4}:{CLOSED_PORT}")
    # the upstream refuses our credentials
    chain.endpoint(password="wrong")
    assert chain.probe(ORIGIN_IP4, HTTP_PORT)["rep"] == 1
    assert chain.ep().failures == 2  # replaced in place: its counters go on
    # the upstream is not there
    chain.endpoint(port=NO_UPSTREAM_PORT)
    assert chain.probe(ORIGIN_IP4, HTTP_PORT)["rep"] == 1
    assert chain.ep().failures == 3
    st = env.stats()
    assert st["connect_failures"] == 3, st
    env.wait_no_sessions()


def test_bypass_and_the_proxy_itself_go_direct(chain: Chain) -> None:
    """A destination in the interface's bypass prefixes, or the upstream proxy itself, connects
    directly (VPP is the origin's peer), as it would for a host behind the interface."""
    env = chain.env
    chain.endpoint()
    chain.server()
    assert chain.probe(ORIGIN_IP4, SB_PORT)["rep"] == 0  # sing-box itself, directly
    assert chain.ep().connections == 0
    assert env.api.singbox_interface_bypass_add_del(
        sw_if_index=chain.origin_if, is_add=True, prefix=f"{ORIGIN_IP4}/32").retval == 0
    assert chain.whoami() == (0, VPP_ORIGIN_IP4)
    assert chain.ep().connections == 0
    env.wait_no_sessions()


def test_names_go_to_the_upstream_unresolved_or_resolved_by_route(chain: Chain) -> None:
    """The upstream CONNECT carries the name the client asked for. With an explicit upstream
    interface VPP never resolves it (no DNS configured); by route, VPP resolves it to find the
    route and still sends the name."""
    env = chain.env
    chain.endpoint()
    chain.server()
    # by route without DNS in VPP: names are refused, as before
    assert chain.probe("origin.test", HTTP_PORT)["rep"] == 8
    assert "Upstream: by route" in env.cli("show singbox server")
    assert env.api.singbox_server_set_upstream(sw_if_index=chain.origin_if).retval == 0
    assert env.api.singbox_server_dump()[0].upstream_sw_if_index == chain.origin_if
    assert "resolved by the upstream" in env.cli("show singbox server")
    assert chain.probe("origin.test", HTTP_PORT)["rep"] == 0
    chain.wait_log(f"inbound connection to origin.test:{HTTP_PORT}")
    assert chain.ep().connections == 1
    # by route, VPP's resolver (the origin's DNS) finds the route out of the client-mode interface
    assert env.api.singbox_server_set_upstream(sw_if_index=0xFFFFFFFF).retval == 0
    env.configure(auth_required=True, dns_enabled=True, dns_server=ORIGIN_IP4, dns_server_port=53)
    assert chain.probe("origin.test", ECHO_PORT)["rep"] == 0
    chain.wait_log(f"inbound connection to origin.test:{ECHO_PORT}")
    assert chain.ep().connections == 2
    env.wait_no_sessions()


def test_explicit_upstream_without_client_mode_fails_closed(chain: Chain) -> None:
    """An explicit upstream interface without client mode: CONNECTs fail (0x01), never direct;
    a bad interface index is refused and changes nothing."""
    env = chain.env
    chain.server()
    assert env.api.singbox_server_set_upstream(sw_if_index=12345).retval != 0
    assert env.api.singbox_server_dump()[0].upstream_sw_if_index == 0xFFFFFFFF
    assert chain.whoami() == (0, VPP_ORIGIN_IP4)  # no client mode anywhere: direct
    assert env.api.singbox_server_set_upstream(sw_if_index=chain.origin_if).retval == 0
    assert chain.probe(ORIGIN_IP4, HTTP_PORT)["rep"] == 1
    assert env.stats()["connect_failures"] == 1
    env.wait_no_sessions()


def test_cli_server_upstream(chain: Chain) -> None:
    env = chain.env
    env.cli(f"singbox server upstream {env.t.vpp_if_origin}")
    assert f"Upstream: {env.t.vpp_if_origin}'s client-mode upstream" in env.cli("show singbox server")
    env.cli("singbox server upstream route")
    assert "Upstream: by route" in env.cli("show singbox server")
    assert "expected <interface> or route" in env.cli("singbox server upstream nonsense", check=False)


def test_the_manuals_cli_commands(chain: Chain) -> None:
    """Section 6 of the product manual, word for word but for the addresses: the three CLI commands chain a SOCKS5
    client through VPP's server and client modes to the upstream proxy, with both users' credentials."""
    env = chain.env
    env.cli("singbox server start 0.0.0.0:8080 auth username client password pass1")
    env.cli(f"singbox set endpoint {ORIGIN_IP4}:{SB_PORT} socks5 username {SB_USER} password {SB_PASS}")
    env.cli(f"singbox enable {env.t.vpp_if_origin}")
    r = env.client("curl", "-sS", "-m", "15", "--socks5", f"{VPP_CLIENT_IP4}:8080", "-U", "client:pass1",
                   f"http://{ORIGIN_IP4}:{HTTP_PORT}/whoami", timeout=20)
    assert (r.returncode, r.stdout.decode().strip()) == (0, ORIGIN_IP4), r.stderr
    chain.wait_log(f"inbound connection to {ORIGIN_IP4}:{HTTP_PORT}")
    assert "Upstream: by route" in env.cli("show singbox server")


def test_endpoint_group_balances_chained_sessions(chain: Chain) -> None:
    """The interface's endpoint group picks the chained sessions' upstream by its policy (weighted
    round-robin 1:1 here) and counts them per member."""
    env = chain.env
    chain.endpoint(name="a", enable=False)
    chain.endpoint(name="b", enable=False)
    members = [{"endpoint_name": n, "weight": 1, "priority": 0} for n in ("a", "b")]
    assert env.api.singbox_endpoint_group_add_del(is_add=True, name="g", policy=2, n_members=2,
                                                  members=members).retval == 0
    assert env.api.singbox_interface_endpoint_group_enable(
        sw_if_index=chain.origin_if, group_name="g", max_connections=0).retval == 0
    chain.server()
    for _ in range(4):
        assert chain.whoami() == (0, ORIGIN_IP4)
    env.wait_no_sessions()
    (g,) = env.api.singbox_endpoint_group_dump()
    got = {m.endpoint_name: (m.connections, m.active_connections) for m in g.members[: g.n_members]}
    assert got == {"a": (2, 0), "b": (2, 0)}, got
    assert {e.name: e.connections for e in env.api.singbox_endpoint_dump()} == {"a": 2, "b": 2}


def test_http_connect_both_sides(chain: Chain) -> None:
    """An HTTP CONNECT client of the server, chained through an HTTP CONNECT endpoint (sing-box's
    mixed inbound): Basic credentials on both legs; a refusal of the upstream comes back as 502."""
    env = chain.env
    chain.endpoint(protocol=1)
    chain.server()
    r = env.client("curl", "-sS", "-m", "15", "-p", "-x", f"http://{VPP_CLIENT_IP4}:1080",
                   "-U", "client:pass1", f"http://{ORIGIN_IP4}:{HTTP_PORT}/whoami", timeout=20)
    assert (r.returncode, r.stdout.decode().strip()) == (0, ORIGIN_IP4), r.stderr
    chain.wait_log(f"inbound connection to {ORIGIN_IP4}:{HTTP_PORT}")
    assert chain.ep().connections == 1
    chain.endpoint(protocol=1, password="wrong")
    r = env.client("curl", "-sS", "-m", "15", "-p", "-x", f"http://{VPP_CLIENT_IP4}:1080",
                   "-U", "client:pass1", "-o", "/dev/null", "-w", "%{http_connect}",
                   f"http://{ORIGIN_IP4}:{HTTP_PORT}/whoami", timeout=20)
    assert r.stdout.decode() == "502", (r.stdout, r.stderr)
    assert chain.ep().failures == 1
    env.wait_no_sessions()

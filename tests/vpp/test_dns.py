# SPDX-License-Identifier: Apache-2.0
# Copyright (c) 2026 vpp-singbox authors
"""Names resolved through VPP's dns plugin (singbox_dns.c): server mode's ATYP 3 destinations (CONNECT and
UDP ASSOCIATE) when VPP's resolver is not configured, and client mode's endpoint host names looked up again
every health-check interval (a tiny DNS server of our own, moving_dns.py, whose answer changes)."""

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

from .conftest import ECHO_PORT, HERE, HTTP_PORT, UDP_PORT, Env, sw_if_index
from .test_vpp_client import SB_PORT
from vpptopo import ORIGIN_IP4, ORIGIN_IP6, VPP_CLIENT_IP4, sing_box_binary, wait_port

PROXY = f"{VPP_CLIENT_IP4}:1080"
# in the origin namespace, next to ORIGIN_IP4 (the endpoint's first address)
MOVED_IP4 = "198.18.2.3"
DNS_IP4 = "198.18.2.4"


def _counter(env: Env, name: str) -> int:
    from vpp_papi.vpp_stats import VPPStats  # type: ignore[import-untyped]

    st = VPPStats(str(env.vpp.stats_sock))
    st.connect()
    try:
        return int(st.get_counter(name)[:, 0].sum())
    finally:
        st.disconnect()


def _resolver_without_name_server(env: Env) -> None:
    """VPP's resolver enabled, then its only name server removed: `dns enable` stays on, and v26.06 sends a lookup
    for a name not in its cache to the removed server (read past the end of its emptied list)."""
    env.cli(f"dns name-server {ORIGIN_IP4}")
    env.cli("dns enable")
    env.cli(f"dns name-server {ORIGIN_IP4} del")
    assert "No name servers configured" in env.cli("show dns servers", check=False)


def _fresh_name() -> str:
    """Never in the dns plugin's cache (a cached name is answered without a lookup)."""
    return f"n{secrets.token_hex(4)}.test"


def test_connect_to_a_name_without_name_server(env: Env) -> None:
    """A SOCKS5 (or HTTP) CONNECT to a name while VPP's resolver has no name server: REP 0x01 (HTTP 502) at once
    (general SOCKS server failure: our resolver is not configured, which says nothing about the host, so not 0x04),
    counted in connect-failures and dns-unconfigured, logged; VPP stays up and serves the next client.
    First with a resolver never given a name server (the first test of this module's VPP): `dns enable` failed,
    but v26.06's dns_resolve_name does not look at that and sent the query to a NULL address — SIGSEGV in
    ip4_sas, VPP died. Then with its only name server removed: the query went to the removed server and the
    client waited 5 s for a 0x04."""
    assert "No name servers configured" in env.cli("show dns servers", check=False)
    env.configure(dns_enabled=True)  # no dns_server: the plugin adds none
    env.start()
    res = env.probe(VPP_CLIENT_IP4, "1080", "connect", _fresh_name(), str(HTTP_PORT), timeout=20)
    assert env.vpp.alive(), "VPP died on a lookup without name server"
    assert res.get("rep") == 0x01, res
    _resolver_without_name_server(env)
    for _ in range(2):
        res = env.probe(VPP_CLIENT_IP4, "1080", "connect", _fresh_name(), str(HTTP_PORT), timeout=20)
        assert env.vpp.alive(), "VPP died on a lookup without name server"
        assert res.get("rep") == 0x01, res
    # HTTP CONNECT on the same port takes the same path: REP 0x01 becomes 502
    r = env.client("curl", "-sS", "-o", "/dev/null", "-w", "%{http_connect}", "-m", "20", "-p", "-x",
                   f"http://{PROXY}", f"http://{_fresh_name()}:{HTTP_PORT}/", timeout=30)
    assert env.vpp.alive(), "VPP died on a lookup without name server"
    assert r.stdout.decode().strip() == "502", r
    assert env.stats()["connect_failures"] == 4
    assert _counter(env, "/singbox/server/dns-unconfigured") == 4
    # a warning naming the fix (at most one every 10 s: not a line per client)
    log = env.cli("show logging", check=False)
    assert "not resolved: No name servers configured" in log, log
    assert "'dns name-server <ip>'" in log
    # addresses still work, and so do names once a name server is back
    res = env.probe(VPP_CLIENT_IP4, "1080", "connect", ORIGIN_IP4, str(HTTP_PORT))
    assert res.get("rep") == 0x00, res
    env.configure(dns_enabled=True, dns_server=ORIGIN_IP4)
    res = env.probe(VPP_CLIENT_IP4, "1080", "connect", "origin.test", str(HTTP_PORT))
    assert res.get("rep") == 0x00, res
    env.cli(f"dns name-server {ORIGIN_IP4} del")


def test_ipv6_name_server_refused(env: Env) -> None:
    """An IPv6 resolver address is refused (INVALID_ADDRESS_FAMILY) and never given to VPP's resolver: with IPv6
    name servers only, v26.06 sends its first query to the empty IPv4 list — on a VPP never given an IPv4 one a NULL
    address: SIGSEGV in ip4_sas (seen with the old plugin) — and `show dns servers` (which the plugin runs before each
    lookup) reads the IPv6 servers from that list too. A port other than 53 is refused as well.
    A refused configuration changes nothing: the settings that came with it (here the idle timeout and
    dns-enabled) keep their old values — they used to be stored before the refusal."""
    before = env.api.singbox_server_dump()[0]
    args: dict[str, Any] = dict(
        auth_required=False, allow_connect=True, allow_udp_associate=False, max_sessions=1024,
        handshake_timeout=10, idle_timeout=before.idle_timeout + 7, connect_timeout=10, udp_idle_timeout=60,
        udp_public_address="0.0.0.0", dns_enabled=True, dns_server=ORIGIN_IP6, dns_server_port=53)
    rv = env.api.singbox_server_config(**args).retval
    env.start()
    res = env.probe(VPP_CLIENT_IP4, "1080", "connect", _fresh_name(), str(HTTP_PORT), timeout=20)
    assert env.vpp.alive(), "VPP died on a lookup with an IPv6 name server only"
    assert rv == -97  # VNET_API_ERROR_INVALID_ADDRESS_FAMILY
    after = env.api.singbox_server_dump()[0]
    assert (after.idle_timeout, after.dns_enabled) == (before.idle_timeout, before.dns_enabled)
    assert not after.dns_enabled
    # names stay unsupported as before the refused configuration: REP 0x08
    assert res.get("rep") == 0x08, res
    assert "No name servers configured" in env.cli("show dns servers", check=False)
    assert "VPP's resolver needs an IPv4 name server" in env.cli("show logging", check=False)
    # VPP's resolver has no port setting: another port than 53 would be ignored, so it is refused
    args.update(dns_server=ORIGIN_IP4, dns_server_port=5353)
    assert env.api.singbox_server_config(**args).retval == -7  # VNET_API_ERROR_INVALID_VALUE
    assert "No name servers configured" in env.cli("show dns servers", check=False)
    assert env.api.singbox_server_dump()[0].idle_timeout == before.idle_timeout


def test_resolver_disabled(env: Env) -> None:
    """`dns disable` with a name server listed: v26.06's exported dns_resolve_name does not check that (only its
    API handler does), sends the query, and its reply node drops the answer, so the client waited 5 s for a
    0x04. Now REP 0x01 at once and the dns-unconfigured count; a host-name endpoint on the CLI fails naming the
    fix and changes nothing (the manual's promise, which did not hold: it stayed unresolved)."""
    env.cli(f"dns name-server {ORIGIN_IP4}")
    env.configure(dns_enabled=True)  # runs "dns enable"
    env.start()
    env.cli("dns disable")
    try:
        res = env.probe(VPP_CLIENT_IP4, "1080", "connect", _fresh_name(), str(HTTP_PORT), timeout=20)
        assert res.get("rep") == 0x01, res
        assert _counter(env, "/singbox/server/dns-unconfigured") == 1
        out = env.cli(f"singbox set endpoint {_fresh_name()}:{SB_PORT} socks5", check=False)
        assert "configure it first: 'dns name-server <ip>' and 'dns enable'" in out, out
        assert not env.api.singbox_endpoint_dump()
    finally:
        env.cli("dns enable")
        env.cli(f"dns name-server {ORIGIN_IP4} del")


def test_udp_datagram_to_a_name_without_name_server(env: Env) -> None:
    """UDP ASSOCIATE: a datagram to a name with no name server is dropped and counted (udp-dropped,
    dns-unconfigured); VPP stays up (it crashed before); datagrams to addresses still pass."""
    _resolver_without_name_server(env)
    env.configure(allow_udp_associate=True, dns_enabled=True)
    env.start()
    res = env.probe(VPP_CLIENT_IP4, "1080", "udp", _fresh_name(), str(UDP_PORT), "ok:a", "ok:b",
                    timeout=30)
    assert env.vpp.alive(), "VPP died on a lookup without name server"
    assert [r[:2] for r in res["results"]] == [["ok", None], ["ok", None]], res
    assert env.stats()["udp_dropped"] == 2
    assert _counter(env, "/singbox/server/dns-unconfigured") >= 1
    res = env.probe(VPP_CLIENT_IP4, "1080", "udp", ORIGIN_IP4, str(UDP_PORT), "ok:c")
    assert [r[:2] for r in res["results"]] == [["ok", "c"]], res


# A relayed connection kept open across the endpoint's move: one echo before, one after.
HOLD = """
import socket, sys
s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=60)
s.sendall(b"before\\n")
print(s.recv(100).decode().strip(), flush=True)
sys.stdin.readline()
s.sendall(b"after\\n")
try:
    print(s.recv(100).decode().strip() or "eof", flush=True)
except OSError as e:
    print(type(e).__name__, flush=True)
"""


class Moving:
    """Two sing-box socks inbounds (ORIGIN_IP4 and MOVED_IP4) and moving_dns.py on DNS_IP4, all in the
    origin namespace; `move()` makes the name's A record MOVED_IP4."""

    def __init__(self, env: Env, name: str) -> None:
        self.env = env
        self.dir = Path(tempfile.mkdtemp(prefix="sbx-dns-"))
        self.switch = self.dir / "moved"
        self.procs: list[subprocess.Popen[bytes]] = []
        self.logs: dict[str, Path] = {}
        t = env.t
        for ip in (MOVED_IP4, DNS_IP4):
            t.run_in(t.ns_origin, "ip", "addr", "add", f"{ip}/24", "dev", self._origin_dev())
        for ip in (ORIGIN_IP4, MOVED_IP4):
            log = self.dir / f"sing-box-{ip}.log"
            cfg = {
                "log": {"level": "info", "output": str(log), "timestamp": False},
                "inbounds": [{"type": "socks", "tag": "in", "listen": ip, "listen_port": SB_PORT,
                              "users": [{"username": "vpp", "password": "s3cret"}]}],
                "outbounds": [{"type": "direct", "tag": "direct"}],
                "route": {"final": "direct"},
            }
            (self.dir / f"{ip}.json").write_text(json.dumps(cfg))
            self.procs.append(t.spawn(t.ns_origin, str(sing_box_binary()), "run", "-c",
                                      str(self.dir / f"{ip}.json")))
            wait_port(t.ns_origin, ip, SB_PORT)
            self.logs[ip] = log
        self.procs.append(t.spawn(t.ns_origin, sys.executable, str(HERE / "moving_dns.py"), DNS_IP4,
                                  name, ORIGIN_IP4, MOVED_IP4, str(self.switch), "600"))
        # VPP reaches the new addresses at once (its neighbour table learns them)
        for ip in (MOVED_IP4, DNS_IP4):
            deadline = time.monotonic() + 10
            while "bytes from" not in env.cli(f"ping {ip} repeat 1", check=False):
                assert time.monotonic() < deadline, f"{ip} unreachable from VPP"
                time.sleep(0.3)

    def _origin_dev(self) -> str:
        out = self.env.t.run_in(self.env.t.ns_origin, "ip", "-o", "-4", "addr", "show").stdout.decode()
        return next(l.split()[1] for l in out.splitlines() if f" {ORIGIN_IP4}/" in l)

    def move(self) -> None:
        self.switch.write_text("")

    def asked(self, ip: str) -> int:
        """Connections sing-box on `ip` was asked to make to the origin's HTTP server."""
        log = self.logs[ip]
        text = log.read_text() if log.exists() else ""
        return text.count(f"inbound connection to {ORIGIN_IP4}:{HTTP_PORT}")

    def close(self) -> None:
        for p in self.procs:
            p.kill()
            p.wait()
        t = self.env.t
        for ip in (MOVED_IP4, DNS_IP4):
            t.run_in(t.ns_origin, "ip", "addr", "del", f"{ip}/24", "dev", self._origin_dev())


@pytest.fixture
def moving(env: Env) -> Iterator[tuple[Env, Moving, str]]:
    name = f"proxy-{secrets.token_hex(3)}.test"
    m = Moving(env, name)
    try:
        yield env, m, name
    finally:
        for itf in env.api.singbox_interface_dump(sw_if_index=0xFFFFFFFF):
            env.api.singbox_enable_disable(sw_if_index=itf.sw_if_index, enable_disable=False)
        for ep in env.api.singbox_endpoint_dump():
            env.api.singbox_endpoint_add_del(is_add=False, name=ep.name)
        env.cli(f"dns name-server {DNS_IP4} del", check=False)
        m.close()


def _whoami(env: Env) -> str:
    r = env.client("curl", "-sS", "-m", "10", f"http://{ORIGIN_IP4}:{HTTP_PORT}/whoami", timeout=15)
    assert r.returncode == 0, r.stderr
    return r.stdout.decode().strip()


def _wait_show(env: Env, text: str, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    while text not in (show := env.cli("show singbox")):
        assert env.vpp.alive(), "VPP died"
        assert time.monotonic() < deadline, show
        time.sleep(0.5)
    return show


def test_endpoint_name_looked_up_again(moving: tuple[Env, Moving, str]) -> None:
    """An endpoint given by name (`singbox set endpoint <host>:<port>`) is looked up again every
    health-check interval (30 s by default; the record's TTL here is 1 s, so VPP's cache asks again):
    when the name's address changes, `show singbox` and the endpoint dump show the new address and new
    flows go there, while a flow relayed before the change keeps its upstream connection to the old
    address (the plugin changes where new flows connect; it never cuts relayed ones)."""
    env, m, name = moving
    env.cli(f"dns name-server {DNS_IP4}")
    env.cli("dns enable")
    env.cli(f"singbox set endpoint {name}:{SB_PORT} socks5 username vpp password s3cret")
    _wait_show(env, f"address {ORIGIN_IP4}", 20)
    idx = sw_if_index(env, env.t.vpp_if_client)
    env.cli(f"singbox enable {env.t.vpp_if_client}")
    assert _whoami(env) == ORIGIN_IP4  # sing-box made the connection
    assert (m.asked(ORIGIN_IP4), m.asked(MOVED_IP4)) == (1, 0)

    holder = subprocess.Popen(
        ["ip", "netns", "exec", env.t.ns_client, sys.executable, "-c", HOLD, ORIGIN_IP4,
         str(ECHO_PORT)], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        assert holder.stdout is not None and holder.stdin is not None
        assert holder.stdout.readline().decode().strip() == "before"
        m.move()
        # next lookup within one health-check interval (30 s) after the 1 s TTL
        show = _wait_show(env, f"address {MOVED_IP4}", 75)
        assert f"Default endpoint: {name}:{SB_PORT} (SOCKS5)" in show
        eps = env.api.singbox_endpoint_dump()
        assert [str(e.proxy_addr) for e in eps] == [MOVED_IP4], eps
        assert _whoami(env) == ORIGIN_IP4
        assert (m.asked(ORIGIN_IP4), m.asked(MOVED_IP4)) == (1, 1)
        # the flow relayed before the move still works through the old address
        holder.stdin.write(b"go\n")
        holder.stdin.flush()
        assert holder.stdout.readline().decode().strip() == "after"
        holder.wait(timeout=10)
    finally:
        holder.kill()
        holder.wait()
    assert env.api.singbox_get_stats(sw_if_index=idx).connection_failures == 0
    log = env.cli("show logging", check=False)
    assert f"endpoint default: {name} is {MOVED_IP4}" in log, log
    assert (m.dir / "moved.log").read_text().count(f"{name} {MOVED_IP4}") >= 1

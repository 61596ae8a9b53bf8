# SPDX-License-Identifier: Apache-2.0
# Copyright (c) 2026 vpp-singbox authors
"""Client mode through an HTTP CONNECT endpoint (RFC 9110 9.3.6): TCP arriving on a
singbox-enabled VPP interface is relayed through the real sing-box's `http` inbound, which is
asked, with Basic credentials, for the destination the client used. The origin's /whoami tells
who connected to it: sing-box (198.18.2.2, in the origin namespace) or the client (plain routing).
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Iterator

import pytest

from .conftest import ECHO_PORT, HTTP_PORT, Env, sw_if_index
from vpptopo import sing_box_binary
from vpptopo import CLIENT_IP4, ORIGIN_IP4, ORIGIN_IP6, wait_port

HTTP_SB_PORT = 1190
PROTO_HTTP_CONNECT = 1


def _sing_box(env: Env, port: int, tag: str) -> tuple["subprocess.Popen[bytes]", Path]:
    """sing-box with a password-protected `http` inbound; its log at level info names every
    destination it is asked for."""
    d = Path(tempfile.mkdtemp(prefix=f"sbx-http-{tag}-"))
    log = d / "sing-box.log"
    cfg = {
        "log": {"level": "info", "output": str(log), "timestamp": False},
        "inbounds": [{"type": "http", "tag": "in", "listen": "::", "listen_port": port,
                      "users": [{"username": "vpp", "password": "s3cret"}]}],
        "outbounds": [{"type": "direct", "tag": "direct"}],
        "route": {"final": "direct"},
    }
    (d / "config.json").write_text(json.dumps(cfg))
    p = env.t.spawn(env.t.ns_origin, str(sing_box_binary()), "run", "-c", str(d / "config.json"))
    wait_port(env.t.ns_origin, ORIGIN_IP6, port)  # "::": one dual-stack socket
    return p, log


@pytest.fixture
def http_upstream(env: Env) -> Iterator[tuple[Env, Path]]:
    """sing-box with a password-protected `http` inbound in the origin ns."""
    p, log = _sing_box(env, HTTP_SB_PORT, "up")
    try:
        yield env, log
        deadline = time.monotonic() + 20
        for itf in env.api.singbox_interface_dump(sw_if_index=0xFFFFFFFF):
            while env.api.singbox_get_stats(sw_if_index=itf.sw_if_index).active_connections:
                assert time.monotonic() < deadline, env.cli("show singbox sessions verbose")
                time.sleep(0.2)
    finally:
        for itf in env.api.singbox_interface_dump(sw_if_index=0xFFFFFFFF):
            env.api.singbox_enable_disable(sw_if_index=itf.sw_if_index, enable_disable=False)
        for ep in env.api.singbox_endpoint_dump():
            env.api.singbox_endpoint_add_del(is_add=False, name=ep.name)
        p.kill()


def add_endpoint(env: Env, name: str, port: int = HTTP_SB_PORT, password: str = "s3cret",
                 hc: bool = False, username: str = "vpp") -> int:
    return int(env.api.singbox_endpoint_add_del(
        is_add=True, name=name, proxy_addr=ORIGIN_IP4, proxy_port=port,
        protocol_type=PROTO_HTTP_CONNECT, username=username, password=password, priority=0,
        connect_timeout=5, health_check_enabled=hc, health_check_interval=2,
        health_check_timeout=1, failure_threshold=1, recovery_threshold=1, table_id=0).retval)


def enable(env: Env, endpoint: str) -> int:
    idx = sw_if_index(env, env.t.vpp_if_client)
    r = env.api.singbox_enable_disable(sw_if_index=idx, enable_disable=True, endpoint_name=endpoint)
    assert r.retval == 0
    return idx


def whoami(env: Env, host: str = ORIGIN_IP4) -> tuple[int, str]:
    url = f"http://[{host}]:{HTTP_PORT}/whoami" if ":" in host else \
        f"http://{host}:{HTTP_PORT}/whoami"
    r = env.client("curl", "-sS", "-m", "10", url, timeout=15)
    return r.returncode, r.stdout.decode().strip()


def test_tcp_relayed_through_sing_box_http_inbound(http_upstream: tuple[Env, Path]) -> None:
    env, log = http_upstream
    assert add_endpoint(env, "web") == 0
    assert whoami(env) == (0, CLIENT_IP4)  # not enabled: plain routing
    idx = enable(env, "web")
    assert whoami(env) == (0, ORIGIN_IP4)  # sing-box made the connection
    r = env.t.run_in(env.t.ns_client, "ncat", ORIGIN_IP4, str(ECHO_PORT),
                     input=b"through CONNECT\n", timeout=15)
    assert r.stdout == b"through CONNECT\n", r.stderr
    # the original destination reached sing-box in the CONNECT, IPv6 too
    r = env.client("curl", "-6", "-sS", "-m", "10", f"http://[{ORIGIN_IP6}]:{HTTP_PORT}/whoami",
                   timeout=15)
    assert (r.returncode, r.stdout.decode().strip()) == (0, ORIGIN_IP6), r.stderr
    deadline = time.monotonic() + 10
    while f"inbound connection to {ORIGIN_IP4}:{ECHO_PORT}" not in log.read_text() or \
            f"inbound connection to [{ORIGIN_IP6}]:{HTTP_PORT}" not in log.read_text():
        assert time.monotonic() < deadline, log.read_text()
        time.sleep(0.2)
    st = env.api.singbox_get_stats(sw_if_index=idx)
    assert st.total_connections == 3 and st.connection_failures == 0, st
    ep = env.api.singbox_endpoint_dump()[0]
    assert int(ep.protocol_type) == PROTO_HTTP_CONNECT and ep.has_credentials
    assert ep.connections == 3 and ep.rtt_us > 0 and ep.failures == 0
    assert f"web: {ORIGIN_IP4}:{HTTP_SB_PORT} (HTTP CONNECT) auth" in env.cli("show singbox")


def test_wrong_credentials_reset_and_counted(http_upstream: tuple[Env, Path]) -> None:
    """sing-box answers 407: the client's connection is reset, and counted as a failure."""
    env, _ = http_upstream
    assert add_endpoint(env, "web", password="wrong") == 0
    idx = enable(env, "web")
    rc, _ = whoami(env)
    assert rc != 0
    assert env.api.singbox_get_stats(sw_if_index=idx).connection_failures == 1
    assert env.api.singbox_endpoint_dump()[0].failures == 1


def test_endpoint_probe_and_health_check(http_upstream: tuple[Env, Path]) -> None:
    """The probe of an HTTP CONNECT endpoint checks that it speaks HTTP and takes the
    credentials, without making it connect anywhere."""
    env, _ = http_upstream
    assert add_endpoint(env, "good") == 0
    assert add_endpoint(env, "badpass", password="nope") == 0
    assert add_endpoint(env, "closed", port=HTTP_SB_PORT + 1) == 0
    r = env.api.singbox_endpoint_test(name="good")
    assert (r.retval, int(r.result)) == (0, 0) and r.rtt_us > 0, r
    r = env.api.singbox_endpoint_test(name="badpass")
    assert (r.retval, int(r.result)) == (0, 3), r  # auth-failed
    r = env.api.singbox_endpoint_test(name="closed")
    assert (r.retval, int(r.result)) == (0, 1), r  # connect-failed
    # a SOCKS5 server is not an HTTP proxy: protocol-error
    env.t.spawn(env.t.ns_origin, sys.executable, "-c", SOCKS5_ONLY, ORIGIN_IP4,
                str(HTTP_SB_PORT + 2))
    wait_port(env.t.ns_origin, ORIGIN_IP4, HTTP_SB_PORT + 2)
    assert add_endpoint(env, "socks", port=HTTP_SB_PORT + 2) == 0
    r = env.api.singbox_endpoint_test(name="socks")
    assert (r.retval, int(r.result)) == (0, 4), r
    # health checks: up, and the wrong password down
    assert add_endpoint(env, "good", hc=True) == 0
    assert add_endpoint(env, "badpass", password="nope", hc=True) == 0
    deadline = time.monotonic() + 15
    while True:
        eps = {e.name: e for e in env.api.singbox_endpoint_dump()}
        if int(eps["good"].state) == 1 and int(eps["badpass"].state) == 2:
            break
        assert time.monotonic() < deadline, eps
        time.sleep(0.3)


def test_bad_credentials_refused_at_configuration(http_upstream: tuple[Env, Path]) -> None:
    """A Basic user-id cannot hold ':' (RFC 7617): refused when configured, nothing added."""
    env, _ = http_upstream
    assert add_endpoint(env, "colon", username="a:b") != 0
    assert not [e for e in env.api.singbox_endpoint_dump() if e.name == "colon"]
    r = env.api.singbox_endpoint_add_del(
        is_add=True, name="p9", proxy_addr=ORIGIN_IP4, proxy_port=HTTP_SB_PORT, protocol_type=9,
        username="", password="", priority=0, connect_timeout=5, health_check_enabled=False,
        health_check_interval=2, health_check_timeout=1, failure_threshold=1,
        recovery_threshold=1, table_id=0)
    assert r.retval != 0


SOCKS5_ONLY = """
import socket, sys, threading
srv = socket.socket()
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind((sys.argv[1], int(sys.argv[2])))
srv.listen(16)
def handle(c):
    c.recv(4096)
    c.sendall(b"\\x05\\xff")  # what a SOCKS5 server answers an HTTP request: no acceptable method
    c.recv(4096)
    c.close()
while True:
    conn, _ = srv.accept()
    threading.Thread(target=handle, args=(conn,), daemon=True).start()
"""

# An HTTP proxy that answers the CONNECT and the destination's first bytes in one write, as a
# proxy does when the destination speaks first (SSH, SMTP): those bytes must reach the client.
EAGER_PROXY = """
import socket, sys, threading
srv = socket.socket()
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind((sys.argv[1], int(sys.argv[2])))
srv.listen(16)
def handle(c):
    buf = b""
    while b"\\r\\n\\r\\n" not in buf:
        d = c.recv(4096)
        if not d:
            return
        buf += d
    head, rest = buf.split(b"\\r\\n\\r\\n", 1)
    target = head.split(b" ")[1].decode()
    ok = head.startswith(b"CONNECT ") and b"Proxy-Authorization: Basic dnBwOnMzY3JldA==" in head
    c.sendall((b"HTTP/1.1 200 Connection established\\r\\nVia: eager\\r\\n\\r\\nBANNER " +
               target.encode() + b"\\n") if ok else b"HTTP/1.1 403 Forbidden\\r\\n\\r\\n")
    c.sendall(rest)
    while ok:
        d = c.recv(65536)
        if not d:
            break
        c.sendall(d)
    c.close()
while True:
    conn, _ = srv.accept()
    threading.Thread(target=handle, args=(conn,), daemon=True).start()
"""


def test_destination_bytes_behind_the_response_kept(http_upstream: tuple[Env, Path]) -> None:
    env, _ = http_upstream
    port = HTTP_SB_PORT + 3
    env.t.spawn(env.t.ns_origin, sys.executable, "-c", EAGER_PROXY, ORIGIN_IP4, str(port))
    wait_port(env.t.ns_origin, ORIGIN_IP4, port)
    assert add_endpoint(env, "eager", port=port) == 0
    idx = enable(env, "eager")
    r = env.t.run_in(env.t.ns_client, "ncat", ORIGIN_IP4, str(ECHO_PORT), input=b"after\n",
                     timeout=15)
    assert r.stdout == f"BANNER {ORIGIN_IP4}:{ECHO_PORT}\nafter\n".encode(), r
    assert env.api.singbox_get_stats(sw_if_index=idx).connection_failures == 0


def test_manual_cli(http_upstream: tuple[Env, Path]) -> None:
    env, _ = http_upstream
    env.cli(f"singbox set endpoint {ORIGIN_IP4}:{HTTP_SB_PORT} http-connect username vpp "
            "password s3cret")
    env.cli(f"singbox enable {env.t.vpp_if_client}")
    assert "(HTTP CONNECT)" in env.cli("show singbox")
    assert whoami(env) == (0, ORIGIN_IP4)
    # pooling is for SOCKS5 endpoints only: an HTTP CONNECT flow still works with it on
    env.cli("singbox set pooling enable")
    time.sleep(0.5)
    assert whoami(env) == (0, ORIGIN_IP4)
    env.cli("singbox set pooling disable")
    env.cli(f"singbox disable {env.t.vpp_if_client}")
    assert whoami(env) == (0, CLIENT_IP4)

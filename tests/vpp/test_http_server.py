# SPDX-License-Identifier: Apache-2.0
# Copyright (c) 2026 vpp-singbox authors
"""Server mode answers HTTP CONNECT (RFC 9110 9.3.6) on the SOCKS5 listener's own port, as
sing-box's `mixed` inbound does: the first byte tells them apart. Real clients: curl -x http://,
curl --proxy-user, ncat --proxy-type http, sing-box's `http` outbound, and raw bytes."""

from __future__ import annotations

import base64
import json
import sys
import tempfile
from pathlib import Path

from .conftest import CLOSED_PORT, ECHO_PORT, HTTP_PORT, Env, worker_counts
from vpptopo import ORIGIN_IP4, ORIGIN_IP6, VPP_CLIENT_IP4, sing_box_binary, wait_port

pytestmark = worker_counts(0, 2)

PROXY = f"{VPP_CLIENT_IP4}:1080"


def curl(env: Env, *args: str, timeout: float = 20) -> tuple[int, str, str]:
    r = env.client("curl", "-sS", "-m", str(int(timeout)), *args, timeout=timeout + 5)
    return r.returncode, r.stdout.decode(errors="replace"), r.stderr.decode(errors="replace")


def users(env: Env) -> None:
    assert env.api.singbox_server_user_add_del(is_add=True, username="alice",
                                               password="s3cret").retval == 0
    env.configure(auth_required=True)


# Raw bytes to the proxy, what comes back until it closes (or the timeout), as hex.
RAW = """
import socket, sys, time
s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=10)
s.sendall(bytes.fromhex(sys.argv[3]))
got = b""
try:
    while True:
        d = s.recv(65536)
        if not d:
            break
        got += d
        if len(sys.argv) > 4 and got.endswith(bytes.fromhex(sys.argv[4])):
            break
except (ConnectionResetError, socket.timeout):
    pass
print(got.hex())
"""


def raw(env: Env, data: bytes, until: bytes | None = None) -> bytes:
    args = [sys.executable, "-c", RAW, VPP_CLIENT_IP4, "1080", data.hex()]
    if until is not None:
        args.append(until.hex())
    r = env.client(*args, timeout=20)
    assert r.returncode == 0, r.stderr
    return bytes.fromhex(r.stdout.decode().strip())


def test_curl_http_proxy_and_socks5_on_one_port(env: Env) -> None:
    env.start()
    rc, out, err = curl(env, "-x", f"http://{PROXY}", "-p", f"http://{ORIGIN_IP4}:{HTTP_PORT}/")
    assert (rc, out) == (0, "hello\n"), err
    rc, out, err = curl(env, "--socks5", PROXY, f"http://{ORIGIN_IP4}:{HTTP_PORT}/")
    assert (rc, out) == (0, "hello\n"), err
    # IPv6 destination in brackets
    rc, out, err = curl(env, "-x", f"http://{PROXY}", "-p", f"http://[{ORIGIN_IP6}]:{HTTP_PORT}/")
    assert (rc, out) == (0, "hello\n"), err
    # a bulk download through the tunnel
    rc, out, err = curl(env, "-x", f"http://{PROXY}", "-p", "-o", "/dev/null", "-w", "%{size_download}",
                        f"http://{ORIGIN_IP4}:{HTTP_PORT}/bytes/5000000")
    assert (rc, out) == (0, "5000000"), err
    env.wait_no_sessions()
    st = env.stats()
    assert st["accepted"] == 4 and st["rejected"] == 0 and st["bytes_to_client"] >= 5_000_000
    assert "HTTP CONNECT: 3 requests, 0 upstream failures" in env.cli("show singbox server")


def test_curl_proxy_user_and_407(env: Env) -> None:
    users(env)
    env.start()
    url = f"http://{ORIGIN_IP4}:{HTTP_PORT}/"
    rc, out, err = curl(env, "-x", f"http://{PROXY}", "--proxy-user", "alice:s3cret", "-p", url)
    assert (rc, out) == (0, "hello\n"), err
    # no or wrong credentials: 407 with the Basic challenge, counted as an auth failure
    rc, out, err = curl(env, "-x", f"http://{PROXY}", "--proxy-user", "alice:wrong", "-p", url)
    assert rc != 0 and "407" in err, err
    got = raw(env, f"CONNECT {ORIGIN_IP4}:{HTTP_PORT} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    assert got.startswith(b"HTTP/1.1 407 Proxy Authentication Required\r\n"), got
    assert b'\r\nProxy-Authenticate: Basic realm="singbox"\r\n' in got, got
    env.wait_no_sessions()
    assert env.stats()["auth_failures"] == 2
    assert {u.username: u.sessions for u in env.api.singbox_server_user_dump()}["alice"] >= 1
    # the same user over SOCKS5 on the same port
    rc, out, err = curl(env, "--socks5", f"alice:s3cret@{PROXY}", url)
    assert (rc, out) == (0, "hello\n"), err


def test_failures_answered_with_their_status(env: Env) -> None:
    env.start()
    # refused by the origin: 502 after the connect failed, never a 200 before it
    got = raw(env, f"CONNECT {ORIGIN_IP4}:{CLOSED_PORT} HTTP/1.1\r\n\r\n".encode())
    assert got.startswith(b"HTTP/1.1 502 Bad Gateway\r\n"), got
    assert env.stats()["connect_failures"] == 1
    assert "HTTP CONNECT: 1 requests, 1 upstream failures" in env.cli("show singbox server")
    # not CONNECT: 405 with Allow; malformed: 400; both close
    got = raw(env, f"GET http://{ORIGIN_IP4}:{HTTP_PORT}/ HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    assert got.startswith(b"HTTP/1.1 405 Method Not Allowed\r\nAllow: CONNECT\r\n"), got
    got = raw(env, b"CONNECT nohost HTTP/1.1\r\n\r\n")
    assert got.startswith(b"HTTP/1.1 400 Bad Request\r\n"), got
    # a name without a resolver: 502 (SOCKS5 would say address type not supported)
    got = raw(env, b"CONNECT origin.test:80 HTTP/1.1\r\n\r\n")
    assert got.startswith(b"HTTP/1.1 502 "), got
    # CONNECT not allowed: 403
    env.configure(allow_connect=False)
    got = raw(env, f"CONNECT {ORIGIN_IP4}:{HTTP_PORT} HTTP/1.1\r\n\r\n".encode())
    assert got.startswith(b"HTTP/1.1 403 Forbidden\r\n"), got
    env.wait_no_sessions()


def test_names_resolved_and_pipelined_bytes_relayed(env: Env) -> None:
    """A target by name is resolved by VPP; bytes sent right behind the request (before the
    200) reach the origin in order, and the origin's answer comes after the 200."""
    env.configure(dns_enabled=True, dns_server=ORIGIN_IP4)
    env.start()
    payload = b"pipelined " * 3000 + b"\n"
    req = f"CONNECT origin.test:{ECHO_PORT} HTTP/1.1\r\nHost: origin.test:{ECHO_PORT}\r\n\r\n".encode()
    got = raw(env, req + payload, until=payload)
    ok = b"HTTP/1.1 200 Connection established\r\n\r\n"
    assert got[:len(ok)] == ok, got[:80]
    assert got[len(ok):] == payload


def test_ncat_http_proxy_with_credentials(env: Env) -> None:
    users(env)
    env.start()
    r = env.t.run_in(env.t.ns_client, "ncat", "--proxy-type", "http", "--proxy", PROXY,
                     "--proxy-auth", "alice:s3cret", ORIGIN_IP4, str(ECHO_PORT),
                     input=b"via ncat\n", timeout=20)
    assert r.stdout == b"via ncat\n", r.stderr


def test_sing_box_http_outbound_through_vpp(env: Env) -> None:
    users(env)
    env.start()
    cfg = {
        "log": {"level": "warn"},
        "inbounds": [{"type": "mixed", "tag": "in", "listen": "127.0.0.1", "listen_port": 2081}],
        "outbounds": [{"type": "http", "tag": "vpp", "server": VPP_CLIENT_IP4, "server_port": 1080,
                       "username": "alice", "password": "s3cret"}],
        "route": {"final": "vpp"},
    }
    d = Path(tempfile.mkdtemp(prefix="sbx-httpout-"))
    (d / "config.json").write_text(json.dumps(cfg))
    env.t.spawn(env.t.ns_client, str(sing_box_binary()), "run", "-c", str(d / "config.json"))
    wait_port(env.t.ns_client, "127.0.0.1", 2081)
    rc, out, err = curl(env, "--socks5-hostname", "127.0.0.1:2081", "-o", "/dev/null", "-w",
                        "%{size_download}", f"http://{ORIGIN_IP4}:{HTTP_PORT}/bytes/1000000")
    assert (rc, out) == (0, "1000000"), err
    r = env.t.run_in(env.t.ns_client, "ncat", "--proxy-type", "socks5", "--proxy", "127.0.0.1:2081",
                     ORIGIN_IP4, str(ECHO_PORT), input=b"via sing-box http\n", timeout=20)
    assert r.stdout == b"via sing-box http\n", r.stderr
    st = env.stats()
    assert st["accepted"] >= 2 and st["auth_failures"] == 0


def test_basic_header_forms(env: Env) -> None:
    """Case-insensitive field name and scheme, LF-only line ends, an unpadded token: all read."""
    users(env)
    env.start()
    token = base64.b64encode(b"alice:s3cret").decode().rstrip("=")
    req = (f"CONNECT {ORIGIN_IP4}:{ECHO_PORT} HTTP/1.0\nproxy-authorization: basic {token}\n\n")
    got = raw(env, req.encode() + b"ping\n", until=b"ping\n")
    assert got == b"HTTP/1.1 200 Connection established\r\n\r\nping\n", got

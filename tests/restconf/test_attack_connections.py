"""The RESTCONF server's file descriptors under attack: connections that never authenticate, from many addresses
(never starting TLS, trickling a request head, holding a body open after their 401), against a server that may open
128 files. Before, its descriptors ran out: accept() failed (EMFILE), the operator's request waited for timeouts to
free some (60 s for a handshake, none for a body h11 waits for) and the server's own sysrepo calls, which open files,
failed. Now connections pass `mgmt.connguard`'s limits: the oldest not yet authenticated is closed to make room, and
a connection that authenticated is kept."""

from __future__ import annotations

import socket
import ssl
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import pytest
from rawhttp import ADMIN_AUTH, connect, head, read_response
from rcserver import RestconfServer, bootstrap_users, start_server, stop_server

from singbox_agent.repository import SysrepoInstance
from tests.idle_connections import FD_LIMIT, closed_by_server, few_descriptors, open_idle, sources

DATA = "/restconf/data/ietf-system:system"  # a sysrepo read


@pytest.fixture
def small_restconf(sysrepo_instance: SysrepoInstance, tmp_path: Path) -> Iterator[RestconfServer]:
    """The server with FD_LIMIT descriptors (systemd's default soft limit is 1024: the same at 8x the scale)."""
    state = tmp_path / "state"
    state.mkdir()
    bootstrap_users(sysrepo_instance, state)
    server = start_server(sysrepo_instance, state, preexec=few_descriptors)
    try:
        yield server
    finally:
        rc = stop_server(server)
        assert rc == 0, f"server exit status {rc}:\n{server.log()[-4000:]}"


def get(sock: socket.socket, path: str = DATA) -> int | None:
    """One authenticated GET on a kept-alive connection: its status (None: the server closed it)."""
    sock.sendall(head("GET", path, {"Authorization": ADMIN_AUTH}))
    return read_response(sock).status


def attack(server: RestconfServer, addresses: list[str], each: int, kind: str) -> list[socket.socket]:
    """`kind`: "tcp" never sends a byte (no ClientHello), "head" half a request head over TLS, "body" a request
    without credentials over TLS (answered 401) and then a part of the body it announced."""
    url = urllib.parse.urlsplit(server.base_url)
    assert url.hostname is not None and url.port is not None
    if kind == "tcp":
        return open_idle(url.hostname, url.port, addresses, each)
    first = (b"GET /restconf/data HTTP/1.1\r\nHost: localhost\r\nX-Slow: " if kind == "head"
             else head("PUT", DATA, {"Content-Length": "1000000", "Content-Type": "application/yang-data+json"})
             + b"x" * 100)
    assert server.ca is not None
    tls = ssl.create_default_context(cafile=server.ca)
    tls.set_alpn_protocols(["http/1.1"])
    return open_idle(url.hostname, url.port, addresses, each, first, tls)


@pytest.mark.parametrize("kind", ["tcp", "head", "body"])
def test_idle_connections_from_many_sources_never_lock_out_the_operator(small_restconf: RestconfServer,
                                                                        kind: str) -> None:
    """200 connections from 100 addresses; then a new client reads through sysrepo, and a client whose connection
    authenticated before the attack still has it."""
    kept = connect(small_restconf)
    assert get(kept) == 200
    idle = attack(small_restconf, sources("127.0.1", 100), 2, kind)
    try:
        for _ in range(3):
            with connect(small_restconf) as sock:
                assert get(sock) == 200
        assert len(idle) >= 150, len(idle)  # (before, a TLS attack stalled at ~76: no descriptor left to accept)
        assert get(kept) == 200  # it had authenticated: kept
        assert sum(closed_by_server(s) for s in idle) >= len(idle) - FD_LIMIT // 4
    finally:
        for s in idle:
            s.close()
        kept.close()


def test_one_source_cannot_take_every_connection(small_restconf: RestconfServer) -> None:
    """150 idle connections from one address (RESTCONF lets a source hold 128: a connection per HTTP/1.1 event
    stream, test_streams.py): more than the server may hold, yet another address is served, and the idle ones
    beyond the server's share are closed."""
    idle = attack(small_restconf, ["127.0.2.1"], 150, "tcp")
    try:
        with connect(small_restconf) as sock:
            assert get(sock) == 200
        assert len(idle) >= 140, len(idle)
        assert sum(closed_by_server(s) for s in idle) >= len(idle) - FD_LIMIT // 4
    finally:
        for s in idle:
            s.close()

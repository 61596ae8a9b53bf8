"""The NETCONF server's file descriptors under attack: SSH connections that never authenticate, from many addresses
(never sending a byte, or stopping after their version line), against a server that may open 128 files. Before,
its descriptors ran out: accept() failed (EMFILE), an operator's login waited for asyncssh's login timeout (120 s)
to free some, and the server's own sysrepo calls, which open files, failed. Now connections pass `mgmt.connguard`'s
limits (the oldest not yet authenticated is closed to make room; a session that logged in is kept), and a connection
that has not logged in within LOGIN_GRACE_S is closed."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from singbox_agent.repository import SysrepoInstance
from tests.idle_connections import FD_LIMIT, closed_by_server, few_descriptors, open_idle, sources
from tests.netconf.conftest import ServerInfo, bootstrap, start_server, stop_server


@pytest.fixture
def small_server(sysrepo_instance: SysrepoInstance, tmp_path: Path) -> Iterator[ServerInfo]:
    """The server with FD_LIMIT descriptors (systemd's default soft limit is 1024: the same at 8x the scale)."""
    env = {**os.environ, **sysrepo_instance.env}
    bootstrap(env, tmp_path)
    info = start_server(env, tmp_path, preexec=few_descriptors)
    try:
        yield info
    finally:
        code = stop_server(info)
        assert code == 0, (tmp_path / "netconf.log").read_text()[-4000:]


def log_of(server: ServerInfo) -> str:
    return (server.state_dir / "netconf.log").read_text(errors="replace")


@pytest.mark.parametrize("first", [b"", b"SSH-2.0-idle\r\n"], ids=["tcp", "version"])
def test_idle_connections_from_many_sources_never_lock_out_the_operator(small_server: ServerInfo,
                                                                        first: bytes) -> None:
    """200 connections from 100 addresses; then an operator logs in and reads running (sysrepo), and the session
    that logged in before the attack still works."""
    with small_server.connect() as kept:
        idle = open_idle(small_server.host, small_server.port, sources("127.0.1", 100), 2, first)
        try:
            for _ in range(2):
                with small_server.connect(timeout=30) as m:
                    assert m.get_config(source="running").ok
            assert len(idle) >= 150, len(idle)
            assert kept.get_config(source="running").ok  # it had authenticated: kept
            assert sum(closed_by_server(s) for s in idle) >= len(idle) - FD_LIMIT // 4
        finally:
            for s in idle:
                s.close()


def test_one_source_holds_at_most_16_connections(small_server: ServerInfo) -> None:
    """40 idle connections from one address: 16 kept, the rest closed at once; another address logs in."""
    idle = open_idle(small_server.host, small_server.port, ["127.0.2.1"], 40)
    try:
        assert len(idle) >= 37, len(idle)  # one the server reset at once may fail to open here
        with small_server.connect(timeout=30) as m:  # accepted after all 40: they were decided
            assert m.get_config(source="running").ok
        assert sum(closed_by_server(s) for s in idle) == len(idle) - 16
        assert "too many open connections" in log_of(small_server)
    finally:
        for s in idle:
            s.close()

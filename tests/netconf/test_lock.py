"""<lock>/<unlock> (RFC 6241 7.5, 7.6): other writers blocked, kill-session and close-session release, many sessions."""

from __future__ import annotations

import threading
import time

import pytest
from ncclient.operations.rpc import RPCError

from tests.netconf.conftest import ServerInfo
from tests.netconf.helpers import cfg, endpoint, running, endpoints, error_tag


def test_running_lock_blocks_other_writers_and_kill_releases(netconf_server: ServerInfo) -> None:
    a = netconf_server.connect()
    with netconf_server.connect() as b:
        a.lock("running")
        with pytest.raises(RPCError) as exc:
            b.edit_config(target="running", config=cfg(endpoint("x")))
        assert error_tag(exc.value) == "in-use"
        with pytest.raises(RPCError) as exc:
            b.kill_session(b.session_id)
        assert error_tag(exc.value) == "invalid-value"
        b.kill_session(a.session_id)
        b.lock("running")  # the victim's lock is gone
        b.edit_config(target="running", config=cfg(endpoint("x")))
        b.unlock("running")
        assert endpoints() == ["x"]
    deadline = time.monotonic() + 5
    while a.connected and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not a.connected


def test_close_session_releases_locks(netconf_server: ServerInfo) -> None:
    a = netconf_server.connect()
    a.lock("startup")
    a.close_session()
    with netconf_server.connect() as b:
        b.lock("startup")
        b.unlock("startup")


@pytest.mark.slow
def test_many_concurrent_sessions_with_locks(netconf_server: ServerInfo) -> None:
    n = 20
    managers = [netconf_server.connect() for _ in range(n)]
    results: list[str] = [""] * n
    barrier = threading.Barrier(n)

    def worker(i: int) -> None:
        barrier.wait(timeout=30)
        try:
            managers[i].lock("running")
            results[i] = "locked"
        except RPCError as exc:
            results[i] = str(exc.tag)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert results.count("locked") == 1 and results.count("lock-denied") == n - 1
    winner = results.index("locked")
    managers[winner].unlock("running")

    def edit(i: int) -> None:
        managers[i].edit_config(target="running", config=cfg(endpoint(f"w{i:02d}")))

    threads = [threading.Thread(target=edit, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert endpoints() == [f"w{i:02d}" for i in range(n)]
    for mgr in managers:
        mgr.close_session()

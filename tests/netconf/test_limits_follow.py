"""The NETCONF server's request limits after a commit (`NetconfServer.limits`, re-read after a change event): a
request that comes while another one's re-read is in progress gets the new limits too. The mark was cleared when
the read began, so the second request went on with the limits from before the commit (the race of
mgmt/followed_settings.py, tests/mgmt/test_followed_settings.py, in the server's own copy).

The read is held in progress by `settings.read_limits`, wrapped to stop until the test lets it go."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
import sysrepo

from singbox_agent.netconf import limits, settings
from singbox_agent.netconf.server import NetconfServer
from singbox_agent.repository import SysrepoInstance

WAIT_S = 30.0  # a bound for waits that end at once unless something hangs


@pytest.fixture
def server(sysrepo_instance: SysrepoInstance) -> Iterator[NetconfServer]:
    conn = sysrepo.SysrepoConnection()
    srv = NetconfServer(conn)
    try:
        yield srv
    finally:
        srv.shutdown()
        conn.disconnect()


def test_a_request_during_another_ones_read_gets_the_new_limits(server: NetconfServer,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    old = server.limits.max_message_size
    new = old // 2
    sess = server.conn.start_session("running")
    try:
        sess.set_item(f"{limits.XPATH}/max-message-size", str(new))
        sess.apply_changes()
    finally:
        sess.stop()
    entered, release = threading.Event(), threading.Event()
    read = settings.read_limits

    def held_read(s: Any) -> limits.Limits:
        value = read(s)
        entered.set()
        assert release.wait(WAIT_S), "never released"
        return value

    monkeypatch.setattr(settings, "read_limits", held_read)
    server._limits_changed("change", None)  # the change events of the commit, as sysrepo calls them
    server._limits_changed("done", None)
    seen: list[int] = []

    def request() -> None:
        seen.append(server.limits.max_message_size)

    first = threading.Thread(target=request, daemon=True)
    first.start()
    try:
        assert entered.wait(WAIT_S)
        second = threading.Thread(target=request, daemon=True)
        second.start()
        # a pause, not a measure: on the old code the second request returns at once with the old limits, before
        # the read is let go; on the new one it waits for that read whatever the pause
        second.join(0.5)
    finally:
        release.set()
    first.join(WAIT_S)
    second.join(WAIT_S)
    assert seen == [new, new], f"limits seen: {seen} (before the commit: {old})"

"""What the NETCONF server re-reads after a commit is what the commit made, for every request or login after it:
the request limits (`NetconfServer.limits`: a request that comes while another one's re-read is in progress gets
the new limits too; the mark was cleared when the read began, so the second went on with the old ones — the race of
mgmt/followed_settings.py in the server's own copy) and the endpoints' users (`endpoint_user`: a login between the
commit's change and done events must not keep the old users)."""

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
    """The read is held in progress by `settings.read_limits`, wrapped to stop until the test lets it go."""
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


USER_HASH = ("/ietf-netconf-server:netconf-server/listen/endpoints/endpoint[name='default']/ssh/ssh-server-parameters"
             "/client-authentication/users/user[name='op']/password/hashed-password")


def test_a_login_between_a_commits_change_and_done_events_does_not_keep_the_old_users(server: NetconfServer) -> None:
    """An endpoint's client-authentication users, re-read at the first login after a change. Marked stale at the
    commit's change event only, when running does not hold the new data yet, a login then read the old users and
    cleared the mark, and they stayed until the next commit (a user added could not log in). The server now sees the
    commit when sysrepo renames the stored file, after the change event (no subscription:
    tests/mgmt/test_followers_done_only.py). Here the login comes from a subscriber's change callback: sysrepo stores
    the data only after it."""
    import asyncssh

    from singbox_agent.mgmt import change_notice

    server._read_or_seed([("127.0.0.1", 0)], asyncssh.generate_private_key("ssh-ed25519"))
    assert server.endpoint_user("default", "op") is None  # read once: nobody
    during: list[Any] = []

    def login() -> None:
        during.append(server.endpoint_user("default", "op"))

    def events(event: str, ev_sess: Any) -> None:
        if event == "change":
            t = threading.Thread(target=login, daemon=True)
            t.start()
            t.join(WAIT_S)

    watch = server.conn.start_session("running")
    sess = server.conn.start_session("running")
    try:
        change_notice.subscribe(watch, "ietf-netconf-server", settings.LISTEN_XPATH, events)
        sess.set_item(USER_HASH, "$0$a-long-enough-password")
        sess.apply_changes()
        assert during == [None]  # the login during the commit: the old users, as running held them then
        user = server.endpoint_user("default", "op")
        assert user is not None and user.name == "op", "the user committed is not seen after the commit"
    finally:
        sess.stop()
        watch.stop()

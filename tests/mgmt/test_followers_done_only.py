"""Settings followers take no sysrepo event per commit (issue 17). sysrepo 3.7.11 waits for
every subscriber of a commit's module, event by event, before the commit returns — a change event too, though the
followers' change events marked nothing their done event does not mark again (the data is stored only after the
change event). Each event is a round trip to the follower's thread (~0.1 ms per commit). `FollowedSettings`
subscribes to nothing: `RunningStamps` sees the commit's stored file (mgmt/change_notice.py).

Every change subscription made is wrapped to count the events its callback gets; the correctness of done-only
following (stale once the commit returned, a read racing the commit not taken as the new settings) is
test_followed_settings.py's and tests/netconf/test_settings_follow.py's."""

from __future__ import annotations

import asyncio
import collections
import functools
import inspect
from collections.abc import Iterator
from typing import Any

import asyncssh
import pytest
import sysrepo
from sysrepo.session import SysrepoSession

from singbox_agent.mgmt.followed_settings import FollowedSettings
from singbox_agent.repository import SysrepoInstance

EventCounts = dict[str, collections.Counter[str]]


@pytest.fixture
def events(monkeypatch: pytest.MonkeyPatch) -> Iterator[EventCounts]:
    """"module callback" -> Counter of the events the callback got (every subscription made from here on; the
    callback named by its qualified name, as `NetconfServer._settings_changed`, through change_notice's wrapper)."""
    seen: EventCounts = collections.defaultdict(collections.Counter)

    def counting(method: Any, event_at: int) -> Any:
        def subscribe(self: Any, module: str, xpath: str, callback: Any, *args: Any, **kwargs: Any) -> Any:
            # change_notice.subscribe hands the binding a closure around the follower's own callback
            inner = inspect.getclosurevars(callback).nonlocals.get("callback", callback)
            name = getattr(inner, "__qualname__", "?")

            @functools.wraps(callback)  # the binding checks the callback's signature (it follows __wrapped__)
            def counted(*cb_args: Any) -> Any:
                seen[f"{module} {name}"][cb_args[event_at]] += 1
                return callback(*cb_args)

            return method(self, module, xpath, counted, *args, **kwargs)

        return subscribe

    # safe callbacks get (event, req_id, changes, private_data), unsafe ones (session, event, req_id, private_data)
    monkeypatch.setattr(SysrepoSession, "subscribe_module_change",
                        counting(SysrepoSession.subscribe_module_change, 0))
    monkeypatch.setattr(SysrepoSession, "subscribe_module_change_unsafe",
                        counting(SysrepoSession.subscribe_module_change_unsafe, 1))
    yield seen


def commit(conn: sysrepo.SysrepoConnection, path: str, value: str) -> None:
    sess = conn.start_session("running")
    try:
        sess.set_item(path, value)
        sess.apply_changes()
    finally:
        sess.stop()


def test_a_followed_settings_commit_costs_no_subscriber(sysrepo_instance: SysrepoInstance,
                                                              events: EventCounts) -> None:
    module = "vpp-singbox-netconf-server"
    xpath = f"/{module}:netconf-server/login-backoff"
    with sysrepo.SysrepoConnection() as conn:
        settings = FollowedSettings(conn, module, xpath, what="test", parse=lambda node: node.get("free-failures"),
                                    apply=lambda _: None)
        try:
            commit(conn, f"{xpath}/free-failures", "7")
            assert settings.stale()  # the commit returned: marked by then
            assert f"{module} FollowedSettings._changed" not in events, dict(events)  # with no subscription
            settings.refresh()
            assert settings.current == 7
        finally:
            settings.close()


def test_the_netconf_servers_settings_commits_reach_no_subscriber(sysrepo_instance: SysrepoInstance,
                                                                  events: EventCounts) -> None:
    """The server's own followers: listen endpoints and their users (ietf-netconf-server), host keys
    (ietf-keystore), request limits and login back-off (its settings module): no subscription. The new limits
    apply to the next request, the user committed to the next login, the host key to the listeners soon after."""
    from singbox_agent.netconf import limits
    from singbox_agent.netconf.server import NetconfServer

    async def run(srv: NetconfServer) -> None:
        await srv.start([("127.0.0.1", 0)], asyncssh.generate_private_key("ssh-ed25519"))
        events.clear()  # what start-up wrote (the seeded endpoint and key)
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, commit, srv.conn, f"{limits.XPATH}/max-xpath-length", "1000")
        await loop.run_in_executor(None, commit, srv.conn, "/vpp-singbox-netconf-server:netconf-server/"
                                   "login-backoff/free-failures", "7")
        await loop.run_in_executor(None, commit, srv.conn, "/ietf-netconf-server:netconf-server/listen/"
                                   "endpoints/endpoint[name='default']/ssh/ssh-server-parameters/"
                                   "client-authentication/users/user[name='op']/password/hashed-password",
                                   "$6$saltsalt$" + "a" * 86)
        assert srv.limits.max_xpath_length == 1000
        assert srv.login_settings.stale()  # its commit returned: seen with no subscription
        user = await loop.run_in_executor(None, srv.endpoint_user, "default", "op")
        assert user is not None and user.password_hash  # the next login sees the user committed
        await srv.close()

    conn = sysrepo.SysrepoConnection()
    srv = NetconfServer(conn)
    try:
        asyncio.run(run(srv))
    finally:
        srv.shutdown()
        conn.disconnect()
    # none: `change_notice.Commits` sees each commit's stored file (listen endpoints, host keys, limits, users)
    mine = {key: dict(counts) for key, counts in events.items()
            if "NetconfServer." in key or "FollowedSettings." in key or "Commits." in key}
    assert mine == {}, dict(events)

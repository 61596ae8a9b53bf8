"""On-change YANG-Push (RFC 8641) of the pull-only operational state — counters and the sessions list — through the
agent's operational poll subscriptions (agent/oper_poll.py, sysrepo's sr_oper_poll_subscribe): ncclient on the real
NETCONF server subscribes on-change to /singbox statistics, to an endpoint and to the sessions list, and hears the
counters move after traffic, an endpoint go down with its failure count, sessions appear and end. The agent runs in
this process over the in-memory dataplane (tests/subscriptions/test_oper_push_vpp.py: the pushed part with VPP)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest

from singbox_agent.agent.daemon import Agent
from singbox_agent.dataplane.base import EndpointState, ServerState, Session
from singbox_agent.dataplane.memory import MemoryDataplane
from singbox_agent.repository import SysrepoInstance
from tests.agent.conftest import Env
from tests.subscriptions.test_netconf_subscriptions import DS, SN, YP, Server, rpc, take
from tests.subscriptions.test_netconf_subscriptions import server  # noqa: F401 - the fixture
from tests.subscriptions.test_oper_push import CONFIG, SB, edits

TOP = "/vpp-singbox:singbox"
C = f"{TOP}/client"
S = f"{TOP}/server"
POLL_MS = 200


def start(dp: MemoryDataplane, **polls: int) -> Iterator[Env]:
    import sysrepo

    agent = Agent(dp, **polls)
    agent.start()
    assert agent.wait_idle()
    conn = sysrepo.SysrepoConnection()
    sess = conn.start_session("running")
    try:
        yield Env(agent, dp, sess)
    finally:
        sess.stop()
        conn.disconnect()
        agent.stop()


class AgingStates(dict[str, EndpointState]):
    """Endpoint states whose last-change age counts on from when they were set, as a dataplane's does: a fixed age
    moves last-change (now minus the age, oper.steady_ago) every 2 s, which a subscriber hears as a change — a test
    that took over 2 s between two polls on a loaded box heard one while "nothing changes"."""

    def __init__(self, states: dict[str, EndpointState]) -> None:
        super().__init__()
        self._since: dict[str, float] = {}
        for name, state in states.items():
            self[name] = state

    def __setitem__(self, name: str, state: EndpointState) -> None:
        self._since[name] = time.monotonic()
        super().__setitem__(name, state)

    def get(self, name: str, default: Any = None) -> Any:
        state = super().get(name)
        if state is None:
            return default
        return replace(state, last_change_age=state.last_change_age + int(time.monotonic() - self._since[name]))


def dataplane() -> MemoryDataplane:
    dp = MemoryDataplane()
    dp.endpoint_states = AgingStates({"e": EndpointState("up", 30, 800), "b": EndpointState("up", 30, 900)})
    dp.server_state = ServerState(True, accepted=5, bytes_forwarded=1000, active_sessions=1)
    dp.sessions = {1: Session(1, "server", "established", "198.18.0.2", 40001, destination_address="198.18.1.1",
                              destination_port=443, username="bob", bytes_from_client=10, bytes_to_client=20, age=3)}
    return dp


@pytest.fixture
def polled(sysrepo_instance: SysrepoInstance) -> Iterator[Env]:
    yield from start(dataplane(), oper_poll_ms=POLL_MS, sessions_poll_ms=POLL_MS)


def on_change(m: Any, xpath: str, dampening_cs: int = 0, sync_on_start: bool = False) -> int:
    reply = rpc(m, f'<establish-subscription xmlns="{SN}">'
                   f'<datastore xmlns="{YP}" xmlns:ds="{DS}">ds:operational</datastore>'
                   f'<datastore-xpath-filter xmlns="{YP}" xmlns:sb="{SB}">{xpath}</datastore-xpath-filter>'
                   f'<on-change xmlns="{YP}"><dampening-period>{dampening_cs}</dampening-period>'
                   f"<sync-on-start>{str(sync_on_start).lower()}</sync-on-start></on-change>"
                   f"</establish-subscription>")
    sub_id = reply.findtext(f"{{{SN}}}id")
    assert sub_id is not None, ET_text(reply)
    return int(sub_id)


def ET_text(e: Any) -> str:
    import xml.etree.ElementTree as ET

    return ET.tostring(e, encoding="unicode")


def until(m: Any, want: str, timeout: float = 15) -> dict[str, tuple[str | None, str | None]]:
    """The edits of push-change-updates, merged, until one names `want` (a target)."""
    got: dict[str, tuple[str | None, str | None]] = {}
    deadline = time.monotonic() + timeout
    while want not in got:
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError(f"no edit of {want} within {timeout} s; got {got}")
        got.update(edits(take(m, "push-change-update", timeout=left)))
    return got


def quiet(m: Any, polls: int = 5) -> list[str]:
    """Notifications that arrive over `polls` poll periods."""
    seen = []
    deadline = time.monotonic() + polls * POLL_MS / 1e3
    while (left := deadline - time.monotonic()) > 0:
        n = m.take_notification(block=True, timeout=left)
        if n is not None:
            seen.append(n.notification_xml)
    return seen


def test_server_counters_after_traffic_reach_an_on_change_subscriber(server: Server, polled: Env) -> None:
    env = polled
    env.commit(CONFIG)
    with server.connect() as m:
        on_change(m, "/sb:singbox/sb:server/sb:statistics")
        # nothing moves: no update (an unchanged poll reports nothing; sync-on-start false: no push-update either)
        assert quiet(m) == []
        env.dp.server_state = replace(env.dp.server_state, accepted=9, bytes_forwarded=4096)  # traffic
        got = until(m, f"{S}/statistics/connections-accepted")
        assert got[f"{S}/statistics/connections-accepted"] == ("replace", "9"), got
        assert got[f"{S}/statistics/bytes-forwarded"] == ("replace", "4096"), got
        assert not any("connections-rejected" in t for t in got), got  # only what changed


def test_an_endpoint_going_down_with_its_failure_count(server: Server, polled: Env) -> None:
    env = polled
    env.commit(CONFIG)
    with server.connect() as m:
        on_change(m, "/sb:singbox/sb:client/sb:endpoint[sb:name='e']")
        assert quiet(m) == []  # last-change stays the same from poll to poll while nothing changes
        env.dp.endpoint_states["e"] = EndpointState("down", 0, 0, failures=3, consecutive_failures=3)
        env.dp.endpoint_event("e", False, "connect-failed")
        e = f"{C}/endpoint[name='e']"
        # oper-status arrives pushed at once (oper_push); the counters with the next poll
        got = until(m, f"{e}/statistics/connection-failures")
        assert got[f"{e}/statistics/connection-failures"] == ("replace", "3"), got
        assert got[f"{e}/statistics/consecutive-failures"] == ("replace", "3"), got
        assert got[f"{e}/oper-status"] == ("replace", "down"), got
        assert not any("name='b'" in t for t in got), got


def test_no_create_of_what_existed_when_the_subscription_began(server: Server,
                                                               sysrepo_instance: SysrepoInstance) -> None:
    """RFC 8641: a push-change-update applies to what the subscriber holds. The poll reports what changed since the
    previous poll, which may be older than the subscription: in CI an endpoint committed just before a subscription
    came as `create` of the whole entry (30 s old) with the next poll. Here the poll starts only after the
    subscriptions (its first read is diffed with nothing: everything "created"), which makes that race certain:
    `early`, subscribed before the commit, hears the endpoint appear; `late` (no sync-on-start: the server reads
    what it holds) and `synced` (the push-update is what it holds), subscribed after it, hear nothing of it."""
    import sysrepo

    from singbox_agent.agent.oper_poll import OperPoll

    e = "/sb:singbox/sb:client/sb:endpoint[sb:name='e']"
    for env in start(dataplane()):  # no poll of its own
        with server.connect() as early, server.connect() as late, server.connect() as synced:
            on_change(early, e)
            env.commit(CONFIG)
            assert env.agent.wait_idle()  # the commit's push (the endpoint's oper-status) is out
            on_change(late, e)
            on_change(synced, e, sync_on_start=True)
            update = take(synced, "push-update")
            assert "connection-failures>0<" in ET_text(update)
            conn = sysrepo.SysrepoConnection()
            poll = OperPoll(conn.start_session("operational"), "vpp-singbox")
            try:
                poll.add(C, POLL_MS)
                # the first poll's patch, with the endpoint's counters (the push has its oper-status only)
                deadline = time.monotonic() + 15
                while True:
                    assert time.monotonic() < deadline, "the poll's patch did not reach the early subscriber"
                    n = early.take_notification(block=True, timeout=max(deadline - time.monotonic(), 0.01))
                    if n is not None and "connection-failures" in n.notification_xml:
                        break
                assert quiet(late) == []
                assert quiet(synced) == []
                # and what does change still reaches them
                env.dp.endpoint_states["e"] = replace(env.dp.endpoint_states.get("e"), failures=2)
                for m in (late, synced):
                    got = until(m, f"{C}/endpoint[name='e']/statistics/connection-failures")
                    assert got[f"{C}/endpoint[name='e']/statistics/connection-failures"] == ("replace", "2"), got
            finally:
                poll.stop()
                conn.disconnect()


def test_sessions_appearing_and_ending(server: Server, polled: Env) -> None:
    env = polled
    env.commit(CONFIG)
    with server.connect() as m:
        on_change(m, "/sb:singbox/sb:sessions")
        env.dp.sessions[2] = Session(2, "client", "established", "198.18.0.3", 40002, destination_domain="example.org",
                                     destination_port=443, interface="tap0", endpoint="e", age=0)
        got = until(m, f"{TOP}/sessions/session[id='2']")
        # a state list is ordered by the system (libyang: user-ordered), so a new entry is an insert
        assert got[f"{TOP}/sessions/session[id='2']"][0] == "insert", got
        del env.dp.sessions[1]
        got = until(m, f"{TOP}/sessions/session[id='1']")
        assert got[f"{TOP}/sessions/session[id='1']"][0] == "delete", got


def test_without_polling_counters_are_not_heard(server: Server, sysrepo_instance: SysrepoInstance) -> None:
    """What the poll adds: with it off (a period of 0), an on-change subscriber hears no counter move."""
    gen = start(dataplane())
    env = next(gen)
    try:
        env.commit(CONFIG)
        assert env.agent._oper_poll is not None and env.agent._oper_poll.paths == []
        with server.connect() as m:
            on_change(m, "/sb:singbox/sb:server/sb:statistics")
            env.dp.server_state = replace(env.dp.server_state, accepted=9)
            assert quiet(m) == []
    finally:
        for _ in gen:
            pass

"""On-change YANG-Push (RFC 8641) of the sessions list, on by default: the agent's poll reads only each session's
on-change notifiable leaf, its state (oper.SESSIONS_ON_CHANGE_XPATH), so an ncclient subscriber on the real NETCONF
server hears sessions start (the entry with its id and state), change state and end (deleted), never their counters
or age, and nothing while nothing of that changes; dampening gathers the changes of several polls into one patch.
The agent runs in this process over the in-memory dataplane."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest

from singbox_agent.agent import oper_poll, sessions_tree
from singbox_agent.dataplane.base import ServerState, Session
from singbox_agent.dataplane.memory import MemoryDataplane
from singbox_agent.repository import SysrepoInstance
from tests.agent.conftest import Env
from tests.subscriptions.test_netconf_subscriptions import YP, Server, take
from tests.subscriptions.test_netconf_subscriptions import server  # noqa: F401 - the fixture
from tests.subscriptions.test_oper_poll import on_change, start
from tests.subscriptions.test_oper_push import CONFIG, edits

S = "/vpp-singbox:singbox/sessions/session"
POLL_MS = 200


def session(i: int, **kw: Any) -> Session:
    base = Session(i, "server", "established", "198.18.0.2", 40000 + i, destination_address="198.18.1.1",
                   destination_port=443, username="bob", bytes_from_client=10, bytes_to_client=20, age=3)
    return replace(base, **kw)


def dataplane(n: int = 3) -> MemoryDataplane:
    dp = MemoryDataplane()
    dp.server_state = ServerState(True, accepted=n, active_sessions=n)
    dp.sessions = {i: session(i) for i in range(1, n + 1)}
    return dp


@pytest.fixture
def by_default(sysrepo_instance: SysrepoInstance) -> Iterator[Env]:
    """The agent with the periods `python -m singbox_agent.agent` starts it with."""
    yield from start(dataplane(), oper_poll_ms=oper_poll.PERIOD_MS, sessions_poll_ms=oper_poll.SESSIONS_PERIOD_MS)


@pytest.fixture
def polled(sysrepo_instance: SysrepoInstance) -> Iterator[Env]:
    yield from start(dataplane(), oper_poll_ms=0, sessions_poll_ms=POLL_MS)


def value_leaves(update: Any, target: str) -> dict[str, str]:
    """The leaves (local name -> text) of the value of the edit of `target` in a push-change-update."""
    for edit in (e for e in update.iter() if e.tag.rsplit("}", 1)[-1] == "edit"):
        if next(c.text for c in edit if c.tag.endswith("}target")) != target:
            continue
        value = next(c for c in edit if c.tag.endswith("}value"))
        return {leaf.tag.rsplit("}", 1)[-1]: leaf.text or "" for leaf in value[0]}
    raise AssertionError(f"no edit of {target}")


def updates(m: Any, timeout: float) -> list[Any]:
    """The push-change-updates that arrive within `timeout` seconds (an upper bound on waiting, not a measure)."""
    seen = []
    deadline = time.monotonic() + timeout
    while (left := deadline - time.monotonic()) > 0:
        n = m.take_notification(block=True, timeout=left)
        if n is not None and "push-change-update" in n.notification_xml:
            import xml.etree.ElementTree as ET

            seen.append(ET.fromstring(n.notification_xml))
    return seen


def test_sessions_starting_and_ending_are_heard_by_default(server: Server, by_default: Env) -> None:
    env = by_default
    env.commit(CONFIG)
    with server.connect() as m:
        on_change(m, "/sb:singbox/sb:sessions")
        env.dp.sessions[7] = session(7, mode="client", username=None, interface="tap0", endpoint="e",
                                     destination_address=None, destination_domain="example.org", state="connecting")
        update = take(m, "push-change-update", timeout=30)
        got = edits(update)
        assert list(got) == [f"{S}[id='7']"], got  # one edit: the new entry, not its leaves one by one
        assert got[f"{S}[id='7']"][0] == "insert", got  # a state list is user-ordered for libyang: an insert
        # the entry with its state; its counters and age are for periodic YANG-Push, what it is for a read
        assert value_leaves(update, f"{S}[id='7']") == {"id": "7", "state": "connecting"}
        del env.dp.sessions[2]
        got = edits(take(m, "push-change-update", timeout=30))
        assert got[f"{S}[id='2']"] == ("delete", None), got
        # srsn lists each leaf of a deleted entry after it (sysrepo's change iterator); nothing else is in the patch
        assert all(t.startswith(f"{S}[id='2']") and op == ("delete", None) for t, op in got.items()), got


def test_counters_and_age_are_not_heard_a_state_change_is(server: Server, polled: Env) -> None:
    env = polled
    env.commit(CONFIG)
    with server.connect() as m:
        on_change(m, "/sb:singbox/sb:sessions")
        for second in range(1, 6):  # live sessions: every poll sees other counters and ages
            env.dp.sessions = {i: replace(s, age=s.age + second, bytes_from_client=s.bytes_from_client + 100,
                                          bytes_to_client=s.bytes_to_client + 1000)
                               for i, s in env.dp.sessions.items()}
            assert updates(m, 2 * POLL_MS / 1e3) == []
        env.dp.sessions[1] = replace(env.dp.sessions[1], state="closing", age=99, bytes_from_client=7)
        got = edits(take(m, "push-change-update", timeout=30))
        assert got == {f"{S}[id='1']/state": ("replace", "closing")}, got


def test_nothing_is_sent_while_nothing_changes(server: Server, polled: Env) -> None:
    env = polled
    env.commit(CONFIG)
    with server.connect() as m:
        on_change(m, "/sb:singbox/sb:sessions")
        assert updates(m, 10 * POLL_MS / 1e3) == []


def test_dampening_gathers_the_changes_of_several_polls_in_one_patch(server: Server, polled: Env) -> None:
    env = polled
    env.commit(CONFIG)
    with server.connect() as m:
        on_change(m, "/sb:singbox/sb:sessions", dampening_cs=500)  # 5 s
        env.dp.sessions[4] = session(4)
        first = edits(take(m, "push-change-update", timeout=30))  # the first change goes at once
        assert list(first) == [f"{S}[id='4']"], first
        # three changes, each seen by a poll of its own, within the dampening period
        env.dp.sessions[5] = session(5)
        assert updates(m, 3 * POLL_MS / 1e3) == []
        del env.dp.sessions[1]
        assert updates(m, 3 * POLL_MS / 1e3) == []
        env.dp.sessions[3] = replace(env.dp.sessions[3], state="closing")
        update = take(m, "push-change-update", timeout=30)
        assert update.findtext(f"{{{YP}}}id") is not None
        got = edits(update)
        assert got[f"{S}[id='5']"] == ("insert", None), got
        assert got[f"{S}[id='1']"] == ("delete", None), got
        assert got[f"{S}[id='3']/state"] == ("replace", "closing"), got
        assert {t for t in got if not t.startswith(f"{S}[id='1']")} == {f"{S}[id='5']", f"{S}[id='3']/state"}, got


def test_a_burst_is_reported_over_the_next_polls(server: Server, polled: Env,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """More sessions starting than a poll takes in (sessions_tree.ON_CHANGE_MAX_CHANGES: srsn's patch is quadratic
    in its edits) arrive over the next polls, each once."""
    monkeypatch.setattr(sessions_tree, "ON_CHANGE_MAX_CHANGES", 2)
    env = polled
    env.commit(CONFIG)
    with server.connect() as m:
        on_change(m, "/sb:singbox/sb:sessions")
        for i in range(10, 15):
            env.dp.sessions[i] = session(i)
        seen: list[str] = []
        while len(seen) < 5:
            got = edits(take(m, "push-change-update", timeout=30))
            assert all(op == ("insert", None) for op in got.values()) and 0 < len(got) <= 2, got
            seen += got
        assert sorted(seen) == [f"{S}[id='{i}']" for i in range(10, 15)]
        assert updates(m, 3 * POLL_MS / 1e3) == []


def test_the_dataplane_going_away_ends_its_sessions(server: Server, polled: Env) -> None:
    env = polled
    env.commit(CONFIG)
    with server.connect() as m:
        on_change(m, "/sb:singbox/sb:sessions")
        env.dp.disconnect()
        got = edits(take(m, "push-change-update", timeout=30))
        assert {t for t in got if t.endswith("]")} == {f"{S}[id='{i}']" for i in (1, 2, 3)}, got
        assert all(op == ("delete", None) for op in got.values()), got

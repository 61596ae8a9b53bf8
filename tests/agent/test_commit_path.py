"""What a one-leaf commit costs sysrepo's callback thread and the agent's worker (issue 17): the commit's log line
is written by the worker, not inside the done callback apply_changes waits for, and the operational state re-read
after commits goes out once for a burst of them, not once per commit. Real sysrepo, in-memory dataplane."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest

from singbox_agent.agent import daemon
from singbox_agent.agent.oper_push import Pushed
from singbox_agent.dataplane.base import EndpointState
from singbox_agent.dataplane.memory import MemoryDataplane
from singbox_agent.repository import SysrepoInstance
from tests.agent.conftest import Env, start_env

C = "/vpp-singbox:singbox/client"


@pytest.fixture
def env(sysrepo_instance: SysrepoInstance) -> Iterator[Env]:
    dp = MemoryDataplane()
    dp.endpoint_states = {"e1": EndpointState("up", 1, 800)}
    yield from start_env(dp)


class Recorder:
    """The agent's logger: every call's event and the thread it was made on."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, dict[str, Any]]] = []

    def __getattr__(self, level: str) -> Any:
        def record(event: str, **fields: Any) -> None:
            self.calls.append((event, threading.current_thread().name, fields))
        return record


def test_the_commit_log_line_is_written_by_the_worker(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    recorder = Recorder()
    monkeypatch.setattr(daemon, "log", recorder)
    env.commit({f"{C}/endpoint[name='e1']/address": "192.0.2.1"})
    env.commit({f"{C}/endpoint[name='e1']/port": 1081})
    commits = [(thread, fields) for event, thread, fields in recorder.calls if event == "commit"]
    # the old code logged inside the done callback, on sysrepo's thread, before apply_changes could return
    assert [thread for thread, _ in commits] == ["agent-worker", "agent-worker"], commits
    assert commits[-1][1]["result"] == "applied" and commits[-1][1]["steps"] == 1, commits
    assert commits[-1][1]["applied"] and "duration_ms" in commits[-1][1]


def test_a_burst_of_commits_is_pushed_once(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    env.commit({f"{C}/endpoint[name='e1']/address": "192.0.2.1"})
    push = env.agent._oper_push
    assert push is not None
    handed: list[set[str]] = []
    update = push.update

    def spy(wanted: Pushed, gone: Any = ()) -> bool:
        if any("/endpoint[" in node for node in wanted):
            handed.append(set(wanted))
        return update(wanted, gone)

    push.update = spy  # type: ignore[method-assign]
    monkeypatch.setattr(daemon, "OPER_PUSH_BATCH_S", 3600.0)  # the burst's push waits for the mark below
    handled = threading.Event()
    handle = env.agent._handle

    def probe(item: Any) -> None:
        handle(item)
        if item == "probe":
            handled.set()

    monkeypatch.setattr(env.agent, "_handle", probe)
    for port in (1081, 1082, 1083):
        env.sess.set_item(f"{C}/endpoint[name='e1']/port", port)
        env.sess.apply_changes()
        # the worker has handled this commit's request for a push (queued by its done, before apply_changes returned)
        handled.clear()
        env.agent._events.put("probe")
        assert handled.wait(10)
    # the old code re-read and handed over the endpoint after each of the three commits
    assert handed == [], handed
    assert env.agent.wait_idle()  # a mark pushes what is due at once
    assert len(handed) == 1 and f"{C}/endpoint[name='e1']" in handed[0], handed
    assert push.pushed[f"{C}/endpoint[name='e1']"] == {"oper-status": "up"}


def test_a_burst_of_commits_wakes_the_worker_once(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    """The first commit's done wakes the worker (to count OPER_PUSH_BATCH_S from it); the others' log lines and
    re-reads wait for that flush: no wake-up, no GIL grab right after each done."""
    env.commit({f"{C}/endpoint[name='e1']/address": "192.0.2.1"})
    recorder = Recorder()
    monkeypatch.setattr(daemon, "log", recorder)
    monkeypatch.setattr(daemon, "OPER_PUSH_BATCH_S", 3600.0)  # the burst's flush waits for the mark below
    queued: list[Any] = []
    put = env.agent._events.put

    def spy(item: Any, *args: Any, **kwargs: Any) -> None:
        queued.append(item)
        put(item, *args, **kwargs)

    monkeypatch.setattr(env.agent._events, "put", spy)
    # an endpoint's port (re-read after it) and the log level (nothing to re-read: the line alone is deferred)
    for path, value in ((f"{C}/endpoint[name='e1']/port", 1081), ("/vpp-singbox:singbox/log-level", "debug"),
                        (f"{C}/endpoint[name='e1']/port", 1082)):
        env.sess.set_item(path, value)
        env.sess.apply_changes()
    # the old code queued a CommitDone for every commit, each waking the worker
    assert queued == ["commits"], queued
    assert env.agent.wait_idle()
    commits = [fields for event, thread, fields in recorder.calls if event == "commit" and thread == "agent-worker"]
    assert [c["result"] for c in commits] == ["applied"] * 3, commits
    assert [c["txn"] for c in commits] == sorted(c["txn"] for c in commits), commits
    assert [c["steps"] for c in commits] == [1, 1, 1], commits

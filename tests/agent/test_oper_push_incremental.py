"""The agent's push of operational state (agent/oper_push.py) after a commit re-reads and hands over only what the
commit touched, not every endpoint (issue 17: 40-50 ms of the worker's CPU per commit at 10,000 endpoints); an
endpoint's status still reaches an on-change subscriber, a deleted endpoint leaves no push data, and a change the
dataplane reports no event for is caught by the periodic full re-read. Real sysrepo, in-memory dataplane."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from singbox_agent.agent.oper_push import OperPush, Pushed
from singbox_agent.dataplane.base import EndpointState
from singbox_agent.dataplane.memory import MemoryDataplane
from singbox_agent.repository import SysrepoInstance
from singbox_agent.subscriptions import srsn
from tests.agent.conftest import Env, start_env
from tests.subscriptions.test_oper_push import read, read_patch, srsn_conn  # noqa: F401 - the fixture

TOP = "/vpp-singbox:singbox"
C = f"{TOP}/client"
N = 60


def node(name: str) -> str:
    return f"{C}/endpoint[name='{name}']"


def config() -> dict[str, Any]:
    out: dict[str, Any] = {f"{C}/endpoint[name='e{i}']/address": f"192.0.2.{i + 1}" for i in range(N)}
    out[f"{C}/interface[name='tap0']/endpoint"] = "e0"
    return out


class Spy:
    """Every node handed to the push (OperPush.update / replace), per call."""

    def __init__(self, push: OperPush) -> None:
        self.calls: list[tuple[str, set[str]]] = []
        update, replace = push.update, getattr(push, "replace", None)  # (the old OperPush had no replace)

        def spy_update(wanted: Pushed, gone: Any = ()) -> bool:
            self.calls.append(("update", set(wanted) | set(gone)))
            return update(wanted, gone) if gone else update(wanted)  # (the old OperPush had no `gone`)

        def spy_replace(wanted: Pushed) -> bool:
            self.calls.append(("replace", set(wanted)))
            assert replace is not None
            return bool(replace(wanted))

        push.update = spy_update  # type: ignore[method-assign]
        push.replace = spy_replace  # type: ignore[method-assign]

    def endpoints(self) -> set[str]:
        return {n for _, nodes in self.calls for n in nodes if "/endpoint[" in n}


@pytest.fixture
def agent_env(sysrepo_instance: SysrepoInstance) -> Iterator[Env]:
    dp = MemoryDataplane()
    dp.endpoint_states = {f"e{i}": EndpointState("up", 1, 800) for i in range(N)}
    yield from start_env(dp)


def spy(env: Env) -> Spy:
    assert env.agent._oper_push is not None
    return Spy(env.agent._oper_push)


def test_a_commit_touching_one_endpoint_pushes_only_it(agent_env: Env) -> None:
    env = agent_env
    env.commit(config())
    assert env.agent._oper_push is not None
    assert node("e7") in env.agent._oper_push.pushed  # all N were pushed once, at their creation
    seen = spy(env)
    env.dp.endpoint_states["e7"] = EndpointState("down", 0, 0, 1, 1)
    env.commit({f"{C}/endpoint[name='e7']/priority": 50})
    # the old code handed over (and read from the dataplane) all N endpoints after every commit
    assert seen.endpoints() == {node("e7")}, seen.calls
    assert all(kind == "update" for kind, _ in seen.calls), seen.calls
    assert env.agent._oper_push.pushed[node("e7")] == {"oper-status": "down"}
    assert read(f"{node('e7')}/oper-status")["singbox"]["client"]["endpoint"] is not None


def test_an_interface_commit_hands_over_no_endpoint(agent_env: Env) -> None:
    env = agent_env
    env.commit(config())
    seen = spy(env)
    env.commit({f"{C}/interface[name='tap0']/max-connections": 7})
    assert seen.endpoints() == set(), seen.calls
    assert {n for _, nodes in seen.calls for n in nodes} <= {f"{C}/interface[name='tap0']", f"{TOP}/dataplane"}


def test_a_deleted_endpoint_leaves_no_push_data(agent_env: Env) -> None:
    env = agent_env
    env.commit(config())
    assert env.agent._oper_push is not None
    assert node("e3") in env.agent._oper_push.pushed
    seen = spy(env)
    env.commit(deletes=[node("e3")])
    assert seen.endpoints() == {node("e3")}, seen.calls
    assert node("e3") not in env.agent._oper_push.pushed
    assert read(node("e3")) == {}
    assert node("e4") in env.agent._oper_push.pushed  # the others stay


def test_a_change_without_an_event_is_pushed_by_the_periodic_full_read(agent_env: Env) -> None:
    env = agent_env
    env.commit(config())
    assert env.agent._oper_push is not None
    env.dp.endpoint_states["e9"] = EndpointState("down")  # e.g. reset when VPP's DNS answered: no event
    env.agent._events.put("tick")
    assert env.agent.wait_idle()
    assert env.agent._oper_push.pushed[node("e9")] == {"oper-status": "up"}  # not yet: no full read due
    env.agent._next_full_push = 0.0
    env.agent._events.put("tick")
    assert env.agent.wait_idle()
    assert env.agent._oper_push.pushed[node("e9")] == {"oper-status": "down"}


def test_an_endpoint_status_change_reaches_an_on_change_subscriber(srsn_conn: Any) -> None:  # noqa: F811
    dp = MemoryDataplane()
    dp.endpoint_states = {f"e{i}": EndpointState("up", 1, 800) for i in range(N)}
    gen = start_env(dp)
    env = next(gen)
    sess = srsn_conn.start_session("operational")
    sub = None
    try:
        env.commit(config())
        sub = srsn.yang_push_on_change(sess, "operational", xpath=f"{C}/endpoint/oper-status", sync_on_start=False)
        seen = spy(env)
        dp.endpoint_states["e5"] = EndpointState("down", 0, 0, 1, 1)
        dp.endpoint_event("e5", False, "connect-failed")
        patch = read_patch(srsn_conn, sub)
        assert f"<target>{node('e5')}/oper-status</target>" in patch and ">down</oper-status>" in patch, patch
        assert seen.endpoints() == {node("e5")}, seen.calls
    finally:
        if sub is not None:
            sub.close()
        sess.stop()
        for _ in gen:
            pass


def test_an_interface_added_later_follows_endpoint_events(agent_env: Env) -> None:
    """The configured interfaces are kept between pushes: one added (or gone) since is in the next."""
    env = agent_env
    env.commit(config())
    env.commit({f"{C}/interface[name='tap1']/endpoint": "e1"})
    assert env.agent._oper_push is not None
    tap1 = f"{C}/interface[name='tap1']"
    assert env.agent._oper_push.pushed[tap1] == {"oper-status": "active", "effective-endpoint": "e1"}
    env.dp.endpoint_states["e1"] = EndpointState("down")
    env.dp.endpoint_event("e1", False, "timeout")
    assert env.agent.wait_idle()
    failover = env.dp.read_state().interfaces["tap1"].active_endpoint  # the plugin's pick, as the model makes it
    assert failover not in ("", "e1")
    assert env.agent._oper_push.pushed[tap1] == {"oper-status": "active", "effective-endpoint": failover}
    env.commit(deletes=[tap1])
    assert tap1 not in env.agent._oper_push.pushed
    assert read(tap1) == {}


def test_an_interface_deleted_with_an_endpoint_in_one_commit_leaves_no_push_data(agent_env: Env) -> None:
    """The endpoint makes every interface be read again; the interface gone still goes whole."""
    env = agent_env
    env.commit(config())
    assert env.agent._oper_push is not None
    tap0 = f"{C}/interface[name='tap0']"
    assert tap0 in env.agent._oper_push.pushed
    env.commit(deletes=[tap0, node("e59")])
    assert tap0 not in env.agent._oper_push.pushed and node("e59") not in env.agent._oper_push.pushed
    assert read(tap0) == {} and read(node("e59")) == {}

"""All-or-nothing commits: the dataplane fails at step 1, 2, ..., N of a commit, or a later subscriber rejects it;
each time the dataplane ends as it was before the commit and the running datastore is unchanged."""

from __future__ import annotations

from typing import Any

import pytest
import sysrepo

from singbox_agent.dataplane.objects import DataplaneError, DataplaneUnavailable, ErrorCode
from tests.agent.conftest import TOP, Env

C = f"{TOP}/client"
S = f"{TOP}/server"
HASH = "$6$saltsalt$1q7hOQNmD4hGCzJVaqKZ1J8b6T2a7LpyiS7wXqfjBmm5nU5aAhZ/pB2Xm5wcjFZ3Ue5XpGvRiMS2tf7h1XcQ4."

BASE = {f"{C}/endpoint[name='old']/address": "192.0.2.10",
        f"{C}/interface[name='tap9']/endpoint": "old",
        f"{C}/interface[name='tap9']/bypass-prefix": "10.9.0.0/16",
        f"{S}/listen[name='gone']/address": "127.0.0.1"}

# One commit that creates, modifies and deletes objects of most kinds.
EDITS = {f"{C}/endpoint[name='a']/address": "192.0.2.1",
         f"{C}/endpoint[name='b']/address": "192.0.2.2",
         f"{C}/default-endpoint": "a",
         f"{C}/interface[name='tap0']/endpoint": "b",
         f"{C}/interface[name='tap1']/enabled": True,
         f"{C}/interface[name='tap0']/bypass-prefix": "10.0.0.0/8",
         f"{C}/interface[name='tap9']/endpoint": "a",
         f"{C}/session-timeout": 99,
         f"{S}/listen[name='l1']/address": "127.0.0.1",
         f"{S}/authentication/user[username='u']/password": HASH,
         f"{S}/enabled": True}
DELETES = [f"{C}/endpoint[name='old']", f"{S}/listen[name='gone']",
           f"{C}/interface[name='tap9']/bypass-prefix[.='10.9.0.0/16']"]


def stage(env: Env) -> None:
    for p in DELETES:
        env.sess.delete_item(p)
    for p, v in EDITS.items():
        env.sess.set_item(p, v)


@pytest.mark.parametrize("in_flight", [1, 8])
def test_dataplane_failure_at_every_step_leaves_everything_as_before(sysrepo_instance: Any, in_flight: int) -> None:
    """in_flight 8: a pipelining dataplane (VPP) reports a failure only after later calls of the same run were sent;
    those succeed after the failing one, and the agent must take them back too."""
    from singbox_agent.dataplane.memory import MemoryDataplane
    from tests.agent.conftest import start_env

    gen = start_env(MemoryDataplane(in_flight=in_flight))
    env = next(gen)
    env.commit(BASE)
    before_dp, before_running = dict(env.dp.objects), env.running()
    n_calls = len(env.dp.calls)
    stage(env)
    env.sess.apply_changes()
    steps = len(env.dp.calls) - n_calls
    assert steps >= 10
    committed = dict(env.dp.objects)
    env.sess.replace_config(before_running, "vpp-singbox")  # back to BASE, through the agent
    env.agent.wait_idle()
    assert env.dp.objects == before_dp and env.running() == before_running
    ran_after_failure = 0
    for step in range(steps):
        env.dp.fail_after = step
        env.dp.fail_error = DataplaneError(f"injected at step {step + 1}", ErrorCode.INVALID_VALUE)
        n_calls = len(env.dp.calls)
        stage(env)
        with pytest.raises(sysrepo.SysrepoValidationFailedError) as err:
            env.sess.apply_changes()
        env.sess.discard_changes()
        env.agent.wait_idle()
        # calls that succeeded: `step` before the failure, those after it, then as many undone
        ran_after_failure += (len(env.dp.calls) - n_calls) // 2 - step
        assert f"injected at step {step + 1}" in str(err.value)
        assert "the dataplane refused" in str(err.value)
        assert env.dp.objects == before_dp, f"dataplane changed after a failure at step {step + 1}/{steps}"
        assert env.running() == before_running
        assert env.agent.status.in_sync
    assert (ran_after_failure > 0) == (in_flight > 1), "the in-flight emulation was not exercised as asked"
    env.dp.fail_after = None
    stage(env)
    env.sess.apply_changes()
    env.agent.wait_idle()
    assert env.dp.objects == committed
    gen.close()


def test_the_message_names_the_first_failing_object_even_when_later_ones_fail_too(sysrepo_instance: Any) -> None:
    from singbox_agent.dataplane.memory import MemoryDataplane
    from tests.agent.conftest import start_env

    gen = start_env(MemoryDataplane(in_flight=8))
    env = next(gen)
    env.dp.fail_when = lambda op: (DataplaneError(f"no {op.key[1]}", ErrorCode.INVALID_VALUE)
                                   if op.key[1:] in (("e3",), ("e5",)) else None)
    with pytest.raises(sysrepo.SysrepoValidationFailedError) as err:
        env.commit({f"{C}/endpoint[name='e{i}']/address": f"192.0.2.{i + 1}" for i in range(8)})
    assert "endpoint 'e3'" in str(err.value) and "e5" not in str(err.value)
    assert not [k for k in env.dp.objects if k[0] == "endpoint"]
    gen.close()


def test_the_message_names_the_object_and_the_dataplane_error(env: Env) -> None:
    env.commit({f"{C}/endpoint[name='e']/address": "192.0.2.1"})
    env.dp.fail_when = lambda op: (DataplaneError("singbox_endpoint_add_del: no such FIB", ErrorCode.NO_SUCH_FIB)
                                   if op.key == ("endpoint", "e2") else None)
    with pytest.raises(sysrepo.SysrepoValidationFailedError) as err:
        env.commit({f"{C}/endpoint[name='e2']/address": "192.0.2.2"})
    assert "endpoint 'e2'" in str(err.value) and "no such FIB" in str(err.value)
    assert env.agent.status.last_error and "endpoint 'e2'" in env.agent.status.last_error


def test_a_later_subscriber_rejecting_makes_the_agent_undo(sysrepo_instance: Any) -> None:
    from singbox_agent.dataplane.memory import MemoryDataplane
    from tests.agent.conftest import start_env

    gen = start_env(MemoryDataplane(), priority=5)
    env = next(gen)
    env.commit(BASE)
    before_dp, before_running = dict(env.dp.objects), env.running()
    seen: list[str] = []

    def later(event: str, _req: int, _changes: Any, _priv: Any) -> None:
        seen.append(event)
        if event == "change":
            raise sysrepo.SysrepoValidationFailedError("the later subscriber says no")

    conn = sysrepo.SysrepoConnection()
    other = conn.start_session("running")
    # sysrepo calls higher priorities first: the agent (5) applies, then this one (0) rejects
    other.subscribe_module_change("vpp-singbox", TOP, later, priority=0)
    n_calls = len(env.dp.calls)
    stage(env)
    with pytest.raises(sysrepo.SysrepoError, match="the later subscriber says no"):
        env.sess.apply_changes()
    env.sess.discard_changes()
    env.agent.wait_idle()
    assert seen == ["change"]
    applied = env.dp.calls[n_calls:]
    assert len(applied) >= 20  # applied, then undone
    assert env.dp.objects == before_dp
    assert env.running() == before_running
    other.stop()
    conn.disconnect()
    gen.close()


def test_vpp_lost_in_the_middle_of_a_commit_keeps_the_commit_and_repairs_on_reconnect(env: Env) -> None:
    env.commit(BASE)
    calls = {"n": 0}

    def drop_at_third(_op: Any) -> DataplaneError | None:
        calls["n"] += 1
        if calls["n"] == 3:
            env.dp._connected = False  # noqa: SLF001 - VPP died between two calls
            return DataplaneUnavailable("connection reset")
        return None

    env.dp.fail_when = drop_at_third
    stage(env)
    env.sess.apply_changes()  # accepted: the intent is stored
    env.agent.wait_idle()
    assert not env.agent.status.in_sync
    env.dp.fail_when = None
    env.dp.connect()
    env.agent.wait_idle()
    assert env.agent.status.in_sync
    assert env.dp.objects == env.agent.running.desired()

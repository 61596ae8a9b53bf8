"""Endpoint groups (issue 19) through real sysrepo and the agent into the in-memory dataplane: the group object and
its members, an interface's and the default's choice of endpoint or group, the order of the calls, the errors an
operator gets for a dangling reference, member state in the operational datastore, and names not yet resolved."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import sysrepo

from singbox_agent.agent.resolve import Resolver
from singbox_agent.dataplane.base import EndpointState, MemberState
from singbox_agent.dataplane.memory import MemoryDataplane
from singbox_agent.dataplane.objects import GroupMember, GroupSpec
from singbox_agent.repository import SysrepoInstance
from tests.agent.conftest import TOP, Env, start_env
from tests.agent.specs import interface_spec
from tests.agent.test_changes import calls_of
from tests.agent.test_oper_rpc_notif import operational, rpc

C = f"{TOP}/client"
G = f"{C}/endpoint-group[name='g']"
THREE = {f"{C}/endpoint[name='sb1']/address": "198.18.0.11",
         f"{C}/endpoint[name='sb2']/address": "198.18.0.12",
         f"{C}/endpoint[name='sb3']/address": "198.18.0.13"}


def group(policy: str = "weighted-round-robin", *members: tuple[str, int, int]) -> GroupSpec:
    return GroupSpec(policy, tuple(GroupMember(*m) for m in members))


def test_group_create_modify_delete_in_dependency_order(env: Env) -> None:
    """Endpoints go in before the group that names them, the group before the interface that uses it; on delete the
    other way round. Leaves left out take the YANG defaults (weighted-round-robin, weight 1, priority 0)."""
    got = calls_of(env, {**THREE,
                         f"{G}/member[endpoint='sb1']/weight": 1,
                         f"{G}/member[endpoint='sb2']/weight": 2,
                         f"{G}/member[endpoint='sb3']/weight": 3,
                         f"{C}/interface[name='tap0']/endpoint-group": "g"})
    assert got == ["put endpoint 'sb1'", "put endpoint 'sb2'", "put endpoint 'sb3'", "put endpoint-group 'g'",
                   "put interface 'tap0'"]
    assert env.dp.objects[("endpoint-group", "g")] == group("weighted-round-robin", ("sb1", 1, 0), ("sb2", 2, 0),
                                                           ("sb3", 3, 0))
    assert env.dp.objects[("interface", "tap0")] == interface_spec(endpoint="", group="g")

    assert calls_of(env, {f"{G}/policy": "vpp-singbox:least-connections",
                          f"{G}/member[endpoint='sb3']/priority": 7}) == ["put endpoint-group 'g'"]
    assert env.dp.objects[("endpoint-group", "g")] == group("least-connections", ("sb1", 1, 0), ("sb2", 2, 0),
                                                           ("sb3", 3, 7))
    # a member leaves, and its endpoint goes in the same commit: the group is changed first
    assert calls_of(env, deletes=[f"{G}/member[endpoint='sb3']", f"{C}/endpoint[name='sb3']"]) == [
        "put endpoint-group 'g'", "delete endpoint 'sb3'"]
    assert env.dp.objects[("endpoint-group", "g")] == group("least-connections", ("sb1", 1, 0), ("sb2", 2, 0))

    assert calls_of(env, deletes=[f"{C}/interface[name='tap0']", G, f"{C}/endpoint[name='sb1']"]) == [
        "delete interface 'tap0'", "delete endpoint-group 'g'", "delete endpoint 'sb1'"]
    assert ("endpoint-group", "g") not in env.dp.objects


def test_interface_and_default_choose_endpoint_or_group(env: Env) -> None:
    """YANG's choices: setting the group replaces the endpoint (sysrepo deletes the other case) and the other way
    round; a default group serves interfaces that name neither."""
    env.commit({**THREE, f"{G}/member[endpoint='sb1']/weight": 1,
                f"{C}/interface[name='tap0']/endpoint": "sb2"})
    assert env.dp.objects[("interface", "tap0")] == interface_spec(endpoint="sb2")
    assert calls_of(env, {f"{C}/interface[name='tap0']/endpoint-group": "g"}) == ["put interface 'tap0'"]
    assert env.dp.objects[("interface", "tap0")] == interface_spec(endpoint="", group="g")
    assert "endpoint" not in next(iter(env.running()["singbox"]["client"]["interface"]))
    assert calls_of(env, {f"{C}/interface[name='tap0']/endpoint": "sb3"}) == ["put interface 'tap0'"]
    assert env.dp.objects[("interface", "tap0")] == interface_spec(endpoint="sb3")

    assert calls_of(env, {f"{C}/default-endpoint-group": "g",
                          f"{C}/interface[name='tap1']/enabled": True}) == [
        "put default-endpoint-group", "put interface 'tap1'"]
    assert env.dp.objects[("default-endpoint-group",)] == "g"
    assert env.dp.objects[("interface", "tap1")] == interface_spec(endpoint="")
    # the default moves to an endpoint: the group default is cleared in the same commit
    assert sorted(calls_of(env, {f"{C}/default-endpoint": "sb1"})) == ["put default-endpoint",
                                                                      "put default-endpoint-group"]
    assert env.dp.objects[("default-endpoint-group",)] == ""
    assert env.dp.objects[("default-endpoint",)] == "sb1"


@pytest.mark.parametrize(("edits", "deletes", "says"), [
    # an interface naming a group that does not exist (an endpoint of that name does not count)
    ({f"{C}/interface[name='tap0']/endpoint-group": "sb1"}, [],
     ['Invalid leafref value "sb1"', "interface[name='tap0']/endpoint-group"]),
    ({f"{C}/default-endpoint-group": "nowhere"}, [], ['Invalid leafref value "nowhere"', "default-endpoint-group"]),
    # a member that is not an endpoint
    ({f"{G}/member[endpoint='gone']/weight": 2}, [], ['Invalid leafref value "gone"', "member[endpoint='gone']"]),
    # deleting an endpoint that is still a member
    ({}, [f"{C}/endpoint[name='sb2']"], ['Invalid leafref value "sb2"', "member[endpoint='sb2']"]),
    # a group without members, once its last member goes
    ({}, [f"{G}/member[endpoint='sb1']", f"{G}/member[endpoint='sb2']"], ['Too few "member" instances']),
    # a weight of 0 (a member that would never be chosen: remove it instead)
    ({f"{G}/member[endpoint='sb1']/weight": 0}, [], ['value "0" is out of the allowed range']),
])
def test_dangling_references_get_a_precise_error_and_change_nothing(env: Env, edits: dict[str, Any],
                                                                    deletes: list[str], says: list[str]) -> None:
    env.commit({**THREE, f"{G}/member[endpoint='sb1']/weight": 1, f"{G}/member[endpoint='sb2']/weight": 1})
    before = dict(env.dp.objects)
    with pytest.raises(sysrepo.SysrepoError) as exc:
        env.commit(edits, deletes)
    for text in says:
        assert text in str(exc.value), str(exc.value)
    assert env.dp.objects == before


def test_member_statistics_are_served_and_valid(env: Env) -> None:
    env.commit({**THREE, f"{G}/member[endpoint='sb1']/weight": 1, f"{G}/member[endpoint='sb2']/weight": 3,
                f"{C}/interface[name='tap0']/endpoint-group": "g"})
    env.dp.member_states[("g", "sb1")] = MemberState(1000, 3, 2)
    env.dp.member_states[("g", "sb2")] = MemberState(3000, 9, 0)
    tree = operational()
    members = {m["endpoint"]: m for m in next(iter(tree["client"]["endpoint-group"]))["member"]}
    assert members["sb1"]["statistics"]["connections"] == 1000
    assert members["sb1"]["statistics"]["active-connections"] == 3
    assert members["sb1"]["statistics"]["connection-failures"] == 2
    assert members["sb2"]["statistics"]["connections"] == 3000 and members["sb2"]["weight"] == 3
    assert "discontinuity-time" in members["sb2"]["statistics"]
    assert members["sb1"]["eligible"] is True and members["sb2"]["eligible"] is True
    itf = next(iter(tree["client"]["interface"]))
    # through a group there is no single effective endpoint: each connection has its member
    assert itf["oper-status"] == "active" and "effective-endpoint" not in itf


def test_clear_statistics_of_one_group(env: Env) -> None:
    """clear-statistics with the endpoint-group scope reaches the dataplane as that scope and moves the discontinuity-time
    of that group's members only; a group that is not configured is refused by the model (a leafref) and clears
    nothing."""
    env.commit({**THREE, f"{G}/member[endpoint='sb1']/weight": 1, f"{G}/member[endpoint='sb2']/weight": 1,
                f"{C}/endpoint-group[name='h']/member[endpoint='sb3']/weight": 1})
    for key in (("g", "sb1"), ("g", "sb2"), ("h", "sb3")):
        env.dp.member_states[key] = MemberState(10, 1, 0)

    def since() -> dict[str, str]:
        return {f"{g['name']}/{m['endpoint']}": m["statistics"]["discontinuity-time"]
                for g in operational()["client"]["endpoint-group"] for m in g["member"]}

    before = since()
    rpc("/vpp-singbox:clear-statistics", {"endpoint-group": "g"})
    assert env.dp.cleared == [("endpoint-group", "g")]
    after = since()
    assert after["g/sb1"] == after["g/sb2"] > before["g/sb1"]
    assert after["h/sb3"] == before["h/sb3"]
    with pytest.raises(sysrepo.SysrepoError):
        rpc("/vpp-singbox:clear-statistics", {"endpoint-group": "nowhere"})
    assert env.dp.cleared == [("endpoint-group", "g")]


def test_eligible_members_follow_health_and_priority(env: Env) -> None:
    """`eligible` as the plugin reports it: members not down, of the lowest priority that has one; with every
    member down, the lowest priority (tried all the same)."""
    env.commit({**THREE, f"{G}/member[endpoint='sb1']/weight": 1, f"{G}/member[endpoint='sb2']/weight": 1,
                f"{G}/member[endpoint='sb3']/priority": 1})

    def eligible() -> dict[str, bool]:
        group = next(iter(operational()["client"]["endpoint-group"]))
        return {m["endpoint"]: m["eligible"] for m in group["member"]}

    assert eligible() == {"sb1": True, "sb2": True, "sb3": False}
    env.dp.endpoint_states["sb1"] = EndpointState("down")
    assert eligible() == {"sb1": False, "sb2": True, "sb3": False}
    env.dp.endpoint_states["sb2"] = EndpointState("down")
    assert eligible() == {"sb1": False, "sb2": False, "sb3": True}
    env.dp.endpoint_states["sb3"] = EndpointState("down")
    assert eligible() == {"sb1": True, "sb2": True, "sb3": False}


def test_agent_restart_adopts_groups_without_resending(sysrepo_instance: SysrepoInstance) -> None:
    dp = MemoryDataplane()
    gen = start_env(dp)
    env = next(gen)
    env.commit({**THREE, f"{G}/policy": "vpp-singbox:five-tuple-hash", f"{G}/member[endpoint='sb1']/weight": 5,
                f"{G}/member[endpoint='sb3']/priority": 1, f"{C}/default-endpoint-group": "g",
                f"{C}/interface[name='tap0']/enabled": True})
    gen.close()
    before = len(dp.calls)
    gen = start_env(dp)
    env = next(gen)
    assert dp.calls[before:] == []
    assert env.agent.status.in_sync
    gen.close()


def test_the_dataplane_refuses_what_the_plugin_refuses() -> None:
    """The memory dataplane's rules, which the agent's undo is tested against: a group needs its members, an
    endpoint in a group and a group in use cannot go."""
    from singbox_agent.dataplane.objects import DataplaneError, EndpointSpec, ErrorCode, Op

    dp = MemoryDataplane()
    spec = EndpointSpec("192.0.2.1", 1080, None, None, 0, 10, False, 30, 5, 3, 2)
    with pytest.raises(DataplaneError) as exc:
        dp.apply(Op("put", ("endpoint-group", "g"), group("weighted-round-robin", ("e", 1, 0)), None))
    assert exc.value.code == ErrorCode.NO_SUCH_ENTRY
    dp.apply(Op("put", ("endpoint", "e"), spec, None))
    with pytest.raises(DataplaneError) as exc:
        dp.apply(Op("put", ("endpoint-group", "g"), group("round-robin", ("e", 1, 0)), None))
    assert exc.value.code == ErrorCode.INVALID_VALUE
    dp.apply(Op("put", ("endpoint-group", "g"), group("weighted-round-robin", ("e", 1, 0)), None))
    dp.apply(Op("put", ("interface", "tap0"), interface_spec(endpoint="", group="g"), None))
    for key in (("endpoint", "e"), ("endpoint-group", "g")):
        with pytest.raises(DataplaneError) as exc:
            dp.apply(Op("delete", key, None, None))
        assert exc.value.code == ErrorCode.INSTANCE_IN_USE


class _Dns:
    def __init__(self) -> None:
        self.answers: dict[str, str] = {}

    def __call__(self, host: str) -> str:
        if host in self.answers:
            return self.answers[host]
        raise OSError(f"[Errno -2] Name or service not known: {host}")


@pytest.fixture
def dns_env(sysrepo_instance: SysrepoInstance) -> Iterator[tuple[Env, _Dns]]:
    dns = _Dns()
    resolver = Resolver(lookup=dns, timeout_s=0.2, retry_s=86400, refresh_s=86400)
    for env in start_env(MemoryDataplane(), resolver=resolver):
        yield env, dns


def test_a_member_without_an_address_holds_back_its_group_and_what_uses_it(dns_env: tuple[Env, _Dns]) -> None:
    env, dns = dns_env
    env.commit({**THREE, f"{C}/endpoint[name='sb3']/address": "sb3.example",
                f"{G}/member[endpoint='sb1']/weight": 1, f"{G}/member[endpoint='sb3']/weight": 1,
                f"{C}/interface[name='tap0']/endpoint-group": "g",
                f"{C}/endpoint-group[name='ok']/member[endpoint='sb2']/weight": 1})
    assert env.agent.resolver.wait() and env.agent.wait_idle()
    assert ("endpoint", "sb1") in env.dp.objects and ("endpoint-group", "ok") in env.dp.objects
    for key in (("endpoint", "sb3"), ("endpoint-group", "g"), ("interface", "tap0")):
        assert key not in env.dp.objects
    pending = str(operational()["dataplane"].get("last-error", ""))
    assert "sb3.example" in pending, pending

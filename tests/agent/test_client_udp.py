"""UDP in client mode through the agent: client/interface/udp in YANG -> the interface-udp object -> the plugin's
singbox_interface_udp_enable_disable; statistics/udp in the operational state. Real sysrepo, the in-memory dataplane
(and, with VPP, the real plugin)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import sysrepo

from singbox_agent.agent.planner import plan
from singbox_agent.dataplane.base import InterfaceState, UdpState
from singbox_agent.dataplane.objects import InterfaceSpec, InterfaceUdpSpec
from singbox_agent.repository import SysrepoInstance
from tests.agent.conftest import TOP, Env
from tests.agent.test_oper_rpc_notif import operational

C = f"{TOP}/client"
I = f"{C}/interface[name='tap0']"
BASE = {f"{C}/endpoint[name='e']/address": "192.0.2.1", f"{I}/endpoint": "e"}


def calls_of(env: Env, edits: dict[str, Any] | None = None, deletes: list[str] | None = None) -> list[str]:
    before = len(env.dp.calls)
    env.commit(edits, deletes)
    assert env.dp.objects == env.agent.running.desired()
    return [op.describe() for op in env.dp.calls[before:]]


def test_udp_leaves_reach_the_dataplane(env: Env) -> None:
    assert calls_of(env, BASE) == ["put endpoint 'e'", "put interface 'tap0'"]  # UDP is off by default
    assert ("interface-udp", "tap0") not in env.dp.objects
    assert calls_of(env, {f"{I}/udp/enabled": True}) == ["put interface-udp 'tap0'"]
    assert env.dp.objects[("interface-udp", "tap0")] == InterfaceUdpSpec(idle_timeout=60, max_flows=4096)
    assert calls_of(env, {f"{I}/udp/idle-timeout": 5, f"{I}/udp/max-flows": 10}) == ["put interface-udp 'tap0'"]
    assert env.dp.objects[("interface-udp", "tap0")] == InterfaceUdpSpec(idle_timeout=5, max_flows=10)
    # the interface's own changes leave UDP alone
    assert calls_of(env, {f"{I}/max-connections": 7}) == ["put interface 'tap0'"]
    assert calls_of(env, {f"{I}/udp/enabled": False}) == ["delete interface-udp 'tap0'"]
    assert calls_of(env, {f"{I}/udp/enabled": True}) == ["put interface-udp 'tap0'"]
    # relaying off takes UDP with it, UDP first
    assert calls_of(env, {f"{I}/enabled": False}) == ["delete interface-udp 'tap0'", "delete interface 'tap0'"]
    assert calls_of(env, {f"{I}/enabled": True}) == ["put interface 'tap0'", "put interface-udp 'tap0'"]
    assert calls_of(env, deletes=[I]) == ["delete interface-udp 'tap0'", "delete interface 'tap0'"]


@pytest.mark.parametrize("leaf, value", [("idle-timeout", 0), ("idle-timeout", 86401), ("max-flows", 0),
                                         ("max-flows", 1000001)])
def test_out_of_range_values_are_refused_and_change_nothing(env: Env, leaf: str, value: int) -> None:
    env.commit({**BASE, f"{I}/udp/enabled": True})
    before = dict(env.dp.objects)
    with pytest.raises(sysrepo.SysrepoError):
        env.commit({f"{I}/udp/{leaf}": value})
    assert env.dp.objects == before


def test_udp_statistics_are_served_and_valid(env: Env) -> None:
    env.commit({**BASE, f"{I}/udp/enabled": True})
    env.dp.interface_counters["tap0"] = InterfaceState(True, "", 10, 1500, 1, 7, 2)
    env.dp.udp_counters["tap0"] = UdpState(active_flows=2, flows=9, flow_failures=1, packets_to_proxy=100,
                                           octets_to_proxy=12000, packets_from_proxy=98, octets_from_proxy=11000,
                                           dropped=3)
    tree = operational()
    st = tree["client"]["interface"]["tap0"]["statistics"]
    assert st["udp"] == {"active-flows": 2, "flows": 9, "flow-failures": 1, "packets-to-proxy": 100,
                         "octets-to-proxy": 12000, "packets-from-proxy": 98, "octets-from-proxy": 11000,
                         "dropped": 3}
    assert st["total-connections"] == 7  # the TCP counters beside them
    env.commit({f"{I}/udp/enabled": False})
    assert "udp" not in operational()["client"]["interface"]["tap0"]["statistics"]


def test_planner_puts_udp_after_its_interface_and_deletes_it_before() -> None:
    itf, udp = ("interface", "tap0"), ("interface-udp", "tap0")
    spec, uspec = InterfaceSpec("e", 10), InterfaceUdpSpec(60, 4096)
    assert [op.describe() for op in plan({}, {udp: uspec, itf: spec})] == [
        "put interface 'tap0'", "put interface-udp 'tap0'"]
    assert [op.describe() for op in plan({udp: uspec, itf: spec}, {})] == [
        "delete interface-udp 'tap0'", "delete interface 'tap0'"]


# with the real plugin ------------------------------------------------------------------------------------------

@pytest.fixture
def venv(sysrepo_instance: SysrepoInstance) -> Iterator[Any]:
    from tests.agent.test_vpp import VppEnv, _vpptopo

    env = VppEnv(_vpptopo())
    try:
        yield env
    finally:
        env.close()


@pytest.mark.vpp
def test_udp_round_trip_through_the_plugin(venv: Any) -> None:
    """The plugin takes the settings, reports them back (a resync sends nothing), and serves the counters."""
    L = f"{C}/interface[name='loop0']"
    venv.commit({f"{C}/endpoint[name='e']/address": "192.0.2.1", f"{L}/endpoint": "e",
                 f"{L}/udp/enabled": True, f"{L}/udp/idle-timeout": 30, f"{L}/udp/max-flows": 100})
    got = venv.vpp_config()
    assert got[("interface-udp", "loop0")] == InterfaceUdpSpec(30, 100)
    assert "Idle timeout: 30s, max flows: 100" in venv.vpp.cli("show singbox udp")
    assert venv.agent.running.desired()[("interface-udp", "loop0")] == got[("interface-udp", "loop0")]
    st = venv.dp.read_state().interfaces["loop0"]
    assert st.udp == UdpState()
    venv.commit({f"{L}/udp/enabled": False})
    assert ("interface-udp", "loop0") not in venv.vpp_config()
    assert "Idle timeout" not in venv.vpp.cli("show singbox udp")
    # relaying off in VPP behind the agent's back: the resync puts UDP back after its interface
    venv.commit({f"{L}/udp/enabled": True})
    venv.vpp.cli("singbox disable loop0", check=False)
    venv.agent.resync()
    venv.wait(lambda: ("interface-udp", "loop0") in venv.vpp_config(), "UDP relaying restored")


@pytest.mark.vpp
def test_udp_of_an_interface_created_later(venv: Any) -> None:
    """UDP relaying configured for an interface VPP does not have yet is kept, and applied after its interface
    when the interface appears (as its bypass prefixes are)."""
    L = f"{C}/interface[name='loop7']"
    venv.commit({f"{C}/endpoint[name='e']/address": "192.0.2.1", f"{L}/endpoint": "e",
                 f"{L}/udp/enabled": True, f"{L}/udp/max-flows": 7})
    assert venv.dp.read_state().interfaces["loop7"].present is False
    assert venv.vpp_config()[("interface-udp", "loop7")] == InterfaceUdpSpec(60, 7)  # kept for it
    venv.vpp.cli("create loopback interface instance 7")
    venv.wait(lambda: venv.dp.read_state().interfaces["loop7"].udp is not None, "loop7's UDP relaying in VPP",
              timeout=15)
    assert "Idle timeout: 60s, max flows: 7" in venv.vpp.cli("show singbox udp")

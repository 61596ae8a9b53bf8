"""The proxy chain's explicit upstream (server/upstream-interface) through real sysrepo and the agent into the
in-memory dataplane: its object and its place in the call order, the leafref's error for an interface that is not
client mode's, VPP without the interface (refused, nothing changed), and a chained server session's endpoint in the
operational datastore."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sysrepo

from singbox_agent.dataplane.base import Session
from singbox_agent.dataplane.memory import MemoryDataplane
from singbox_agent.repository import SysrepoInstance
from tests.agent.conftest import TOP, Env, start_env
from tests.agent.test_changes import calls_of
from tests.agent.test_oper_rpc_notif import operational
from tests.agent.test_vpp import VppEnv, venv  # noqa: F401 - the fixture

C = f"{TOP}/client"
S = f"{TOP}/server"
CHAIN = {f"{C}/endpoint[name='up']/address": "192.0.2.10",
         f"{C}/endpoint[name='up']/username": "upstream",
         f"{C}/endpoint[name='up']/password": "pass2",
         f"{C}/interface[name='tap0']/endpoint": "up",
         f"{S}/upstream-interface": "tap0"}


def test_upstream_interface_put_after_the_interface_and_back_to_by_route(env: Env) -> None:
    """The explicit upstream is set once the interface it names relays (and the endpoint it uses exists); removing
    the leaf puts the server back on "by route" (""), not a delete of a singleton."""
    assert env.dp.objects[("server-upstream",)] == ""
    assert calls_of(env, CHAIN) == ["put endpoint 'up'", "put interface 'tap0'", "put server-upstream"]
    assert env.dp.objects[("server-upstream",)] == "tap0"
    assert calls_of(env, deletes=[f"{S}/upstream-interface"]) == ["put server-upstream"]
    assert env.dp.objects[("server-upstream",)] == ""


def test_upstream_interface_must_be_a_client_interface(env: Env) -> None:
    """A dangling reference is refused by the leafref, naming the node; so is removing the client interface the
    server still sends its traffic through. Nothing reaches the dataplane."""
    before = len(env.dp.calls)
    with pytest.raises(sysrepo.SysrepoValidationFailedError) as err:
        env.commit({f"{S}/upstream-interface": "tap9"})
    assert "tap9" in str(err.value) and "no target instance" in str(err.value)
    env.commit(CHAIN)
    n = len(env.dp.calls)
    with pytest.raises(sysrepo.SysrepoValidationFailedError):
        env.commit(deletes=[f"{C}/interface[name='tap0']"])
    assert len(env.dp.calls) == n and before < n
    assert env.dp.objects[("server-upstream",)] == "tap0"


@pytest.fixture
def env_without_tap0(sysrepo_instance: SysrepoInstance) -> Iterator[Env]:
    yield from start_env(MemoryDataplane(vpp_interfaces={"tap1"}))


def test_upstream_interface_vpp_does_not_have_is_refused(env_without_tap0: Env) -> None:
    """The interface's own relaying waits for it to appear, but the server's upstream cannot: "by route" in its
    place would send what the operator routes through a proxy directly. The commit fails with the reason and
    nothing is changed."""
    env = env_without_tap0
    with pytest.raises(sysrepo.SysrepoError) as err:
        env.commit(CHAIN)
    assert "server upstream-interface 'tap0': VPP has no such interface" in str(err.value)
    assert env.dp.objects[("server-upstream",)] == ""
    assert ("endpoint", "up") not in env.dp.objects and ("interface", "tap0") not in env.dp.objects


def test_chained_server_session_names_its_endpoint(env: Env) -> None:
    """A server session relayed through client mode's upstream has an endpoint in the operational sessions list
    (the YANG leaf is no longer client mode's only), validated as a whole document."""
    env.commit(CHAIN)
    env.dp.sessions = {7: Session(7, "server", "established", "198.18.1.2", 40000, destination_domain="origin.test",
                                  destination_port=80, endpoint="up", username="client", bytes_to_client=10)}
    got = {s["id"]: s for s in operational()["sessions"]["session"]}
    assert got[7]["mode"] == "server" and got[7]["endpoint"] == "up"


@pytest.mark.vpp
def test_upstream_interface_through_the_agent_into_vpp(venv: VppEnv) -> None:
    """With VPP: the leaf becomes singbox_server_set_upstream with loop0's sw_if_index, reads back as the same object
    (a resync does not send it again), and its removal puts the server back on "by route"."""
    venv.commit({k.replace("tap0", "loop0"): "loop0" if v == "tap0" else v for k, v in CHAIN.items()})
    srv = venv.dp._call("singbox_server_dump")[0]
    assert int(srv.upstream_sw_if_index) == venv.dp._if_index["loop0"]
    assert venv.vpp_config()[("server-upstream",)] == "loop0"
    # read back as the agent derives it: a resync sends nothing (passwords are write-only, never compared)
    assert venv.vpp_config()[("server-upstream",)] == venv.agent.running.desired()[("server-upstream",)]
    assert "Upstream: loop0's client-mode upstream" in venv.vpp.cli("show singbox server")
    venv.commit(deletes=[f"{S}/upstream-interface"])
    assert int(venv.dp._call("singbox_server_dump")[0].upstream_sw_if_index) == 0xFFFFFFFF
    assert venv.vpp_config()[("server-upstream",)] == ""

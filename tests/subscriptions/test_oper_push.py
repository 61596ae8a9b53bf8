"""On-change YANG-Push (RFC 8641) of the agent's operational state: what the agent pushes into sysrepo's operational
datastore (agent/oper_push.py) when it sees an endpoint go down, the dataplane go away or come back, and what is
gone again when the agent stops. The agent runs in this process over the in-memory dataplane; the subscribers are
ncclient on the real NETCONF server and sysrepo's own srsn API."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from singbox_agent.dataplane.base import EndpointState
from singbox_agent.dataplane.memory import MemoryDataplane
from singbox_agent.repository import SysrepoInstance
from singbox_agent.subscriptions import srsn
from tests.agent.conftest import Env, start_env
from tests.subscriptions.test_netconf_subscriptions import DS, SN, YP, Server, install_srsn_modules, rpc, take
from tests.subscriptions.test_netconf_subscriptions import server  # noqa: F401 - the fixture

TOP = "/vpp-singbox:singbox"
C = f"{TOP}/client"
SB = "urn:vpp-singbox:yang:vpp-singbox"
CONFIG = {f"{C}/endpoint[name='e']/address": "192.0.2.1",
          f"{C}/endpoint[name='b']/address": "192.0.2.2",
          f"{C}/endpoint[name='b']/priority": 200,
          f"{C}/interface[name='tap0']/endpoint": "e"}


@pytest.fixture
def agent_env(sysrepo_instance: SysrepoInstance) -> Iterator[Env]:
    dp = MemoryDataplane()
    dp.endpoint_states = {"e": EndpointState("up", 1, 800), "b": EndpointState("up", 1, 900)}
    yield from start_env(dp)


def on_change(m: Any, xpath: str) -> int:
    reply = rpc(m, f'<establish-subscription xmlns="{SN}">'
                   f'<datastore xmlns="{YP}" xmlns:ds="{DS}">ds:operational</datastore>'
                   f'<datastore-xpath-filter xmlns="{YP}" xmlns:sb="{SB}">{xpath}</datastore-xpath-filter>'
                   f'<on-change xmlns="{YP}"><sync-on-start>false</sync-on-start></on-change>'
                   f"</establish-subscription>")
    return int(reply.findtext(f"{{{SN}}}id"))  # type: ignore[arg-type]


def edits(update: Any) -> dict[str, tuple[str | None, str | None]]:
    """target -> (operation, value text) of a push-change-update's YANG patch (by local names: sysrepo puts the
    patch in the yang-push namespace)."""
    def child(e: Any, name: str) -> Any:
        return next((c for c in e if c.tag.rsplit("}", 1)[-1] == name), None)

    out = {}
    for edit in (e for e in update.iter() if e.tag.rsplit("}", 1)[-1] == "edit"):
        value = child(edit, "value")
        out[child(edit, "target").text] = (child(edit, "operation").text,
                                           None if value is None or not len(value) else value[0].text)
    return out


def test_an_endpoint_going_down_reaches_an_ncclient_on_change_subscriber(server: Server, agent_env: Env) -> None:
    env = agent_env
    env.commit(CONFIG)
    with server.connect() as m:
        sub = on_change(m, "/sb:singbox/sb:client")
        env.dp.endpoint_states["e"] = EndpointState("down", 0, 0, 1, 1)
        seen = time.perf_counter()
        env.dp.endpoint_event("e", False, "connect-failed")  # the plugin's event: what the agent sees
        update = take(m, "push-change-update", timeout=30)
        latency_ms = (time.perf_counter() - seen) * 1e3
        assert update.findtext(f"{{{YP}}}id") == str(sub)
        got = edits(update)
        # one patch: the endpoint's status and the interface's failover to the backup endpoint
        assert got[f"{C}/endpoint[name='e']/oper-status"] == ("replace", "down"), got
        assert got[f"{C}/interface[name='tap0']/effective-endpoint"] == ("replace", "b"), got
        print(f"endpoint down -> ncclient push-change-update: {latency_ms:.1f} ms")


def read(path: str) -> dict[str, Any]:
    import sysrepo

    conn = sysrepo.SysrepoConnection()
    try:
        with conn.start_session("operational") as sess:
            try:
                data: dict[str, Any] = sess.get_data(path)
            except sysrepo.SysrepoNotFoundError:
                return {}
            return data
    finally:
        conn.disconnect()


def read_patch(conn: Any, sub: srsn.Subscription, timeout: float = 10) -> str:
    deadline = time.monotonic() + timeout
    with conn.get_ly_ctx() as ctx:
        while time.monotonic() < deadline:
            n = sub.read(ctx, 200)
            if n is not None and n.content.startswith("<push-change-update"):
                return n.content
    raise AssertionError(f"no push-change-update within {timeout} s")


@pytest.fixture
def srsn_conn(sysrepo_instance: SysrepoInstance) -> Iterator[Any]:
    import sysrepo

    install_srsn_modules(sysrepo_instance)
    conn = sysrepo.SysrepoConnection()
    try:
        yield conn
    finally:
        conn.disconnect()


def test_vpp_going_away_and_restarting_is_pushed_and_the_push_data_goes_with_the_agent(srsn_conn: Any) -> None:
    dp = MemoryDataplane()
    dp.endpoint_states = {"e": EndpointState("up", 1, 800), "b": EndpointState("up", 1, 900)}
    gen = start_env(dp)
    env = next(gen)
    sess = srsn_conn.start_session("operational")
    sub = None
    try:
        env.commit(CONFIG)
        sub = srsn.yang_push_on_change(sess, "operational", xpath=TOP, sync_on_start=False)
        dp.disconnect()
        patch = read_patch(srsn_conn, sub)
        # VPP away: its endpoints' status is unknown, not the last one seen
        assert f"<target>{TOP}/dataplane/connected</target>" in patch and "<connected" in patch, patch
        assert f"<target>{C}/endpoint[name='e']/oper-status</target>" in patch, patch
        assert "<operation>delete</operation>" in patch, patch
        # ... and only its status: the endpoint itself is still configured
        assert f"<target>{C}/endpoint[name='e']</target>" not in patch, patch
        dp.endpoint_states["e"] = EndpointState("down")
        dp.connect(restarted=True)  # VPP restarted: empty, then resynchronised by the agent
        patch = read_patch(srsn_conn, sub)
        assert f"{TOP}/dataplane/connected" in patch, patch
        while f"{C}/endpoint[name='e']/oper-status" not in patch:
            patch = read_patch(srsn_conn, sub)
        assert "<oper-status" in patch and ">down</oper-status>" in patch, patch
        assert env.agent.wait_idle()
        assert list(read(f"{C}/endpoint[name='e']/oper-status")["singbox"]["client"]["endpoint"]) \
            == [{"name": "e", "oper-status": "down"}]
        # an endpoint removed from the configuration leaves no entry of its pushed status behind
        env.commit(deletes=[f"{C}/endpoint[name='b']"])
        assert read(f"{C}/endpoint[name='b']") == {}
    finally:
        if sub is not None:
            sub.close()
        sess.stop()
        for _ in gen:
            pass  # the agent stops
    # sysrepo dropped the stopped agent's push data (and shows no configuration of a module nobody subscribes to):
    # pushed data left behind would show here, as entries with only their key and status
    assert read(TOP) == {}


def test_nothing_is_pushed_while_nothing_changes(agent_env: Env) -> None:
    """The worker's ticks compare, they do not apply: no module-change event (and no push) every second."""
    env = agent_env
    env.commit(CONFIG)
    assert env.agent._oper_push is not None
    before = env.agent._oper_push.applies
    for _ in range(3):
        env.agent._events.put("tick")
    env.agent._events.put("oper-push")
    assert env.agent.wait_idle()
    assert env.agent._oper_push.applies == before



def test_an_endpoint_without_a_status_is_not_pushed_until_it_has_one(srsn_conn: Any) -> None:
    """'unknown' (no health check, or none finished) is not pushed: thousands of such endpoints would make every
    push cost more. Its first status arrives as a patch: push data's difference creates the entry with the leaf, but
    reads (and so the subscriber) have had the entry with 'unknown' all along, so it goes out as a merge
    (subscriptions/known.py), not as a create of what the subscriber holds."""
    dp = MemoryDataplane()  # reports every endpoint as 'unknown'
    gen = start_env(dp)
    env = next(gen)
    sess = srsn_conn.start_session("operational")
    sub = None
    try:
        env.commit({f"{C}/endpoint[name='e']/address": "192.0.2.1"})
        assert env.agent._oper_push is not None
        assert not any("endpoint" in node for node in env.agent._oper_push.pushed), env.agent._oper_push.pushed
        assert list(read(f"{C}/endpoint[name='e']/oper-status")["singbox"]["client"]["endpoint"]) \
            == [{"name": "e", "oper-status": "unknown"}]
        sub = srsn.yang_push_on_change(sess, "operational", xpath=f"{C}/endpoint/oper-status", sync_on_start=False)
        dp.endpoint_states["e"] = EndpointState("up", 0, 700)
        dp.endpoint_event("e", True, rtt_us=700)
        patch = read_patch(srsn_conn, sub)
        assert f"{C}/endpoint[name='e']" in patch and ">up</oper-status>" in patch, patch
        assert "<operation>merge</operation>" in patch and "<operation>create</operation>" not in patch, patch
    finally:
        if sub is not None:
            sub.close()
        sess.stop()
        for _ in gen:
            pass

"""Endpoints configured by host name (issue 17): no commit waits for a lookup, an unanswered name holds back only
its endpoint and what uses it, and a resync compares the address sent with the address VPP has."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import sysrepo

from singbox_agent.agent.resolve import Resolver, hold_unresolved
from singbox_agent.dataplane.memory import MemoryDataplane
from singbox_agent.repository import SysrepoInstance
from tests.agent.conftest import TOP, Env, start_env
from tests.agent.specs import endpoint_spec, interface_spec

C = f"{TOP}/client"


class Dns:
    """A name service the test controls: `answers` resolve, other names fail; a name with a gate waits for it."""

    def __init__(self) -> None:
        self.answers: dict[str, str] = {}
        self.gates: dict[str, threading.Event] = {}
        self.asked: list[str] = []

    def __call__(self, host: str) -> str:
        self.asked.append(host)
        gate = self.gates.get(host)
        if gate is not None:
            gate.wait(60)
        if host in self.answers:
            return self.answers[host]
        raise OSError(f"[Errno -2] Name or service not known: {host}")


@pytest.fixture
def dns() -> Iterator[Dns]:
    d = Dns()
    yield d
    for gate in d.gates.values():
        gate.set()  # free the resolver's threads


@pytest.fixture
def env(sysrepo_instance: SysrepoInstance, dns: Dns) -> Iterator[Env]:
    # refresh and retry only when a test calls tick() itself after moving the clock past them (never: 1 day)
    resolver = Resolver(lookup=dns, timeout_s=0.2, retry_s=86400, refresh_s=86400)
    yield from start_env(MemoryDataplane(), resolver=resolver)


def settle(env: Env) -> None:
    assert env.agent.resolver.wait()
    assert env.agent.wait_idle()


def dataplane_state() -> dict[str, Any]:
    conn = sysrepo.SysrepoConnection()
    try:
        with conn.start_session("operational") as op:
            data: dict[str, Any] = op.get_data(f"{TOP}/dataplane")
            return dict(data["singbox"]["dataplane"])
    finally:
        conn.disconnect()


def test_a_name_without_answer_holds_back_only_what_uses_it(env: Env, dns: Dns) -> None:
    """The lookup of slow.example never returns while two commits go through: the first (the endpoint and the
    interface using it) is accepted with both pending, the second (other changes) is applied at once. The old
    agent resolved inside the change callback, one name after another."""
    dns.gates["slow.example"] = threading.Event()
    env.commit({f"{C}/endpoint[name='far']/address": "slow.example",
                f"{C}/interface[name='tap0']/endpoint": "far"})
    env.commit({f"{TOP}/log-level": "debug", f"{C}/endpoint[name='near']/address": "192.0.2.2",
                f"{C}/interface[name='tap1']/endpoint": "near"})
    assert env.dp.objects[("log-level",)] == "debug"
    assert env.dp.objects[("endpoint", "near")] == endpoint_spec("192.0.2.2")
    assert env.dp.objects[("interface", "tap1")] == interface_spec("near")
    assert ("endpoint", "far") not in env.dp.objects and ("interface", "tap0") not in env.dp.objects
    state = dataplane_state()
    assert state["config-pending"] is True and "slow.example" in state["last-error"]
    # past the configured timeout (0.2 s) the name counts as failed, and says so
    deadline = time.monotonic() + 10
    while "no answer within 0.2 s" not in env.agent.resolver.reason("slow.example"):
        assert time.monotonic() < deadline, env.agent.resolver.reason("slow.example")
        time.sleep(0.05)
        env.agent.resolver.tick()

    dns.answers["slow.example"] = "198.18.0.7"
    dns.gates["slow.example"].set()
    settle(env)
    assert env.dp.objects[("endpoint", "far")] == endpoint_spec("198.18.0.7")
    assert env.dp.objects[("interface", "tap0")] == interface_spec("far")
    assert dataplane_state()["config-pending"] is False


def test_resync_does_not_resend_an_endpoint_configured_by_name(env: Env, dns: Dns) -> None:
    """VPP reports the address it was given; the agent compares it with the address it sent, not with the name."""
    dns.answers["proxy.example"] = "198.18.0.5"
    env.commit({f"{C}/endpoint[name='e']/address": "proxy.example", f"{C}/default-endpoint": "e",
                f"{C}/interface[name='tap0']/enabled": True})
    settle(env)
    assert env.dp.objects[("endpoint", "e")] == endpoint_spec("198.18.0.5")
    assert ("interface", "tap0") in env.dp.objects
    calls = len(env.dp.calls)
    assert env.agent.resync()
    assert env.dp.calls[calls:] == []
    assert dns.asked == ["proxy.example"]  # looked up once: the commit, the resync and the oper reads use the cache


def test_an_unresolvable_name_is_reported_and_a_corrected_address_applied(env: Env, dns: Dns) -> None:
    env.commit({f"{C}/endpoint[name='e']/address": "nx.example", f"{C}/interface[name='tap0']/endpoint": "e"})
    settle(env)
    assert ("endpoint", "e") not in env.dp.objects
    assert "cannot resolve 'nx.example'" in dataplane_state()["last-error"]
    env.commit({f"{C}/endpoint[name='e']/address": "192.0.2.9"})
    assert env.dp.objects[("endpoint", "e")] == endpoint_spec("192.0.2.9")
    assert env.dp.objects[("interface", "tap0")] == interface_spec("e")


def test_deleting_a_held_endpoint_sends_nothing(env: Env, dns: Dns) -> None:
    env.commit({f"{C}/endpoint[name='e']/address": "nx.example"})
    settle(env)
    calls = len(env.dp.calls)
    env.commit(deletes=[f"{C}/endpoint[name='e']"])
    settle(env)
    assert [op for op in env.dp.calls[calls:] if op.key[0] == "endpoint"] == []
    assert dataplane_state()["config-pending"] is False


def test_a_new_address_of_a_name_is_sent(env: Env, dns: Dns) -> None:
    dns.answers["proxy.example"] = "198.18.0.5"
    env.commit({f"{C}/endpoint[name='e']/address": "proxy.example"})
    settle(env)
    dns.answers["proxy.example"] = "198.18.0.6"
    env.agent.resolver.refresh_s = 0  # the answer is due again
    env.agent.resolver.tick()
    settle(env)
    assert env.dp.objects[("endpoint", "e")] == endpoint_spec("198.18.0.6")


def test_a_failed_refresh_keeps_the_last_address(env: Env, dns: Dns) -> None:
    dns.answers["proxy.example"] = "198.18.0.5"
    env.commit({f"{C}/endpoint[name='e']/address": "proxy.example"})
    settle(env)
    del dns.answers["proxy.example"]
    env.agent.resolver.refresh_s = 0
    env.agent.resolver.tick()
    settle(env)
    assert env.dp.objects[("endpoint", "e")] == endpoint_spec("198.18.0.5")
    calls = len(env.dp.calls)
    assert env.agent.resync() and env.dp.calls[calls:] == []


def test_hold_unresolved_follows_what_depends_on_the_endpoint() -> None:
    """Pure: the default endpoint naming a held endpoint, interfaces on it (named or by default) and their bypass
    prefixes are held; everything else goes, with endpoint names replaced by their addresses."""
    addresses = {"good.example": "198.18.0.1"}
    objs = {("endpoint", "bad"): endpoint_spec("bad.example"), ("endpoint", "good"): endpoint_spec("good.example"),
            ("endpoint", "ip"): endpoint_spec("192.0.2.1"), ("default-endpoint",): "bad",
            ("interface", "by-default"): interface_spec(""), ("bypass", "by-default", "10.0.0.0/8"): True,
            ("interface", "on-bad"): interface_spec("bad"), ("interface", "on-good"): interface_spec("good"),
            ("interface", "on-other"): interface_spec("other"), ("log-level",): "info"}
    hosts = {"other": "other.example"}
    out, held = hold_unresolved(objs, lambda h: addresses.get(h, h if h[0].isdigit() else None), hosts.get, lambda: "bad",
                                lambda h: f"no {h}")
    assert set(held) == {("endpoint", "bad"), ("default-endpoint",), ("interface", "by-default"),
                         ("bypass", "by-default", "10.0.0.0/8"), ("interface", "on-bad"), ("interface", "on-other")}
    assert held[("interface", "on-other")] == "endpoint 'other': no other.example"
    assert out[("endpoint", "good")] == endpoint_spec("198.18.0.1")
    assert out[("endpoint", "ip")] == endpoint_spec("192.0.2.1")
    assert set(out) == set(objs) - set(held)


def test_an_answer_during_a_commit_is_applied_after_its_done(dns: Dns) -> None:
    """The name's answer arrives between the commit's change and done events: the resync it asks for cannot run
    then (the commit is not settled), so the done runs it. It used to be dropped and retried 30 s later."""
    from singbox_agent.agent.daemon import Agent
    from singbox_agent.agent.mapping import Change

    dns.gates["slow.example"] = threading.Event()
    dp = MemoryDataplane()
    agent = Agent(dp, resolver=Resolver(lookup=dns, timeout_s=5, retry_s=86400, refresh_s=86400))
    try:
        agent.status.in_sync = True  # as after the first resync
        changes = [Change("created", f"{C}/endpoint[name='e']", {}),
                   Change("created", f"{C}/endpoint[name='e']/address", "slow.example")]
        agent._change(7, changes)  # noqa: SLF001 - sysrepo's change event, without sysrepo
        dns.answers["slow.example"] = "198.18.0.7"
        dns.gates["slow.example"].set()
        assert agent.resolver.wait()
        assert agent._events.get_nowait() == "resync"  # noqa: SLF001 - what the answer asked for
        assert not agent.resync()  # between change and done: not now
        agent._done(7, lambda: changes)  # noqa: SLF001
        assert agent._events.get_nowait() == "resync"  # noqa: SLF001 - the done asks again
        assert agent.resync()
        assert dp.objects[("endpoint", "e")] == endpoint_spec("198.18.0.7")
    finally:
        agent.resolver.close()

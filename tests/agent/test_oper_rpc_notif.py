"""Operational state validated by libyang against the model; RPCs and notifications round-trip through sysrepo."""

from __future__ import annotations

import queue
import time
from typing import Any

import pytest
import sysrepo

from singbox_agent.dataplane.base import EndpointState, InterfaceState, ProbeResult, ServerState, Session, UserState
from tests.agent.conftest import TOP, Env

C = f"{TOP}/client"
S = f"{TOP}/server"
HASH = "$6$saltsalt$1q7hOQNmD4hGCzJVaqKZ1J8b6T2a7LpyiS7wXqfjBmm5nU5aAhZ/pB2Xm5wcjFZ3Ue5XpGvRiMS2tf7h1XcQ4."
FULL = {f"{C}/endpoint[name='e']/address": "192.0.2.1",
        f"{C}/interface[name='tap0']/endpoint": "e",
        f"{C}/interface[name='off']/enabled": False,
        f"{S}/listen[name='l']/address": "127.0.0.1",
        f"{S}/authentication/method": "username-password",
        f"{S}/authentication/user[username='bob']/password": HASH,
        f"{S}/max-sessions": 2,
        f"{S}/enabled": True}


def sessions(n: int) -> dict[int, Session]:
    out = {}
    for i in range(n):
        if i % 2:
            out[i] = Session(i, "server", "established", "198.18.1.2", 40000 + i % 20000,
                             destination_domain="example.com", destination_port=443, username="bob",
                             bytes_from_client=i, bytes_to_client=2 * i, age=i % 100)
        else:
            out[i] = Session(i, "client", "connecting", "2001:db8::1", 1024 + i % 60000,
                             destination_address="198.18.2.2", destination_port=80, interface="tap0", endpoint="e")
    return out


def operational() -> dict[str, Any]:
    """The operational tree of vpp-singbox, after libyang validated it as a complete document of the model."""
    conn = sysrepo.SysrepoConnection()
    try:
        with conn.start_session("operational") as sess, sess.get_data_ly(TOP) as data:
            text = data.print_mem("json", with_siblings=True)
            tree: dict[str, Any] = data.print_dict()["singbox"]
        with conn.get_ly_ctx() as ctx:
            # strict parse + full validation (leafrefs, when, must, choice, types) of the state the agent served
            ctx.parse_data_mem(text, "json", strict=True, validate_present=True).free()
        return tree
    finally:
        conn.disconnect()


def test_every_state_node_is_served_and_valid(env: Env) -> None:
    env.commit(FULL)
    env.dp.endpoint_states["e"] = EndpointState("up", 12, 830, 3, 0, 1)
    env.dp.interface_counters["tap0"] = InterfaceState(True, "", 10, 1500, 1, 7, 2)
    env.dp.server_state = ServerState(True, 5, 1, 2, 3, 4096, 1)
    env.dp.user_states["bob"] = UserState(2, 1)
    env.dp.sessions = sessions(4)
    tree = operational()
    ep = tree["client"]["endpoint"]["e"] if isinstance(tree["client"]["endpoint"], dict) else \
        next(iter(tree["client"]["endpoint"]))
    assert ep["oper-status"] == "up" and ep["round-trip-time"] == 830
    assert ep["statistics"]["connection-failures"] == 3
    ifs = {i["name"]: i for i in tree["client"]["interface"]}
    assert ifs["tap0"]["oper-status"] == "active" and ifs["tap0"]["effective-endpoint"] == "e"
    assert ifs["tap0"]["statistics"]["bytes-redirected"] == 1500
    assert ifs["off"]["oper-status"] == "disabled"
    srv = tree["server"]
    assert srv["oper-status"] == "running" and srv["statistics"]["bytes-forwarded"] == 4096
    assert next(iter(srv["listen"]))["listening"] is True
    assert next(iter(srv["authentication"]["user"]))["statistics"]["auth-failures"] == 2
    assert tree["dataplane"]["connected"] is True and tree["dataplane"]["vpp-version"] == "26.06-memory"
    got = {s["id"]: s for s in tree["sessions"]["session"]}
    assert got[1]["destination-domain"] == "example.com" and got[1]["username"] == "bob"
    assert got[2]["destination-address"] == "198.18.2.2" and got[2]["interface"] == "tap0"
    # secrets stay where NACM guards them: never in state the agent adds
    assert "password" not in str(tree["sessions"])


def test_effective_endpoint_follows_priority_when_the_endpoint_is_down(env: Env) -> None:
    """Failover as the plugin does it (the memory dataplane mirrors singbox_client_pick_endpoint): the interface's
    endpoint while it is not down, else the endpoint with the lowest priority that is not down."""
    env.commit({f"{C}/endpoint[name='main']/address": "192.0.2.1", f"{C}/endpoint[name='main']/priority": 20,
                f"{C}/endpoint[name='spare']/address": "192.0.2.2", f"{C}/endpoint[name='spare']/priority": 5,
                f"{C}/endpoint[name='best']/address": "192.0.2.3", f"{C}/endpoint[name='best']/priority": 1,
                f"{C}/interface[name='tap0']/endpoint": "main"})

    def effective() -> str:
        return str(next(iter(operational()["client"]["interface"]))["effective-endpoint"])

    assert effective() == "main"
    env.dp.endpoint_states["main"] = EndpointState("down")
    assert effective() == "best"
    env.dp.endpoint_states["best"] = EndpointState("down")
    assert effective() == "spare"
    env.commit({f"{C}/endpoint[name='main']/priority": 0})  # a down endpoint is not chosen whatever its priority
    assert effective() == "spare"


def test_disconnected_state_is_valid_too(env: Env) -> None:
    env.commit(FULL)
    env.dp.disconnect()
    env.agent.wait_idle()
    tree = operational()
    assert tree["dataplane"]["connected"] is False and tree["dataplane"]["config-pending"] is False
    assert tree["server"]["oper-status"] == "stopped"
    assert "sessions" not in tree or not tree["sessions"].get("session")


def rpc(path: str, params: dict[str, Any]) -> Any:
    conn = sysrepo.SysrepoConnection()
    try:
        with conn.start_session("running") as s:
            try:
                return s.rpc_send(path, params, timeout_ms=5000)
            except sysrepo.SysrepoInternalError as exc:
                if "returned NULL" in str(exc):  # sysrepo-python 1.7: the success of an RPC without output
                    return {}
                raise
    finally:
        conn.disconnect()


def test_rpcs_round_trip(env: Env) -> None:
    env.commit(FULL)
    env.dp.sessions = sessions(3)
    rpc("/vpp-singbox:clear-statistics", {"interface": "tap0"})
    rpc("/vpp-singbox:clear-statistics", {})
    rpc("/vpp-singbox:clear-statistics", {"server": None})
    assert env.dp.cleared == [("interface", "tap0"), ("all",), ("server",)]
    rpc("/vpp-singbox:disconnect-session", {"id": 1})
    assert 1 not in env.dp.sessions
    with pytest.raises(sysrepo.SysrepoNotFoundError, match="no session with id 77"):
        rpc("/vpp-singbox:disconnect-session", {"id": 77})
    env.dp.probe_results["e"] = ProbeResult("success", 1234)
    assert rpc("/vpp-singbox:test-endpoint", {"endpoint": "e"}) == {"result": "success", "round-trip-time": 1234}
    env.dp.probe_results["e"] = ProbeResult("auth-failed", message="method 0xff")
    assert rpc("/vpp-singbox:test-endpoint", {"endpoint": "e"}) == {"result": "auth-failed",
                                                                     "message": "method 0xff"}
    env.dp.disconnect()
    assert rpc("/vpp-singbox:test-endpoint", {"endpoint": "e"})["result"] == "dataplane-unavailable"
    with pytest.raises(sysrepo.SysrepoError, match="not connected"):
        rpc("/vpp-singbox:clear-statistics", {})


def test_notifications_round_trip(env: Env) -> None:
    env.commit(FULL)
    got: queue.Queue[tuple[str, dict[str, Any]]] = queue.Queue()
    conn = sysrepo.SysrepoConnection()
    sess = conn.start_session("running")

    def on_notif(xpath: str, _type: str, body: dict[str, Any], _ts: int, _priv: Any) -> None:
        got.put((xpath.rpartition(":")[2], body))

    sess.subscribe_notification("vpp-singbox", "/vpp-singbox:*", on_notif)

    def next_notif() -> tuple[str, dict[str, Any]]:
        return got.get(timeout=10)  # interface limits are polled every 5 s

    try:
        env.dp.disconnect("VPP crashed")
        assert next_notif() == ("dataplane-disconnected", {"reason": "VPP crashed"})
        env.dp.connect()
        assert next_notif() == ("dataplane-connected", {"vpp-version": "26.06-memory", "plugin-version": "1.0.0"})
        env.dp.endpoint_event("e", up=False, result="timeout")
        assert next_notif() == ("endpoint-down", {"endpoint": "e", "reason": "timeout"})
        env.dp.endpoint_event("e", up=True, rtt_us=900)
        assert next_notif() == ("endpoint-up", {"endpoint": "e", "round-trip-time": 900})
        env.dp.server_state = ServerState(True, active_sessions=2)
        assert next_notif() == ("session-limit-reached", {"server": None, "limit": 2})
        env.dp.interface_counters["tap0"] = InterfaceState(active_connections=10000)
        assert next_notif() == ("session-limit-reached", {"interface": "tap0", "limit": 10000})
        time.sleep(2.5)  # still at the limit: not repeated
        assert got.empty()
    finally:
        sess.stop()
        conn.disconnect()


def test_reads_of_part_of_the_state_build_only_that_part_and_get_the_same_values(
        env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    from singbox_agent.agent import oper

    built: list[int] = []
    real_sessions = oper.sessions

    def counting(items: list[Session], only: int | None = None, **kw: Any) -> dict[str, Any]:
        tree = real_sessions(items, only, **kw)
        built.append(len(tree["singbox"]["sessions"]["session"]) if tree else 0)
        return tree

    monkeypatch.setattr(oper, "sessions", counting)
    env.commit(FULL)
    env.dp.server_state = ServerState(True, 5, 1, 2, 3, 4096, 1)
    env.dp.user_states["bob"] = UserState(2, 1)
    env.dp.endpoint_states["e"] = EndpointState("up", 12, 830, 3, 0, 1)
    env.dp.sessions = sessions(50)
    whole = operational()
    conn = sysrepo.SysrepoConnection()
    try:
        with conn.start_session("operational") as op:
            def read(xpath: str) -> tuple[dict[str, Any], set[frozenset[str]]]:
                env.dp.state_reads.clear()
                try:
                    data: dict[str, Any] = op.get_data(xpath)
                except sysrepo.SysrepoNotFoundError:
                    data = {}
                return data.get("singbox", {}), set(env.dp.state_reads)

            tree, reads = read(f"{S}/statistics")
            assert tree["server"]["statistics"] == whole["server"]["statistics"]
            assert reads == {frozenset({"server"})}, "a read of the server's counters dumped more"
            tree, reads = read(f"{S}/authentication/user[username='bob']/statistics")
            assert next(iter(tree["server"]["authentication"]["user"]))["statistics"] == \
                next(iter(whole["server"]["authentication"]["user"]))["statistics"] == {
                    "auth-failures": 2, "active-sessions": 1}
            assert reads == {frozenset({"users"})}
            tree, reads = read(f"{C}/endpoint[name='e']/oper-status")
            assert next(iter(tree["client"]["endpoint"]))["oper-status"] == "up"
            assert reads == {frozenset({"endpoints"})}
            tree, reads = read(f"{S}/max-sessions")  # configuration only: no dataplane read at all
            assert tree["server"] == {"max-sessions": 2} and not reads
            # one session: the same entry as in the whole tree
            built.clear()
            one = read(f"{TOP}/sessions/session[id='7']")[0]["sessions"]["session"]
            assert list(one) == [s for s in whole["sessions"]["session"] if s["id"] == 7]
            assert built == [1], "a read of one session built all of them"
            assert read(f"{TOP}/sessions/session[id='4242']")[0] == {}
            # anything that is not a plain path gets everything (sysrepo filters): still the same answer
            union = read(f"{S}/statistics | {C}/endpoint")[0]
            assert union["server"]["statistics"] == whole["server"]["statistics"]
            assert read(f"{TOP}/sessions/session[port='7']")[0] == {}
    finally:
        conn.disconnect()

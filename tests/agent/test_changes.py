"""Every kind of change, committed through real sysrepo, reaches the in-memory dataplane exactly."""

from __future__ import annotations

from typing import Any

import pytest

from singbox_agent.dataplane.objects import UserSpec
from tests.agent.specs import client_settings, endpoint_spec, interface_spec, listener_spec, server_settings
from tests.agent.conftest import TOP, Env

C = f"{TOP}/client"
S = f"{TOP}/server"
HASH = "$6$saltsalt$1q7hOQNmD4hGCzJVaqKZ1J8b6T2a7LpyiS7wXqfjBmm5nU5aAhZ/pB2Xm5wcjFZ3Ue5XpGvRiMS2tf7h1XcQ4."


def calls_of(env: Env, edits: dict[str, Any] | None = None, deletes: list[str] | None = None) -> list[str]:
    before = len(env.dp.calls)
    env.commit(edits, deletes)
    got = [op.describe() for op in env.dp.calls[before:]]
    # The dataplane holds exactly what the configuration asks for, nothing else.
    assert env.dp.objects == env.agent.running.desired()
    return got


def test_endpoint_create_modify_delete(env: Env) -> None:
    assert calls_of(env, {f"{C}/endpoint[name='e1']/address": "192.0.2.1",
                          f"{C}/endpoint[name='e1']/username": "alice",
                          f"{C}/endpoint[name='e1']/password": "pw1"}) == ["put endpoint 'e1'"]
    assert env.dp.objects[("endpoint", "e1")] == endpoint_spec("192.0.2.1", username="alice", password="pw1")
    assert calls_of(env, {f"{C}/endpoint[name='e1']/health-check/interval": 60,
                          f"{C}/endpoint[name='e1']/port": 1081}) == ["put endpoint 'e1'"]
    assert env.dp.objects[("endpoint", "e1")] == endpoint_spec("192.0.2.1", port=1081, username="alice",
                                                              password="pw1", health_check_interval=60)
    assert calls_of(env, deletes=[f"{C}/endpoint[name='e1']/port"]) == ["put endpoint 'e1'"]
    assert env.dp.objects[("endpoint", "e1")].port == 1080  # type: ignore[union-attr]
    assert calls_of(env, deletes=[f"{C}/endpoint[name='e1']"]) == ["delete endpoint 'e1'"]
    assert ("endpoint", "e1") not in env.dp.objects


def test_endpoint_priority_reaches_the_dataplane(env: Env) -> None:
    """The failover order: YANG leaf -> mapping -> the endpoint object the dataplane gets (API `priority`)."""
    assert calls_of(env, {f"{C}/endpoint[name='main']/address": "192.0.2.1",
                          f"{C}/endpoint[name='spare']/address": "192.0.2.2",
                          f"{C}/endpoint[name='spare']/priority": 10}) == ["put endpoint 'main'",
                                                                          "put endpoint 'spare'"]
    assert env.dp.objects[("endpoint", "main")] == endpoint_spec("192.0.2.1", priority=0)  # the YANG default
    assert env.dp.objects[("endpoint", "spare")] == endpoint_spec("192.0.2.2", priority=10)
    assert calls_of(env, {f"{C}/endpoint[name='spare']/priority": 4294967295}) == ["put endpoint 'spare'"]
    assert env.dp.objects[("endpoint", "spare")].priority == 4294967295  # type: ignore[union-attr]
    assert calls_of(env, deletes=[f"{C}/endpoint[name='spare']/priority"]) == ["put endpoint 'spare'"]
    assert env.dp.objects[("endpoint", "spare")].priority == 0  # type: ignore[union-attr]


def test_endpoint_protocol_reaches_the_dataplane(env: Env) -> None:
    """The identityref: YANG 'http-connect' -> mapping -> the endpoint object (API `protocol_type` 1); its default is
    socks5, and changing it back re-sends the endpoint."""
    assert calls_of(env, {f"{C}/endpoint[name='h']/address": "192.0.2.1",
                          f"{C}/endpoint[name='h']/protocol": "vpp-singbox:http-connect",
                          f"{C}/endpoint[name='h']/username": "alice",
                          f"{C}/endpoint[name='h']/password": "p:w"}) == ["put endpoint 'h'"]
    assert env.dp.objects[("endpoint", "h")] == endpoint_spec("192.0.2.1", username="alice", password="p:w",
                                                             protocol="http-connect")
    assert calls_of(env, deletes=[f"{C}/endpoint[name='h']/protocol"]) == ["put endpoint 'h'"]
    assert env.dp.objects[("endpoint", "h")].protocol == "socks5"  # type: ignore[union-attr]


def test_interface_and_bypass_create_modify_delete(env: Env) -> None:
    assert calls_of(env, {f"{C}/endpoint[name='a']/address": "192.0.2.1",
                          f"{C}/endpoint[name='b']/address": "192.0.2.2",
                          f"{C}/interface[name='tap0']/endpoint": "a",
                          f"{C}/interface[name='tap0']/bypass-prefix": "10.0.0.0/8"}) == [
        "put endpoint 'a'", "put endpoint 'b'", "put interface 'tap0'", "put bypass 'tap0' '10.0.0.0/8'"]
    assert env.dp.objects[("interface", "tap0")] == interface_spec("a")
    assert calls_of(env, {f"{C}/interface[name='tap0']/endpoint": "b",
                          f"{C}/interface[name='tap0']/max-connections": 5}) == ["put interface 'tap0'"]
    assert env.dp.objects[("interface", "tap0")] == interface_spec("b", 5)
    assert calls_of(env, {f"{C}/interface[name='tap0']/bypass-prefix": "2001:db8::/32"},
                    [f"{C}/interface[name='tap0']/bypass-prefix[.='10.0.0.0/8']"]) == [
        "delete bypass 'tap0' '10.0.0.0/8'", "put bypass 'tap0' '2001:db8::/32'"]
    assert calls_of(env, {f"{C}/interface[name='tap0']/enabled": False}) == [
        "delete bypass 'tap0' '2001:db8::/32'", "delete interface 'tap0'"]
    assert calls_of(env, {f"{C}/interface[name='tap0']/enabled": True}) == [
        "put interface 'tap0'", "put bypass 'tap0' '2001:db8::/32'"]
    # the interface moves to endpoint a while b is deleted: a is used first, b goes last
    assert calls_of(env, {f"{C}/interface[name='tap0']/endpoint": "a"}, [f"{C}/endpoint[name='b']"]) == [
        "put interface 'tap0'", "delete endpoint 'b'"]
    assert calls_of(env, deletes=[f"{C}/interface[name='tap0']", f"{C}/endpoint[name='a']"]) == [
        "delete bypass 'tap0' '2001:db8::/32'", "delete interface 'tap0'", "delete endpoint 'a'"]


def test_default_endpoint_and_client_globals(env: Env) -> None:
    assert calls_of(env, {f"{C}/endpoint[name='d']/address": "192.0.2.1", f"{C}/default-endpoint": "d",
                          f"{C}/interface[name='tap1']/enabled": True}) == [
        "put endpoint 'd'", "put default-endpoint", "put interface 'tap1'"]
    assert env.dp.objects[("default-endpoint",)] == "d"
    assert env.dp.objects[("interface", "tap1")] == interface_spec("")
    assert calls_of(env, {f"{C}/session-timeout": 60, f"{C}/connection-pool/enabled": True,
                          f"{C}/connection-pool/max-size": 7}) == ["put client"]
    assert env.dp.objects[("client",)] == client_settings(60, True, 7)
    assert calls_of(env, deletes=[f"{C}/session-timeout", f"{C}/connection-pool"]) == ["put client"]
    assert env.dp.objects[("client",)] == client_settings()
    assert calls_of(env, {f"{TOP}/log-level": "debug"}) == ["put log-level"]
    assert env.dp.objects[("log-level",)] == "debug"
    assert calls_of(env, deletes=[f"{C}/interface[name='tap1']", f"{C}/default-endpoint",
                                  f"{C}/endpoint[name='d']"]) == [
        "delete interface 'tap1'", "put default-endpoint", "delete endpoint 'd'"]
    assert env.dp.objects[("default-endpoint",)] == ""


def test_server_objects_create_modify_delete(env: Env) -> None:
    assert calls_of(env, {f"{S}/listen[name='l1']/address": "127.0.0.1", f"{S}/listen[name='l1']/port": 1090,
                          f"{S}/authentication/method": "username-password",
                          f"{S}/authentication/user[username='bob']/password": HASH,
                          f"{S}/allowed-client-prefix": "10.0.0.0/8",
                          f"{S}/max-sessions": 5, f"{S}/resolver/address": "192.0.2.53",
                          f"{S}/enabled": True}) == [
        "put user 'bob'", "put server", "put allowed-prefix '10.0.0.0/8'", "put listener 'l1'",
        "put server-enabled"]
    assert env.dp.objects[("server",)] == server_settings(auth_required=True, max_sessions=5,
                                                         dns_server="192.0.2.53")
    assert env.dp.objects[("listener", "l1")] == listener_spec("127.0.0.1", 1090)
    assert env.dp.objects[("user", "bob")] == UserSpec(HASH)
    assert env.dp.objects[("server-enabled",)] is True
    assert calls_of(env, {f"{S}/listen[name='l1']/port": 1091, f"{S}/allowed-command": "udp-associate",
                          f"{S}/udp-associate/idle-timeout": 30}) == ["put server", "put listener 'l1'"]
    # an explicit allowed-command replaces the default 'connect' (leaf-list defaults)
    assert env.dp.objects[("server",)] == server_settings(
        auth_required=True, allow_connect=False, allow_udp_associate=True, max_sessions=5, udp_idle_timeout=30,
        dns_server="192.0.2.53")
    assert calls_of(env, {f"{S}/enabled": False}) == ["put server-enabled"]
    assert calls_of(env, deletes=[f"{S}/listen[name='l1']", f"{S}/authentication",
                                  f"{S}/allowed-client-prefix[.='10.0.0.0/8']"]) == [
        "delete listener 'l1'", "delete user 'bob'", "delete allowed-prefix '10.0.0.0/8'", "put server"]
    assert env.dp.objects[("server",)].auth_required is False  # type: ignore[union-attr]


def test_clear_text_server_password_is_stored_hashed(env: Env) -> None:
    from singbox_agent.mgmt.crypt import verify_password as verify

    env.commit({f"{S}/authentication/user[username='carol']/password": "$0$open sesame"})
    stored = env.running()["singbox"]["server"]["authentication"]["user"]["carol"]["password"]
    assert stored.startswith("$6$") and verify("open sesame", stored)
    assert env.dp.objects[("user", "carol")] == UserSpec(stored)


def test_clear_text_server_password_too_long_to_hash_is_refused_not_stored(env: Env) -> None:
    """A '$0$' password libxcrypt cannot take (over 511 bytes) rejects the edit, naming the leaf and the limit;
    nothing of it is stored, clear or hashed, and nothing reaches the dataplane."""
    import sysrepo

    with pytest.raises(sysrepo.SysrepoError) as exc:
        env.commit({f"{S}/authentication/user[username='carol']/password": "$0$" + "x" * 600})
    assert "carol" in str(exc.value) and "511" in str(exc.value), str(exc.value)
    assert "xxxx" not in str(exc.value)
    assert "carol" not in str(env.running())
    assert ("user", "carol") not in env.dp.objects


def test_agent_restart_adopts_running_config_without_changing_what_is_right(
        sysrepo_instance: Any) -> None:
    from singbox_agent.dataplane.memory import MemoryDataplane
    from tests.agent.conftest import start_env

    dp = MemoryDataplane()
    gen = start_env(dp)
    env = next(gen)
    env.commit({f"{C}/endpoint[name='e']/address": "192.0.2.1", f"{C}/interface[name='tap0']/endpoint": "e"})
    gen.close()  # SIGTERM path: agent stops, dataplane keeps its state
    assert ("interface", "tap0") in dp.objects
    before = len(dp.calls)
    gen = start_env(dp)
    env = next(gen)
    assert dp.calls[before:] == []  # nothing was wrong, nothing was sent
    assert env.agent.status.in_sync
    gen.close()


@pytest.mark.parametrize("bad", [
    ({f"{C}/interface[name='tap0']/enabled": True}, "no-endpoint"),
    ({f"{C}/endpoint[name='e']/address": "192.0.2.1", f"{C}/endpoint[name='e']/username": "u"}, "password"),
    # a Basic user-id ends at its first ':' (RFC 7617)
    ({f"{C}/endpoint[name='e']/address": "192.0.2.1", f"{C}/endpoint[name='e']/protocol": "vpp-singbox:http-connect",
      f"{C}/endpoint[name='e']/username": "a:b", f"{C}/endpoint[name='e']/password": "p"}, "username-colon"),
])
def test_invalid_config_never_reaches_the_dataplane(env: Env, bad: tuple[dict[str, Any], str]) -> None:
    import sysrepo

    before = dict(env.dp.objects)
    with pytest.raises(sysrepo.SysrepoError):
        env.commit(bad[0])
    assert env.dp.objects == before


def test_reloading_the_running_config_gives_the_same_cache(env: Env) -> None:
    env.commit({f"{C}/endpoint[name='e']/address": "192.0.2.1", f"{C}/endpoint[name='e']/health-check/interval": 9,
                f"{C}/interface[name='tap0']/endpoint": "e", f"{C}/interface[name='tap0']/bypass-prefix": "10.0.0.0/8",
                f"{S}/allowed-client-prefix": "10.1.0.0/16", f"{S}/allowed-command": "udp-associate",
                f"{S}/authentication/user[username='bob']/password": HASH, f"{TOP}/log-level": "error"})
    before = env.agent.running.desired()
    env.agent.reload_running()
    assert env.agent.running.desired() == before


def test_unhashable_clear_text_stored_while_the_agent_was_away_does_not_stay(sysrepo_instance: Any) -> None:
    """A '$0$' password too long to hash, written while no agent ran: on start the clear text is replaced (the user
    cannot log in until an operator sets it again), the agent keeps running and hashes the others."""
    import time

    import sysrepo

    from singbox_agent.mgmt.crypt import verify_password as verify
    from singbox_agent.dataplane.memory import MemoryDataplane
    from tests.agent.conftest import start_env

    with sysrepo.SysrepoConnection() as conn, conn.start_session("running") as s:
        s.set_item(f"{S}/authentication/user[username='erin']/password", "$0$" + "y" * 600)
        s.set_item(f"{S}/authentication/user[username='dave']/password", "$0$fine")
        s.apply_changes()
    dp = MemoryDataplane()
    gen = start_env(dp)
    env = next(gen)
    deadline = time.monotonic() + 10
    while True:
        users = env.running()["singbox"]["server"]["authentication"]["user"]
        if all(u["password"].startswith("$6$") for u in users) or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert "yyyy" not in str(users)
    assert users["erin"]["password"].startswith("$6$") and not verify("y" * 600, users["erin"]["password"])
    assert verify("fine", users["dave"]["password"])
    gen.close()


def test_clear_text_password_stored_while_the_agent_was_away_is_hashed_on_start(sysrepo_instance: Any) -> None:
    import time

    import sysrepo

    from singbox_agent.mgmt.crypt import verify_password as verify
    from singbox_agent.dataplane.memory import MemoryDataplane
    from tests.agent.conftest import start_env

    # written with no agent running: no update event hashes it
    with sysrepo.SysrepoConnection() as conn, conn.start_session("running") as s:
        s.set_item(f"{S}/authentication/user[username='dave']/password", "$0$while away")
        s.apply_changes()
    dp = MemoryDataplane()
    gen = start_env(dp)
    env = next(gen)
    deadline = time.monotonic() + 10
    while True:
        stored = env.running()["singbox"]["server"]["authentication"]["user"]["dave"]["password"]
        if stored.startswith("$6$") or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert stored.startswith("$6$") and verify("while away", stored)
    env.agent.wait_idle()
    assert dp.objects[("user", "dave")] == UserSpec(stored)
    gen.close()


def test_commit_without_password_pays_no_update_round_trip(env: Env) -> None:
    """The agent's password hasher is an `update` subscriber of vpp-singbox: a commit that touches no password gets
    no update event at all (sysrepo filters at the writer, filter_origin), one that sets a password still does."""
    import logging

    import sysrepo

    lines: list[str] = []

    class Lines(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(record.getMessage())

    logger = logging.getLogger("sysrepo")
    handler = Lines(logging.DEBUG)
    logger.addHandler(handler)
    level = logger.level
    logger.setLevel(logging.DEBUG)
    sysrepo.configure_logging(py_logging=True)
    try:
        env.commit({f"{TOP}/log-level": "debug"})
        # fails before filter_origin: 'EV ORIGIN: "vpp-singbox" "update" ... succeeded' for every commit
        assert not [line for line in lines if '"vpp-singbox" "update"' in line]
        assert [line for line in lines if '"vpp-singbox" "change"' in line]  # the log did record this commit
        env.commit({f"{S}/authentication/user[username='frank']/password": "$0$hunter2"})
        assert [line for line in lines if '"vpp-singbox" "update"' in line]
    finally:
        sysrepo.configure_logging(py_logging=False)
        logger.setLevel(level)
        logger.removeHandler(handler)
    stored = env.running()["singbox"]["server"]["authentication"]["user"]["frank"]["password"]
    assert stored.startswith("$6$")

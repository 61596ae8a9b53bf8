"""VPP away: commits succeed and state says pending; on reconnect exactly the difference is applied."""

from __future__ import annotations

from typing import Any

from singbox_agent.dataplane.objects import FACTORY
from tests.agent.conftest import TOP, Env

C = f"{TOP}/client"
S = f"{TOP}/server"


def dataplane_state(env: Env) -> dict[str, Any]:
    import sysrepo

    conn = sysrepo.SysrepoConnection()
    try:
        with conn.start_session("operational") as op:
            data: dict[str, Any] = op.get_data(f"{TOP}/dataplane")
            return dict(data["singbox"]["dataplane"])
    finally:
        conn.disconnect()


def test_commits_while_disconnected_are_stored_and_applied_on_reconnect(env: Env) -> None:
    env.commit({f"{C}/endpoint[name='keep']/address": "192.0.2.1",
                f"{C}/endpoint[name='change']/address": "192.0.2.2",
                f"{C}/endpoint[name='drop']/address": "192.0.2.3",
                f"{C}/interface[name='tap0']/endpoint": "keep"})
    assert dataplane_state(env)["config-pending"] is False
    env.dp.disconnect("VPP stopped")
    env.agent.wait_idle()
    before = dict(env.dp.objects)
    env.commit({f"{C}/endpoint[name='change']/port": 2000, f"{C}/endpoint[name='new']/address": "192.0.2.4",
                f"{S}/listen[name='l']/address": "127.0.0.1"},
               [f"{C}/endpoint[name='drop']"])
    env.commit({f"{TOP}/log-level": "warning"})
    assert env.dp.objects == before  # nothing reached the absent dataplane
    st = dataplane_state(env)
    assert st["connected"] is False and st["config-pending"] is True
    n = len(env.dp.calls)
    env.dp.connect()  # VPP came back with its state
    env.agent.wait_idle()
    assert sorted(op.describe() for op in env.dp.calls[n:]) == sorted([
        "put endpoint 'change'", "put endpoint 'new'", "delete endpoint 'drop'", "put listener 'l'",
        "put log-level"])
    assert env.dp.objects == env.agent.running.desired()
    st = dataplane_state(env)
    assert st["connected"] is True and st["config-pending"] is False and "last-sync" in st


def test_vpp_restart_gets_everything_back(env: Env) -> None:
    env.commit({f"{C}/endpoint[name='e']/address": "192.0.2.1", f"{C}/endpoint[name='e']/username": "u",
                f"{C}/endpoint[name='e']/password": "secret-pw", f"{C}/interface[name='tap0']/endpoint": "e",
                f"{C}/interface[name='tap0']/bypass-prefix": "10.0.0.0/8"})
    wanted = dict(env.dp.objects)
    env.dp.disconnect()
    env.dp.connect(restarted=True)
    assert env.dp.objects == FACTORY
    env.agent.wait_idle()
    assert env.dp.objects == wanted


def test_reconnect_without_changes_touches_nothing_but_secrets(env: Env) -> None:
    env.commit({f"{C}/endpoint[name='plain']/address": "192.0.2.1",
                f"{C}/endpoint[name='cred']/address": "192.0.2.2", f"{C}/endpoint[name='cred']/username": "u",
                f"{C}/endpoint[name='cred']/password": "pw", f"{C}/interface[name='tap0']/endpoint": "plain"})
    n = len(env.dp.calls)
    env.dp.disconnect()
    env.dp.connect()
    env.agent.wait_idle()
    # The plugin never returns passwords, so the endpoint with credentials is re-sent (an add replaces: no flap).
    assert [op.describe() for op in env.dp.calls[n:]] == ["put endpoint 'cred'"]
    assert all(op.action == "put" for op in env.dp.calls[n:])


def test_interface_missing_in_vpp_is_kept_and_reported_not_present(sysrepo_instance: Any) -> None:
    from singbox_agent.dataplane.memory import MemoryDataplane
    from tests.agent.conftest import start_env

    gen = start_env(MemoryDataplane(vpp_interfaces={"tap0"}))
    env = next(gen)
    env.commit({f"{C}/endpoint[name='e']/address": "192.0.2.1", f"{C}/interface[name='tap0']/endpoint": "e",
                f"{C}/interface[name='later']/endpoint": "e"})
    import sysrepo

    with sysrepo.SysrepoConnection() as conn, conn.start_session("operational") as op:
        ifs = op.get_data(f"{C}/interface")["singbox"]["client"]["interface"]
        assert ifs["tap0"]["oper-status"] == "active"
        assert ifs["later"]["oper-status"] == "not-present"
    gen.close()


def test_an_object_the_dataplane_refuses_on_resync_stays_pending_without_blocking_commits(env: Env) -> None:
    from singbox_agent.dataplane.objects import DataplaneError, ErrorCode

    env.commit({f"{C}/endpoint[name='e']/address": "192.0.2.1"})
    env.dp.disconnect()
    env.commit({f"{C}/interface[name='bad']/endpoint": "e"})  # stored while VPP is away
    env.dp.fail_when = lambda op: (DataplaneError("singbox_enable_disable returned UNIMPLEMENTED (-9)",
                                                  ErrorCode.UNIMPLEMENTED)
                                   if op.key == ("interface", "bad") and op.action == "put"
                                   else None)
    env.dp.connect()
    env.agent.wait_idle()
    st = dataplane_state(env)
    assert st["connected"] is True and st["config-pending"] is True
    assert "interface 'bad'" in st["last-error"] and "UNIMPLEMENTED" in st["last-error"]
    # other commits still reach the dataplane directly
    env.commit({f"{C}/endpoint[name='f']/address": "192.0.2.2"})
    assert ("endpoint", "f") in env.dp.objects
    # and the refused object can be removed (the plugin's NO_SUCH_ENTRY on delete is the goal reached)
    env.commit(deletes=[f"{C}/interface[name='bad']"])
    assert env.agent.resync()
    assert dataplane_state(env)["config-pending"] is False
    assert env.dp.objects == env.agent.running.desired()


def test_a_dataplane_that_cannot_be_read_is_reported_and_retried_later(env: Env) -> None:
    from singbox_agent.dataplane.objects import DataplaneError

    env.commit({f"{C}/endpoint[name='e']/address": "192.0.2.1"})
    env.dp.disconnect()
    env.commit({f"{C}/endpoint[name='f']/address": "192.0.2.2"})
    real_read = env.dp.read_config

    def broken() -> Any:
        raise DataplaneError("singbox_server_user_dump: VPP sent a reply that does not decode")

    env.dp.read_config = broken  # type: ignore[method-assign]
    env.dp.connect()
    env.agent.wait_idle()
    st = dataplane_state(env)
    assert st["config-pending"] is True and "does not decode" in st["last-error"]
    assert ("endpoint", "f") not in env.dp.objects  # nothing applied blindly
    env.dp.read_config = real_read  # type: ignore[method-assign]
    assert env.agent.resync()
    assert env.dp.objects == env.agent.running.desired()


def test_objects_refused_right_after_a_reconnect_are_retried_soon_then_less_often(env: Env) -> None:
    """A VPP that just restarted refuses what depends on configuration others add a moment later (the server's
    listeners before their addresses exist): the retry comes within a second, then backs off to RESYNC_RETRY_S."""
    import time

    from singbox_agent.agent import daemon
    from singbox_agent.dataplane.objects import DataplaneError, ErrorCode

    env.commit({f"{S}/listen[name='l']/address": "198.18.1.1", f"{S}/enabled": True})
    env.dp.disconnect()
    refused: list[str] = []

    def not_yet(op: Any) -> DataplaneError | None:
        if op.key == ("server-enabled",) and op.value is True:
            refused.append(op.describe())
            return DataplaneError("singbox_server_enable_disable returned UNSPECIFIED (-1)", ErrorCode.UNSPECIFIED)
        return None

    env.dp.fail_when = not_yet
    env.dp.connect(restarted=True)
    env.agent.wait_idle()
    assert dataplane_state(env)["config-pending"] is True and refused
    delays = []
    for _ in range(3):
        delays.append(env.agent._next_resync - time.monotonic())  # noqa: SLF001
        assert not env.agent.resync()
    assert delays[0] <= daemon.RESYNC_FIRST_RETRY_S, delays
    assert delays[0] < delays[1] < delays[2] <= daemon.RESYNC_RETRY_S, delays
    # the address appears; the worker's own retry (not a commit) completes the sync
    env.dp.fail_when = None
    env.agent._next_resync = 0.0  # noqa: SLF001 - skip the backed-off wait
    deadline = time.monotonic() + 2 * daemon.RESYNC_RETRY_S
    while dataplane_state(env)["config-pending"] and time.monotonic() < deadline:
        time.sleep(0.1)
    assert dataplane_state(env)["config-pending"] is False
    assert env.dp.objects[("server-enabled",)] is True
    # a sync that completes starts the schedule over
    assert env.agent._retry_s == daemon.RESYNC_FIRST_RETRY_S  # noqa: SLF001

"""The agent against a real VPP with the singbox plugin: the change tests through the plugin's API, undo when the
plugin refuses, the message check, and resynchronisation after a VPP restart.

Skipped, saying what is missing, without VPP (VPP_PREFIX) or the built plugin (SINGBOX_PLUGIN_DIR). VPP is started
by tests/vpp/vpptopo.py (the plugin's own test harness).
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from singbox_agent.dataplane.objects import EndpointSpec
from tests.agent.specs import client_settings, endpoint_spec, interface_spec, listener_spec, server_settings
from singbox_agent.repository import SysrepoInstance

TOP = "/vpp-singbox:singbox"
C = f"{TOP}/client"
S = f"{TOP}/server"
HASH = "$6$saltsalt$1q7hOQNmD4hGCzJVaqKZ1J8b6T2a7LpyiS7wXqfjBmm5nU5aAhZ/pB2Xm5wcjFZ3Ue5XpGvRiMS2tf7h1XcQ4."
HARNESS = Path(__file__).resolve().parents[1] / "vpp"


def _vpptopo() -> Any:
    """The VPP harness of tests/vpp, or a skip saying what is missing (the same rules as the VPP suite's)."""
    sys.path.insert(0, str(HARNESS))
    import vpptopo
    from vppfixtures import skip_reason

    reason = skip_reason()
    if reason:
        pytest.skip(reason)
    return vpptopo


pytestmark = pytest.mark.vpp


def api_files() -> list[Path]:
    from singbox_agent.agent.__main__ import default_api_json

    return default_api_json()


class VppEnv:
    def __init__(self, vpptopo: Any) -> None:
        import sysrepo

        from singbox_agent.agent.daemon import Agent
        from singbox_agent.dataplane.vpp import VppDataplane

        self.vpptopo = vpptopo
        self.vpp = vpptopo.Vpp()
        self.vpp.cli("create loopback interface")  # loop0: an interface to enable
        self.dp = VppDataplane(str(self.vpp.api_sock), api_files())
        self.agent = Agent(self.dp)
        self.agent.start()
        self.wait(lambda: self.agent.status.in_sync, "agent in sync with VPP")
        self.conn = sysrepo.SysrepoConnection()
        self.sess = self.conn.start_session("running")

    def wait(self, cond: Any, what: str, timeout: float = 10) -> float:
        t0 = time.monotonic()
        while time.monotonic() - t0 < timeout:
            if cond():
                return time.monotonic() - t0
            time.sleep(0.02)
        raise AssertionError(f"timed out waiting for: {what}")

    def commit(self, edits: dict[str, Any] | None = None, deletes: list[str] | None = None) -> None:
        for p in deletes or []:
            self.sess.delete_item(p)
        for p, v in (edits or {}).items():
            self.sess.set_item(p, v)
        try:
            self.sess.apply_changes(timeout_ms=10000)
        except Exception:
            self.sess.discard_changes()
            raise

    def vpp_config(self) -> dict[Any, Any]:
        return dict(self.dp.read_config())

    def close(self) -> None:
        self.sess.stop()
        self.conn.disconnect()
        self.agent.stop()
        self.vpp.close()


@pytest.fixture
def venv(sysrepo_instance: SysrepoInstance) -> Iterator[VppEnv]:
    env = VppEnv(_vpptopo())
    try:
        yield env
    finally:
        env.close()


def test_http_connect_endpoint_round_trip(venv: VppEnv) -> None:
    """The protocol reaches the plugin (protocol_type 1) and comes back in its dump: a resync then sends nothing."""
    venv.commit({f"{C}/endpoint[name='h']/address": "192.0.2.9",
                 f"{C}/endpoint[name='h']/protocol": "vpp-singbox:http-connect",
                 f"{C}/endpoint[name='h']/port": 8080})
    venv.wait(lambda: ("endpoint", "h") in venv.vpp_config(), "the endpoint in VPP")
    assert venv.vpp_config()[("endpoint", "h")] == endpoint_spec("192.0.2.9", port=8080, protocol="http-connect")
    assert "(HTTP CONNECT)" in venv.vpp.cli("show singbox")
    venv.agent.wait_idle()
    resyncs = []
    original = venv.dp.apply_batch

    def spy(ops: Any, **kw: Any) -> Any:
        resyncs.append([op.describe() for op in ops])
        return original(ops, **kw)

    venv.dp.apply_batch = spy  # type: ignore[method-assign]
    assert venv.agent.resync()
    assert resyncs == [[]]


def test_priority_and_a_name_configured_endpoint_round_trip(venv: VppEnv) -> None:
    """The endpoint's priority reaches the plugin and comes back in its dump; an endpoint configured by name is
    sent as the address the name resolved to, and a resync — which compares that address with the one VPP
    reports — sends nothing (the old agent compared the name with VPP's address and re-sent it every time)."""
    venv.commit({f"{C}/endpoint[name='a']/address": "localhost", f"{C}/endpoint[name='a']/priority": 7,
                 f"{C}/endpoint[name='b']/address": "192.0.2.2"})
    venv.wait(lambda: ("endpoint", "a") in venv.vpp_config(), "the endpoint named by host name in VPP")
    got = venv.vpp_config()
    a = got[("endpoint", "a")]
    assert isinstance(a, EndpointSpec) and a.address in ("127.0.0.1", "::1") and a.priority == 7
    assert got[("endpoint", "b")] == endpoint_spec("192.0.2.2")
    venv.agent.wait_idle()
    venv.sess.set_item(f"{TOP}/log-level", "debug")  # a commit, so the resync below has a baseline
    venv.sess.apply_changes()
    resyncs = []
    original = venv.dp.apply_batch

    def spy(ops: Any, **kw: Any) -> Any:
        resyncs.append([op.describe() for op in ops])
        return original(ops, **kw)

    venv.dp.apply_batch = spy  # type: ignore[method-assign]
    assert venv.agent.resync()
    assert resyncs == [[]]


def test_changes_reach_vpp(venv: VppEnv) -> None:
    venv.commit({f"{C}/endpoint[name='a']/address": "192.0.2.1", f"{C}/endpoint[name='a']/port": 1081,
                 f"{C}/endpoint[name='b']/address": "2001:db8::2", f"{C}/endpoint[name='b']/username": "u",
                 f"{C}/endpoint[name='b']/password": "pw", f"{C}/default-endpoint": "a",
                 f"{C}/session-timeout": 120, f"{C}/connection-pool/enabled": True, f"{TOP}/log-level": "debug"})
    got = venv.vpp_config()
    assert got[("endpoint", "a")] == endpoint_spec("192.0.2.1", 1081)
    b = got[("endpoint", "b")]
    assert isinstance(b, EndpointSpec) and b.address == "2001:db8::2" and b.username == "u"
    assert got[("default-endpoint",)] == "a" and got[("log-level",)] == "debug"
    assert got[("client",)] == client_settings(120, True, 100)
    venv.commit({f"{C}/endpoint[name='a']/health-check/interval": 60}, [f"{C}/endpoint[name='b']"])
    got = venv.vpp_config()
    assert got[("endpoint", "a")] == endpoint_spec("192.0.2.1", 1081, health_check_interval=60)
    assert ("endpoint", "b") not in got

    venv.commit({f"{S}/listen[name='l1']/address": "127.0.0.1", f"{S}/listen[name='l1']/port": 1090,
                 f"{S}/authentication/method": "username-password",
                 f"{S}/authentication/user[username='bob']/password": HASH,
                 f"{S}/allowed-client-prefix": "10.0.0.0/8", f"{S}/max-sessions": 5, f"{S}/enabled": True})
    got = venv.vpp_config()
    assert got[("listener", "l1")] == listener_spec("127.0.0.1", 1090)
    assert ("user", "bob") in got and ("allowed-prefix", "10.0.0.0/8") in got
    assert got[("server",)] == server_settings(auth_required=True, max_sessions=5)
    assert got[("server-enabled",)] is True
    venv.commit({f"{S}/enabled": False}, [f"{S}/listen[name='l1']", f"{S}/authentication",
                                         f"{S}/allowed-client-prefix[.='10.0.0.0/8']"])
    got = venv.vpp_config()
    assert not [k for k in got if k[0] in ("listener", "user", "allowed-prefix")]
    assert got[("server-enabled",)] is False
    # client mode on a VPP interface, with bypass prefixes
    venv.commit({f"{C}/interface[name='loop0']/endpoint": "a", f"{C}/interface[name='loop0']/max-connections": 9,
                 f"{C}/interface[name='loop0']/bypass-prefix": "10.0.0.0/8"})
    got = venv.vpp_config()
    assert got[("interface", "loop0")] == interface_spec("a", 9)
    assert got[("bypass", "loop0", "10.0.0.0/8")] is True
    venv.commit({f"{C}/interface[name='loop0']/bypass-prefix": "2001:db8::/32"},
                [f"{C}/interface[name='loop0']/bypass-prefix[.='10.0.0.0/8']"])
    got = venv.vpp_config()
    assert [k for k in got if k[0] == "bypass"] == [("bypass", "loop0", "2001:db8::/32")]
    venv.commit({f"{C}/interface[name='loop0']/enabled": False})
    assert not [k for k in venv.vpp_config() if k[0] in ("interface", "bypass")]
    venv.commit({f"{C}/interface[name='later0']/endpoint": "a"})  # not in VPP: kept, reported not-present
    assert venv.dp.read_state().interfaces["later0"].present is False
    # everything the agent believes is exactly what VPP reports (secrets aside)
    assert venv.agent.resync() and venv.dp.read_config().keys() == venv.agent.running.desired().keys()


def test_plugin_refusal_undoes_the_whole_commit(venv: VppEnv) -> None:
    import sysrepo

    venv.commit({f"{C}/endpoint[name='a']/address": "192.0.2.1"})
    before = venv.vpp_config()
    # 0.0.0.0 is a valid inet:host for YANG, but the plugin refuses a zero proxy address (INVALID_VALUE); the log
    # level, the modified endpoint and the new one before it in the same commit must all be taken back
    for path, value in {f"{TOP}/log-level": "debug", f"{C}/endpoint[name='a']/port": 2000,
                        f"{C}/endpoint[name='b']/address": "192.0.2.2",
                        f"{C}/endpoint[name='c']/address": "0.0.0.0"}.items():
        venv.sess.set_item(path, value)
    with pytest.raises(sysrepo.SysrepoValidationFailedError) as err:
        venv.sess.apply_changes(timeout_ms=10000)
    venv.sess.discard_changes()
    assert "endpoint 'c'" in str(err.value) and "singbox_endpoint_add_del returned INVALID_VALUE" in str(err.value)
    assert venv.vpp_config() == before
    with venv.conn.start_session("running") as s:
        assert "b" not in s.get_data(f"{C}/endpoint")["singbox"]["client"]["endpoint"]


def test_an_unresolvable_endpoint_name_holds_back_only_its_endpoint(venv: VppEnv) -> None:
    """The commit is accepted without waiting for the lookup (it used to wait in sysrepo's callback, then reject
    the whole commit); the rest reaches VPP, the endpoint stays pending and last-error says why."""
    venv.commit({f"{C}/endpoint[name='a']/address": "192.0.2.1",
                 f"{C}/endpoint[name='b']/address": "no-such-host.invalid"})
    got = venv.vpp_config()
    assert ("endpoint", "a") in got and ("endpoint", "b") not in got
    venv.wait(lambda: "cannot resolve 'no-such-host.invalid'" in (venv.agent.status.last_error or ""),
              "the failed lookup in last-error")
    assert venv.agent.status.pending


def test_missing_messages_are_named(venv: VppEnv) -> None:
    from singbox_agent.dataplane.vpp import MissingMessages, VppDataplane

    core = [f for f in api_files() if f.name != "singbox.api.json" and "plugins" not in str(f)]
    core.append(Path(__file__).parent / "data" / "singbox_old.api.json")
    dp = VppDataplane(str(venv.vpp.api_sock), core)
    with pytest.raises(MissingMessages) as err:
        dp._connect()  # noqa: SLF001 - one connection attempt, no thread
    assert "singbox_endpoint_add_del (VPP has singbox_endpoint_add_del_" in str(err.value)
    assert "singbox_session_dump (not in the API files)" in str(err.value)


def test_vpp_restart_is_repaired_within_two_seconds(venv: VppEnv) -> None:
    venv.commit({f"{C}/endpoint[name='a']/address": "192.0.2.1", f"{S}/listen[name='l']/address": "127.0.0.1",
                 f"{TOP}/log-level": "warning"})
    wanted = venv.vpp_config()
    sock = venv.vpp.api_sock
    vpp_dir = venv.vpp.dir
    venv.vpp.proc.kill()
    venv.vpp.proc.wait(10)
    venv.wait(lambda: not venv.dp.connected, "agent notices VPP is gone")
    venv.commit({f"{C}/endpoint[name='b']/address": "192.0.2.2"})  # accepted while VPP is away
    wanted[("endpoint", "b")] = endpoint_spec("192.0.2.2")
    # a new VPP on the same socket, with none of the state
    new = venv.vpptopo.Vpp.__new__(venv.vpptopo.Vpp)
    started = time.monotonic()
    restart_into(venv, new, vpp_dir)
    assert str(new.api_sock) == str(sock)
    elapsed = venv.wait(lambda: venv.agent.status.in_sync and venv.dp.connected, "resync after restart")
    since_up = time.monotonic() - started
    print(f"VPP up -> in sync: {since_up:.2f} s (wait {elapsed:.2f} s)")
    assert venv.vpp_config() == wanted


def restart_into(venv: VppEnv, new: Any, vpp_dir: Path) -> None:
    """Start VPP again with the first one's startup.conf (same sockets)."""
    import subprocess

    old = venv.vpp
    new.__dict__.update(old.__dict__)
    new.proc = subprocess.Popen([str(old.prefix / "bin" / "vpp"), "-c", str(vpp_dir / "startup.conf")],
                                stdout=open(vpp_dir / "stdout2", "w"), stderr=subprocess.STDOUT, env=old.env,
                                start_new_session=True)
    venv.vpp = new
    venv.wait(lambda: new.api_sock.exists(), "VPP API socket", timeout=30)


def test_operational_state_and_rpcs_from_vpp(venv: VppEnv) -> None:
    import sysrepo

    venv.commit({f"{C}/endpoint[name='a']/address": "127.0.0.1", f"{C}/endpoint[name='a']/port": 9,
                 f"{S}/listen[name='l']/address": "127.0.0.1", f"{S}/listen[name='l']/port": 1099,
                 f"{S}/authentication/method": "username-password",
                 f"{S}/authentication/user[username='bob']/password": HASH, f"{S}/enabled": True})
    conn = sysrepo.SysrepoConnection()
    try:
        with conn.start_session("operational") as op, op.get_data_ly(TOP) as data:
            text = data.print_mem("json", with_siblings=True)
            tree = data.print_dict()["singbox"]
        with conn.get_ly_ctx() as ctx:
            ctx.parse_data_mem(text, "json", strict=True, validate_present=True).free()
        assert tree["dataplane"]["connected"] is True
        assert tree["dataplane"]["vpp-version"].startswith("26.06")
        assert tree["dataplane"]["plugin-version"] == "2.0.0"  # the manual's Version History
        assert tree["server"]["oper-status"] in ("running", "stopped")
        assert int(tree["server"]["statistics"]["connections-accepted"]) >= 0
        assert venv.dp._stats is not None, "server counters were not read from the stats segment"  # noqa: SLF001
        assert next(iter(tree["client"]["endpoint"]))["oper-status"] in ("up", "down", "unknown")
        with conn.start_session("running") as s:
            with pytest.raises(sysrepo.SysrepoNotFoundError):
                s.rpc_send("/vpp-singbox:disconnect-session", {"id": 424242}, timeout_ms=5000)
            try:
                out = s.rpc_send("/vpp-singbox:test-endpoint", {"endpoint": "a"}, timeout_ms=20000)
                assert out["result"] in ("connect-failed", "timeout", "protocol-error")
            except sysrepo.SysrepoOperationFailedError as exc:
                assert "singbox_endpoint_test returned" in str(exc)  # a plugin build without probes says so
    finally:
        conn.disconnect()


def test_an_interface_created_later_gets_relaying(venv: VppEnv) -> None:
    venv.commit({f"{C}/endpoint[name='a']/address": "192.0.2.1", f"{C}/interface[name='loop7']/endpoint": "a",
                 f"{C}/interface[name='loop7']/bypass-prefix": "10.7.0.0/16"})
    assert venv.dp.read_state().interfaces["loop7"].present is False
    venv.vpp.cli("create loopback interface instance 7")
    venv.wait(lambda: venv.dp.read_state().interfaces["loop7"].present, "loop7 enabled in VPP", timeout=15)
    got = venv.vpp_config()
    assert got[("interface", "loop7")] == interface_spec("a") and got[("bypass", "loop7", "10.7.0.0/16")] is True


def test_service_against_vpp_stops_on_sigterm_leaving_vpp_as_it_is(sysrepo_instance: SysrepoInstance,
                                                                    tmp_path: Path) -> None:
    import json
    import signal
    import subprocess

    import sysrepo

    from singbox_agent.dataplane.objects import redacted
    from singbox_agent.dataplane.vpp import VppDataplane

    vpptopo = _vpptopo()
    vpp = vpptopo.Vpp()
    proc = None
    try:
        ready = tmp_path / "ready.json"
        proc = subprocess.Popen(
            [sys.executable, "-m", "singbox_agent.agent", "--state-dir", str(tmp_path), "--ready-file", str(ready),
             "--vpp-api-socket", str(vpp.api_sock)],
            env={**os.environ, **sysrepo_instance.env}, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 20
        while not ready.exists():
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
        with sysrepo.SysrepoConnection() as conn, conn.start_session("running") as s:
            s.set_item(f"{C}/endpoint[name='a']/address", "192.0.2.1")
            s.set_item(f"{C}/endpoint[name='a']/username", "u")
            s.set_item(f"{C}/endpoint[name='a']/password", "vpp-secret-pw")
            s.apply_changes(timeout_ms=10000)
            s.switch_datastore("operational")
            deadline = time.monotonic() + 10
            while not s.get_data(f"{TOP}/dataplane")["singbox"]["dataplane"]["connected"]:
                assert time.monotonic() < deadline
                time.sleep(0.05)
        probe = VppDataplane(str(vpp.api_sock), api_files(), client_name="check")
        probe._connect()  # noqa: SLF001
        before = dict(probe.read_config())
        assert ("endpoint", "a") in before
        t0 = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=15)
        assert proc.returncode == 0, err[-2000:]
        assert time.monotonic() - t0 < 10
        assert "vpp-secret-pw" not in err
        commits = [json.loads(ln) for ln in err.splitlines() if ln.startswith("{") and '"commit"' in ln]
        assert commits and commits[-1]["result"] == "applied"
        # stopping the agent changed nothing in VPP (passwords are write-only: compared masked)
        assert {k: redacted(v) for k, v in probe.read_config().items()} == {k: redacted(v) for k, v in before.items()}
        probe._close()  # noqa: SLF001
    finally:
        if proc is not None and proc.poll() is None:
            proc.kill()
        vpp.close()


def test_dumps_of_many_named_objects_decode_exactly(venv: VppEnv) -> None:
    """Details messages start zeroed: names of every length and endpoints without credentials read back exactly.

    Before the plugin zeroed its details messages, a few hundred users came back with heap bytes after their
    names (or no terminator at all) and vpp_papi could not decode the dump.
    """
    users = {f"user{i}-" + "x" * (i % 60): HASH for i in range(300)}
    edits: dict[str, Any] = {f"{S}/authentication/method": "username-password"}
    edits.update({f"{S}/authentication/user[username='{name}']/password": h for name, h in users.items()})
    edits.update({f"{C}/endpoint[name='e{i}']/address": f"192.0.2.{i + 1}" for i in range(50)})
    venv.commit(edits)
    got = venv.vpp_config()
    assert sorted(k[1] for k in got if k[0] == "user") == sorted(users)
    endpoints = {k[1]: v for k, v in got.items() if k[0] == "endpoint"}
    assert sorted(endpoints) == sorted(f"e{i}" for i in range(50))
    assert all(isinstance(v, EndpointSpec) and v.username is None for v in endpoints.values())


def test_pipelined_batch_against_vpp_reports_exactly_the_failing_ops(venv: VppEnv) -> None:
    """Hundreds of requests under way: each reply is matched to its op by context; with a stop rule nothing of a
    later run is sent once an op failed, without one every op is attempted and only the refused ones fail."""
    from singbox_agent.dataplane.objects import DataplaneError, Op, UserSpec

    def ops(tag: str) -> list[Op]:
        out = [Op("put", ("endpoint", f"{tag}{i:03}"), endpoint_spec("0.0.0.0" if i in (100, 101) else
                                                                     f"198.18.{i // 250}.{i % 250 + 1}",
                                                                     health_check=False), None)
               for i in range(300)]
        return out + [Op("put", ("user", f"{tag}-user{i}"), UserSpec(HASH), None) for i in range(50)]

    def always(_op: Op, _exc: DataplaneError) -> bool:
        return True

    stopped = venv.dp.apply_batch(ops("s"), stop=always)
    assert 101 < len(stopped) <= 300
    assert [i for i, r in enumerate(stopped) if r is not None] == [100, 101]
    assert "singbox_endpoint_add_del returned INVALID_VALUE" in str(stopped[100])
    got = venv.vpp_config()
    assert not [k for k in got if k[0] == "user"], "a later run was sent after a failure"
    assert {k[1] for k in got if k[0] == "endpoint"} == {f"s{i:03}" for i in range(len(stopped)) if i not in (100, 101)}

    every = venv.dp.apply_batch(ops("a"))
    assert len(every) == 350 and [i for i, r in enumerate(every) if r is not None] == [100, 101]
    got = venv.vpp_config()
    assert {k[1] for k in got if k[0] == "user"} == {f"a-user{i}" for i in range(50)}
    assert {k[1] for k in got if k[0] == "endpoint" and k[1].startswith("a")} == {
        f"a{i:03}" for i in range(300) if i not in (100, 101)}


def test_a_refusal_in_the_middle_of_a_window_undoes_the_whole_commit(venv: VppEnv) -> None:
    import sysrepo

    venv.commit({f"{C}/endpoint[name='keep']/address": "192.0.2.1"})
    before = venv.vpp_config()
    for i in range(300):
        venv.sess.set_item(f"{C}/endpoint[name='e{i:03}']/address",
                           "0.0.0.0" if i in (150, 151) else f"198.18.{i // 250}.{i % 250 + 1}")
        venv.sess.set_item(f"{C}/endpoint[name='e{i:03}']/health-check/enabled", False)
    venv.sess.set_item(f"{C}/endpoint[name='keep']/port", 2000)
    venv.sess.set_item(f"{S}/authentication/user[username='bob']/password", HASH)
    with pytest.raises(sysrepo.SysrepoValidationFailedError) as err:
        venv.sess.apply_changes(timeout_ms=30000)
    venv.sess.discard_changes()
    # the first refused object in plan order, not whichever reply came first
    assert "endpoint 'e150'" in str(err.value) and "e151" not in str(err.value)
    assert venv.vpp_config() == before
    assert venv.agent.status.in_sync and not venv.agent.status.pending


def test_resync_applies_everything_else_and_reports_each_refused_object(venv: VppEnv) -> None:
    venv.vpp.proc.kill()
    venv.vpp.proc.wait(10)
    venv.wait(lambda: not venv.dp.connected, "agent notices VPP is gone")
    # accepted while VPP is away; VPP refuses two of them (zero proxy address) when it is back
    edits: dict[str, Any] = {}
    for i in range(200):
        edits[f"{C}/endpoint[name='e{i:03}']/address"] = "0.0.0.0" if i in (60, 140) else f"198.18.0.{i + 1}"
        edits[f"{C}/endpoint[name='e{i:03}']/health-check/enabled"] = False
    venv.commit(edits)
    restart_into(venv, venv.vpptopo.Vpp.__new__(venv.vpptopo.Vpp), venv.vpp.dir)
    venv.wait(lambda: venv.dp.connected and venv.agent.status.in_sync, "resync after restart", timeout=30)
    status = venv.agent.status
    assert status.pending and status.last_error is not None
    assert "endpoint 'e060'" in status.last_error and "endpoint 'e140'" in status.last_error
    got = venv.vpp_config()
    assert {k[1] for k in got if k[0] == "endpoint"} == {f"e{i:03}" for i in range(200) if i not in (60, 140)}


def test_a_listener_whose_address_comes_after_a_vpp_restart_is_listening_once_it_exists(venv: VppEnv) -> None:
    """Right after a restart VPP lacks the listener's address: the plugin keeps the server enabled but not
    listening and refuses the enable. The resync must not take 'enabled' for done: when the address appears,
    its retry enables again and the listener listens."""
    venv.vpp.proc.kill()
    venv.vpp.proc.wait(10)
    venv.wait(lambda: not venv.dp.connected, "agent notices VPP is gone")
    venv.commit({f"{S}/listen[name='l']/address": "198.18.9.1", f"{S}/listen[name='l']/port": 1080,
                 f"{S}/enabled": True})
    restart_into(venv, venv.vpptopo.Vpp.__new__(venv.vpptopo.Vpp), venv.vpp.dir)
    venv.wait(lambda: venv.dp.connected and venv.agent.status.in_sync, "resync after restart", timeout=30)
    assert venv.agent.status.pending and "server-enabled" in (venv.agent.status.last_error or "")
    assert venv.dp.read_state().listeners["l"] is False
    venv.vpp.cli("create loopback interface")
    venv.vpp.cli("set interface state loop0 up")
    venv.vpp.cli("set interface ip address loop0 198.18.9.1/24")
    venv.wait(lambda: not venv.agent.status.pending, "the agent's own retry enables the server", timeout=60)
    assert venv.dp.read_state().listeners["l"] is True


def test_plugin_defaults_equal_the_module(sysrepo_instance: SysrepoInstance) -> None:
    """A plugin nobody configured yet (CLI use) has the module's defaults: its max pool size was 16 where the YANG
    says 100. Compared with the defaults libyang reads from the module, not with literals."""
    from vpp_papi import VPPApiClient  # type: ignore[import-untyped]

    from singbox_agent.agent import defaults

    vpptopo = _vpptopo()
    vpp = vpptopo.Vpp()
    papi = VPPApiClient(server_address=str(vpp.api_sock), bootstrapapi=True, read_timeout=10)
    try:
        papi.connect("sbx-defaults")
        client = papi.api.singbox_client_dump()[0]
        server = papi.api.singbox_server_dump()[0]
        d = defaults.current()
        assert (client.timeout, client.max_pool_size) == (d["client/session-timeout"],
                                                          d["client/connection-pool/max-size"])
        assert (server.max_sessions, server.handshake_timeout, server.idle_timeout, server.connect_timeout,
                server.udp_idle_timeout, server.dns_server_port) == (
            d["server/max-sessions"], d["server/handshake-timeout"], d["server/idle-timeout"],
            d["server/connect-timeout"], d["server/udp-associate/idle-timeout"], d["server/resolver/port"])
    finally:
        try:
            papi.disconnect()
        finally:
            vpp.close()

"""sysrepo's subscribed-notifications API through `subscriptions.srsn`, against a real sysrepo instance with
ietf-subscribed-notifications and ietf-yang-push installed the way the binding's README says."""

from __future__ import annotations

import datetime
import os
import subprocess
import time
from collections.abc import Iterator
from typing import Any

import pytest

from singbox_agent.repository import SysrepoInstance, sysrepo_modules
from singbox_agent.subscriptions import srsn

METRICS = "/vpp-singbox-metrics:metrics-exporter"


@pytest.fixture
def sr(sysrepo_instance: SysrepoInstance) -> Iterator[Any]:
    # the fixture installs the modules with their features (tests/conftest.py, as the product does)
    assert sysrepo_instance.sync_features(sysrepo_modules()) == []
    import sysrepo

    conn = sysrepo.SysrepoConnection()
    try:
        yield conn
    finally:
        conn.disconnect()


def set_port(conn: Any, port: int) -> None:
    sess = conn.start_session("running")
    sess.set_item(f"{METRICS}/listen/port", port)
    sess.apply_changes()
    sess.stop()


def read_until(conn: Any, sub: srsn.Subscription, want: str, timeout: float = 10) -> srsn.Notification:
    deadline = time.monotonic() + timeout
    seen: list[str] = []
    with conn.get_ly_ctx() as ctx:
        while time.monotonic() < deadline:
            n = sub.read(ctx, 200)
            if n is not None:
                seen.append(n.content)
                if want in n.content:
                    return n
    raise AssertionError(f"{want!r} not delivered within {timeout} s; got {seen}")


def test_periodic_push_update_of_running(sr: Any) -> None:
    set_port(sr, 1234)
    sess = sr.start_session("running")
    sub = srsn.yang_push_periodic(sess, "running", period_ms=100, xpath=METRICS)
    try:
        first = read_until(sr, sub, "<port>1234</port>")
        assert first.content.startswith(f'<push-update xmlns="{srsn.YP_NS}"><id>{sub.id}</id>')
        assert abs((datetime.datetime.now(datetime.UTC) - first.time).total_seconds()) < 60
        set_port(sr, 2345)
        read_until(sr, sub, "<port>2345</port>")  # the next period sees the change
    finally:
        sub.close()
        sess.stop()


def test_on_change_sends_a_yang_patch_per_change(sr: Any) -> None:
    set_port(sr, 1234)
    sess = sr.start_session("running")
    sub = srsn.yang_push_on_change(sess, "running", xpath=METRICS, sync_on_start=True)
    try:
        read_until(sr, sub, "<port>1234</port>")  # the push-update of sync-on-start
        started = time.monotonic()
        set_port(sr, 4321)
        change = read_until(sr, sub, "push-change-update")
        assert ">4321</port>" in change.content and "<operation>replace</operation>" in change.content
        assert time.monotonic() - started < 5
    finally:
        sub.close()
        sess.stop()


def test_state_modify_and_terminate(sr: Any) -> None:
    sess = sr.start_session("running")
    periodic = srsn.yang_push_periodic(sess, "running", period_ms=500, xpath=METRICS)
    on_change = srsn.yang_push_on_change(sess, "operational", xpath=METRICS, dampening_ms=100,
                                         excluded=("move",))
    try:
        states = {s.id: s for s in srsn.subscriptions()}
        assert states[periodic.id].kind == "periodic" and states[periodic.id].period_ms == 500
        assert states[periodic.id].datastore == "running" and states[periodic.id].xpath == METRICS
        assert states[on_change.id].kind == "on-change" and states[on_change.id].dampening_ms == 100
        srsn.modify_period(periodic.id, 1000)
        srsn.modify_dampening(on_change.id, 300)
        states = {s.id: s for s in srsn.subscriptions()}
        assert states[periodic.id].period_ms == 1000 and states[on_change.id].dampening_ms == 300
        srsn.terminate(periodic.id, "ietf-subscribed-notifications:no-such-subscription")
        ended = read_until(sr, periodic, "subscription-terminated")
        assert "no-such-subscription" in ended.content
        with sr.get_ly_ctx() as ctx, pytest.raises(EOFError):
            for _ in range(50):  # what was queued before the end, then the end
                periodic.read(ctx, 100)
        assert periodic.id not in {s.id for s in srsn.subscriptions()}
        with pytest.raises(srsn.SrsnError):
            srsn.terminate(periodic.id, "ietf-subscribed-notifications:no-such-subscription")
    finally:
        periodic.close()
        on_change.close()
        sess.stop()


def test_operational_statistics_of_the_agent_are_pushed(sr: Any) -> None:
    """`/singbox/server/statistics` served by the agent's operational callback (over the in-memory dataplane)."""
    from singbox_agent.agent.daemon import Agent
    from singbox_agent.dataplane.base import ServerState
    from singbox_agent.dataplane.memory import MemoryDataplane

    dp = MemoryDataplane()
    agent = Agent(dp)
    agent.start()
    sess = sr.start_session("operational")
    sub = None
    try:
        assert agent.wait_idle()
        dp.server_state = ServerState(True, 41, 0, 0, 0, 4096, 3)
        sub = srsn.yang_push_periodic(sess, "operational", period_ms=200,
                                      xpath="/vpp-singbox:singbox/server/statistics")
        update = read_until(sr, sub, "<connections-accepted>41</connections-accepted>")
        assert "<active-sessions>3</active-sessions>" in update.content
    finally:
        if sub is not None:
            sub.close()
        sess.stop()
        agent.stop()


def test_a_missing_module_is_a_precise_error(sysrepo_instance: SysrepoInstance) -> None:
    """Without ietf-yang-push installed sysrepo refuses: the error says so rather than hanging or crashing."""
    import sysrepo

    done = subprocess.run(["sysrepoctl", "-u", "ietf-yang-push"], env={**os.environ, **sysrepo_instance.env},
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr

    conn = sysrepo.SysrepoConnection()
    sess = conn.start_session("running")
    try:
        with pytest.raises(srsn.SrsnError) as err:
            srsn.yang_push_periodic(sess, "running", period_ms=100, xpath=METRICS)
        assert err.value.rc == 8  # SR_ERR_UNSUPPORTED
    finally:
        sess.stop()
        conn.disconnect()


def test_stream_subscription_with_an_xpath_filter(sr: Any) -> None:
    """RFC 8639 establish-subscription on the NETCONF stream: notifications the filter selects, others not."""
    sess = sr.start_session("running")
    sub = srsn.subscribe(sess, "NETCONF", xpath="/vpp-singbox:dataplane-disconnected")
    sender = sr.start_session("running")
    try:
        sender.notification_send("/vpp-singbox:dataplane-connected",
                                 {"vpp-version": "26.06", "plugin-version": "1.0.0"})
        sender.notification_send("/vpp-singbox:dataplane-disconnected", {"reason": "VPP restarted"})
        with sr.get_ly_ctx() as ctx:
            got = sub.read(ctx, 5000)  # the first delivered: the connected one, sent first, was filtered out
        assert got is not None and "<dataplane-disconnected" in got.content and "VPP restarted" in got.content
        assert [s.stream for s in srsn.subscriptions() if s.id == sub.id] == ["NETCONF"]
    finally:
        sub.close()
        sender.stop()
        sess.stop()


def test_stop_time_ends_the_subscription(sr: Any) -> None:
    """At the stop time sysrepo 3.7 ends the subscription with subscription-terminated (reason
    no-such-subscription), not RFC 8639's subscription-completed (2.7.5), then closes the pipe: a server maps it."""
    sess = sr.start_session("running")
    stop = datetime.datetime.now(datetime.UTC) + datetime.timedelta(milliseconds=600)
    sub = srsn.yang_push_periodic(sess, "running", period_ms=100, xpath=METRICS, stop=stop)
    kinds: list[str] = []
    last = ""
    try:
        with sr.get_ly_ctx() as ctx, pytest.raises(EOFError):
            for _ in range(100):
                n = sub.read(ctx, 100)
                if n is not None:
                    kinds.append(n.content.split(" ", 1)[0])
                    last = n.content
        assert datetime.datetime.now(datetime.UTC) >= stop
        assert set(kinds[:-1]) == {"<push-update"} and kinds[-1] == "<subscription-terminated", kinds
        assert "<reason>no-such-subscription</reason>" in last
    finally:
        sub.close()
        sess.stop()


def test_modify_sends_no_subscription_modified(sr: Any) -> None:
    """Nor does sysrepo send subscription-modified (RFC 8639 2.7.2): the server's part too. The reader times out
    quietly between updates."""
    sess = sr.start_session("running")
    sub = srsn.yang_push_periodic(sess, "running", period_ms=200, xpath=METRICS)
    kinds: list[str] = []
    try:
        srsn.modify_period(sub.id, 300)
        with sr.get_ly_ctx() as ctx:
            deadline = time.monotonic() + 1.5
            while time.monotonic() < deadline:
                n = sub.read(ctx, 50)
                if n is not None:
                    kinds.append(n.content.split(" ", 1)[0])
        assert kinds and set(kinds) == {"<push-update"}
    finally:
        sub.close()
        sess.stop()


def test_replay_from_a_start_time(sr: Any) -> None:
    """A stream subscription with a start time first replays what sysrepo stored since then."""
    from singbox_agent.mgmt import replay

    replay.enable_replay(sr)
    before = datetime.datetime.now(datetime.UTC) - datetime.timedelta(seconds=1)
    sender = sr.start_session("running")
    sender.notification_send("/vpp-singbox:dataplane-disconnected", {"reason": "stored before"})
    time.sleep(0.2)
    sess = sr.start_session("running")
    sub = srsn.subscribe(sess, "NETCONF", xpath="/vpp-singbox:dataplane-disconnected", start=before)
    try:
        assert sub.replay_start is not None and sub.replay_start <= datetime.datetime.now(datetime.UTC)
        got = read_until(sr, sub, "stored before")
        assert got.time < datetime.datetime.now(datetime.UTC)
        read_until(sr, sub, "replay-completed")
        sender.notification_send("/vpp-singbox:dataplane-disconnected", {"reason": "live"})
        read_until(sr, sub, "live")
    finally:
        sub.close()
        sender.stop()
        sess.stop()


def test_a_push_update_larger_than_the_pipe_arrives_whole(sr: Any) -> None:
    """1,000 sessions make a push-update of ~400 KB, past a pipe's 64 KiB: sysrepo's srsn_read_notif read it with
    one read() and failed (SR_ERR_SYS), after which sysrepo's writer crashed the process."""
    from singbox_agent.agent.daemon import Agent
    from singbox_agent.dataplane.base import Session
    from singbox_agent.dataplane.memory import MemoryDataplane

    dp = MemoryDataplane()
    dp.sessions = {i: Session(i, "server", "established", "198.18.1.2", 1024 + i, destination_address="198.18.2.2",
                              destination_port=443, username="bob", bytes_from_client=i, bytes_to_client=i)
                   for i in range(1000)}
    agent = Agent(dp)
    agent.start()
    sess = sr.start_session("operational")
    sub = None
    try:
        assert agent.wait_idle()
        sub = srsn.yang_push_periodic(sess, "operational", period_ms=500, xpath="/vpp-singbox:singbox/sessions")
        update = read_until(sr, sub, "push-update", timeout=30)
        assert len(update.content) > 256 * 1024 and update.content.count("<session>") == 1000
    finally:
        if sub is not None:
            sub.close()
        sess.stop()
        agent.stop()


def test_a_slow_periodic_push_keeps_its_period(sr: Any) -> None:
    """RFC 8641: push-updates at anchor-time + n * period. srsn arms the next push a period after the previous one
    was built and sent, so pushes that take 0.4 s each came every 1.4 s; after a push-update is read, the
    subscription is armed at its next grid point again. Read with a wide margin: three periods after the second
    push come within 3.6 s (every 1.4 s: 4.2 s)."""
    sess = sr.start_session("running")
    provider = sr.start_session("running")

    def slow(_xpath: str, _priv: Any, **__: Any) -> dict[str, Any]:
        time.sleep(0.4)  # a big list's read
        return {}

    provider.subscribe_oper_data_request("vpp-singbox", "/vpp-singbox:singbox/sessions", slow)
    anchor = datetime.datetime.now(datetime.UTC) + datetime.timedelta(milliseconds=200)
    sub = srsn.yang_push_periodic(sess, "operational", period_ms=1000, xpath="/vpp-singbox:singbox/sessions",
                                  anchor=anchor)
    try:
        # the first push comes at once, off the grid (srsn's anchor arithmetic); the second is on it
        times = [read_until(sr, sub, "<push-update", timeout=30).time.timestamp() for _ in range(5)]
        assert times[4] - times[1] < 3.6, [round(b - a, 3) for a, b in zip(times, times[1:])]
    finally:
        sub.close()
        provider.stop()
        sess.stop()

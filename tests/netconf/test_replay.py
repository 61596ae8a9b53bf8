"""RFC 5277 :replay through ncclient: startTime/stopTime over sysrepo's stored notifications."""

from __future__ import annotations

import datetime
import time

import pytest
import sysrepo
from lxml import etree
from ncclient.operations.rpc import RPCError

from tests.netconf.conftest import SBX_NS, ServerInfo
from tests.netconf.helpers import _send

NCN_NS = "urn:ietf:params:xml:ns:netmod:notification"


def iso(ts: float) -> str:
    return datetime.datetime.fromtimestamp(ts, datetime.UTC).isoformat().replace("+00:00", "Z")


def send_stored(*names: str) -> None:
    with sysrepo.SysrepoConnection() as conn:
        sess = conn.start_session("running")
        for name in names:
            _send(sess, "endpoint-down", name)
        sess.stop()


def take_all(m: object, until: str, limit: int = 50) -> list[str]:
    got: list[str] = []
    for _ in range(limit):
        n = m.take_notification(timeout=10)  # type: ignore[attr-defined]
        assert n is not None, f"no {until} after {got}"
        got.append(n.notification_xml)
        if until in n.notification_xml:
            return got
    raise AssertionError(f"no {until} in {limit} notifications")


def test_replay_from_start_time_then_live(netconf_server: ServerInfo) -> None:
    before = time.time() - 1
    send_stored("old1", "old2")
    time.sleep(1.1)
    with netconf_server.connect() as m:
        m.create_subscription(filter=("subtree", f'<endpoint-down xmlns="{SBX_NS}"/>'), start_time=iso(before))
        got = take_all(m, "replayComplete")
        replayed = [x for x in got if "endpoint-down" in x]
        assert len(replayed) == 2 and "old1" in replayed[0] and "old2" in replayed[1]
        assert NCN_NS in got[-1]
        send_stored("live1")
        n = m.take_notification(timeout=10)
        assert n is not None and "live1" in n.notification_xml
        assert m.take_notification(timeout=1) is None  # no notificationComplete without stopTime


def test_replay_window_with_stop_time(netconf_server: ServerInfo) -> None:
    send_stored("early")
    time.sleep(1.1)
    start = time.time()
    send_stored("inside")
    time.sleep(1.1)
    stop = time.time()
    time.sleep(1.1)
    send_stored("late")
    with netconf_server.connect() as m:
        m.create_subscription(filter=("subtree", f'<endpoint-down xmlns="{SBX_NS}"/>'), start_time=iso(start),
                              stop_time=iso(stop))
        got = take_all(m, "notificationComplete")
        texts = "".join(got)
        assert "inside" in texts and "early" not in texts and "late" not in texts
        kinds = ["replayComplete" if "replayComplete" in x else "notificationComplete"
                 if "notificationComplete" in x else "data" for x in got]
        assert kinds == ["data", "replayComplete", "notificationComplete"]
        # the subscription ended: the session may subscribe again
        m.create_subscription()


def test_replay_without_subscription_filter_sees_session_events(netconf_server: ServerInfo) -> None:
    start = time.time() - 0.5
    with netconf_server.connect():
        pass  # ietf-netconf-notifications: netconf-session-start/-end are stored too
    time.sleep(0.5)
    with netconf_server.connect() as m:
        m.create_subscription(start_time=iso(start))
        got = take_all(m, "replayComplete")
        assert any("netconf-session-start" in x for x in got)
        assert any("netconf-session-end" in x for x in got)


@pytest.mark.parametrize(
    "start_delta, stop_delta, bad",
    [(3600.0, None, "startTime"), (-10.0, -20.0, "stopTime")],
)
def test_bad_replay_window(netconf_server: ServerInfo, start_delta: float, stop_delta: float | None,
                           bad: str) -> None:
    now = time.time()
    with netconf_server.connect() as m:
        with pytest.raises(RPCError) as exc:
            m.create_subscription(start_time=iso(now + start_delta),
                                  stop_time=None if stop_delta is None else iso(now + stop_delta))
        assert exc.value.tag == "bad-element"
        assert f"<bad-element>{bad}</bad-element>" in str(exc.value.info)
        m.create_subscription()  # nothing was subscribed by the refused one


def test_stop_time_needs_start_time(netconf_server: ServerInfo) -> None:
    rpc = (f'<create-subscription xmlns="urn:ietf:params:xml:ns:netconf:notification:1.0">'
           f"<stopTime>{iso(time.time())}</stopTime></create-subscription>")
    with netconf_server.connect() as m:
        with pytest.raises(RPCError) as exc:
            m.dispatch(etree.fromstring(rpc))
        assert exc.value.tag == "missing-element"
        assert "<bad-element>startTime</bad-element>" in str(exc.value.info)


def test_malformed_start_time(netconf_server: ServerInfo) -> None:
    with netconf_server.connect() as m:
        with pytest.raises(RPCError) as exc:
            m.create_subscription(start_time="yesterday")
        assert exc.value.tag == "invalid-value"  # the RPC's schema validation (yang:date-and-time) refuses it

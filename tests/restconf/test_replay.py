"""RFC 8040 §6 replay on the NETCONF event stream: start-time / stop-time over sysrepo's stored notifications."""

from __future__ import annotations

import datetime
import json
import time
import xml.etree.ElementTree as ET

import httpx
import pytest
import sysrepo
from rcserver import RestconfServer

STREAM = "/restconf/streams/NETCONF"
NCN_NS = "{urn:ietf:params:xml:ns:netmod:notification}"


def iso(ts: float) -> str:
    return datetime.datetime.fromtimestamp(ts, datetime.UTC).isoformat().replace("+00:00", "Z")


def send_down(*names: str) -> None:
    with sysrepo.SysrepoConnection() as conn:
        sess = conn.start_session("running")
        for name in names:
            sess.notification_send("/vpp-singbox:endpoint-down", {"endpoint": name})
        sess.stop()


def read_events(client: httpx.Client, url: str, params: dict[str, str], *, until: str | None,
                limit: int = 50) -> tuple[list[str], bool]:
    """Events of the stream until one contains `until` (or the server ends the stream); (events, ended by server)."""
    got: list[str] = []
    with client.stream("GET", url, params=params, timeout=20) as resp:
        assert resp.status_code == 200, resp.read()
        data: list[str] = []
        for line in resp.iter_lines():
            if line.startswith("data:"):
                data.append(line[5:].lstrip())
            elif line == "" and data:
                got.append("\n".join(data))
                data = []
                if until is not None and until in got[-1]:
                    return got, False
                assert len(got) < limit
    return got, True


def test_replay_json_window_ends_stream(restconf: RestconfServer) -> None:
    send_down("early")
    time.sleep(1.1)
    start = time.time()
    send_down("in1", "in2")
    time.sleep(1.1)
    stop = time.time()
    time.sleep(1.1)
    send_down("late")
    with restconf.client(http2=True) as c:
        got, ended = read_events(c, STREAM + "/json", {"filter": "/vpp-singbox:endpoint-down",
                                                       "start-time": iso(start), "stop-time": iso(stop)}, until=None)
    assert ended
    events = [json.loads(g)["ietf-restconf:notification"] for g in got]
    names = [e["vpp-singbox:endpoint-down"]["endpoint"] for e in events if "vpp-singbox:endpoint-down" in e]
    assert names == ["in1", "in2"]
    assert "nc-notifications:replayComplete" in events[2]
    assert "nc-notifications:notificationComplete" in events[3] and len(events) == 4
    assert all(e["eventTime"].endswith("Z") for e in events)


def test_replay_xml_then_live(restconf: RestconfServer) -> None:
    start = time.time() - 0.5
    send_down("old")
    time.sleep(0.5)
    with restconf.client() as c:
        import threading

        got: list[str] = []

        def reader() -> None:
            got.extend(read_events(c, STREAM + "/xml", {"filter": "/vpp-singbox:endpoint-down",
                                                        "start-time": iso(start)}, until="live")[0])

        t = threading.Thread(target=reader, daemon=True)
        t.start()
        deadline = time.monotonic() + 15
        while not any("replayComplete" in g for g in got) and time.monotonic() < deadline:
            time.sleep(0.1)
        send_down("live")
        t.join(15)
    roots = [ET.fromstring(g) for g in got]
    assert [r[1].tag for r in roots] == ["{urn:vpp-singbox:yang:vpp-singbox}endpoint-down", f"{NCN_NS}replayComplete",
                                         "{urn:vpp-singbox:yang:vpp-singbox}endpoint-down"]
    assert "old" in got[0] and "live" in got[2]


@pytest.mark.parametrize("params", [
    {"start-time": "FUTURE"},
    {"start-time": "PAST", "stop-time": "EARLIER"},
    {"stop-time": "PAST"},
    {"start-time": "not-a-time"},
])
def test_bad_replay_window(restconf: RestconfServer, params: dict[str, str]) -> None:
    now = time.time()
    values = {"FUTURE": iso(now + 3600), "PAST": iso(now - 10), "EARLIER": iso(now - 20)}
    query = {k: values.get(v, v) for k, v in params.items()}
    with restconf.client() as c:
        resp = c.get(STREAM + "/json", params=query, headers={"Accept": "application/yang-data+json"})
    assert resp.status_code == 400
    err = resp.json()["ietf-restconf:errors"]["error"][0]
    assert err["error-tag"] == "invalid-value"


def test_monitoring_announces_replay(restconf: RestconfServer) -> None:
    send_down("x")
    with restconf.client() as c:
        mon = c.get("/restconf/data/ietf-restconf-monitoring:restconf-state/streams").json()
    stream = mon["ietf-restconf-monitoring:streams"]["stream"][0]
    assert stream["replay-support"] is True
    created = datetime.datetime.fromisoformat(stream["replay-log-creation-time"].replace("Z", "+00:00"))
    assert abs(created.timestamp() - time.time()) < 120

"""RESTCONF writes as NETCONF's (mgmt/datastore: apply_changes, replace_config, copy_config): subscribers get
SUBSCRIBER_TIMEOUT_MS, not sysrepo's 5 s default, and a write waits for room for its netconf-config-change in the
replay store, so two large edits in one second are both replayable."""

from __future__ import annotations

import json
import time
import xml.etree.ElementTree as ET
from typing import Any

import sysrepo
from helpers import EP, JSON, SB
from rcserver import RestconfServer
from test_replay import STREAM, iso, read_events

NCN = "{urn:ietf:params:xml:ns:yang:ietf-netconf-notifications}"


def test_a_subscriber_slower_than_sysrepos_default_timeout(restconf: RestconfServer) -> None:
    """A subscriber taking 6 s (singbox-agent applying 10,000 endpoints on a busy machine): the edit succeeds; with
    sysrepo's 5 s default it was refused ("processing timed out")."""
    seen: list[str] = []

    def slow(sess: Any, event: str, req_id: int, private_data: Any) -> None:
        if event == "change":
            seen.append(event)
            time.sleep(6)

    with sysrepo.SysrepoConnection() as conn:
        sess = conn.start_session("running")
        sess.subscribe_module_change_unsafe("vpp-singbox", "/vpp-singbox:singbox", slow)
        try:
            with restconf.client() as c:
                r = c.put(f"{EP}=e-slow", headers={"content-type": JSON}, timeout=60,
                          content=json.dumps({"vpp-singbox:endpoint": [{"name": "e-slow",
                                                                         "address": "192.0.2.1"}]}))
        finally:
            sess.stop()
    assert r.status_code == 201, r.text
    assert seen == ["change"]


def _endpoints(prefix: str, n: int) -> bytes:
    return json.dumps({"vpp-singbox:client": {"endpoint": [
        {"name": f"{prefix}{i:05d}", "address": f"198.18.{i // 250}.{i % 250 + 1}"} for i in range(n)]}}).encode()


def test_two_large_edits_in_one_second_are_both_replayed(restconf: RestconfServer) -> None:
    """A large edit's config-change (1,000 endpoints: ~1.3 MB) starts and fills its second's replay file; a second
    large edit right after it lands in the same second most of the time, and sysrepo refused its config-change
    (applied, delivered live, never replayable). Now each write waits for the next second when the current one
    started a file: a replay gives every config-change of running, in order."""
    before = time.time() - 1
    with restconf.client() as c:
        for attempt in range(3):  # the old code lost at least one of three second edits almost always
            for prefix, n in ((f"a{attempt}-", 1000), (f"b{attempt}-", 300)):
                r = c.patch(f"{SB}/client", content=_endpoints(prefix, n), headers={"content-type": JSON},
                            timeout=60)
                assert r.status_code == 204, r.text
        time.sleep(1.1)
        stop = time.time()
        events, ended = read_events(c, STREAM + "/xml", {"start-time": iso(before), "stop-time": iso(stop)},
                                    until=None, limit=1000)
    assert ended
    running: list[int] = []
    for event in events:
        root = ET.fromstring(event)
        for change in root.iter(f"{NCN}netconf-config-change"):
            if change.findtext(f"{NCN}datastore", "running") == "running":
                running.append(len(change.findall(f"{NCN}edit")))
    large = [n for n in running if n >= 300]
    assert large == [13000, 3900] * 3, running  # each edit's (13 nodes an endpoint), in order

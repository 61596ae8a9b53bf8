"""On-change YANG-Push of a real endpoint going down: the whole product chain of tests/e2e (VPP with the plugin,
the agent, the NETCONF server, each its own process) with ietf-subscribed-notifications and ietf-yang-push
installed; the endpoint is the real sing-box, health-checked by the plugin, killed by the test (its status pushed,
its failure counts polled); then VPP is killed (the status is withdrawn) and restarted (pushed again once probed). Skipped, saying what is missing, without VPP
(VPP_PREFIX), the built plugin (SINGBOX_PLUGIN_DIR) or root."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from singbox_agent.repository import SysrepoInstance
from tests.subscriptions.test_netconf_subscriptions import DS, SN, YP, install_srsn_modules, rpc
from tests.subscriptions.test_oper_push import edits

pytestmark = [pytest.mark.vpp, pytest.mark.slow]

C = "/vpp-singbox:singbox/client"
SB = "urn:vpp-singbox:yang:vpp-singbox"


@pytest.fixture
def stack(sysrepo_instance: SysrepoInstance, tmp_path: Path) -> Iterator[Any]:
    from tests.e2e.conftest import Stack, skip_reason, vpp_output

    reason = skip_reason()
    if reason:
        pytest.skip(reason)
    install_srsn_modules(sysrepo_instance)  # before the services connect
    s = Stack(sysrepo_instance, tmp_path)
    try:
        yield s
    finally:
        alive = s.vpp.alive() or s.vpp_killed
        log = vpp_output(s.vpp)
        s.close()
        assert alive, "VPP died during the test:\n" + log


class Arrivals:
    """Notifications of one ncclient session with the time each arrived, taken by a thread of its own."""

    def __init__(self, m: Any) -> None:
        self.m = m
        self.items: list[tuple[float, str]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            n = self.m.take_notification(block=True, timeout=0.2)
            if n is not None:
                self.items.append((time.perf_counter(), str(n.notification_xml)))

    def wait(self, want: str, timeout: float, since: int = 0) -> tuple[float, str]:
        """The first notification holding `want`, of those from the `since`-th on."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for at, xml in list(self.items)[since:]:
                if all(w in xml for w in want.split("|")):
                    return at, xml
            time.sleep(0.02)
        raise AssertionError(f"no notification with {want!r} within {timeout:.0f} s; got {self.items}")

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)


def test_a_killed_sing_box_upstream_reaches_an_on_change_subscriber(stack: Any, tmp_path: Path) -> None:
    import json

    from tests.e2e.test_e2e_client import SB_PASSWORD, SB_PORT, SB_USER, client_cfg, start_sing_box
    from vpptopo import ORIGIN_IP4

    conf = {"log": {"level": "warn"},
            "inbounds": [{"type": "socks", "tag": "in", "listen": ORIGIN_IP4, "listen_port": SB_PORT,
                          "users": [{"username": SB_USER, "password": SB_PASSWORD}]}],
            "outbounds": [{"type": "direct", "tag": "direct"}], "route": {"final": "direct"}}
    (tmp_path / "sing-box.json").write_text(json.dumps(conf))
    singbox = start_sing_box(stack, tmp_path / "sing-box.json")
    health = ("<health-check><enabled>true</enabled><interval>5</interval><timeout>2</timeout>"
              "<failure-threshold>1</failure-threshold><recovery-threshold>1</recovery-threshold></health-check>")
    with stack.netconf_session() as m:
        m.edit_config(target="running",
                      config=client_cfg(stack, "<enabled>true</enabled>").replace("</password>",
                                                                                  "</password>" + health))
    with stack.netconf_session() as pushes, stack.netconf_session() as events, stack.netconf_session() as stats:
        rpc(pushes, f'<establish-subscription xmlns="{SN}">'
                    f'<datastore xmlns="{YP}" xmlns:ds="{DS}">ds:operational</datastore>'
                    f'<datastore-xpath-filter xmlns="{YP}" xmlns:sb="{SB}">'
                    f"/sb:singbox/sb:client/sb:endpoint/sb:oper-status</datastore-xpath-filter>"
                    f'<on-change xmlns="{YP}"><sync-on-start>true</sync-on-start></on-change>'
                    f"</establish-subscription>")
        rpc(events, f'<establish-subscription xmlns="{SN}"><stream>NETCONF</stream></establish-subscription>')
        # the endpoint's counters: pull-only, heard through the agent's poll (agent/oper_poll.py, every second)
        rpc(stats, f'<establish-subscription xmlns="{SN}">'
                   f'<datastore xmlns="{YP}" xmlns:ds="{DS}">ds:operational</datastore>'
                   f'<datastore-xpath-filter xmlns="{YP}" xmlns:sb="{SB}">'
                   f"/sb:singbox/sb:client/sb:endpoint/sb:statistics</datastore-xpath-filter>"
                   f'<on-change xmlns="{YP}"><sync-on-start>false</sync-on-start></on-change>'
                   f"</establish-subscription>")
        got_pushes, got_events, got_stats = Arrivals(pushes), Arrivals(events), Arrivals(stats)
        try:
            got_pushes.wait(">up</oper-status>", timeout=60)  # the first probe, or sync-on-start after it
            os.killpg(singbox.pid, signal.SIGKILL)
            singbox.wait(timeout=10)
            event_at, _ = got_events.wait("<endpoint-down", timeout=60)
            push_at, xml = got_pushes.wait(">down</oper-status>", timeout=30)
            # the failed probes counted: the poll's patch of the endpoint's statistics
            got_stats.wait(f"<push-change-update|{C}/endpoint[name='sing-box']/statistics/",
                           timeout=30)
            # VPP killed: the status is unknown, deleted from the push data; VPP back (empty, resynchronised by the
            # agent) and sing-box back: up again
            mark = len(got_pushes.items)
            stack.kill_vpp()
            got_pushes.wait(f"<operation>delete</operation>|{C}/endpoint[name='sing-box']/oper-status", 60, mark)
            mark = len(got_pushes.items)
            stack.restart_vpp()
            start_sing_box(stack, tmp_path / "sing-box.json")
            got_pushes.wait(">up</oper-status>", timeout=90, since=mark)
        finally:
            got_pushes.close()
            got_events.close()
            got_stats.close()
    import xml.etree.ElementTree as ET

    root = ET.fromstring(xml)
    update = next(e for e in root if e.tag.endswith("push-change-update"))
    assert edits(update)[f"{C}/endpoint[name='sing-box']/oper-status"] == ("replace", "down")
    # the agent sends endpoint-down and then pushes: the gap is (roughly) the agent's push and sysrepo's delivery
    print(f"endpoint-down notification -> push-change-update: {(push_at - event_at) * 1e3:.1f} ms")


def session_changes(texts: list[str]) -> tuple[set[str], set[str]]:
    """The ids of sessions started and ended in these notifications' YANG patches. The first session of an empty
    list is a create of /singbox/sessions holding it, the last one ending a delete of /singbox/sessions."""
    import xml.etree.ElementTree as ET

    top = "/vpp-singbox:singbox/sessions"
    started: set[str] = set()
    ended: set[str] = set()
    for text in texts:
        for edit in (e for e in ET.fromstring(text).iter() if e.tag.endswith("}edit")):
            op = next(c.text for c in edit if c.tag.endswith("}operation"))
            target = next(c.text or "" for c in edit if c.tag.endswith("}target"))
            value = next((c for c in edit if c.tag.endswith("}value")), None)
            ids = {i.text or "" for i in value.iter() if i.tag.endswith("}id")} if value is not None else set()
            if op in ("create", "insert") and (target == top or target.startswith(f"{top}/session[")):
                started |= ids
            elif op == "delete" and target.startswith(f"{top}/session[") and target.endswith("]"):
                ended.add(target.split("'")[1])
            elif op == "delete" and target == top:
                ended.add("*")  # the list emptied
    return started, ended


def test_a_proxied_session_starting_and_ending_reaches_an_on_change_subscriber(stack: Any) -> None:
    """The sessions list's on-change with the agent as the product starts it (no poll option: the default), a real
    SOCKS5 session through VPP's server mode: its start is heard with its id and state, its end as its entry (or,
    the last one, the list) deleted."""
    from tests.e2e.conftest import ECHO_PORT, end_hold, hold_socks_session
    from tests.e2e.test_e2e_server import MAIN_PORT, PASSWORD, USER, configure
    from vpptopo import ORIGIN_IP4

    configure(stack)
    with stack.netconf_session() as m:
        rpc(m, f'<establish-subscription xmlns="{SN}">'
               f'<datastore xmlns="{YP}" xmlns:ds="{DS}">ds:operational</datastore>'
               f'<datastore-xpath-filter xmlns="{YP}" xmlns:sb="{SB}">/sb:singbox/sb:sessions'
               f"</datastore-xpath-filter>"
               f'<on-change xmlns="{YP}"><sync-on-start>false</sync-on-start></on-change>'
               f"</establish-subscription>")
        got = Arrivals(m)
        try:
            time.sleep(3)  # the configuration check's sessions end first (what the test waits for is after them)
            mark = len(got.items)
            hold = hold_socks_session(stack, MAIN_PORT, USER, PASSWORD, ORIGIN_IP4, ECHO_PORT)
            try:
                deadline = time.monotonic() + 30
                while not (started := session_changes([t for _, t in got.items[mark:]])[0]):
                    assert time.monotonic() < deadline, f"no session started: {got.items[mark:]}"
                    time.sleep(0.1)
                assert len(started) == 1, started
                xml = "".join(t for _, t in got.items[mark:])
                assert "<state>" in xml, xml  # the entry comes with its state
            finally:
                assert end_hold(hold) == 0
            deadline = time.monotonic() + 30
            while not (session_changes([t for _, t in got.items[mark:]])[1] & (started | {"*"})):
                assert time.monotonic() < deadline, f"{started} not ended: {got.items[mark:]}"
                time.sleep(0.1)
        finally:
            got.close()

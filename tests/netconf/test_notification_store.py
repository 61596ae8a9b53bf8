"""Every notification stored for replay: none lost behind a big netconf-config-change (issue 17).

sysrepo refuses to store a notification in a second whose replay file was started in that same second and is full
(after a config-change of a few thousand entries: several MB, stored whole); it has delivered it already. The
servers' replay keeper (mgmt/replay_keeper.py) stores such notifications in its place.
"""

from __future__ import annotations

import re
import time
from collections import Counter
from types import SimpleNamespace
from typing import Any

import libyang
import sysrepo
from lxml import etree

from tests.netconf.conftest import ServerInfo
from tests.netconf.test_replay import iso

NCN = "urn:ietf:params:xml:ns:yang:ietf-netconf-notifications"


def huge_config_change(conn: Any, user: str) -> Any:
    edits = "<edit><operation>merge</operation></edit>" * 80000  # several MB as JSON (targets may be left out)
    with conn.get_ly_ctx() as ly:
        return ly.parse_op_mem("xml", f'<netconf-config-change xmlns="{NCN}"><changed-by><username>{user}'
                                      f"</username><session-id>1</session-id></changed-by>{edits}"
                                      "</netconf-config-change>", libyang.DataType.NOTIF_YANG)


def test_a_session_end_behind_a_huge_config_change_is_replayed_once(sysrepo_instance: object) -> None:
    """A huge config-change starts the second's file; a session-end in the same second is refused by sysrepo,
    delivered live once, and stored through the keeper: a replay from before them gives both once, in order, and
    nothing is counted lost."""
    from singbox_agent.mgmt import notify, replay
    from singbox_agent.mgmt.replay_keeper import ReplayKeeper
    from singbox_agent.netconf.events import BaseEvents

    conn = sysrepo.SysrepoConnection()
    replay.enable_replay(conn)
    keeper = ReplayKeeper(conn)
    sender = conn.start_session("running")
    events = BaseEvents(SimpleNamespace(conn=conn))  # type: ignore[arg-type]
    ending = SimpleNamespace(user="admin", id=7, source_host="127.0.0.1", end_reason="closed", killed_by=None)
    lost = notify.lost_count()
    first = huge_config_change(conn, "first")
    replayed: list[str] = []
    sub_sess = conn.start_session("running")
    try:
        start = time.time()
        time.sleep(1.02 - time.time() % 1)  # all three in one second: the first huge one starts its file
        sender.notification_send_ly(first)
        events.session_end(ending)  # type: ignore[arg-type]
        keeper.close()  # checks what it watched first

        def deliver(kind: str, node: libyang.DNode | None, when: str) -> None:
            if node is None:
                replayed.append(kind)
            else:
                text = node.print_mem("xml", with_siblings=True)
                assert isinstance(text, str)
                user = re.search(r"<username>(\w+)</username>", text)
                replayed.append(f"{node.name()}:{user.group(1) if user else ''}")

        sub = replay.ReplaySubscription(conn, deliver, start, None)
        sub.subscribe(sub_sess, "ietf-netconf-notifications", None)
        sub.ready()
        deadline = time.monotonic() + 30
        while replay.REPLAY_COMPLETE not in replayed and time.monotonic() < deadline:
            time.sleep(0.05)
        expected = ["netconf-config-change:first", "netconf-session-end:admin", replay.REPLAY_COMPLETE]
        assert replayed == expected, replayed
        assert notify.lost_count() == lost
    finally:
        first.free()
        sub_sess.stop()
        events.close()
        sender.stop()
        conn.disconnect()


def test_session_events_behind_a_huge_config_change_are_replayed(netconf_server: ServerInfo) -> None:
    """Through the server: sessions that open and close in the second of a huge config-change (which fills
    sysrepo's file) — every session-start and session-end is replayed exactly once, the config-changes too, and
    lost-notifications stays 0."""
    log_file = netconf_server.state_dir / "netconf.log"
    before = time.time() - 1
    ids: list[str] = []
    with sysrepo.SysrepoConnection() as conn:
        sender = conn.start_session("running")
        try:
            for _ in range(10):  # the session events must fall in the huge event's second: a few tries
                huge = huge_config_change(conn, "huge")
                time.sleep(1.01 - time.time() % 1)  # it starts its second's file
                second = int(time.time())
                try:
                    sender.notification_send_ly(huge)
                finally:
                    huge.free()
                while int(time.time()) == second:
                    with netconf_server.connect() as short:
                        ids.append(short.session_id)
                if "not stored for replay" in log_file.read_text():
                    break
        finally:
            sender.stop()
    assert "not stored for replay" in log_file.read_text()  # else this test proved nothing
    got: Counter[tuple[str, str]] = Counter()
    for _ in range(30):  # the keeper checks a notification a few seconds after it was sent
        with netconf_server.connect() as m:
            m.create_subscription(start_time=iso(before))
            got.clear()
            while True:
                n = m.take_notification(timeout=30)
                assert n is not None, "no replayComplete"
                if "replayComplete" in n.notification_xml:
                    break
                root = etree.fromstring(n.notification_xml.encode())
                when = root.findtext("{urn:ietf:params:xml:ns:netconf:notification:1.0}eventTime") or ""
                for event in root:
                    name = etree.QName(event).localname
                    if name in ("netconf-session-start", "netconf-session-end"):
                        got[(name, event.findtext(f"{{{NCN}}}session-id") or "")] += 1
                    elif name == "netconf-config-change":
                        got[(name, f'{len(event.findall(f"{{{NCN}}}edit"))} {when}')] += 1
        if all(got[(kind, sid)] for sid in ids for kind in ("netconf-session-start", "netconf-session-end")):
            break
        time.sleep(1)
    missing = [(kind, sid) for sid in ids for kind in ("netconf-session-start", "netconf-session-end")
               if not got[(kind, sid)]]
    assert not missing, missing
    assert all(count == 1 for count in got.values()), [k for k, c in got.items() if c != 1]
    assert any(kind == "netconf-config-change" and int(key.split()[0]) == 80000 for kind, key in got), got
    with sysrepo.SysrepoConnection() as conn:
        oper = conn.start_session("operational")
        state = oper.get_data("/vpp-singbox-replay-store:replay-store/state")
        oper.stop()
    assert state["replay-store"]["state"]["lost-notifications"] == 0, state


def replayed_config_changes(m: Any, since: float) -> list[int]:
    """The netconf-config-change events a replay from `since` gives on the session `m`, as their numbers of edits,
    in order (the session then has a subscription)."""
    m.create_subscription(start_time=iso(since))
    changes: list[int] = []
    while True:
        n = m.take_notification(timeout=60)
        assert n is not None, "no replayComplete"
        if "replayComplete" in n.notification_xml:
            return changes
        root = etree.fromstring(n.notification_xml.encode())
        for event in root:
            if etree.QName(event).localname == "netconf-config-change":
                changes.append(len(event.findall(f"{{{NCN}}}edit")))


def lost_notifications() -> int:
    with sysrepo.SysrepoConnection() as conn:
        oper = conn.start_session("operational")
        state = oper.get_data("/vpp-singbox-replay-store:replay-store/state")
        oper.stop()
    return int(state["replay-store"]["state"]["lost-notifications"])


def _endpoints(prefix: str, n: int) -> str:
    return "<client>" + "".join(f"<endpoint><name>{prefix}{i:05d}</name><address>198.18.{i // 250}.{i % 250 + 1}"
                                "</address></endpoint>" for i in range(n)) + "</client>"


def test_two_large_edits_in_one_second_are_both_replayed(netconf_server: ServerInfo) -> None:
    """A large edit's config-change (1,000 endpoints: ~1.3 MB) starts and fills its second's replay file; a second
    large edit right after it (300 endpoints, ~0.4 MB) ends in the same second most of the time, and sysrepo then
    refused its config-change (applied, delivered live, never replayable, counted lost). Now the second write waits
    for the next second: a replay from before them gives every config-change, in order, and none is lost."""
    from tests.netconf.helpers import cfg

    before = time.time() - 1
    with netconf_server.connect() as m:
        for attempt in range(3):  # the old code lost at least one of three second edits almost always
            m.edit_config(target="running", config=cfg(_endpoints(f"a{attempt}-", 1000)))
            m.edit_config(target="running", config=cfg(_endpoints(f"b{attempt}-", 300)))
        changes = replayed_config_changes(m, before)
    large = [c for c in changes if c >= 300]  # (the server's bootstrap made small ones before)
    assert large == [13000, 3900] * 3, changes  # each edit's (13 nodes an endpoint), in order
    assert lost_notifications() == 0

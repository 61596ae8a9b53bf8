"""<create-subscription> (RFC 5277): filters, interleave, NACM, RFC 6470 base events."""

from __future__ import annotations

import time

import pytest
import sysrepo
from lxml import etree
from ncclient.operations.rpc import RPCError

from tests.netconf.conftest import SBX_NS, ServerInfo
from tests.netconf.helpers import cfg, endpoint, running, sbx_filter, error_tag, _send


def test_notifications_with_filter_and_interleave(netconf_server: ServerInfo) -> None:
    with netconf_server.connect() as m:
        m.create_subscription(filter=("subtree", f'<endpoint-down xmlns="{SBX_NS}"/>'))
        with pytest.raises(RPCError) as exc:
            m.create_subscription()
        assert error_tag(exc.value) == "in-use"
        with sysrepo.SysrepoConnection() as conn:
            sess = conn.start_session("running")
            with conn.get_ly_ctx() as ctx:
                mod = ctx.get_module("vpp-singbox")
                notif_names = [n.name() for n in mod.notifications()]
            assert "endpoint-down" in notif_names and "endpoint-up" in notif_names
            _send(sess, "endpoint-up", "up1")
            _send(sess, "endpoint-down", "down1")
        n = m.take_notification(timeout=10)
        assert n is not None and "endpoint-down" in n.notification_xml and "down1" in n.notification_xml
        assert "eventTime" in n.notification_xml
        # interleave: rpcs still work on the subscribed session
        m.get_config("running", filter=sbx_filter())
        assert m.take_notification(timeout=1) is None  # endpoint-up was filtered out


def test_nacm_filters_notifications(netconf_server: ServerInfo) -> None:
    from singbox_agent.mgmt.users import hash_password

    with sysrepo.SysrepoConnection() as conn:
        sess = conn.start_session("running")
        sess.set_item("/ietf-system:system/authentication/user[name='mon']/password", hash_password("mon-pw"))
        sess.apply_changes()
        sess.set_item("/ietf-netconf-acm:nacm/groups/group[name='monitors']/user-name", "mon")
        sess.set_item("/ietf-netconf-acm:nacm/rule-list[name='monitors']/group", "monitors")
        base = "/ietf-netconf-acm:nacm/rule-list[name='monitors']/rule[name='no-down']"
        sess.set_item(base + "/module-name", "vpp-singbox")
        sess.set_item(base + "/notification-name", "endpoint-down")
        sess.set_item(base + "/access-operations", "read")
        sess.set_item(base + "/action", "deny")
        sess.apply_changes()
        with netconf_server.connect(user="mon", password="mon-pw") as m:
            m.create_subscription()
            _send(sess, "endpoint-down", "d1")
            _send(sess, "endpoint-up", "u1")
            n = m.take_notification(timeout=10)
            assert n is not None and "endpoint-up" in n.notification_xml, n.notification_xml if n else None
            assert m.take_notification(timeout=1) is None


def test_base_event_notifications(netconf_server: ServerInfo) -> None:
    with netconf_server.connect() as watcher:
        ncn = "urn:ietf:params:xml:ns:yang:ietf-netconf-notifications"
        watcher.dispatch(etree.fromstring(
            '<create-subscription xmlns="urn:ietf:params:xml:ns:netconf:notification:1.0"><filter type="subtree">'
            f'<netconf-session-start xmlns="{ncn}"/><netconf-session-end xmlns="{ncn}"/>'
            f'<netconf-confirmed-commit xmlns="{ncn}"/></filter></create-subscription>'))
        other = netconf_server.connect()
        other.edit_config(target="candidate", config=cfg(endpoint("ev")))
        other.commit(confirmed=True, timeout="30")
        other.commit()
        victim = netconf_server.connect()
        other.kill_session(victim.session_id)
        other.close_session()
        seen: list[str] = []
        deadline = time.monotonic() + 15
        while len(seen) < 6 and time.monotonic() < deadline:
            n = watcher.take_notification(timeout=2)
            if n is not None:
                seen.append(n.notification_xml)
        kinds = [next(k for k in ("session-start", "session-end", "confirmed-commit") if k in x) for x in seen]
        assert kinds.count("session-start") == 2 and kinds.count("session-end") == 2, seen
        commits = [x for x in seen if "confirmed-commit" in x]
        assert "<confirm-event>start</confirm-event>" in commits[0] and "<timeout>30</timeout>" in commits[0]
        assert "<confirm-event>complete</confirm-event>" in commits[1]
        ends = [x for x in seen if "session-end" in x]
        assert any(f"<killed-by>{other.session_id}</killed-by>" in x and "killed" in x for x in ends), ends
        assert any("<termination-reason>closed</termination-reason>" in x for x in ends), ends


def test_base_event_behind_a_huge_config_change_is_delivered_and_its_replay_loss_counted(
        sysrepo_instance: object) -> None:
    """sysrepo stores notifications in files named by the second and refuses to add to one above 1 MiB: behind a
    config-change of thousands of entries, a netconf-session-end in the same second is delivered live but not stored
    for replay. That loss is counted (replay-store/state/lost-notifications) and logged, and the event is not sent
    twice; one that cannot be sent at all is counted too."""
    from types import SimpleNamespace

    import libyang

    from singbox_agent.mgmt import notify, replay
    from singbox_agent.netconf.events import BaseEvents

    conn = sysrepo.SysrepoConnection()
    replay.enable_replay(conn)
    received: list[str] = []
    sub = conn.start_session("running")
    sub.subscribe_notification("ietf-netconf-notifications", "/ietf-netconf-notifications:netconf-session-end",
                               lambda xpath, notif_type, value, timestamp, priv: received.append(xpath))
    sender = conn.start_session("running")
    events = BaseEvents(SimpleNamespace(conn=conn))  # type: ignore[arg-type]
    ending = SimpleNamespace(user="admin", id=7, source_host="127.0.0.1", end_reason="closed", killed_by=None)
    lost = notify.lost_count()
    huge = None
    try:
        ncn = "urn:ietf:params:xml:ns:yang:ietf-netconf-notifications"
        edits = "<edit><operation>merge</operation></edit>" * 80000  # (targets must exist: left out)
        with conn.get_ly_ctx() as ly:  # parsed first: the event's time (which names its file) is taken when sent
            huge = ly.parse_op_mem("xml", f'<netconf-config-change xmlns="{ncn}"><changed-by><username>admin'
                                          f"</username><session-id>1</session-id></changed-by>{edits}"
                                          "</netconf-config-change>", libyang.DataType.NOTIF_YANG)
        time.sleep(1.02 - time.time() % 1)  # both in the same second: the huge one starts its file
        sender.notification_send_ly(huge)
        events.session_end(ending)  # type: ignore[arg-type]
        deadline = time.monotonic() + 30
        while not received and time.monotonic() < deadline:
            time.sleep(0.05)
        assert received == ["/ietf-netconf-notifications:netconf-session-end"]
        assert notify.lost_count() == lost + 1  # not in the replay store
        events._send("netconf-no-such-event", {})  # cannot be sent at all: counted and logged
        assert notify.lost_count() == lost + 2
    finally:
        if huge is not None:
            huge.free()
        events.close()
        sender.stop()
        sub.stop()
        conn.disconnect()

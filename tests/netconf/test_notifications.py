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

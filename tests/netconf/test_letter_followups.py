"""What the NETCONF letter audit (session 10) left open, each test failing on the code before its fix: RFC 6022's
dropped-sessions and kill-session, RFC 8341's denial counters, and the access-denied of a data write."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import pytest
import sysrepo
from lxml import etree
from ncclient.operations.rpc import RPCError

from tests.netconf.conftest import ServerInfo
from tests.netconf.helpers import NC, _send, cfg, endpoint

MON = "urn:ietf:params:xml:ns:yang:ietf-netconf-monitoring"


def _dropped_sessions(m: object) -> int:
    data = m.get(filter=("subtree", f'<netconf-state xmlns="{MON}"><statistics><dropped-sessions/></statistics>'  # type: ignore[attr-defined]
                                    "</netconf-state>")).data_xml
    found = re.search(r"<dropped-sessions>(\d+)</dropped-sessions>", data)
    assert found is not None, data
    return int(found.group(1))


def test_a_killed_session_is_not_a_dropped_one(netconf_server: ServerInfo) -> None:
    """RFC 6022 dropped-sessions: "This counter is not incremented when a session is properly closed by a
    <close-session> operation, or killed by a <kill-session> operation." A kill counted one."""
    with netconf_server.connect() as admin:
        before = _dropped_sessions(admin)
        victim = netconf_server.connect()
        admin.kill_session(victim.session_id)
        assert _dropped_sessions(admin) == before
        netconf_server.connect().close_session()
        assert _dropped_sessions(admin) == before


SYS = "urn:ietf:params:xml:ns:yang:ietf-system"


def _bob(admin: object) -> None:
    """A user in no NACM group: RFC 8341's defaults (read permit, write deny), login hashes hidden."""
    admin.edit_config(target="running", config=(  # type: ignore[attr-defined]
        f'<config xmlns="{NC}"><system xmlns="{SYS}"><authentication><user><name>bob</name>'
        "<password>$0$bob-pw</password></user></authentication></system></config>"))


def _denial(exc: RPCError) -> tuple[str, str, str | None]:
    root = ET.fromstring(etree.tostring(exc.xml).decode())
    path = root.find(f"{{{NC}}}error-path")
    return exc.type, exc.tag, (path.text or "").strip() if path is not None else None


def test_a_refused_write_is_protocol_access_denied_naming_the_node(netconf_server: ServerInfo) -> None:
    """RFC 8341 3.4.5 (and netopeer2): a write NACM refuses is error-type protocol, error-tag access-denied, with
    the refused node as error-path; it was application with no path. A path that names a node the user may not read
    (RFC 8341 3.4.5: nothing revealed) is left out; one the request itself created is its own."""
    with netconf_server.connect() as admin:
        admin.edit_config(target="running", config=cfg(endpoint("e1")))
        _bob(admin)
        with netconf_server.connect(user="bob", password="bob-pw") as bob:
            with pytest.raises(RPCError) as new:
                bob.edit_config(target="running", config=cfg(endpoint("n2")))
            with pytest.raises(RPCError) as changed:
                bob.edit_config(target="running", config=cfg(
                    "<client><endpoint><name>e1</name><address>198.18.0.7</address></endpoint></client>"))
            with pytest.raises(RPCError) as hidden:
                bob.edit_config(target="running", config=(
                    f'<config xmlns="{NC}"><system xmlns="{SYS}" xmlns:nc="{NC}"><authentication><user>'
                    '<name>admin</name><password nc:operation="remove"/></user></authentication></system></config>'))
    assert _denial(new.value) == ("protocol", "access-denied",
                                  "/vpp-singbox:singbox/client/endpoint[name='n2']")
    assert _denial(changed.value) == ("protocol", "access-denied",
                                      "/vpp-singbox:singbox/client/endpoint[name='e1']/address")
    assert _denial(hidden.value) == ("protocol", "access-denied", None)
    assert "password" not in etree.tostring(hidden.value.xml).decode()


ACM = "urn:ietf:params:xml:ns:yang:ietf-netconf-acm"


def _acm_counter(m: object, leaf: str) -> int:
    data = m.get(filter=("subtree", f'<nacm xmlns="{ACM}"><{leaf}/></nacm>')).data_xml  # type: ignore[attr-defined]
    found = re.search(rf"<{leaf}>(\d+)</{leaf}>", data)
    assert found is not None, data
    return int(found.group(1))


def test_a_withheld_notification_is_counted(netconf_server: ServerInfo) -> None:
    """RFC 8341 denied-notifications: "Number of times since the server last restarted that a notification was
    dropped for a subscription because access to the event type was denied" — the leaf was absent."""
    with netconf_server.connect() as admin:
        admin.edit_config(target="running", config=(
            f'<config xmlns="{NC}"><system xmlns="{SYS}"><authentication><user><name>mon</name>'
            "<password>$0$mon-pw</password></user></authentication></system>"
            f'<nacm xmlns="{ACM}"><groups><group><name>monitors</name><user-name>mon</user-name></group></groups>'
            "<rule-list><name>monitors</name><group>monitors</group><rule><name>no-down</name>"
            "<module-name>vpp-singbox</module-name><notification-name>endpoint-down</notification-name>"
            "<access-operations>read</access-operations><action>deny</action></rule></rule-list></nacm></config>"))
        with netconf_server.connect(user="mon", password="mon-pw") as mon, sysrepo.SysrepoConnection() as conn:
            mon.create_subscription()
            before = _acm_counter(admin, "denied-notifications")
            sess = conn.start_session("running")
            _send(sess, "endpoint-down", "d1")
            _send(sess, "endpoint-up", "u1")
            n = mon.take_notification(timeout=30)
            assert n is not None and "endpoint-up" in n.notification_xml
            # delivered in order: endpoint-down was withheld (and counted) before endpoint-up came
            assert _acm_counter(admin, "denied-notifications") == before + 1

"""<get> (RFC 6241 §7.7: "Retrieve running configuration and device state information") shows running's
configuration of every module: sysrepo's operational datastore holds a module's configuration only while something
subscribes to its changes, so a hostname set by edit-config was in <get-config> and missing from <get>. get-data of
<operational> (RFC 8526, RFC 8342 §5.3: the values in use) stays what sysrepo holds. Each test fails on the code
before `mgmt.combined`."""

from __future__ import annotations

import re

import sysrepo
from ncclient.xml_ import to_ele

from tests.netconf.conftest import ServerInfo
from tests.netconf.helpers import NC, cfg, endpoint

SYS = "urn:ietf:params:xml:ns:yang:ietf-system"
NMDA = "urn:ietf:params:xml:ns:yang:ietf-netconf-nmda"
NCS = "urn:vpp-singbox:yang:vpp-singbox-netconf-server"
WD = "urn:ietf:params:xml:ns:yang:ietf-netconf-with-defaults"


def _hostname(m: object, name: str) -> None:
    m.edit_config(target="running", config=(  # type: ignore[attr-defined]
        f'<config xmlns="{NC}"><system xmlns="{SYS}"><hostname>{name}</hostname></system></config>'))


def _get_data_operational(m: object, inner: str) -> str:
    reply = m.dispatch(to_ele(  # type: ignore[attr-defined]
        f'<get-data xmlns="{NMDA}" xmlns:ds="urn:ietf:params:xml:ns:yang:ietf-datastores">'
        f"<datastore>ds:operational</datastore><subtree-filter>{inner}</subtree-filter></get-data>"))
    return str(reply.xml)


def test_get_shows_running_config_of_modules_nobody_subscribes_to(netconf_server: ServerInfo) -> None:
    with netconf_server.connect() as m:
        _hostname(m, "box1")
        assert "<hostname>box1</hostname>" in m.get_config("running", filter=(
            "subtree", f'<system xmlns="{SYS}"><hostname/></system>')).data_xml
        # no filter, a subtree filter, an XPath filter
        assert "<hostname>box1</hostname>" in m.get().data_xml
        assert "<hostname>box1</hostname>" in m.get(filter=(
            "subtree", f'<system xmlns="{SYS}"><hostname/></system>')).data_xml
        assert "<hostname>box1</hostname>" in m.get(filter=(
            "xpath", ({"s": SYS}, "/s:system/s:hostname"))).data_xml
        # state-only selections are as before
        assert "<hostname>" not in m.get(filter=(
            "subtree", '<netconf-state xmlns="urn:ietf:params:xml:ns:yang:ietf-netconf-monitoring"><statistics/>'
            "</netconf-state>")).data_xml
        # with-defaults: the server follows its own settings passively (no change subscriber), so their defaults
        # were missing from report-all
        limits = ("subtree", f'<netconf-server xmlns="{NCS}"><limits><max-xml-depth/></limits></netconf-server>')
        assert "<max-xml-depth>64</max-xml-depth>" in m.get(filter=limits, with_defaults="report-all").data_xml
        assert "max-xml-depth" not in m.get(filter=limits).data_xml  # basic mode explicit: not set, not shown
        tagged = m.get(filter=limits, with_defaults="report-all-tagged").data_xml
        assert re.search(r'<max-xml-depth [^>]*default="true"[^>]*>64<', tagged), tagged
        # NMDA's <operational> is what sysrepo holds: the configuration in use (nothing applies the hostname)
        assert "box1" not in _get_data_operational(m, f'<system xmlns="{SYS}"><hostname/></system>')


def _applied(event: str, req_id: int, changes: object, private_data: object) -> None:
    """A change subscriber that accepts everything: its module's configuration is in operational."""


def test_running_wins_and_nothing_twice(netconf_server: ServerInfo) -> None:
    """Where operational holds a configuration node too (a module with a change subscriber; a value pushed into
    operational), <get> has it once, with running's value; get-data of <operational> keeps the pushed one."""
    with netconf_server.connect() as m, sysrepo.SysrepoConnection() as conn:
        m.edit_config(target="running", config=cfg(endpoint("e1")))
        _hostname(m, "box1")
        sess = conn.start_session("running")
        sess.subscribe_module_change("vpp-singbox", None, _applied)  # vpp-singbox's config is in use
        oper = conn.start_session("operational")
        oper.set_item("/ietf-system:system/hostname", "pushed")
        oper.apply_changes()
        data = m.get().data_xml
        assert data.count("<name>e1</name>") == 1, data
        assert data.count("<hostname>") == 1 and "<hostname>box1</hostname>" in data, data
        assert "pushed" in _get_data_operational(m, f'<system xmlns="{SYS}"><hostname/></system>')


def test_nacm_applies_to_the_configuration_get_adds(netconf_server: ServerInfo) -> None:
    """A user in no NACM group (read permit by default, login hashes hidden by protect-user-secrets) sees the
    hostname but no password hash, and a filter on a hidden node selects nothing (RFC 8341 §3.4.5)."""
    with netconf_server.connect() as m:
        _hostname(m, "box1")
        m.edit_config(target="running", config=(
            f'<config xmlns="{NC}"><system xmlns="{SYS}"><authentication><user><name>bob</name>'
            "<password>$0$bob-pw</password></user></authentication></system></config>"))
        assert "$6$" in m.get(filter=("subtree", f'<system xmlns="{SYS}"/>')).data_xml  # admin reads them
        with netconf_server.connect(user="bob", password="bob-pw") as bob:
            data = bob.get().data_xml
            assert "<hostname>box1</hostname>" in data and "<name>admin</name>" in data, data
            assert "<password>" not in data and "$6$" not in data, data
            probe = bob.get(filter=("xpath", (
                {"s": SYS}, "/s:system/s:authentication/s:user[starts-with(s:password, '$')]"))).data_xml
            assert "<name>" not in probe, probe

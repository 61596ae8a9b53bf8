"""<get-schema> and ietf-netconf-monitoring (RFC 6022), ietf-yang-library."""

from __future__ import annotations

import pytest
from lxml import etree
from ncclient.operations.rpc import RPCError

from tests.netconf.conftest import ServerInfo
from tests.netconf.helpers import error_tag


def test_get_schema_monitoring_yang_library(netconf_server: ServerInfo) -> None:
    with netconf_server.connect() as m, netconf_server.connect() as other:
        text = m.get_schema("vpp-singbox").data
        assert text.startswith("module vpp-singbox {")
        yin = m.dispatch(etree.fromstring(
            '<get-schema xmlns="urn:ietf:params:xml:ns:yang:ietf-netconf-monitoring"><identifier>vpp-singbox'
            "</identifier><format>yin</format></get-schema>"))
        assert 'module name="vpp-singbox"' in yin.xml
        with pytest.raises(RPCError) as exc:
            m.get_schema("no-such-module")
        assert error_tag(exc.value) == "invalid-value"
        state = m.get(filter=("subtree", '<netconf-state xmlns="urn:ietf:params:xml:ns:yang:ietf-netconf-monitoring"/>'))
        xml = state.data_xml
        assert f"<session-id>{other.session_id}</session-id>" in xml
        assert "<identifier>vpp-singbox</identifier>" in xml and "<in-rpcs>" in xml
        lib = m.get(filter=("subtree", '<yang-library xmlns="urn:ietf:params:xml:ns:yang:ietf-yang-library"/>'))
        assert "<name>vpp-singbox</name>" in lib.data_xml

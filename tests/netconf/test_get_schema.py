"""<get-schema> and ietf-netconf-monitoring (RFC 6022), ietf-yang-library."""

from __future__ import annotations

import pytest
from lxml import etree
from ncclient.operations.rpc import RPCError

from tests.netconf.conftest import SBX_NS, ServerInfo
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


def test_errors_do_not_echo_a_huge_input(netconf_server: ServerInfo) -> None:
    """get-schema's error quoted the identifier whole (100 KB back for 100 KB in); errors quote at most a bounded
    part of what a client sent, libyang's own (an invalid 100 KB value) too, and say how long it was."""
    huge = "m" * 100_000
    ncm = "urn:ietf:params:xml:ns:yang:ietf-netconf-monitoring"
    with netconf_server.connect() as m:
        for inner in (f"<identifier>{huge}</identifier>",
                      f"<identifier>vpp-singbox</identifier><version>{huge}</version>",
                      f"<identifier>vpp-singbox</identifier><format>{huge}</format>"):
            with pytest.raises(RPCError) as exc:
                m.dispatch(etree.fromstring(f'<get-schema xmlns="{ncm}">{inner}</get-schema>'))
            assert error_tag(exc.value) == "invalid-value"
            size = len(etree.tostring(exc.value.xml))
            assert size < 2000 and "100000 characters" in str(exc.value.message), size
        config = (f'<config><singbox xmlns="{SBX_NS}"><client><endpoint><name>e</name><address>198.18.0.1</address>'
                  f"<port>{'9' * 100_000}</port></endpoint></client></singbox></config>")
        with pytest.raises(RPCError) as exc:
            m.edit_config(target="running", config=config)
        assert len(etree.tostring(exc.value.xml)) < 4000, etree.tostring(exc.value.xml)[:300]
        assert m.get_schema("vpp-singbox").data.startswith("module vpp-singbox {")

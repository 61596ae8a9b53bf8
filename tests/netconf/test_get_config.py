"""<get-config> (RFC 6241 7.1): subtree and XPath filters, with-defaults (RFC 6243)."""

from __future__ import annotations

from lxml import etree

from tests.netconf.conftest import SBX_NS, ServerInfo

NC = "urn:ietf:params:xml:ns:netconf:base:1.0"
from tests.netconf.helpers import cfg, endpoint, running, sbx_filter


def test_get_config_filters_and_with_defaults(netconf_server: ServerInfo) -> None:
    with netconf_server.connect() as m:
        m.edit_config(target="running", config=cfg(endpoint("e1", "<port>1080</port>") + endpoint("e2")))
        # subtree: content match selects one entry; selection node picks a leaf
        data = m.get_config("running", filter=sbx_filter("<client><endpoint><name>e2</name></endpoint></client>"))
        xml = data.data_xml
        assert "<name>e2</name>" in xml and "<name>e1</name>" not in xml
        data = m.get_config("running", filter=sbx_filter("<client><endpoint><name>e1</name><address/></endpoint>"
                                                         "</client>"))
        assert "<address>198.18.0.1</address>" in data.data_xml
        # xpath filter with a namespace prefix declared in the message
        reply = m.dispatch(etree.fromstring(
            f'<get-config xmlns="{NC}"><source><running/></source><filter xmlns:s="{SBX_NS}" type="xpath" '
            f'select="/s:singbox/s:client/s:endpoint[s:name=\'e1\']"/></get-config>'))
        assert "<name>e1</name>" in reply.xml and "<name>e2</name>" not in reply.xml
        # with-defaults: e1's port was set explicitly (=default), e2's is a default
        explicit = m.get_config("running", filter=sbx_filter()).data_xml
        assert explicit.count("<port>1080</port>") == 1
        all_ = m.get_config("running", filter=sbx_filter(), with_defaults="report-all").data_xml
        assert all_.count("<port>1080</port>") == 2
        trim = m.get_config("running", filter=sbx_filter(), with_defaults="trim").data_xml
        assert "<port>1080</port>" not in trim
        tagged = m.get_config("running", filter=sbx_filter(), with_defaults="report-all-tagged").data_xml
        assert 'default="true"' in tagged and "urn:ietf:params:xml:ns:netconf:default:1.0" in tagged
        # empty filter selects nothing; unknown namespace selects nothing
        empty = m.dispatch(etree.fromstring(f'<get-config xmlns="{NC}"><source><running/></source>'
                                            '<filter type="subtree"/></get-config>'))
        assert "endpoint" not in empty.xml
        assert "endpoint" not in m.get_config("running", filter=("subtree", '<x xmlns="urn:nothing"/>')).data_xml

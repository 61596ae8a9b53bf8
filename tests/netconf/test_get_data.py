"""<get-data> / <edit-data> (RFC 8526)."""

from __future__ import annotations

import pytest
from lxml import etree
from ncclient.operations.rpc import RPCError

from tests.netconf.conftest import SBX_NS, ServerInfo

NMDA = "urn:ietf:params:xml:ns:yang:ietf-netconf-nmda"
from tests.netconf.helpers import endpoint, running, endpoints


def test_nmda_get_data_edit_data(netconf_server: ServerInfo) -> None:
    with netconf_server.connect() as m:
        m.dispatch(etree.fromstring(
            f'<edit-data xmlns="{NMDA}" xmlns:ds="urn:ietf:params:xml:ns:yang:ietf-datastores">'
            f'<datastore>ds:candidate</datastore><config><singbox xmlns="{SBX_NS}">{endpoint("n1")}</singbox>'
            "</config></edit-data>"))
        reply = m.dispatch(etree.fromstring(
            f'<get-data xmlns="{NMDA}" xmlns:ds="urn:ietf:params:xml:ns:yang:ietf-datastores">'
            f'<datastore>ds:candidate</datastore><subtree-filter><singbox xmlns="{SBX_NS}"/></subtree-filter>'
            "</get-data>"))
        assert "<name>n1</name>" in reply.xml
        assert endpoints() == []
        m.commit()
        reply = m.dispatch(etree.fromstring(
            f'<get-data xmlns="{NMDA}" xmlns:ds="urn:ietf:params:xml:ns:yang:ietf-datastores">'
            f'<datastore>ds:running</datastore><xpath-filter xmlns:s="{SBX_NS}">/s:singbox/s:client</xpath-filter>'
            "<with-defaults>report-all</with-defaults></get-data>"))
        assert "<name>n1</name>" in reply.xml and "<port>1080</port>" in reply.xml
        reply = m.dispatch(etree.fromstring(
            f'<get-data xmlns="{NMDA}" xmlns:ds="urn:ietf:params:xml:ns:yang:ietf-datastores">'
            "<datastore>ds:operational</datastore><subtree-filter><netconf-state "
            'xmlns="urn:ietf:params:xml:ns:yang:ietf-netconf-monitoring"><sessions/></netconf-state>'
            "</subtree-filter></get-data>"))
        assert "<session-id>" in reply.xml
        with pytest.raises(RPCError):
            m.dispatch(etree.fromstring(
                f'<edit-data xmlns="{NMDA}" xmlns:ds="urn:ietf:params:xml:ns:yang:ietf-datastores">'
                f'<datastore>ds:operational</datastore><config/></edit-data>'))

"""Edit content made of empty elements: an operation on an empty container must act, not vanish.

libyang-python's anyxml value() dropped empty containers when it printed the <config> content, so
`<client nc:operation="delete"/>` reached sysrepo as an empty edit and the server answered <ok/> having done nothing.
"""

from __future__ import annotations

import pytest
from ncclient.operations.rpc import RPCError

from tests.netconf.conftest import ServerInfo
from tests.netconf.helpers import cfg, endpoint, endpoints, running


def test_delete_and_remove_of_an_empty_container(netconf_server: ServerInfo) -> None:
    with netconf_server.connect() as m:
        m.edit_config(target="running", config=cfg(endpoint("e1") + "<client><session-timeout>500</session-timeout>"
                                                   "</client>"))
        m.edit_config(target="running", config=cfg('<client nc:operation="delete"/>'))
        assert endpoints() == []
        assert "session-timeout" not in running().get("singbox", {}).get("client", {})
        m.edit_config(target="running", config=cfg(endpoint("e2")))
        m.edit_config(target="running", config=cfg('<client nc:operation="remove"/>'))
        assert endpoints() == []


def test_empty_container_with_create_and_replace(netconf_server: ServerInfo) -> None:
    with netconf_server.connect() as m:
        m.edit_config(target="running", config=cfg(endpoint("e1")))
        m.edit_config(target="running", config=cfg('<client nc:operation="replace"/>'))  # replace with nothing
        assert endpoints() == []
        m.edit_config(target="candidate", config=cfg(endpoint("c1")))
        m.edit_config(target="candidate", config=cfg('<client nc:operation="delete"/>'))
        assert "<name>c1</name>" not in m.get_config("candidate").data_xml  # not bare "c1": hashes are random
        with pytest.raises(RPCError):  # an empty container carrying an unknown element is still refused
            m.edit_config(target="running", config=cfg("<client><nope/></client>"))


def test_empty_leaf_delete_and_remove(netconf_server: ServerInfo) -> None:
    """`<port nc:operation="delete"/>` is how clients delete a leaf; its empty value is no uint16."""
    with netconf_server.connect() as m:
        m.edit_config(target="running", config=cfg(endpoint("p1", "<port>1080</port>")))
        m.edit_config(target="running", config=cfg(endpoint("p1", '<port nc:operation="delete"/>')))
        assert "port" not in next(iter(running()["singbox"]["client"]["endpoint"]))
        with pytest.raises(RPCError) as exc:  # nothing to delete any more
            m.edit_config(target="running", config=cfg(endpoint("p1", '<port nc:operation="delete"/>')))
        assert exc.value.tag == "data-missing", exc.value
        m.edit_config(target="running", config=cfg(endpoint("p1", '<port nc:operation="remove"></port>')))
        m.edit_config(target="running", config=cfg('<log-level>debug</log-level>'))
        m.edit_config(target="running", config=cfg('<log-level nc:operation="remove"/>'))
        assert "log-level" not in running().get("singbox", {})
        for bad in ('<port nc:operation="merge"/>', '<port/>', '<port nc:operation="delete">x</port>',
                    '<bogus nc:operation="delete"/>'):  # only empty deletes are let through
            with pytest.raises(RPCError) as exc:
                m.edit_config(target="running", config=cfg(endpoint("p1", '<port nc:operation="delete"/>' + bad)))
            assert exc.value.tag in ("invalid-value", "unknown-element"), (bad, exc.value)


def test_duplicate_nodes_in_one_edit_are_refused(netconf_server: ServerInfo) -> None:
    """What the schema forbids is not 'last value wins': nothing is applied."""
    with netconf_server.connect() as m:
        m.edit_config(target="running", config=cfg("<log-level>info</log-level>"))
        for content, where in (("<log-level>debug</log-level><log-level>error</log-level>", "log-level"),
                               (endpoint("d1") + endpoint("d1", "<port>80</port>"), "endpoint[name='d1']"),
                               ("<client><endpoint><name>d2</name><address>198.18.0.1</address><port>1</port>"
                                "<port>2</port></endpoint></client>", "port")):
            with pytest.raises(RPCError) as exc:
                m.edit_config(target="running", config=cfg(content))
            assert exc.value.tag == "bad-element", (content, exc.value)
            assert where in (exc.value.path or ""), exc.value.path
        assert running()["singbox"].get("log-level") == "info"
        assert endpoints() == []


def test_get_data_with_both_filters_is_an_error(netconf_server: ServerInfo) -> None:
    """libyang refuses both cases of get-data's filter-spec choice when it validates the rpc (a guard: the report
    saw data come back)."""
    from lxml import etree

    with netconf_server.connect() as m:
        with pytest.raises(RPCError) as exc:
            m.dispatch(etree.fromstring(
                '<get-data xmlns="urn:ietf:params:xml:ns:yang:ietf-netconf-nmda" '
                'xmlns:ds="urn:ietf:params:xml:ns:yang:ietf-datastores"><datastore>ds:running</datastore>'
                '<subtree-filter><singbox xmlns="urn:vpp-singbox:yang:vpp-singbox"/></subtree-filter>'
                "<xpath-filter>/vpp-singbox:singbox</xpath-filter></get-data>"))
        assert exc.value.tag in ("bad-element", "invalid-value"), exc.value

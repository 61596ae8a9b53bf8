"""Edit content made of empty elements: an operation on an empty container must act, not vanish.

libyang-python's anyxml value() dropped empty containers when it printed the <config> content, so
`<client nc:operation="delete"/>` reached sysrepo as an empty edit and the server answered <ok/> having done nothing.
"""

from __future__ import annotations

import pytest
from ncclient.operations.rpc import RPCError

from tests.netconf.conftest import ServerInfo
from tests.netconf.test_operations import cfg, endpoint, endpoints, running


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

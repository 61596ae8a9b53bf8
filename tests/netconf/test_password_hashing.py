"""RFC 7317 `$0$` passwords over NETCONF that cannot be hashed: the edit fails with invalid-value and the reason,
and nothing is stored — before, the hasher logged its failure and the clear text was stored as written."""

from __future__ import annotations

import pytest
from ncclient.operations.rpc import RPCError

from tests.netconf.conftest import ServerInfo

NC = "urn:ietf:params:xml:ns:netconf:base:1.0"
SYS = "urn:ietf:params:xml:ns:yang:ietf-system"
NCS = "urn:ietf:params:xml:ns:yang:ietf-netconf-server"


def system_user(name: str, password: str) -> str:
    return (f'<config xmlns="{NC}"><system xmlns="{SYS}"><authentication><user><name>{name}</name>'
            f"<password>{password}</password></user></authentication></system></config>")


def endpoint_user(name: str, password: str) -> str:
    return (f'<config xmlns="{NC}"><netconf-server xmlns="{NCS}"><listen><endpoints><endpoint><name>default</name>'
            f"<ssh><ssh-server-parameters><client-authentication><users><user><name>{name}</name><password>"
            f"<hashed-password>{password}</hashed-password></password></user></users></client-authentication>"
            "</ssh-server-parameters></ssh></endpoint></endpoints></listen></netconf-server></config>")


@pytest.mark.parametrize("clear", ["x" * 512, "é" * 300, "y" * 5000])
def test_an_unhashable_clear_text_password_is_refused(netconf_server: ServerInfo, clear: str) -> None:
    with netconf_server.connect() as m:
        before = m.get_config("running").data_xml
        for config in (system_user("carol", "$0$" + clear), endpoint_user("operator", "$0$" + clear)):
            with pytest.raises(RPCError) as refused:
                m.edit_config(target="running", config=config)
            assert refused.value.tag == "invalid-value", refused.value.xml
            assert "at most 511 bytes" in (refused.value.message or "")
            assert clear not in refused.value.xml
        after = m.get_config("running").data_xml
        assert after == before
        assert clear not in after
        # the longest password libxcrypt takes is still fine
        m.edit_config(target="running", config=system_user("carol", "$0$" + "z" * 511))
        stored = m.get_config("running").data_xml
        assert "z" * 511 not in stored and "carol" in stored


from __future__ import annotations

from tests.netconf.conftest import SBX_NS, ServerInfo


def test_hello_get_config_edit(netconf_server: ServerInfo) -> None:
    with netconf_server.connect() as m:
        assert ":candidate" in " ".join(m.server_capabilities)
        cfg = f'<config><singbox xmlns="{SBX_NS}"><log-level>debug</log-level></singbox></config>'
        m.edit_config(target="running", config=cfg)
        reply = m.get_config(source="running", filter=("subtree", f'<singbox xmlns="{SBX_NS}"/>'))
        assert "<log-level>debug</log-level>" in reply.data_xml, reply.data_xml

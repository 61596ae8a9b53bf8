"""<copy-config>, <delete-config>, <validate> (RFC 6241 7.3, 7.4, 8.6)."""

from __future__ import annotations

import pytest
from lxml import etree
from ncclient.operations.rpc import RPCError

from tests.netconf.conftest import ServerInfo
from tests.netconf.helpers import cfg, endpoint, running, sbx_filter, error_tag


def test_copy_delete_validate(netconf_server: ServerInfo) -> None:
    with netconf_server.connect() as m:
        m.edit_config(target="running", config=cfg(endpoint("s1")))
        m.copy_config(source="running", target="startup")
        assert "s1" in m.get_config("startup", filter=sbx_filter()).data_xml
        m.delete_config(target="startup")
        assert "s1" not in m.get_config("startup", filter=sbx_filter()).data_xml
        with pytest.raises(RPCError) as exc:
            m.delete_config(target="running")  # not even in ietf-netconf's schema for delete-config
        assert error_tag(exc.value) in ("operation-failed", "unknown-element")
        with pytest.raises(RPCError) as exc:
            m.copy_config(source="running", target="running")
        assert error_tag(exc.value) == "invalid-value"
        m.validate(source="running")
        m.validate(source=etree.fromstring(cfg(endpoint("v1"))))
        with pytest.raises(RPCError) as exc:
            m.validate(source=etree.fromstring(cfg("<client><default-endpoint>nope</default-endpoint></client>")))
        assert error_tag(exc.value) == "data-missing"
        m.copy_config(source="running", target="candidate")
        m.discard_changes()

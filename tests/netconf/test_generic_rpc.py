"""Other RPCs and actions through sysrepo: no output answers <ok/>, a subscriber's error passes through."""

from __future__ import annotations

from typing import Any

import pytest
import sysrepo
from lxml import etree
from ncclient.operations.rpc import RPCError

from tests.netconf.conftest import SBX_NS, ServerInfo
from tests.netconf.helpers import running


def test_rpc_without_output_answers_ok_and_rpc_errors_pass_through(netconf_server: ServerInfo) -> None:
    """Operations the agent serves: no output → <ok/>; the subscriber's error text → rpc-error."""
    calls: list[str] = []

    def clear(xpath: str, input_params: dict[str, Any], event: str, private_data: Any) -> None:
        calls.append(xpath)

    def disconnect(xpath: str, input_params: dict[str, Any], event: str, private_data: Any) -> None:
        raise sysrepo.SysrepoNotFoundError("no session 42")

    with sysrepo.SysrepoConnection() as conn:
        sess = conn.start_session("running")
        sess.subscribe_rpc_call("/vpp-singbox:clear-statistics", clear)
        sess.subscribe_rpc_call("/vpp-singbox:disconnect-session", disconnect)
        with netconf_server.connect() as m:
            reply = m.dispatch(etree.fromstring(f'<clear-statistics xmlns="{SBX_NS}"/>'))
            assert reply.ok and "<ok/>" in reply.xml
            assert calls == ["/vpp-singbox:clear-statistics"]
            with pytest.raises(RPCError) as failed:
                m.dispatch(etree.fromstring(f'<disconnect-session xmlns="{SBX_NS}"><id>42</id></disconnect-session>'))
            assert "no session 42" in str(failed.value)
        sess.stop()

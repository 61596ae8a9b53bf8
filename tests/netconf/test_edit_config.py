"""<edit-config> (RFC 6241 7.2): operations, test-option, large edits, an agent's rejection."""

from __future__ import annotations

import time
from typing import Any

import pytest
import sysrepo
from ncclient.operations.rpc import RPCError

from tests.netconf.conftest import ServerInfo
from tests.netconf.helpers import cfg, endpoint, running, endpoints, sbx_filter, error_tag


def test_edit_config_operations(netconf_server: ServerInfo) -> None:
    with netconf_server.connect() as m:
        m.edit_config(target="running", config=cfg(endpoint("e1") + "<log-level>debug</log-level>"))
        assert endpoints() == ["e1"]
        # create on existing -> data-exists, nothing changed
        with pytest.raises(RPCError) as exc:
            m.edit_config(target="running", config=cfg(endpoint("e1", op="create")))
        assert error_tag(exc.value) == "data-exists"
        m.edit_config(target="running", config=cfg(endpoint("e2", op="create")))
        assert endpoints() == ["e1", "e2"]
        # delete missing -> data-missing; remove missing -> ok
        with pytest.raises(RPCError) as exc:
            m.edit_config(target="running", config=cfg(endpoint("e9", op="delete")))
        assert error_tag(exc.value) == "data-missing"
        m.edit_config(target="running", config=cfg(endpoint("e9", op="remove")))
        m.edit_config(target="running", config=cfg(endpoint("e2", op="delete")))
        assert endpoints() == ["e1"]
        # replace on a list entry drops leaves not given
        m.edit_config(target="running", config=cfg(endpoint("e1", "<port>1081</port>")))
        m.edit_config(target="running", config=cfg(
            '<client><endpoint nc:operation="replace"><name>e1</name><address>198.18.0.2</address></endpoint></client>'))
        ep = running()["singbox"]["client"]["endpoint"]
        (e1,) = list(ep)
        assert e1["address"] == "198.18.0.2" and e1.get("port", 1080) == 1080
        # default-operation none: only explicit operations act
        m.edit_config(target="running", default_operation="none", config=cfg(
            '<log-level>error</log-level>' + endpoint("e3", op="create")))
        assert endpoints() == ["e1", "e3"]
        assert running()["singbox"]["log-level"] == "debug"
        # default-operation replace on the module replaces its whole tree
        m.edit_config(target="running", default_operation="replace", config=cfg(endpoint("e4")))
        assert endpoints() == ["e4"]
        assert "log-level" not in running()["singbox"] or running()["singbox"]["log-level"] == "info"


def test_test_option_and_error_option(netconf_server: ServerInfo) -> None:
    with netconf_server.connect() as m:
        m.edit_config(target="running", config=cfg(endpoint("e1")))
        m.edit_config(target="running", test_option="test-only", config=cfg(endpoint("t1")))
        assert endpoints() == ["e1"]
        m.edit_config(target="running", test_option="set", config=cfg(endpoint("t2")))
        assert endpoints() == ["e1", "t2"]
        # test-only reports validation errors too
        with pytest.raises(RPCError) as exc:
            m.edit_config(target="running", test_option="test-only",
                          config=cfg("<client><default-endpoint>nope</default-endpoint></client>"))
        assert error_tag(exc.value) == "data-missing"
        # rollback-on-error: one bad entry leaves nothing of the good ones
        for option in ("rollback-on-error", "stop-on-error", "continue-on-error"):
            with pytest.raises(RPCError):
                m.edit_config(target="running", error_option=option, config=cfg(
                    endpoint("ok1") + "<client><endpoint><name>bad</name><address>198.18.0.1</address>"
                    "<port>0</port></endpoint></client>"))
            assert endpoints() == ["e1", "t2"]


def test_agent_rejection_message_reaches_client(netconf_server: ServerInfo) -> None:
    def reject(event: str, req_id: int, changes: Any, private_data: Any) -> None:
        if event == "change":
            raise sysrepo.SysrepoValidationFailedError("endpoint e-bad: VPP refused the upstream (address in use)")

    with sysrepo.SysrepoConnection() as conn:
        sess = conn.start_session("running")
        sess.subscribe_module_change("vpp-singbox", "/vpp-singbox:singbox", reject)
        with netconf_server.connect() as m:
            with pytest.raises(RPCError) as exc:
                m.edit_config(target="running", config=cfg(endpoint("e-bad")))
            assert "VPP refused the upstream (address in use)" in str(exc.value.message)
            assert error_tag(exc.value) == "operation-failed"
        sess.stop()
    assert endpoints() == []


def test_subscriber_slower_than_sysrepos_default_timeout(netconf_server: ServerInfo) -> None:
    """A subscriber taking longer than sysrepo's 5 s default (singbox-agent applying 10,000 endpoints on a busy
    machine) gets the server's longer timeout: the edit succeeds, it is not refused as "processing timed out"."""
    seen: list[str] = []

    def slow(sess: Any, event: str, req_id: int, private_data: Any) -> None:
        if event == "change":
            seen.append(event)
            time.sleep(6)

    with sysrepo.SysrepoConnection() as conn:
        sess = conn.start_session("running")
        sess.subscribe_module_change_unsafe("vpp-singbox", "/vpp-singbox:singbox", slow)
        with netconf_server.connect() as m:
            m.edit_config(target="running", config=cfg(endpoint("e-slow")))
        sess.stop()
    assert seen == ["change"]
    assert endpoints() == ["e-slow"]


@pytest.mark.slow
def test_ten_megabyte_edit(netconf_server: ServerInfo) -> None:
    entries = []
    i = 0
    size = 0
    while size < 10 * 1024 * 1024:
        e = (f"<endpoint><name>big{i:06d}</name><address>198.18.{i // 256 % 256}.{i % 256}</address>"
             f"<username>user{i:06d}</username><password>{'p' * 64}</password></endpoint>")
        entries.append(e)
        size += len(e)
        i += 1
    config = cfg("<client>" + "".join(entries) + "</client>")
    assert len(config) > 10 * 1024 * 1024
    # ~30 s on an idle 2-core box and over 60 s under load, most of it in sysrepo applying 10 MB of changes:
    # the reply is what is checked here, not its time.
    with netconf_server.connect(timeout=300) as m:
        m.edit_config(target="running", config=config)
        data = running("/vpp-singbox:singbox/client/endpoint[name='big000000']")
        assert data["singbox"]["client"]["endpoint"]
        xml = m.get_config("running", filter=sbx_filter("<client><endpoint><name>" + f"big{i - 1:06d}" +
                                                         "</name></endpoint></client>")).data_xml
        assert f"big{i - 1:06d}" in xml

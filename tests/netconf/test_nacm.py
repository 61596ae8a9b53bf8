"""NACM (RFC 8341) for a restricted user and for a recovery user."""

from __future__ import annotations

from typing import Any

import pytest
import sysrepo
from ncclient.operations.rpc import RPCError

from tests.netconf.conftest import ServerInfo
from tests.netconf.helpers import cfg, endpoint, running, endpoints, sbx_filter, error_tag


def test_nacm_for_non_admin_user(netconf_server: ServerInfo) -> None:
    from singbox_agent.mgmt.users import hash_password

    with sysrepo.SysrepoConnection() as conn:
        sess = conn.start_session("running")
        sess.set_item("/ietf-system:system/authentication/user[name='oper']/password", hash_password("oper-pw"))
        sess.apply_changes()
        sess.set_item("/ietf-netconf-acm:nacm/groups/group[name='operators']/user-name", "oper")
        sess.set_item("/ietf-netconf-acm:nacm/rule-list[name='operators']/group", "operators")
        base = "/ietf-netconf-acm:nacm/rule-list[name='operators']/rule[name='no-kill']"
        sess.set_item(base + "/module-name", "ietf-netconf")
        sess.set_item(base + "/rpc-name", "kill-session")
        sess.set_item(base + "/access-operations", "exec")
        sess.set_item(base + "/action", "deny")
        sess.apply_changes()
    with netconf_server.connect() as admin:
        admin.edit_config(target="running", config=cfg(endpoint("sec", "<username>u</username>"
                                                                "<password>upstream-secret</password>")))
        assert "upstream-secret" in admin.get_config("running", filter=sbx_filter()).data_xml
        with netconf_server.connect(user="oper", password="oper-pw") as oper:
            xml = oper.get_config("running").data_xml
            assert "<name>sec</name>" in xml
            assert "upstream-secret" not in xml  # nacm:default-deny-all
            assert "ietf-netconf-acm" not in xml  # /nacm is default-deny-all
            assert "$6$" not in xml  # login hashes hidden by the bootstrap rule
            assert "netconf-ssh-host-key" in xml and "cleartext-private-key" not in xml  # nacm:default-deny-all
            with pytest.raises(RPCError) as exc:
                oper.edit_config(target="running", config=cfg(endpoint("nope")))
            assert error_tag(exc.value) == "access-denied"
            with pytest.raises(RPCError) as exc:
                oper.kill_session(admin.session_id)
            assert error_tag(exc.value) == "access-denied"
    assert endpoints() == ["sec"]


def test_recovery_user_is_not_restricted(sysrepo_instance: Any, tmp_path: Any) -> None:
    import os

    from singbox_agent.mgmt.users import hash_password
    from tests.netconf.conftest import bootstrap, start_server, stop_server

    env = {**os.environ, **sysrepo_instance.env}
    bootstrap(env, tmp_path)
    with sysrepo.SysrepoConnection() as conn:
        sess = conn.start_session("running")
        for user in ("rescue", "plain"):
            sess.set_item(f"/ietf-system:system/authentication/user[name='{user}']/password", hash_password("pw"))
        sess.apply_changes()
    info = start_server(env, tmp_path, ["--recovery-user", "rescue"])
    try:
        with info.connect(user="rescue", password="pw") as m:  # in no NACM group, yet unrestricted
            assert "ietf-netconf-acm" in m.get_config("running").data_xml
            m.edit_config(target="running", config=cfg(endpoint("rescued")))
        with info.connect(user="plain", password="pw") as m:
            assert "ietf-netconf-acm" not in m.get_config("running").data_xml
            with pytest.raises(RPCError) as exc:
                m.edit_config(target="running", config=cfg(endpoint("nope")))
            assert error_tag(exc.value) == "access-denied"
    finally:
        assert stop_server(info) == 0
    assert endpoints() == ["rescued"]

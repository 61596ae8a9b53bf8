"""A NACM change applies to every request that starts after its commit returned to the writer — here a writer in
another process than the server (this test's), revoking and granting full access over and over, each request right
after the commit. The NETCONF server learns of the change through `NacmPolicy` (mgmt/nacm.py): its done-only
subscription, which sysrepo 3.7.11 waits for before the commit returns. A policy that learned of it later (an
asynchronous notice) or never would serve the revoked user as before: all of /nacm and every login hash."""

from __future__ import annotations

import sysrepo

from tests.netconf.conftest import ServerInfo

ADMIN_GROUP = "/ietf-netconf-acm:nacm/groups/group[name='admin']/user-name"
ROUNDS = 5


def test_revoked_access_applies_to_the_next_request(netconf_server: ServerInfo) -> None:
    from singbox_agent.mgmt.users import hash_password

    with sysrepo.SysrepoConnection() as conn:
        sess = conn.start_session("running")
        sess.set_item("/ietf-system:system/authentication/user[name='oper']/password", hash_password("oper-pw"))
        sess.apply_changes()
        with netconf_server.connect(user="oper", password="oper-pw") as oper:
            for _ in range(ROUNDS):
                sess.set_item(ADMIN_GROUP, "oper")
                sess.apply_changes()
                xml = oper.get_config("running").data_xml
                assert "ietf-netconf-acm" in xml and "$6$" in xml  # granted: the admin group's permit-all
                sess.delete_item(f"{ADMIN_GROUP}[.='oper']")
                sess.apply_changes()
                xml = oper.get_config("running").data_xml
                assert "ietf-netconf-acm" not in xml  # revoked: /nacm is default-deny-all
                assert "$6$" not in xml  # and protect-user-secrets hides every hash from the ungrouped
        sess.stop()

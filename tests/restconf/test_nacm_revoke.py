"""A NACM change applies to every RESTCONF request that starts after its commit returned to the writer — a writer
in another process (this test's), revoking and granting full access over and over, each request right after the
commit. The server learns of it through `NacmPolicy` (mgmt/nacm.py), whose generation also retires its pooled
sessions (restconf/store.py): a policy that learned of the change later or never would serve the revoked user
from a pooled unrestricted session — /nacm and every login hash."""

from __future__ import annotations

import sysrepo
from rcserver import BOB, RestconfServer

ADMIN_GROUP = "/ietf-netconf-acm:nacm/groups/group[name='admin']/user-name"
AUTH = "/restconf/ds/ietf-datastores:running/ietf-system:system/authentication"
ROUNDS = 5


def test_revoked_access_applies_to_the_next_request(restconf: RestconfServer) -> None:
    with sysrepo.SysrepoConnection() as conn, restconf.client(auth=BOB) as bob:
        sess = conn.start_session("running")
        for _ in range(ROUNDS):
            sess.set_item(ADMIN_GROUP, BOB[0])
            sess.apply_changes()
            assert bob.get("/restconf/data/ietf-netconf-acm:nacm").status_code == 200  # granted: permit-all
            users = bob.get(AUTH).json()["ietf-system:authentication"]["user"]
            assert any("password" in u for u in users)
            sess.delete_item(f"{ADMIN_GROUP}[.='{BOB[0]}']")
            sess.apply_changes()
            assert bob.get("/restconf/data/ietf-netconf-acm:nacm").status_code == 404  # revoked: default-deny-all
            users = bob.get(AUTH).json()["ietf-system:authentication"]["user"]
            assert not any("password" in u for u in users)
        sess.stop()

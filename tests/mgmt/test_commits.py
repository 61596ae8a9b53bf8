"""`change_notice.Commits`: a number that moves with every commit of its modules that returned — from sysrepo's
renamed running files when it can (no subscription), from a passive done-only subscription for a module it cannot
watch (another datastore plugin; here: a directory that does not exist)."""

from __future__ import annotations

from typing import Any

import pytest
import sysrepo

from singbox_agent.mgmt import change_notice, shm_guard
from singbox_agent.repository import SysrepoInstance

LIMIT = "/vpp-singbox-netconf-server:netconf-server/login-backoff/free-failures"
KEY = "/ietf-truststore:truststore/public-key-bags/public-key-bag[name='b']/public-key[name='k']"
MODULES = {"vpp-singbox-netconf-server": "/vpp-singbox-netconf-server:netconf-server",
           "ietf-truststore": "/ietf-truststore:truststore"}


def commit(conn: sysrepo.SysrepoConnection, path: str, value: str, *more: tuple[str, str]) -> None:
    sess = conn.start_session("running")
    try:
        for p, v in ((path, value), *more):
            sess.set_item(p, v)
        sess.apply_changes()
    finally:
        sess.stop()


@pytest.mark.parametrize("watched", [True, False])
def test_every_commit_moves_it(sysrepo_instance: SysrepoInstance, monkeypatch: pytest.MonkeyPatch,
                               watched: bool) -> None:
    if not watched:
        real = change_notice.RunningStamps

        def unwatchable(modules: Any) -> change_notice.RunningStamps:
            return real(modules, environ={shm_guard.DIR_ENV: "/nonexistent/sysrepo-shm"})

        monkeypatch.setattr(change_notice, "RunningStamps", unwatchable)
    with sysrepo.SysrepoConnection() as conn:
        sess = conn.start_session("running")
        commits = change_notice.Commits(sess, MODULES)
        try:
            assert (commits._stamps is None) == (not watched)
            seen = commits.generation()
            commit(conn, LIMIT, "7")
            assert commits.generation() != seen  # the commit returned: seen by then
            seen = commits.generation()
            commit(conn, f"{KEY}/public-key-format", "ietf-crypto-types:ssh-public-key-format",
                   (f"{KEY}/public-key", "AAAAC3NzaC1lZDI1NTE5AAAAIA=="))
            assert commits.generation() != seen
            seen = commits.generation()
            commit(conn, "/ietf-netconf-acm:nacm/enable-nacm", "true")  # another module's commit
            assert commits.generation() == seen
        finally:
            commits.close()
            sess.stop()

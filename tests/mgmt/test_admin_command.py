"""The admin command (`singbox-admin`, `python -m singbox_agent.mgmt`): first login and passwords, against a real
sysrepo instance, as the package's postinst and an operator run it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import sysrepo

from singbox_agent.mgmt.users import UserStore
from singbox_agent.repository import SysrepoInstance

ADMIN = [sys.executable, "-m", "singbox_agent.mgmt"]


def verify(user: str, password: str) -> bool:
    with sysrepo.SysrepoConnection() as conn:
        store = UserStore(conn)
        try:
            return store.verify_password(user, password)
        finally:
            store.close()


def test_init_admin_creates_a_random_admin_once(sysrepo_instance: SysrepoInstance) -> None:
    first = subprocess.run([*ADMIN, "init-admin", "--password-file", "-"], check=True, capture_output=True, text=True)
    password = first.stdout.strip()
    assert len(password) >= 20 and verify("admin", password)
    # an upgrade's configure: users exist, nothing changes and nothing is printed
    again = subprocess.run([*ADMIN, "init-admin", "--password-file", "-"], check=True, capture_output=True, text=True)
    assert again.stdout == "" and verify("admin", password)
    with sysrepo.SysrepoConnection() as conn, conn.start_session("startup") as startup:
        assert startup.get_data("/ietf-system:system/authentication/user[name='admin']/password")


def test_init_admin_writes_a_private_file(sysrepo_instance: SysrepoInstance, tmp_path: Path) -> None:
    out = tmp_path / "initial-admin-password"
    out.write_text("stale\n")
    done = subprocess.run([*ADMIN, "init-admin", "--user", "root2", "--password-file", str(out)], check=True,
                          capture_output=True, text=True)
    assert str(out) in done.stderr
    assert out.stat().st_mode & 0o777 == 0o600
    assert verify("root2", out.read_text().strip())


def test_set_password_creates_and_updates_from_stdin(sysrepo_instance: SysrepoInstance) -> None:
    created = subprocess.run([*ADMIN, "set-password", "alice"], input="first secret\n", check=True,
                             capture_output=True, text=True)
    assert "created" in created.stdout and verify("alice", "first secret")
    updated = subprocess.run([*ADMIN, "set-password", "alice", "--password-file", "-"], input="second secret\n",
                             check=True, capture_output=True, text=True)
    assert "updated" in updated.stdout
    assert verify("alice", "second secret") and not verify("alice", "first secret")


def test_set_password_refuses_empty_and_reserved(sysrepo_instance: SysrepoInstance) -> None:
    empty = subprocess.run([*ADMIN, "set-password", "bob"], input="\n", capture_output=True, text=True)
    assert empty.returncode == 2 and "empty password" in empty.stderr
    reserved = subprocess.run([*ADMIN, "set-password", "%ungrouped"], input="x\n", capture_output=True, text=True)
    assert reserved.returncode == 2

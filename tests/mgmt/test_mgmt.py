"""The shared management-plane pieces against a real sysrepo instance: users, bootstrap, NACM, error mapping."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import libyang
import pytest
import sysrepo

from singbox_agent.mgmt import crypt, errors, nacm
from singbox_agent.mgmt.bootstrap import bootstrap_admin
from singbox_agent.mgmt.users import UserStore, hash_password
from singbox_agent.repository import SysrepoInstance


def test_hash_and_verify() -> None:
    hashed = hash_password("s3cret")
    assert hashed.startswith("$6$")
    assert crypt.verify_password("s3cret", hashed)
    assert not crypt.verify_password("s3cret!", hashed)
    assert hash_password("s3cret") != hashed  # salted
    assert crypt.verify_password("plain", "$0$plain")
    assert not crypt.verify_password("x", "garbage")


def test_what_cannot_be_a_password_is_refused_not_truncated() -> None:
    """libxcrypt takes a C string of at most 511 bytes: a NUL cut the password there (`pw\\0junk` verified as `pw`),
    and a longer one failed with 'crypt_rn rejected a salt it generated', which let a $0$ value be stored as is."""
    longest = "é" * (crypt.MAX_PASSWORD_BYTES // 2) + "a"  # 511 bytes of UTF-8
    assert len(longest.encode()) == crypt.MAX_PASSWORD_BYTES
    assert crypt.verify_password(longest, hash_password(longest))
    hashed = hash_password("pw")
    assert not crypt.verify_password("pw\0junk", hashed)
    assert not crypt.verify_password("pw\0", hashed)
    assert not crypt.verify_password("pw\0junk", "$0$pw")
    for bad, why in (("pw\0junk", "NUL"), (longest + "a", "at most 511 bytes"), ("a" * 100_000, "at most 511 bytes"),
                     ("\udc80", "Unicode")):
        with pytest.raises(crypt.PasswordError, match=why):
            hash_password(bad)
        with pytest.raises(crypt.PasswordError, match=why):
            crypt.stored_form("$0$" + bad)
        assert bad not in str(crypt.password_problem(bad))
    assert crypt.stored_form("$6$salt$hash") == "$6$salt$hash"
    assert crypt.verify_password("new", crypt.stored_form("$0$new"))


def test_a_clear_text_password_that_cannot_be_hashed_rejects_the_edit(sysrepo_instance: SysrepoInstance) -> None:
    """The `$0$` update subscriber: a hashable password is stored hashed; any other fails the whole edit with the
    reason, and nothing of it is stored (it used to log and store the clear text)."""
    from singbox_agent.mgmt import password_hashing

    path = "/ietf-system:system/authentication/user[name='{}']/password"
    with sysrepo.SysrepoConnection() as conn:
        hashing = conn.start_session("running")
        password_hashing.subscribe(hashing)
        sess = conn.start_session("running")
        sess.set_item(path.format("ok"), "$0$fine-password")
        sess.apply_changes()
        stored = next(iter(sess.get_data("/ietf-system:system")["system"]["authentication"]["user"]))["password"]
        assert stored.startswith("$6$") and crypt.verify_password("fine-password", stored)
        for clear in ("x" * 600, "é" * 256):  # (a NUL never reaches sysrepo: its strings end there)
            sess.set_item(path.format("ok"), "$0$" + clear)
            sess.set_item(path.format("other"), "$0$also-fine")
            with pytest.raises(sysrepo.SysrepoError) as failed:
                sess.apply_changes()
            sess.discard_changes()
            assert "password" in str(failed.value) and clear not in str(failed.value)
            users = sess.get_data("/ietf-system:system")["system"]["authentication"]["user"]
            assert [(u["name"], u["password"]) for u in users] == [("ok", stored)]
        # startup too (it was followed in running only)
        startup = conn.start_session("startup")
        startup.set_item(path.format("boot"), "$0$boot-password")
        startup.apply_changes()
        boot = next(iter(startup.get_data("/ietf-system:system")["system"]["authentication"]["user"]))
        assert boot["name"] == "boot" and boot["password"].startswith("$6$")
        assert crypt.verify_password("boot-password", boot["password"])
        startup.set_item(path.format("boot"), "$0$" + "x" * 600)
        with pytest.raises(sysrepo.SysrepoError):
            startup.apply_changes()
        startup.discard_changes()
        hashing.stop()


def test_bootstrap_cli_idempotent_and_survives_in_startup(sysrepo_instance: SysrepoInstance, tmp_path: Path) -> None:
    pw = tmp_path / "pw"
    pw.write_text("first-password\n")
    cmd = [sys.executable, "-m", "singbox_agent.mgmt", "bootstrap-admin", "--user", "admin", "--password-file", str(pw)]
    subprocess.run(cmd, check=True, capture_output=True)
    subprocess.run(cmd, check=True, capture_output=True)
    with sysrepo.SysrepoConnection() as conn:
        store = UserStore(conn)
        assert store.verify_password("admin", "first-password")
        assert not store.verify_password("admin", "first-password\n")
        startup = conn.start_session("startup")
        data = startup.get_data("/ietf-netconf-acm:nacm")
        lists = [r["name"] for r in data["nacm"]["rule-list"]]
        assert lists == ["admin-all", "protect-user-secrets"]
        groups = {g["name"]: g["user-name"] for g in data["nacm"]["groups"]["group"]}
        assert groups == {"admin": ["admin"], nacm.UNGROUPED_GROUP: [nacm.UNGROUPED_USER]}
        store.close()
    pw.write_text("second-password")
    subprocess.run(cmd, check=True, capture_output=True)
    with sysrepo.SysrepoConnection() as conn:
        store = UserStore(conn)
        assert store.verify_password("admin", "second-password")
        assert not store.verify_password("admin", "first-password")
        store.close()


def test_user_store_sees_changes(sysrepo_instance: SysrepoInstance) -> None:
    with sysrepo.SysrepoConnection() as conn:
        bootstrap_admin(conn, "admin", "pw")
        store = UserStore(conn)
        assert store.verify_password("admin", "pw")
        sess = conn.start_session("running")
        sess.set_item("/ietf-system:system/authentication/user[name='alice']/password", hash_password("alice-pw"))
        sess.set_item(
            "/ietf-system:system/authentication/user[name='alice']/authorized-key[name='k1']/algorithm", "ssh-ed25519"
        )
        sess.set_item(
            "/ietf-system:system/authentication/user[name='alice']/authorized-key[name='k1']/key-data",
            "AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl",
        )
        sess.apply_changes()
        deadline = time.monotonic() + 5
        while not store.verify_password("alice", "alice-pw") and time.monotonic() < deadline:
            time.sleep(0.02)
        assert store.verify_password("alice", "alice-pw")
        assert store.authorized_keys("alice") == [
            "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"
        ]
        assert store.authorized_keys("nobody") == []
        store.close()


def test_nacm_filters_reads_and_denies_writes(sysrepo_instance: SysrepoInstance) -> None:
    with sysrepo.SysrepoConnection() as conn:
        bootstrap_admin(conn, "admin", "pw")
        admin = conn.start_session("running")
        nacm.enable_nacm(admin, "admin")
        assert nacm.nacm_user(admin) == "admin"
        assert "nacm" in admin.get_data("/ietf-netconf-acm:nacm")
        bob = conn.start_session("running")
        nacm.enable_nacm(bob, "bob")
        with pytest.raises(sysrepo.SysrepoNotFoundError):
            bob.get_data("/ietf-netconf-acm:nacm")  # nacm:default-deny-all
        bob.set_item("/vpp-singbox:singbox/log-level", "debug")
        with pytest.raises(sysrepo.SysrepoError) as denied:
            bob.apply_changes()
        assert errors.from_exception(denied.value)[0].error_tag == "access-denied"
        bob.discard_changes()
        admin.set_item("/vpp-singbox:singbox/log-level", "debug")
        admin.apply_changes()
        nacm.enable_nacm(bob, None)
        assert nacm.nacm_user(bob) is None


def test_error_mapping() -> None:
    exc = sysrepo.SysrepoValidationFailedError("endpoint e1: VPP refused: address in use")
    err = errors.from_exception(exc)[0]
    assert (err.error_type, err.error_tag) == ("application", "operation-failed")
    assert "VPP refused: address in use" in err.error_message
    assert errors.from_exception(sysrepo.SysrepoLockedError("locked"))[0].error_tag == "lock-denied"
    assert errors.from_exception(sysrepo.SysrepoExistsError("x"))[0].error_tag == "data-exists"
    assert errors.from_exception(errors.lock_denied(7))[0].info == {"session-id": "7"}
    assert errors.from_exception(ValueError("secret internals"))[0].error_message == "Internal error."
    ly = errors.from_exception(libyang.LibyangError('Node "bogus" not found as a child of "singbox" node.'))[0]
    assert ly.error_tag == "unknown-element"


def test_unrestricted_follows_rfc8341_rule_order() -> None:
    from singbox_agent.mgmt.bootstrap import nacm_config

    config = nacm_config("admin")
    assert nacm.unrestricted(config, "admin")
    assert not nacm.unrestricted(config, "bob")  # in no group: only the defaults apply
    config["nacm"]["groups"]["group"].append({"name": "ops", "user-name": ["bob"]})
    assert not nacm.unrestricted(config, "bob")  # first rule for group * is a deny on a path
    config["nacm"]["rule-list"].insert(0, {"name": "x", "group": ["admin"], "rule": [
        {"name": "no-kill", "module-name": "ietf-netconf", "rpc-name": "kill-session", "action": "deny"}]})
    assert not nacm.unrestricted(config, "admin")  # a restriction now comes first
    config["nacm"]["enable-nacm"] = False
    assert nacm.unrestricted(config, "bob")


def test_user_in_no_group_cannot_read_login_hashes(sysrepo_instance: SysrepoInstance) -> None:
    """RFC 8341 applies no rule-list, not even group "*", to a user in no group; ours hides hashes from them too."""
    with sysrepo.SysrepoConnection() as conn:
        bootstrap_admin(conn, "admin", "pw")
        admin = conn.start_session("running")
        admin.set_item("/ietf-system:system/authentication/user[name='carol']/password", hash_password("carol-pw"))
        admin.apply_changes()
        policy = nacm.NacmPolicy(conn)
        assert policy.identity("carol") == nacm.UNGROUPED_USER
        assert policy.identity("admin") is None
        carol = conn.start_session("running")
        nacm.enable_nacm(carol, policy.identity("carol"))
        users = carol.get_data("/ietf-system:system/authentication/user")["system"]["authentication"]["user"]
        assert [u["name"] for u in users] == ["admin", "carol"]
        assert not any("password" in u for u in users)
        # Without the mapping sysrepo would show every hash to carol: the rule this test depends on.
        nacm.enable_nacm(carol, "carol")
        raw = carol.get_data("/ietf-system:system/authentication/user")["system"]["authentication"]["user"]
        assert all("password" in u for u in raw)
        policy.close()


def test_reserved_names_never_log_in(sysrepo_instance: SysrepoInstance) -> None:
    with sysrepo.SysrepoConnection() as conn:
        bootstrap_admin(conn, "admin", "pw")
        admin = conn.start_session("running")
        admin.set_item(
            f"/ietf-system:system/authentication/user[name='{nacm.UNGROUPED_USER}']/password", hash_password("x")
        )
        admin.apply_changes()
        store = UserStore(conn, subscribe=False)
        assert not store.verify_password(nacm.UNGROUPED_USER, "x")
        assert store.verify_password("admin", "pw")
        store.close()

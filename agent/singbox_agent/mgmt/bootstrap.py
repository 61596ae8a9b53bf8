"""First-start preparation of the management plane in sysrepo: the admin user, NACM, and ietf-netconf's features;
and the password changes of the admin command (`singbox-admin`).

Idempotent: run it on every start (`make run` does, the package's postinst runs `initial_admin`). It writes running
and copies the touched modules to startup so the result survives a reboot.
"""

from __future__ import annotations

import secrets
from typing import Any

import structlog
import sysrepo

from singbox_agent.mgmt import crypt
from singbox_agent.mgmt.datastore import commit_and_persist
from singbox_agent.mgmt.nacm import UNGROUPED_GROUP, UNGROUPED_USER
from singbox_agent.mgmt.users import USERS_XPATH, parse_users
from singbox_agent.mgmt import replay

log = structlog.get_logger("mgmt.bootstrap")

ADMIN_GROUP = "admin"
ADMIN_RULE_LIST = "admin-all"
SECRETS_RULE_LIST = "protect-user-secrets"

# The NETCONF operations our server implements; sysrepo installs ietf-netconf with none of them enabled.
NETCONF_FEATURES = (
    "writable-running", "candidate", "confirmed-commit", "rollback-on-error", "validate", "startup", "xpath",
)


def nacm_config(user: str) -> dict[str, Any]:
    """NACM with RFC 8341's defaults, group `admin` holding `user`, and two rule-lists.

    `admin-all` permits everything to the admin group (including `nacm:default-deny-all` nodes). `protect-user-
    secrets` hides the login password hashes from everyone else: RFC 7317 marks `/system/authentication` only
    default-deny-write, so without it any user could read every hash. Users in no group act as `UNGROUPED_USER`
    (see nacm.py), member of `ungrouped`, so the "*" rule-list reaches them too.
    """
    return {
        "nacm": {
            "enable-nacm": True,
            "read-default": "permit",
            "write-default": "deny",
            "exec-default": "permit",
            "groups": {
                "group": [
                    {"name": ADMIN_GROUP, "user-name": [user]},
                    {"name": UNGROUPED_GROUP, "user-name": [UNGROUPED_USER]},
                ]
            },
            "rule-list": [
                {
                    "name": ADMIN_RULE_LIST,
                    "group": [ADMIN_GROUP],
                    "rule": [{"name": "permit-all", "module-name": "*", "access-operations": "*", "action": "permit"}],
                },
                {
                    "name": SECRETS_RULE_LIST,
                    "group": ["*"],
                    "rule": [
                        {
                            "name": "deny-password-hashes",
                            "module-name": "ietf-system",
                            "path": "/ietf-system:system/authentication/user/password",
                            "access-operations": "*",
                            "action": "deny",
                        }
                    ],
                },
            ],
        }
    }


def enable_netconf_features(conn: sysrepo.SysrepoConnection) -> list[str]:
    """Enable the ietf-netconf features we implement; returns those that were off."""
    ctx: Any
    with conn.get_ly_ctx() as ctx:
        module = ctx.get_module("ietf-netconf")
        enabled = {f.name() for f in module.features() if f.state()}
    missing = [f for f in NETCONF_FEATURES if f not in enabled]
    for feature in missing:
        conn.enable_module_feature("ietf-netconf", feature)
    return missing


def bootstrap_admin(conn: sysrepo.SysrepoConnection, user: str, password: str) -> None:
    """Create or update `user` with `password` (kept if it already verifies) and its NACM rights."""
    changed_features = enable_netconf_features(conn)
    replay.enable_replay(conn)  # RFC 5277 :replay / RFC 8040 start-time: sysrepo stores notifications only then
    sess = conn.start_session("running")
    try:
        try:
            current = parse_users(sess.get_data(USERS_XPATH)).get(user)
        except sysrepo.SysrepoNotFoundError:
            current = None
        edit: dict[str, Any] = {"system": {"authentication": {"user": [{"name": user}]}}}
        if current is None or not current.password_hash or not crypt.verify_password(password, current.password_hash):
            edit["system"]["authentication"]["user"][0]["password"] = crypt.hash_password(password)
        commit_and_persist(conn, sess, [("ietf-system", edit), ("ietf-netconf-acm", nacm_config(user))])
    finally:
        sess.stop()
    log.info("admin bootstrapped", user=user, netconf_features_enabled=changed_features)


def _users(sess: Any) -> dict[str, Any]:
    try:
        return parse_users(sess.get_data(USERS_XPATH))
    except sysrepo.SysrepoNotFoundError:
        return {}


def set_password(conn: sysrepo.SysrepoConnection, user: str, password: str) -> bool:
    """Give `user` (created if missing) a crypt hash of `password` in running and startup; True if it was created.
    Its NACM group memberships stay as they are."""
    sess = conn.start_session("running")
    try:
        created = user not in _users(sess)
        edit = {"system": {"authentication": {"user": [{"name": user, "password": crypt.hash_password(password)}]}}}
        commit_and_persist(conn, sess, [("ietf-system", edit)])
    finally:
        sess.stop()
    log.info("password set", user=user, created=created)
    return created


def initial_admin(conn: sysrepo.SysrepoConnection, user: str) -> str | None:
    """First login of an installed appliance: when no user exists yet, `user` gets a random password and the admin
    rights of `bootstrap_admin`; the password is returned for the operator (None when nothing was created).
    Otherwise nothing changes: users, passwords and NACM belong to the operator after the first start. ietf-netconf's
    features and replay are enabled either way (an upgrade may bring new ones).
    """
    sess = conn.start_session("running")
    try:
        existing = _users(sess)
    finally:
        sess.stop()
    if existing:
        enable_netconf_features(conn)
        replay.enable_replay(conn)
        log.info("users exist, initial admin not needed", users=len(existing))
        return None
    password = secrets.token_urlsafe(18)
    bootstrap_admin(conn, user, password)
    return password

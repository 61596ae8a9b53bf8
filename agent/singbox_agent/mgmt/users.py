"""The one user database of the NETCONF and RESTCONF servers: RFC 7317 `/ietf-system:system/authentication/user`.

Why ietf-system: it is the standard place (netopeer2 reads the same list), `password` is an `ianach:crypt-hash` and
`authorized-key` holds SSH public keys; NACM then governs who may read or change the list like any other data
(`/system/authentication` is `nacm:default-deny-write`; bootstrap adds a rule that hides the hashes from
non-admins). The module file is RFC 7317's text as distributed with pyang, in agent/singbox_agent/yang/.

`UserStore` reads the running datastore once and keeps a cache that a passive `done`-only change subscription marks
stale, so logins never wait for sysrepo and always see committed changes.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

import sysrepo

from singbox_agent.mgmt import crypt

MODULE = "ietf-system"
USERS_XPATH = "/ietf-system:system/authentication/user"
_SUBSCRIBE_XPATH = "/ietf-system:system/authentication"


@dataclass(frozen=True)
class User:
    name: str
    password_hash: str | None
    authorized_keys: tuple[str, ...]


# Names starting with this never log in: the NACM layer uses them for identities of its own (nacm.UNGROUPED_USER).
RESERVED_PREFIX = "%"


def hash_password(clear: str) -> str:
    """A crypt hash ($6$) suitable for `/system/authentication/user/password`; `crypt.PasswordError` for a password
    that cannot be one (a NUL, more than `crypt.MAX_PASSWORD_BYTES` bytes)."""
    return crypt.hash_password(clear)


def parse_users(data: dict[str, Any]) -> dict[str, User]:
    """Users from a `get_data(USERS_XPATH)` dictionary (prefixes stripped)."""
    users: dict[str, User] = {}
    for entry in data.get("system", {}).get("authentication", {}).get("user", []):
        keys = tuple(
            f"{k['algorithm']} {k['key-data']}"
            for k in entry.get("authorized-key", [])
            if k.get("algorithm") and k.get("key-data")
        )
        users[entry["name"]] = User(entry["name"], entry.get("password"), keys)
    return users


class UserStore:
    """Users of the management plane, read from sysrepo's running datastore and cached.

    Blocking on the first read and after a change (one sysrepo get); run it in an executor from asyncio code.
    """

    def __init__(self, connection: sysrepo.SysrepoConnection, *, subscribe: bool = True) -> None:
        self._session = connection.start_session("running")
        self._lock = threading.Lock()
        self._users: dict[str, User] | None = None
        if subscribe:
            self._session.subscribe_module_change(
                MODULE, _SUBSCRIBE_XPATH, self._on_change, passive=True, done_only=True
            )

    def _on_change(self, event: str, req_id: int, changes: Any, private_data: Any) -> None:
        with self._lock:
            self._users = None

    def users(self) -> dict[str, User]:
        with self._lock:
            if self._users is None:
                try:
                    data = self._session.get_data(USERS_XPATH)
                except sysrepo.SysrepoNotFoundError:
                    data = {}
                self._users = parse_users(data)
            return self._users

    def get(self, user: str) -> User | None:
        return self.users().get(user)

    def verify_password(self, user: str, password: str) -> bool:
        entry = None if user.startswith(RESERVED_PREFIX) else self.get(user)
        if entry is None or not entry.password_hash:
            # Spend the same work as a real check so timing does not reveal which users exist.
            crypt.verify_password(password, _DUMMY_HASH)
            return False
        return crypt.verify_password(password, entry.password_hash)

    def authorized_keys(self, user: str) -> list[str]:
        entry = None if user.startswith(RESERVED_PREFIX) else self.get(user)
        return list(entry.authorized_keys) if entry else []

    def close(self) -> None:
        self._session.stop()


_DUMMY_HASH = crypt.hash_password("not a password of anyone")

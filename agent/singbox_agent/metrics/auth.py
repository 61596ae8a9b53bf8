"""HTTP Basic authentication of scrapes against the shared user store (the RESTCONF server's users).

A crypt(3) check costs milliseconds and Prometheus sends the same credentials on every scrape: a verified (user,
password) pair is remembered as an HMAC under a per-process key together with the stored hash it matched, so a
changed or removed password stops matching at once. Blocking (the first check of a pair runs crypt and may read
sysrepo): call it off the event loop.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
import threading
from typing import Protocol

import structlog

from singbox_agent.mgmt.users import User

log = structlog.get_logger("metrics.auth")

MAX_CACHED = 1024


class Users(Protocol):
    """What the check needs of `singbox_agent.mgmt.users.UserStore`."""

    def verify_password(self, user: str, password: str) -> bool: ...

    def get(self, user: str) -> User | None: ...


class BasicAuth:
    def __init__(self, users: Users) -> None:
        self.users = users
        self._key = secrets.token_bytes(32)
        self._ok: dict[tuple[str, bytes], str] = {}  # (user, HMAC of the password) -> stored hash it matched
        self._lock = threading.Lock()

    @staticmethod
    def credentials(header: str | None) -> tuple[str, str] | None:
        """(user, password) of an `Authorization: Basic ...` header; None when absent or malformed."""
        if not header:
            return None
        scheme, _, value = header.strip().partition(" ")
        if scheme.lower() != "basic":
            return None
        try:
            decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return None
        user, sep, password = decoded.partition(":")
        return (user, password) if sep and user else None

    def check(self, header: str | None) -> str | None:
        """The authenticated user name, or None."""
        creds = self.credentials(header)
        if creds is None:
            return None
        user, password = creds
        entry = self.users.get(user)
        stored = entry.password_hash if entry is not None else None
        mac = hmac.new(self._key, password.encode(), hashlib.sha256).digest()
        with self._lock:
            cached = self._ok.get((user, mac))
        if cached is not None and stored is not None and hmac.compare_digest(cached, stored):
            return user
        if not self.users.verify_password(user, password) or stored is None:
            log.info("scrape authentication failed", user=user)
            return None
        with self._lock:
            if len(self._ok) >= MAX_CACHED:
                self._ok.clear()
            self._ok[(user, mac)] = stored
        return user

"""HTTP Basic authentication (RFC 7617) against the shared user store, behind the failed-login back-off: one
implementation for every HTTPS service of the appliance (the RESTCONF server, the metrics exporter), so that each
gets the same malformed-credential checks, the same back-off and the same log lines.

A crypt(3) check costs milliseconds and clients (Prometheus, a RESTCONF poller) send the same credentials with every
request: a successful (user, password) pair is remembered as an HMAC under a per-process key together with the
stored hash it verified against, so a changed or removed password stops matching at once. Credentials that are no
credentials (bad base64, not UTF-8, a NUL or control character, oversized) are refused as malformed, never cut or
cleaned up and compared. Blocking (crypt, and sysrepo on a user-cache miss): call it from a worker thread.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import threading
from collections.abc import Callable

import structlog

from singbox_agent.mgmt.login_guard import LoginGuard
from singbox_agent.mgmt.users import UserStore

log = structlog.get_logger("mgmt.http_basic")

# Decoded `user:password` longer than this is no credential of ours (a password is at most crypt.MAX_PASSWORD_BYTES).
MAX_CREDENTIALS = 4096
# C0 controls and DEL: no user name holds them (a NUL would end it in C); a password must not hold a NUL.
_CONTROL = frozenset(chr(c) for c in range(0x20)) | {"\x7f"}
# Remembered successful logins at most (then forgotten all at once: the next request of each pays one crypt).
_MAX_CACHED = 10_000


class Unauthenticated(Exception):
    """No user: the credentials are missing, malformed or wrong. The text says which, for the 401's body."""


class BackingOff(Exception):
    """Refused unchecked: too many failures of the source address or the user lately (answer 429 Retry-After)."""

    def __init__(self, reason: str, retry_after: float) -> None:
        self.reason = reason  # "source" or "user"
        self.retry_after = retry_after  # seconds
        who = "this address" if reason == "source" else "this user"
        super().__init__(f"Too many failed logins for {who}")


class BasicAuthenticator:
    """`refresh`, when given, runs before each check (e.g. `LoginSettings.refresh`, re-reading the back-off settings
    after a commit changed them; cheap otherwise)."""

    def __init__(self, users: UserStore, guard: LoginGuard | None = None, *,
                 refresh: Callable[[], None] | None = None) -> None:
        self.users = users
        self.guard = guard or LoginGuard()
        self._refresh = refresh
        self._key = secrets.token_bytes(32)
        self._ok: dict[tuple[str, bytes], str] = {}  # (user, HMAC of the password) -> stored hash it matched
        self._lock = threading.Lock()

    def authenticate(self, header: str | None, source: str = "") -> str:
        """The user an `Authorization` header value authenticates, from client address `source`.

        :raises Unauthenticated: no user (answer 401 with a Basic challenge).
        :raises BackingOff: refused without checking the password (answer 429 with Retry-After).
        """
        if self._refresh is not None:
            self._refresh()
        if header is None:
            raise Unauthenticated("Authentication required")
        scheme, _, value = header.strip().partition(" ")
        if scheme.lower() != "basic":
            raise Unauthenticated("Only HTTP Basic authentication is supported")
        user, password = self._credentials(value.strip(), source)
        refusal = self.guard.check(source, user)
        if refusal is not None:
            log.warning("login refused: backing off", source=source, user=user, blocked=refusal.reason,
                        retry_after_s=round(refusal.retry_after, 3))
            raise BackingOff(refusal.reason, refusal.retry_after)
        entry = self.users.get(user)
        mac = hmac.new(self._key, password.encode(), hashlib.sha256).digest()
        with self._lock:
            cached = self._ok.get((user, mac))
        if cached is not None and entry is not None and entry.password_hash is not None and \
                hmac.compare_digest(entry.password_hash, cached):
            self.guard.succeeded(source, user)
            return user
        if not self.users.verify_password(user, password):
            failure = self.guard.failed(source, user)
            log.info("authentication failed", source=source, user=user, source_failures=failure.source_failures,
                     user_failures=failure.user_failures, blocked_for_s=round(failure.blocked_for, 3))
            raise Unauthenticated("Invalid user name or password")
        assert entry is not None and entry.password_hash is not None
        self.guard.succeeded(source, user)
        with self._lock:
            if len(self._ok) >= _MAX_CACHED:
                self._ok.clear()
            self._ok[(user, mac)] = entry.password_hash
        return user

    def _credentials(self, value: str, source: str) -> tuple[str, str]:
        """(user, password) of a Basic credential; malformed ones count as a failure of `source`."""
        problem = None
        user = password = ""
        if len(value) > MAX_CREDENTIALS * 4 // 3 + 4:
            problem = "too long"
        else:
            try:
                decoded = base64.b64decode(value, validate=True).decode("utf-8")
            except ValueError:  # binascii.Error, UnicodeDecodeError, and non-ASCII text given to b64decode
                problem = "not base64 of UTF-8 text"
            else:
                user, sep, password = decoded.partition(":")
                if not sep or not user:
                    problem = "no user name"
                elif not _CONTROL.isdisjoint(user):
                    problem = "a control character in the user name"
                elif "\0" in password:
                    problem = "a NUL in the password"
        if problem is not None:
            failure = self.guard.failed(source, None)
            log.info("authentication failed: malformed credentials", source=source, reason=problem,
                     source_failures=failure.source_failures, blocked_for_s=round(failure.blocked_for, 3))
            raise Unauthenticated(f"Malformed Basic credentials: {problem}")
        return user, password

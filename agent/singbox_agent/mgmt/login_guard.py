"""Failed-login back-off per source address and per user, shared by the NETCONF (SSH) and RESTCONF (HTTP Basic)
servers: a pure state machine with an injected clock; the servers ask it before checking a password and tell it
the outcome.

The model is OpenSSH's: a few failures are free, then each further failure of a source address, or of a user name,
blocks that address or name for a delay that doubles with every failure, up to a maximum; a key with no failure
for `forget_after` seconds starts again from zero. While blocked, an attempt is refused at once, before any
password is checked — a correct password too, else a guesser would learn when it hit — so a guesser gets a few
tries per delay instead of thousands per second. Nothing sleeps: a refused attempt is answered immediately with
the time left (HTTP 429 Retry-After, SSH a failed attempt), so no server resource is held by it and nobody else
waits. (OpenSSH's MaxAuthTries, the attempts per SSH connection, is the NETCONF server's part.)

Who is never slowed: another source address, and another user — a failure counts against its own address and
its own user name only. And a (source, user) pair that logged in successfully within `forget_after` is never
held back (its failures still count against others): the real user keeps working while someone guesses their
password from elsewhere, and a host whose job for one user has a wrong password does not lock its other users
out. The price, a guesser sharing that very address can try that user's password unslowed, is the one
"device cookie" schemes pay; SSH's MaxAuthTries still ends each of its connections.

IPv6 sources count per /64, the block an attacker usually has whole; IPv4 per address. The tables are bounded
(`max_entries`, the least recently failed entry goes first), so made-up user names cannot grow memory.
"""

from __future__ import annotations

import ipaddress
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class BackoffPolicy:
    """The `login-backoff` settings of a server (same leaves in each server's settings module)."""

    enabled: bool = True
    free_failures: int = 5  # failures of one key before any delay (OpenSSH: MaxAuthTries 6)
    initial_delay: float = 1.0  # seconds blocked after the first failure beyond the free ones
    maximum_delay: float = 60.0  # the doubling stops here
    forget_after: float = 900.0  # a key with no failure for this long starts from zero; trusted pairs last as long
    max_auth_tries: int = 6  # SSH only: failed password attempts on one connection before it is closed

    def delay(self, failures: int) -> float:
        """Seconds a key is blocked after its `failures`-th failure."""
        if not self.enabled or failures <= self.free_failures:
            return 0.0
        return float(min(self.initial_delay * 2 ** min(failures - self.free_failures - 1, 60), self.maximum_delay))


@dataclass(frozen=True)
class Refusal:
    """An attempt refused without checking its password: which key is blocked, and for how long still."""

    reason: str  # "source" or "user"
    retry_after: float  # seconds


@dataclass(frozen=True)
class Failure:
    """What a failed attempt did: each key's failure count and how long it is now blocked (0: not blocked)."""

    source_failures: int
    user_failures: int
    blocked_for: float


@dataclass
class _Record:
    failures: int = 0
    last: float = 0.0
    blocked_until: float = 0.0


def source_key(address: str) -> str:
    """The key an address counts under: IPv4 (and IPv4-mapped IPv6) per address, IPv6 per /64; anything that is
    no IP address as itself."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


class LoginGuard:
    """Failed-login back-off (see the module's text). Thread-safe; every method is O(1) and never blocks on I/O."""

    def __init__(self, policy: BackoffPolicy | None = None, *, clock: Callable[[], float] = time.monotonic,
                 max_entries: int = 10_000) -> None:
        self.policy = policy or BackoffPolicy()  # replaced whole when the settings change
        self._clock = clock
        self._max = max_entries
        self._lock = threading.Lock()
        self._sources: OrderedDict[str, _Record] = OrderedDict()
        self._users: OrderedDict[str, _Record] = OrderedDict()
        self._trusted: OrderedDict[tuple[str, str], float] = OrderedDict()  # (source key, user) -> last success

    def check(self, source: str, user: str | None) -> Refusal | None:
        """None when an attempt of `user` from `source` may be checked now; else why not, and for how long."""
        policy = self.policy
        if not policy.enabled:
            return None
        now = self._clock()
        src = source_key(source)
        with self._lock:
            if user is not None and self._is_trusted(src, user, now):
                return None
            record = self._current(self._sources, src, now)
            if record is not None and record.blocked_until > now:
                return Refusal("source", record.blocked_until - now)
            if user is None:
                return None
            record = self._current(self._users, user, now)
            if record is not None and record.blocked_until > now:
                return Refusal("user", record.blocked_until - now)
        return None

    def failed(self, source: str, user: str | None) -> Failure:
        """Record a failed attempt (a wrong password, an unknown user, credentials that are no credentials).
        `user` None: nothing names a user (malformed credentials), only the source counts. Not recorded while
        the back-off is disabled (enabling it later does not block for what happened before)."""
        policy = self.policy
        if not policy.enabled:
            return Failure(0, 0, 0.0)
        now = self._clock()
        src = source_key(source)
        with self._lock:
            src_rec = self._bump(self._sources, src, now, policy)
            user_rec = self._bump(self._users, user, now, policy) if user is not None else None
        blocked = max(src_rec.blocked_until, user_rec.blocked_until if user_rec else 0.0) - now
        return Failure(src_rec.failures, user_rec.failures if user_rec else 0, max(blocked, 0.0))

    def succeeded(self, source: str, user: str) -> None:
        """A login succeeded: its source starts from zero and the pair is trusted (see the module's text). The
        user's own record stays: a success elsewhere does not let a guesser start again."""
        now = self._clock()
        src = source_key(source)
        with self._lock:
            self._sources.pop(src, None)
            self._trusted[(src, user)] = now
            self._trusted.move_to_end((src, user))
            while len(self._trusted) > self._max:
                self._trusted.popitem(last=False)

    def _current(self, table: OrderedDict[str, _Record], key: str, now: float) -> _Record | None:
        record = table.get(key)
        if record is not None and now - record.last > self.policy.forget_after and record.blocked_until <= now:
            del table[key]
            return None
        return record

    def _bump(self, table: OrderedDict[str, _Record], key: str, now: float, policy: BackoffPolicy) -> _Record:
        record = self._current(table, key, now)
        if record is None:
            record = table[key] = _Record()
        record.failures += 1
        record.last = now
        delay = policy.delay(record.failures)
        if delay:
            record.blocked_until = max(record.blocked_until, now + delay)
        table.move_to_end(key)
        while len(table) > self._max:
            table.popitem(last=False)
        return record

    def _is_trusted(self, src: str, user: str, now: float) -> bool:
        since = self._trusted.get((src, user))
        return since is not None and now - since <= self.policy.forget_after

"""How many connections a management server holds, and whose — one implementation for the metrics exporter, the
NETCONF server (SSH) and the RESTCONF server (HTTPS). The file descriptors of a process are few (systemd's soft
RLIMIT_NOFILE is 1024) and a TCP connection that never sends its first byte (SSH version, TLS ClientHello), or
trickles a request head or an SSH handshake, holds one until a timeout ends it. Without a bound, a few hundred of them
from one network left a server unable to accept the operator's connection (accept() failing with EMFILE) or to open
anything else — sysrepo opens files and SHM per operation, so its calls failed too.

`Limits` (pure) decides at accept time: once half of `total` is taken, at most `per_source` connections not yet
authenticated from one source (an IPv4 address, an IPv6 /64: one host has a whole /64 to pick addresses from) — more
are closed at once, as OpenSSH's MaxStartups counts only unauthenticated ones: an orchestrator's many NETCONF sessions
or a monitor's many event streams from one host are not capped, nor a burst of logins while there is room; at most
`total` in all — when full,
the oldest connection that has not yet authenticated (an HTTP request that passed Basic or a client certificate, an
SSH user authentication) is closed to make room (the attacker's idle ones go, an operator's session or a scraper's
keep-alive connection stays), and when every one has, the new one is refused.

`GuardedListener` applies it: a listening socket whose accept() (asyncio's accept loop calls it) refuses or evicts,
and hands out `TrackedSocket`s that say when they close. While MAX_CLOSING connections it closed to make room are
still open, it accepts nothing (BlockingIOError: asyncio's accept loop returns and comes back on the next
readiness), so that the descriptors they free are not taken again faster than they are freed. `bind` opens one.
"""

from __future__ import annotations

import itertools
import resource
import socket
import struct
from dataclasses import dataclass, field

import structlog

from singbox_agent.mgmt.login_guard import source_key

log = structlog.get_logger("mgmt.connguard")

MAX_CONNECTIONS = 256  # per server: operators' sessions, Prometheus' one per target, curl, a second monitor, ...
MAX_PER_SOURCE = 16
# Connections closed to make room keep their descriptor until their transport sees the end (a loop iteration or
# two later); asyncio accepts up to its backlog in one go, so accept() stops while this many are still closing.
MAX_CLOSING = 8


def default_total() -> int:
    """MAX_CONNECTIONS, or a quarter of the file descriptors this process may open when that is less (the rest:
    sysrepo's files and SHM, VPP's stats socket, the connections being closed)."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return MAX_CONNECTIONS
    return max(8, min(MAX_CONNECTIONS, soft // 4))


@dataclass
class _Open:
    peer: tuple[str, int]
    source: str
    trusted: bool = False


@dataclass
class Limits:
    total: int = MAX_CONNECTIONS
    per_source: int = MAX_PER_SOURCE
    _open: dict[int, _Open] = field(default_factory=dict)  # by token, in the order admitted
    _by_peer: dict[tuple[str, int], int] = field(default_factory=dict)
    _tokens: itertools.count[int] = field(default_factory=itertools.count)

    def admit(self, peer: tuple[str, int]) -> tuple[int | None, list[int]]:
        """(token of the new connection, or None: refuse it; tokens of connections to close to make room)."""
        source = source_key(peer[0])
        if (len(self._open) >= self.total // 2
                and sum(1 for c in self._open.values() if c.source == source and not c.trusted) >= self.per_source):
            return None, []
        evict: list[int] = []
        if len(self._open) >= self.total:
            oldest = next((t for t, c in self._open.items() if not c.trusted), None)
            if oldest is None:
                return None, []
            self.release(oldest)
            evict.append(oldest)
        token = next(self._tokens)
        self._open[token] = _Open(peer, source)
        self._by_peer[peer] = token
        return token, evict

    def trust(self, peer: tuple[str, int]) -> None:
        """The connection from `peer` authenticated: never closed to make room. On the event loop's thread."""
        token = self._by_peer.get(peer)
        if token is not None:
            self._open[token].trusted = True

    def release(self, token: int) -> None:
        conn = self._open.pop(token, None)
        if conn is not None and self._by_peer.get(conn.peer) == token:
            del self._by_peer[conn.peer]

    def __len__(self) -> int:
        return len(self._open)


def _peer(address: tuple[object, ...]) -> tuple[str, int]:
    return str(address[0]), int(address[1])  # type: ignore[call-overload]


class TrackedSocket(socket.socket):
    """An accepted connection that releases its place in `Limits` when closed (asyncio's transport closes it)."""

    limits: Limits | None = None
    token: int | None = None
    closing: set[TrackedSocket] | None = None  # the listener's connections closed to make room, not closed yet

    def close(self) -> None:
        if self.limits is not None and self.token is not None:
            self.limits.release(self.token)
            self.token = None
        if self.closing is not None:
            self.closing.discard(self)
        super().close()


class GuardedListener(socket.socket):
    """A listening socket whose accept() applies `limits` (see the module's docstring)."""

    limits: Limits
    tracked: dict[int, TrackedSocket]
    closing: set[TrackedSocket]
    _refused_logged: set[str]

    def guard(self, limits: Limits) -> None:
        self.limits = limits
        self.tracked = {}
        self.closing = set()
        self._refused_logged = set()

    def accept(self) -> tuple[socket.socket, object]:
        while True:
            if len(self.closing) >= MAX_CLOSING:
                raise BlockingIOError("waiting for connections closed to make room")
            fd, address = self._accept()  # type: ignore[attr-defined]
            conn = TrackedSocket(self.family, self.type, self.proto, fileno=fd)
            peer = _peer(address)
            token, evict = self.limits.admit(peer)
            for old in evict:
                victim = self.tracked.pop(old, None)
                if victim is not None:
                    victim.token = None  # its place is taken now
                    self.closing.add(victim)
                    try:
                        victim.shutdown(socket.SHUT_RDWR)  # its transport sees the end and closes it
                    except OSError:
                        pass
            if token is None:
                source = source_key(peer[0])
                if source not in self._refused_logged:  # once per source while this listener lives
                    self._refused_logged.add(source)
                    log.warning("connection refused: too many open connections", source=source,
                                open=len(self.limits), max_total=self.limits.total,
                                max_per_source=self.limits.per_source)
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                conn.close()  # reset, no TIME_WAIT; asyncio's accept loop goes on to the next
                continue
            conn.limits, conn.token, conn.closing = self.limits, token, self.closing
            self.tracked[token] = conn
            self._forget_closed()
            return conn, address

    def _forget_closed(self) -> None:
        for token in [t for t, s in self.tracked.items() if s.token is None]:
            del self.tracked[token]


def bind(address: str, port: int, limits: Limits, backlog: int = 128) -> GuardedListener:
    """A non-blocking listening `GuardedListener` on (address, port) applying `limits` (an IPv6 address, "::" too,
    also takes IPv4-mapped connections). Raises OSError when it cannot be bound."""
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    sock = GuardedListener(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        sock.bind((address, port))
        sock.listen(backlog)
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    sock.guard(limits)
    return sock

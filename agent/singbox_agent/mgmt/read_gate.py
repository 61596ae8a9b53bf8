"""A server-wide cap on concurrent heavy reads (a whole datastore or whole top-level trees).

Each such read holds a libyang tree of everything it selects and its printed reply at once; a handful of clients
asking for everything in parallel multiplies that. Past the configured number of heavy reads in progress in the
server process, the next one is refused at once with resource-denied (RESTCONF: 503 with Retry-After) instead of
queueing, which would only hold its connection and memory longer. Narrower reads (a subtree below a top-level node,
or a read limited to depth 1-2) are never held back.

The limit is the server's own setting (`max-concurrent-heavy-reads` in `vpp-singbox-netconf-server` /
`vpp-singbox-restconf-server` `limits`, default from the schema), read from running at most once a second.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import sysrepo

from singbox_agent.mgmt.errors import MgmtException, resource_denied

REFRESH_S = 1.0  # a changed limit applies within this long
RETRY_AFTER_S = 1

# One step to a top-level node ("/mod:top"), everything ("/*", "/"), or anything with a descendant step ("//").
_WHOLE_TREE = re.compile(r"^\s*/(?:\*|[\w.-]+:[\w.-]+)?\s*$")


def heavy(xpath: str | None, max_depth: int = 0) -> bool:
    """Whether a read selecting `xpath` (None: nothing) to `max_depth` (0: unbounded) is a heavy one: unbounded or
    deeper than 2, and covering a whole top-level tree (any part of a union) or searching descendants."""
    if xpath is None or 0 < max_depth <= 2:
        return False
    return "//" in xpath or any(_WHOLE_TREE.match(part) for part in xpath.split("|"))


@dataclass(frozen=True)
class Setting:
    module: str
    xpath: str


NETCONF = Setting("vpp-singbox-netconf-server", "/vpp-singbox-netconf-server:netconf-server/limits/"
                  "max-concurrent-heavy-reads")
RESTCONF = Setting("vpp-singbox-restconf-server", "/vpp-singbox-restconf-server:restconf-server/limits/"
                   "max-concurrent-heavy-reads")


class ReadGate:
    """Counts the heavy reads in progress against the limit `setting` names in running."""

    def __init__(self, setting: Setting) -> None:
        self.setting = setting
        self._lock = threading.Lock()
        self.active = 0
        self.refused = 0
        self._limit: int | None = None
        self._read_at = float("-inf")

    def limit(self, conn: Any) -> int | None:
        """The configured limit (None: the module is not installed, no limit), re-read at most every REFRESH_S."""
        now = time.monotonic()
        if now - self._read_at >= REFRESH_S:
            value: int | None = None
            sess = conn.start_session("running")
            try:
                data = sess.get_data(self.setting.xpath, include_implicit_defaults=True)
                node: Any = data
                for step in self.setting.xpath.split("/")[1:]:
                    node = node.get(step.split(":")[-1], {}) if isinstance(node, dict) else {}
                value = int(node) if isinstance(node, int) else None
            except (sysrepo.SysrepoError, ValueError):
                value = None
            finally:
                sess.stop()
            self._limit, self._read_at = value, now
        return self._limit

    @contextmanager
    def admit(self, conn: Any, xpath: str | None, max_depth: int = 0) -> Iterator[None]:
        """Run a read of `xpath`; raises `MgmtException` (resource-denied) when it is heavy and the limit is
        reached. Blocking (a sysrepo read once a second): not on an event loop."""
        if not heavy(xpath, max_depth):
            yield
            return
        limit = self.limit(conn)
        with self._lock:
            if limit is not None and self.active >= limit:
                self.refused += 1
                raise too_many(limit)
            self.active += 1
        try:
            yield
        finally:
            with self._lock:
                self.active -= 1


class TooManyReads(MgmtException):
    """resource-denied: the heavy-read limit is reached."""


def too_many(limit: int) -> TooManyReads:
    denied = resource_denied(f"Too many reads of whole datastores or top-level trees in progress (the server's "
                             f"max-concurrent-heavy-reads is {limit}); narrow the read or try again shortly.")
    return TooManyReads(*denied.errors)


_gates: dict[Setting, ReadGate] = {}
_gates_lock = threading.Lock()


def gate(setting: Setting) -> ReadGate:
    """The process's gate for `setting` (one per server)."""
    with _gates_lock:
        return _gates.setdefault(setting, ReadGate(setting))

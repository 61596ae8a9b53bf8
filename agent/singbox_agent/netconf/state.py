"""Server-wide NETCONF state shared by all sessions: session table, datastore locks, candidate status, counters.

Sessions run their operations in worker threads of their own, so everything here is guarded by one lock. sysrepo
enforces the locks too (each NETCONF session has its own sysrepo session); this table exists because RFC 6241 wants
the holder's NETCONF session-id in `lock-denied`, and because the candidate rules need "modified since last commit".
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from singbox_agent.netconf.confirmed import ConfirmedCommit
    from singbox_agent.netconf.session import NetconfSession


@dataclass
class Statistics:
    """RFC 6022 /netconf-state/statistics."""

    start_time: float = field(default_factory=time.time)
    in_bad_hellos: int = 0
    in_sessions: int = 0
    dropped_sessions: int = 0
    in_rpcs: int = 0
    in_bad_rpcs: int = 0
    out_rpc_errors: int = 0
    out_notifications: int = 0


@dataclass
class ServerState:
    lock: threading.RLock = field(default_factory=threading.RLock)
    sessions: dict[int, NetconfSession] = field(default_factory=dict)
    locks: dict[str, int] = field(default_factory=dict)  # datastore -> NETCONF session-id
    lock_times: dict[str, float] = field(default_factory=dict)
    candidate_modified: bool = False
    confirmed: ConfirmedCommit | None = None
    stats: Statistics = field(default_factory=Statistics)
    next_id: int = 1
    extra: dict[str, Any] = field(default_factory=dict)

    def new_session_id(self) -> int:
        with self.lock:
            sid = self.next_id
            self.next_id += 1
            return sid

    def holder(self, datastore: str) -> int | None:
        with self.lock:
            return self.locks.get(datastore)

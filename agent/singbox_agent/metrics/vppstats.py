"""`VppStatsSource`: the `StatsSource` that reads VPP's statistics segment through vpp-papi's `VPPStats`.

VPP hands the segment (a memfd) to whoever connects to its stats socket; the reader maps it read-only and reads
counters straight from shared memory: no binary-API message per scrape, nothing VPP's main thread must answer.

Each read first asks the stats socket for the segment again and compares the file it gets with the mapped one: a
VPP that stopped (connect refused, socket gone) reads as down at once instead of its last numbers, and a VPP that
restarted gets its new segment mapped. VPP keeps the segment consistent with an epoch and an in-progress flag; a
read that overlaps an update is retried a bounded number of times (vpp-papi's own lock would spin for as long as
the flag stays set — forever if VPP died in the middle of an update).
"""

from __future__ import annotations

import array
import os
import socket
import time
from typing import Any

import structlog

from singbox_agent.metrics.segment import (
    CombinedCounter,
    NameVector,
    Segment,
    SimpleCounter,
    Value,
    wanted,
)

log = structlog.get_logger("metrics.vppstats")

CONNECT_TIMEOUT_S = 1.0
READ_ATTEMPTS = 20
LOCK_WAIT_S = 0.05
DEFAULT_SOCKET = "/run/vpp/stats.sock"

# vpp-papi's StatsEntry types (vlib/stats/shared.h: stat_directory_type_t)
_SCALAR, _SIMPLE, _COMBINED, _NAME, _SYMLINK, _GAUGE = 1, 2, 3, 4, 6, 9


class _Retry(OSError):
    """The segment changed under the read; read again."""


def _receive_segment_fd(path: str) -> int:
    """The segment's file descriptor, as VPP sends it to every client of the stats socket (SCM_RIGHTS)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET) as sock:
        sock.settimeout(CONNECT_TIMEOUT_S)
        sock.connect(path)
        fds = array.array("i")
        _, ancdata, _, _ = sock.recvmsg(0, socket.CMSG_SPACE(fds.itemsize))
        for level, kind, data in ancdata:
            if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                fds.frombytes(data[: len(data) - len(data) % fds.itemsize])
    if not fds:
        raise ConnectionError(f"{path} sent no stats segment")
    for extra in fds[1:]:
        os.close(extra)
    return fds[0]


class VppStatsSource:
    """Reads the entries `segment.wanted` names from the segment behind `socket_path`. Not thread-safe: one read
    at a time (the exporter runs reads in a single worker thread)."""

    def __init__(self, socket_path: str = DEFAULT_SOCKET) -> None:
        self.socket_path = socket_path
        self._stats: Any = None
        self._identity: tuple[int, int] | None = None  # (st_dev, st_ino) of the mapped segment
        self._paths: list[str] = []
        self._paths_epoch: int | None = None
        self._last_error = ""

    # connection -------------------------------------------------------------------------------------------

    def _ensure_current(self) -> bool:
        """True with the live segment mapped; False (and nothing mapped) when VPP is not there."""
        try:
            fd = _receive_segment_fd(self.socket_path)
        except (OSError, ConnectionError) as exc:
            self._down(f"stats socket {self.socket_path}: {exc}")
            return False
        try:
            st = os.fstat(fd)
            identity = (st.st_dev, st.st_ino)
            if self._stats is not None and identity == self._identity:
                return True
            self._unmap()
            self._stats = self._map(fd, st.st_size)
            self._identity = identity
            self._paths_epoch = None
            log.info("stats segment mapped", socket=self.socket_path, size=st.st_size)
            self._last_error = ""
            return True
        except Exception as exc:  # noqa: BLE001 - a segment we cannot map reads as no dataplane
            self._down(f"stats segment of {self.socket_path}: {exc}")
            return False
        finally:
            os.close(fd)

    @staticmethod
    def _map(fd: int, size: int) -> Any:
        import mmap

        from vpp_papi.vpp_stats import StatsLock, VPPStats

        class BoundedLock(StatsLock):  # type: ignore[misc]
            """vpp-papi's optimistic lock, but waiting a bounded time for an update in progress."""

            def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
                self.epoch = self.stats.epoch
                deadline = time.monotonic() + LOCK_WAIT_S
                while self.stats.in_progress:
                    if time.monotonic() > deadline:
                        raise _Retry("stats segment update in progress")
                    time.sleep(0.001)
                return True

        stats = VPPStats(socketname="")
        stats.statseg = mmap.mmap(fd, size, mmap.PROT_READ, mmap.MAP_SHARED)
        stats.size = size
        if stats.version != 2:
            stats.statseg.close()
            raise ConnectionError(f"stats segment version {stats.version}, expected 2")
        stats.lock = BoundedLock(stats)
        stats.connected = True
        return stats

    def _unmap(self) -> None:
        stats, self._stats, self._identity = self._stats, None, None
        if stats is not None:
            try:
                stats.disconnect()
            except Exception:  # noqa: BLE001 - an unmapped segment is all we wanted
                pass

    def _down(self, reason: str) -> None:
        if reason != self._last_error:
            log.info("dataplane statistics unavailable", reason=reason)
            self._last_error = reason
        self._unmap()

    def close(self) -> None:
        self._unmap()

    # reading ----------------------------------------------------------------------------------------------

    def read(self) -> Segment | None:
        start = time.perf_counter()
        if not self._ensure_current():
            return None
        for _ in range(READ_ATTEMPTS):
            try:
                entries = self._read_once()
            except (OSError, KeyError, IndexError):
                # KeyError/IndexError: an entry vanished between the directory refresh and its read
                self._paths_epoch = None
                time.sleep(0.001)
                continue
            return Segment(entries, read_seconds=time.perf_counter() - start)
        log.warning("stats segment kept changing during the read; skipping this scrape's numbers")
        return Segment({}, read_seconds=time.perf_counter() - start)

    def _read_once(self) -> dict[str, Value]:
        stats = self._stats
        epoch = stats.epoch
        if self._paths_epoch != epoch or stats.last_epoch != epoch:
            stats.refresh(blocking=False)
            self._paths = [p for p in stats.directory if wanted(p)]
            self._paths_epoch = stats.last_epoch
        out: dict[str, Value] = {}
        directory = stats.directory
        for path in self._paths:
            entry = directory[path]
            value = self._value(stats, entry)
            if value is not None:
                out[path] = value
        if stats.epoch != epoch or stats.in_progress:
            raise _Retry("directory changed during the read")
        return out

    @staticmethod
    def _value(stats: Any, entry: Any) -> Value | None:
        from vpp_papi.vpp_stats import StatsVector, get_string

        kind = entry.type
        if kind in (_SCALAR, _GAUGE):
            return int(entry.get_counter(stats))
        if kind == _SIMPLE:
            return SimpleCounter(tuple(tuple(row) for row in entry.get_counter(stats)))
        if kind == _COMBINED:
            return CombinedCounter(tuple(tuple((int(t[0]), int(t[1])) for t in row)
                                         for row in entry.get_counter(stats)))
        if kind == _NAME:
            # vpp-papi's own reader skips unnamed slots, which shifts every later index: keep them as "".
            return NameVector(tuple(get_string(stats, ptr) if ptr else ""
                                    for (ptr,) in StatsVector(stats, entry.value, "P")))
        return None


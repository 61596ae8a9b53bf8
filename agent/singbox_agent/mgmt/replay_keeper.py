"""Every notification stored for replay: the ones sysrepo delivered but refused to store are stored here.

sysrepo's JSON notification plugin (ntf_json.c, sysrepo 3.7.11) appends each notification to its module's newest
file `<module>.notif.<first>-<last>` while that stays within 1 MiB, else starts a file named by the notification's
second — unless the newest file was itself started in that second: then the notification is refused ("Notification
file T-T exceeded the maximum size of 1024 KB"). sysrepo delivers before it stores, so the refused notification
already reached every live subscriber and cannot be sent again. That happens whenever a large event (a
netconf-config-change of a few thousand entries is several MB, stored whole) starts a file: every other
notification of its module in the same second — small session events, a second config-change — is refused.

So the notifications of every module but ietf-netconf-notifications are watched live (one subscription per
module, sysrepo's own timestamp with it). Only a file started in the notification's own second by another
notification can refuse it, and sysrepo starts one at most once per MiB of notifications: a notification that
arrives while no such file exists is let go after a directory listing and one record header (the callback stays
cheap — sysrepo hands a module's subscribers one event at a time, so a slow callback would delay the next
notification). The others are printed as sysrepo prints them and, `CHECK_AFTER` later, looked for in those files.
One missing there is appended to the file in sysrepo's own record format (struct timespec, uint32 length, the
JSON), where sysrepo's replay reads it in its place: sysrepo never adds to a file that refused one of its second,
and later seconds' notifications start a new file or append whole records. The check and the append happen under
an flock of the store directory, so several keepers (both servers run one) store a notification once.

ietf-netconf-notifications is not watched (`UNWATCHED`: a subscriber there costs every large edit dearly); the
NETCONF server's base events sysrepo refuses are handed over by `notify.Notifier` (`store_now`, with the time of
the refusal: sysrepo's own is not known to the sender). A netconf-config-change is not refused behind a large one
any more: before a write, a file the current second started that lacks room for its config-change is renamed to
start a second earlier, so that sysrepo starts another (`datastore.wait_for_replay_room`); one refused all the same (another writer's large notification in between, a
RESTCONF write) is counted and logged (`notify.record_loss`), as is whatever cannot be stored. Not covered
either: a notification checked before another process stored the one that started its second's file (sysrepo
stores after it delivers) — a window of one store.
"""

from __future__ import annotations

import fcntl
import functools
import heapq
import itertools
import os
import struct
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import libyang
import structlog
import sysrepo

from singbox_agent.mgmt import libsysrepo, notify, replay
from singbox_agent.mgmt.replay_files import StoredFile, notification_dir, scan

log = structlog.get_logger("mgmt.replay_keeper")

CHECK_AFTER = 2.0  # seconds: sysrepo stores right after it delivers; looked for only once it surely tried
MAX_PENDING_BYTES = 256 * 1024 * 1024  # notifications waiting for their check; beyond, counted as lost
LOCK_NAME = ".vpp-singbox-replay-keeper.lock"
# Not watched: sysrepo serialises every notification for each subscriber, and a netconf-config-change of a large
# edit is tens of MB (a 10 MB edit-config took 70-90 s instead of 45-60 with a subscriber here). Its base events
# are handed over by the server that sends them (`notify.Notifier`); a config-change sysrepo refuses is counted.
UNWATCHED = "ietf-netconf-notifications"  # in the store directory; sysrepo lists only "<module>.notif.*"
RECORD_HEAD = struct.Struct("=qqI")  # ntf_json.c's record: struct timespec (x86-64: two longs), uint32 JSON length


def record(sec: int, nsec: int, payload: bytes) -> bytes:
    """One notification as sysrepo's JSON plugin writes it."""
    return RECORD_HEAD.pack(sec, nsec, len(payload)) + payload


def timestamps(path: Path) -> Iterator[tuple[int, int]]:
    """The timestamps of the records in one store file (headers only: the JSON is skipped)."""
    with open(path, "rb") as f:
        while True:
            head = f.read(RECORD_HEAD.size)
            if len(head) < RECORD_HEAD.size:
                return
            sec, nsec, size = RECORD_HEAD.unpack(head)
            yield sec, nsec
            f.seek(size, os.SEEK_CUR)


def started_in(files: list[StoredFile], module: str, sec: int) -> list[StoredFile]:
    """The files of `module` started in second `sec`: the only ones whose start can make sysrepo refuse a
    notification of that second."""
    return [f for f in files if f.module == module and f.first == sec]


def stored(directory: Path, files: list[StoredFile], sec: int, nsec: int) -> bool:
    for f in files:
        try:
            if (sec, nsec) in timestamps(directory / f.name):
                return True
        except FileNotFoundError:
            continue
    return False


@dataclass(order=True)
class _Pending:
    due: float
    seq: int
    module: str = field(compare=False)
    sec: int = field(compare=False)
    nsec: int = field(compare=False)
    name: str = field(compare=False)  # the notification's schema path, for the log
    payload: bytes = field(compare=False)


class ReplayKeeper:
    """Watches every notification of this sysrepo connection's modules and stores those sysrepo refused."""

    def __init__(self, conn: sysrepo.SysrepoConnection, directory: Path | None = None) -> None:
        self._conn = conn
        self.directory = directory or notification_dir()
        self._cond = threading.Condition()
        self._queue: list[_Pending] = []
        self._queued_bytes = 0
        self._seq = itertools.count()
        self._stopping = False
        self.restored = 0
        self._session = conn.start_session("running")
        for module in replay.notification_modules(conn):
            if module == UNWATCHED:
                continue
            libsysrepo.notif_subscribe_tree(self._session, module, None, None, None,
                                            functools.partial(self._on_event, module))
        self._thread = threading.Thread(target=self._run, name="replay-keeper", daemon=True)
        self._thread.start()
        notify.set_keeper(self.store_now)

    def _on_event(self, module: str, ev: int, notif: Any, ts: Any) -> None:
        """sysrepo's thread: print the notification as sysrepo stores it and queue its check. Never raises."""
        try:
            if ev != replay.EV_REALTIME or not notif or not ts:
                return
            if not self._at_risk(module, int(ts.tv_sec), int(ts.tv_nsec)):
                return  # stored, or nothing can refuse it: printing it here would only delay sysrepo's next event
            ctx: Any
            with self._conn.get_ly_ctx() as ctx:
                node = libyang.DNode.new(ctx, notif)
                top = node.root()
                payload = top.print_mem("json", with_siblings=True, pretty=False)
                name = node.schema().schema_path() if node.schema() is not None else module
            data = payload.encode() if isinstance(payload, str) else payload
            item = _Pending(time.monotonic() + CHECK_AFTER, next(self._seq), module, int(ts.tv_sec),
                            int(ts.tv_nsec), name, data)
            with self._cond:
                if self._queued_bytes + len(data) > MAX_PENDING_BYTES:
                    notify.record_loss(name, "too many notifications waiting for their replay-store check",
                                       delivered=True)
                    return
                heapq.heappush(self._queue, item)
                self._queued_bytes += len(data)
                self._cond.notify()
        except BaseException:  # noqa: BLE001 - a C callback must not raise
            log.exception("cannot watch a notification for the replay store")

    def _at_risk(self, module: str, sec: int, nsec: int) -> bool:
        """Whether a store file of `module` was started in second `sec` by another notification (names and one
        record header only: called for every event). The notification that started it (a large one, typically) is
        stored: it is its first record."""
        prefix = f"{module}.notif.{sec}-"
        try:
            names = [name for name in os.listdir(self.directory) if name.startswith(prefix)]
        except FileNotFoundError:
            return False
        for name in names:
            try:
                with open(self.directory / name, "rb") as f:
                    head = f.read(RECORD_HEAD.size)
            except FileNotFoundError:
                continue
            if len(head) < RECORD_HEAD.size or RECORD_HEAD.unpack(head)[:2] != (sec, nsec):
                return True
        return False

    def pending(self) -> int:
        with self._cond:
            return len(self._queue)

    def _run(self) -> None:
        while True:
            with self._cond:
                while self._queue[0].due > time.monotonic() if self._queue else not self._stopping:
                    self._cond.wait(max(0.0, self._queue[0].due - time.monotonic()) if self._queue else None)
                if not self._queue:
                    return  # stopping with nothing left
                item = heapq.heappop(self._queue)
                self._queued_bytes -= len(item.payload)
            try:
                self.check(item)
            except Exception as exc:  # noqa: BLE001 - one failed check must not end the keeper
                notify.record_loss(item.name, f"replay store check failed: {exc}", delivered=True)

    def check(self, item: _Pending) -> None:
        """Store `item` unless sysrepo did (or another keeper did)."""
        if not started_in(scan(self.directory), item.module, item.sec):
            return  # no file was started in its second: sysrepo appended it
        with open(self.directory / LOCK_NAME, "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            files = started_in(scan(self.directory), item.module, item.sec)
            if stored(self.directory, files, item.sec, item.nsec):
                return
            self._append(item, files)

    def store_now(self, module: str, sec: int, nsec: int, payload: bytes) -> bool:
        """Store a notification this process sent and sysrepo refused to store (`notify.Notifier`)."""
        item = _Pending(0.0, next(self._seq), module, sec, nsec, f"{module} notification", payload)
        with open(self.directory / LOCK_NAME, "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            files = [f for f in scan(self.directory) if f.module == module and f.first <= sec <= f.last]
            return self._append(item, files)

    def _append(self, item: _Pending, files: list[StoredFile]) -> bool:
        data = record(item.sec, item.nsec, item.payload)
        for _ in range(5):  # sysrepo renames a file it appends to (its last second): look again then
            for f in sorted(files, key=lambda f: f.last, reverse=True):
                try:
                    fd = os.open(self.directory / f.name, os.O_WRONLY | os.O_APPEND)
                except FileNotFoundError:
                    continue
                try:
                    os.write(fd, data)
                    os.fsync(fd)
                finally:
                    os.close(fd)
                self.restored += 1
                log.info("notification stored for replay in sysrepo's place", notification=item.name,
                         file=f.name, size=len(item.payload))
                return True
            files = [f for f in scan(self.directory) if f.module == item.module and f.first <= item.sec <= f.last]
        notify.record_loss(item.name, "its replay store file is gone", delivered=True)
        return False

    def close(self, flush: bool = True) -> None:
        """Stop watching; with `flush`, check what is queued first (at most CHECK_AFTER from now)."""
        self._session.stop()
        with self._cond:
            if not flush:
                self._queue.clear()
                self._queued_bytes = 0
            self._stopping = True
            self._cond.notify()
        self._thread.join(CHECK_AFTER + 30)
        notify.set_keeper(None)

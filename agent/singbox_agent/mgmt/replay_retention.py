"""Retention of sysrepo's notification replay store (policy in /vpp-singbox-replay-store:replay-store).

Replay is on for every module with notifications (`replay.enable_replay`), and sysrepo never deletes what it stored:
an appliance that runs for years would fill its disk. sysrepo's JSON notification plugin (src/plugins/ntf_json.c)
keeps each module's notifications in `<repo>/data/notif/<module>.notif.<first>-<last>` (epoch seconds of the first
and last notification inside); it appends to a module's newest file until that reaches its size limit, then starts
a new one, and replays by listing the directory. So removing a whole file is all it takes to forget its
notifications, and sysrepo's earliest-notification time follows by itself.

The newest file of a module is never removed: sysrepo finds it by listing the directory, then opens it for append
without O_CREAT and renames it — a removal in between would make that notification's store (and its send) fail.
sysrepo-plugind's own rotation takes that risk; we keep at most one file per module above the limits instead.

`expired()` is the pure policy (tested on its own); `RetentionTask` applies it periodically in the NETCONF server,
and runs the server's `replay_keeper.ReplayKeeper` (what sysrepo refused to store, stored in its place).
"""

from __future__ import annotations

import asyncio
import datetime
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog
import sysrepo

from singbox_agent.mgmt import notify
from singbox_agent.mgmt.replay_files import StoredFile, notification_dir, scan
from singbox_agent.mgmt.replay_keeper import ReplayKeeper

log = structlog.get_logger("mgmt.replay_retention")

MODULE = "vpp-singbox-replay-store"
CONFIG_XPATH = f"/{MODULE}:replay-store"
STATE_XPATH = f"{CONFIG_XPATH}/state"


@dataclass(frozen=True)
class Policy:
    """The YANG defaults of vpp-singbox-replay-store."""

    max_age: int = 30 * 86400
    max_size: int = 64 * 1024 * 1024
    check_interval: int = 3600


def current_files(files: list[StoredFile]) -> set[str]:
    """The file sysrepo appends to, per module: the newest one (ntf_json.c srpntf_find_file)."""
    newest: dict[str, StoredFile] = {}
    for f in files:
        best = newest.get(f.module)
        if best is None or (f.last, f.first) > (best.last, best.first):
            newest[f.module] = f
    return {f.name for f in newest.values()}


def expired(files: list[StoredFile], policy: Policy, now: float) -> list[StoredFile]:
    """Files to remove, oldest first: closed files older than max-age, then the oldest closed files while the store
    is larger than max-size."""
    keep = current_files(files)
    closed = sorted((f for f in files if f.name not in keep), key=lambda f: (f.last, f.first, f.name))
    cutoff = now - policy.max_age
    out = [f for f in closed if f.last < cutoff]
    gone = {f.name for f in out}
    size = sum(f.size for f in files) - sum(f.size for f in out)
    for f in closed:
        if size <= policy.max_size:
            break
        if f.name in gone:
            continue
        out.append(f)
        size -= f.size
    return out


def read_policy(sess: Any) -> Policy:
    """The configured policy from a running-datastore session (defaults for what is not set)."""
    try:
        data = sess.get_data(CONFIG_XPATH, include_implicit_defaults=True)
    except sysrepo.SysrepoNotFoundError:
        return Policy()
    node = data.get("replay-store", {})
    default = Policy()
    return Policy(int(node.get("max-age", default.max_age)), int(node.get("max-size", default.max_size)),
                  int(node.get("check-interval", default.check_interval)))


class RetentionTask:
    """Enforces the policy at start, every check-interval and on every change of the policy; serves the state."""

    def __init__(self, conn: sysrepo.SysrepoConnection, directory: Path | None = None) -> None:
        self._conn = conn
        self.directory = directory or notification_dir()
        self._lock = threading.Lock()
        self._removed = 0
        self._stored_files = 0
        self._stored_bytes = 0
        self._last_check: float | None = None
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._sess = conn.start_session("running")
        self._sess.subscribe_module_change(MODULE, CONFIG_XPATH, self._changed, done_only=True, passive=True)
        self._oper = conn.start_session("operational")
        self._oper.subscribe_oper_data_request(MODULE, STATE_XPATH, self._state)
        self._loop: asyncio.AbstractEventLoop | None = None
        self.keeper = ReplayKeeper(conn, self.directory)  # what sysrepo refused to store, stored in its place

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._task = self._loop.create_task(self._run())

    def _changed(self, event: str, req_id: int, changes: Any, private_data: Any) -> None:
        loop = self._loop
        if loop is not None:
            loop.call_soon_threadsafe(self._wake.set)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            try:
                policy = await loop.run_in_executor(None, self.enforce_once)
            except Exception:  # noqa: BLE001 - a failed pass must not end retention for good
                log.exception("replay store retention failed")
                policy = Policy()
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), policy.check_interval)
            except TimeoutError:
                pass

    def enforce_once(self, now: float | None = None) -> Policy:
        """One pass: read the policy, remove what it expires; returns the policy read."""
        policy = read_policy(self._sess)
        when = datetime.datetime.now(datetime.UTC).timestamp() if now is None else now
        files = scan(self.directory)
        removed = 0
        freed = 0
        for f in expired(files, policy, when):
            try:
                (self.directory / f.name).unlink()
            except FileNotFoundError:
                continue
            removed += 1
            freed += f.size
            log.info("replay store file removed", file=f.name, module=f.module, last_notification=f.last,
                     size=f.size)
        with self._lock:
            self._removed += removed
            self._stored_files = len(files) - removed
            self._stored_bytes = sum(f.size for f in files) - freed
            self._last_check = when
        return policy

    def _state(self, xpath: str, private_data: Any) -> dict[str, Any]:
        with self._lock:
            state: dict[str, Any] = {"stored-files": self._stored_files, "stored-bytes": self._stored_bytes,
                                     "removed-files": self._removed, "lost-notifications": notify.lost_count()}
            if self._last_check is not None:
                state["last-check"] = datetime.datetime.fromtimestamp(self._last_check, datetime.UTC).isoformat(
                    timespec="seconds").replace("+00:00", "Z")
        return {"replay-store": {"state": state}}

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None

    def close(self) -> None:
        self.keeper.close()
        self._oper.stop()
        self._sess.stop()

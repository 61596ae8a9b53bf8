"""Following changes that only need to know THAT a module changed (and, for a few nodes, where).

sysrepo-python's `subscribe_module_change` turns every changed node into a Python `Change` object before calling
back — for each event (change and done), for each subscriber. The NETCONF server's own subscribers (its settings in
ietf-netconf-server/-keystore/-truststore, NACM) only invalidate caches, so a 10,000-entry truststore or NACM edit
spent most of its time building 20,000+ objects nobody read, with sysrepo (and the editing client) waiting for the
change event (issue 17). Here the binding's "unsafe" subscription hands over the event and its implicit session
only (its compiled callback: no cffi callback of ours, which would need a writable and executable page and so
`MemoryDenyWriteExecute=no` in the units); a subscriber that wants to know which nodes changed asks `changed_paths`
for at most a few of them.

Who only needs WHEN a module's running data changed subscribes to nothing: `RunningStamps` reads it from sysrepo's
datastore files, so commits do not wait for it.
"""

from __future__ import annotations

import array
import fcntl
import os
import termios
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import structlog

from _libyang import ffi as ly_ffi
from _libyang import lib as ly_lib

from singbox_agent.mgmt import libsysrepo, shm_guard

log = structlog.get_logger("mgmt.change_notice")

# <linux/inotify.h>
_IN_CLOSE_WRITE = 0x00000008
_IN_MOVED_TO = 0x00000080
_IN_Q_OVERFLOW = 0x00004000
_IN_IGNORED = 0x00008000

# (event name, the implicit sysrepo session of the event (C pointer): valid during the call only, for `changed_paths`)
Notice = Callable[[str, Any], None]


def subscribe(session: Any, module: str, xpath: str, callback: Notice, *, passive: bool = True,
              done_only: bool = False, filter_origin: bool = False) -> None:
    """Call `callback(event, event_session)` on changes of `xpath` in `module` (sysrepo's thread; what it raises
    is logged, never rejects the change). `filter_origin`: the writer evaluates `xpath` on its diff and neither
    wakes nor waits for this subscriber when it selects no change (without it, sysrepo 3.7.11 wakes the subscriber
    for every commit of the module and waits while its thread finds nothing to call back for)."""

    def on_event(ev_sess: Any, event: str, _req_id: int, _priv: Any) -> None:
        try:
            callback(event, ev_sess.cdata)
        except BaseException:  # noqa: BLE001 - a C callback must not raise
            log.exception("change notice failed", module=module)

    session.subscribe_module_change_unsafe(module, xpath, on_event, passive=passive, done_only=done_only,
                                           filter_origin=filter_origin)


def changed_paths(ev_sess: Any, xpath: str, limit: int) -> list[str] | None:
    """The data paths of the changed nodes under `xpath` (`//.` included) in the event's session, or None when
    there are more than `limit`: the caller then treats everything as changed, without walking the rest."""
    out: list[str] = []
    for _op, address, _prev_default in libsysrepo.changes(ev_sess, xpath):
        if len(out) == limit:
            return None
        node = ly_ffi.cast("struct lyd_node *", address)  # through libyang-python's cffi
        raw = ly_lib.lyd_path(node, ly_lib.LYD_PATH_STD, ly_ffi.NULL, 0)
        if raw == ly_ffi.NULL:
            return None
        try:
            out.append(ly_ffi.string(raw).decode())
        finally:
            ly_lib.free(raw)
    return out


class RunningStamps:
    """When the running data of some modules last changed, from sysrepo's own datastore files: no subscription.

    Every change subscription sits on every commit's path, done-only and passive ones too: sysrepo's apply_changes
    publishes the done event and waits until each subscriber has called back (sysrepo 3.7.11
    `sr_shmsub_change_notify_change_done` waits for SR_SUB_EV_FINISHED) — a wake-up of the subscriber's thread and a
    round trip, in another process for RESTCONF's Last-Modified, for every commit of anyone. A follower that only
    needs WHEN a module's running data changed reads it where sysrepo keeps it: its JSON datastore plugin (the
    default, the appliance's) stores a module's running data in `<shm dir>/<prefix>_<module>.running`, written to a
    temporary file and renamed over it on every commit, and that file's mtime is what sysrepo-monitoring reports as
    the module's running `last-modified` (ds_json.c). An inotify watch on the directory has the kernel queue each
    rename before the rename returns, so before the commit does: a look after a commit returned always sees it, and
    costs one non-blocking read. sysrepo 3.7.11 stores running that way on every path that changes it (apply_changes,
    replace_config, copy_config, factory-reset: `sr_changes_notify_store` renames in `sr_modinfo_data_store(..., 1)`
    before the done event and the return; a schema or feature change: context_change.c, the same store). The one
    in-place write, startup copied over running when the first connection creates sysrepo's SHM
    (`sr_shmmod_reboot_init` → `srpjson_cp_path`, O_TRUNC), comes before any follower exists; IN_CLOSE_WRITE of the
    file itself is followed all the same. Stamps (inode, mtime) are not used for that: a freed inode number comes
    back for the next file and mtime moves by clock ticks, so two contents can share one. Modules without such a
    file (another datastore plugin) are in `unwatched`.

    `latest()` is the newest mtime (for dates: two commits within one clock tick share it); `generation()` moves
    whenever a commit happened since the last look (for "did anything change since": exact; not a count, the
    kernel merges identical events nobody read yet). Between looks the kernel queues every rename in the directory
    (each commit of any module: one per module written); a follower that looks rarely lets the queue reach the
    kernel's max_queued_events (16,384 by default, about 1 MB of kernel memory) and then sees one overflow, taken as
    a change of everything followed.
    """

    def __init__(self, modules: Iterable[str], environ: Mapping[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        directory = Path(env.get(shm_guard.DIR_ENV) or shm_guard.DEFAULT_DIR)
        prefix = env.get(shm_guard.PREFIX_ENV) or shm_guard.DEFAULT_PREFIX
        self._lock = threading.Lock()
        self._files: dict[str, Path] = {}  # file name -> path, for the modules followed
        self.unwatched: list[str] = []
        self._fd = -1
        self._wd = -1
        try:
            # before the first stat: a commit between the two is then seen by the watch
            self._fd, self._wd = shm_guard._watch(directory, _IN_MOVED_TO | _IN_CLOSE_WRITE)
            os.set_blocking(self._fd, False)
        except OSError as exc:
            log.warning("cannot watch sysrepo's running data files: followed by subscription", error=exc.strerror)
        for module in modules:
            path = directory / f"{prefix}_{module}.running"
            if self._fd >= 0 and path.exists():
                self._files[path.name] = path
            else:
                self.unwatched.append(module)
        self._generation = 0
        self._latest = self._scan()
        self._polled: list[tuple[int, int]] | None = None  # the files' (inode, mtime) once the watch is gone

    def _scan(self) -> float:
        latest = 0.0
        for path in self._files.values():
            latest = max(latest, self._mtime(path))
        return latest

    @staticmethod
    def _mtime(path: Path) -> float:
        try:
            return path.stat().st_mtime
        except OSError:
            return time.time()  # renamed away right now: it changed just now

    @staticmethod
    def _identity(path: Path) -> tuple[int, int]:
        try:
            st = path.stat()
        except OSError:
            return (0, 0)
        return (st.st_ino, st.st_mtime_ns)

    def latest(self) -> float:
        """The newest modification of any followed module's running data (seconds since the epoch)."""
        with self._lock:
            self._drain()
            return self._latest

    def generation(self) -> int:
        """A number that moves when a followed module was committed since the last look (and on a lost event)."""
        with self._lock:
            self._drain()
            return self._generation

    def _drain(self) -> None:
        if self._polled is not None:
            # the watch went (IN_IGNORED): compare every file's inode and mtime (a rename brings a new inode)
            now = [self._identity(path) for path in self._files.values()]
            if now != self._polled:
                self._polled = now
                self._generation += 1
                self._latest = max(self._latest, self._scan())
            return
        if self._fd < 0:
            return
        pending = array.array("i", [0])
        while True:
            # how many bytes are queued (~1 µs): a read of an empty queue raises BlockingIOError, ~10x that, and a
            # follower looks on every request (RESTCONF's settings and Last-Modified)
            fcntl.ioctl(self._fd, termios.FIONREAD, pending, True)
            if not pending[0]:
                return
            try:
                buf = os.read(self._fd, 64 * 1024)
            except BlockingIOError:
                return
            for mask, name in shm_guard._events(buf):
                if mask & _IN_IGNORED:
                    log.error("the watch of sysrepo's running data files went: comparing them on each look")
                    os.close(self._fd)
                    self._fd = -1
                    self._polled = [self._identity(path) for path in self._files.values()]
                    self._generation += 1
                    self._latest = max(self._latest, self._scan())
                    return
                if mask & _IN_Q_OVERFLOW:  # events were lost: anything may have changed
                    self._generation += 1
                    self._latest = max(self._latest, self._scan())
                elif name in self._files:
                    self._generation += 1
                    self._latest = max(self._latest, self._mtime(self._files[name]))

    def close(self) -> None:
        with self._lock:
            if self._fd >= 0:
                os.close(self._fd)  # the watch goes with the descriptor
                self._fd = -1


class Commits:
    """A number that moves after every commit of some modules that returned to its writer, for followers that re-read
    what they need on their next use: `RunningStamps` for the modules sysrepo keeps in a file it renames, a passive
    done-only subscription on `session` (counted at done, when running holds the new data) for the others. `modules`:
    module -> the XPath such a subscription follows. :raises sysrepo.SysrepoError: a subscription failed (a module
    that is not installed)."""

    def __init__(self, session: Any, modules: Mapping[str, str]) -> None:
        self._lock = threading.Lock()
        self._done = 0
        self._stamps: RunningStamps | None = RunningStamps(modules)
        unwatched = list(self._stamps.unwatched)
        if len(unwatched) == len(modules):
            self._stamps.close()
            self._stamps = None
        try:
            for module in unwatched:
                subscribe(session, module, modules[module], self._changed, done_only=True)
        except BaseException:
            self.close()
            raise

    def generation(self) -> int:
        """Moves with every commit of the modules (the sum of two counts that only grow)."""
        with self._lock:
            done = self._done
        return done + (self._stamps.generation() if self._stamps is not None else 0)

    def _changed(self, event: str, _ev_sess: Any) -> None:
        if event == "done":
            with self._lock:
                self._done += 1

    def close(self) -> None:
        if self._stamps is not None:
            self._stamps.close()

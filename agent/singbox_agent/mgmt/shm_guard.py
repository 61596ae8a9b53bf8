"""Keeps sysrepo's subscription shared memory of this process's user unreadable to other local users.

sysrepo (3.7.11, the distribution's build) creates a subscription's SHM pair, `<prefix>sub_<module>.<suffix>` and
`<prefix>sub_data_<module>.<suffix>`, with `SR_SUB_SHM_PERM` 0666 minus its compiled umask 002 and `fchmod`s them
to that mode whatever the process umask — 0664, while the module's datastore is 0660. The data file keeps the last
change (a password hash, an SSH host key), notification or RPC input of the module until the next one, for any
local account to read. sysrepo opens an existing file O_RDWR without touching its mode, and no one outside the
owner, group `sysrepo` (Debian's `SYSREPO_GROUP`) and root can use the file anyway (O_RDWR), so taking the "other"
bits away changes nothing for sysrepo's users.

`start()` (each daemon's `__main__`, before its first subscription) watches the SHM directory with inotify in a
thread of its own: a subscription file of this instance (`SYSREPO_SHM_DIR`, `SYSREPO_SHM_PREFIX`, as sysrepo
reads them) owned by this uid loses its "other" bits as soon as its mode is set — sysrepo's own `fchmod` follows
every `open` that creates one (it creates the pair again whenever a module/datastore, RPC, notification or
operational path gets its first subscriber after the last one left: dynamic subscriptions, re-subscriptions) — or
changed (sysrepo makes them with shm_open, never by a rename). Not at its creation: the mode read then is the `open`'s (umask applied), and
sysrepo's `fchmod` landing between the guard's read and its own `fchmod` was undone by it — the file ended 0640,
the group (sysrepo's users) without write (seen under load in tests/mgmt/test_shm_guard.py). Fewer wake-ups too:
every commit of any module creates, chmods, chowns and renames a datastore file here (JSON plugin), and the guard's
thread took the GIL 2.6-3.0 times per commit; now 1-2 (the chmod and chown). A sweep at start and after an inotify queue overflow
catches what came before. Files of other users (root's
sysrepo-plugind, netopeer2) are left as they are: narrowing one could lock its owner's group out, and those are
their owners' to fix. Nothing runs on an event loop or in a sysrepo callback.

What this cannot do: a local account that opens a file in the instant between sysrepo's `fchmod` and ours keeps
that descriptor (and what later changes write through it) until the file is unlinked. README.md says so.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import os
import stat
import struct
import threading
from collections.abc import Mapping
from pathlib import Path

import structlog

log = structlog.get_logger("shm_guard")

# sysrepo's defaults (config.h: SR_SHM_PATH, SR_SHM_PREFIX_DEFAULT) and the variables that override them
DEFAULT_DIR = "/dev/shm"
DEFAULT_PREFIX = "sr"
DIR_ENV = "SYSREPO_SHM_DIR"
PREFIX_ENV = "SYSREPO_SHM_PREFIX"

OTHER_BITS = stat.S_IRWXO

# <linux/inotify.h>
_IN_ATTRIB = 0x00000004
_IN_Q_OVERFLOW = 0x00004000
_IN_IGNORED = 0x00008000
_IN_ISDIR = 0x40000000
_IN_CLOEXEC = os.O_CLOEXEC
_EVENT = struct.Struct("iIII")  # wd, mask, cookie, len; then len bytes of NUL-padded name
_READ_SIZE = 64 * 1024


class ShmGuard:
    """Strips the "other" permission bits of `<directory>/<prefix>sub_*` files owned by `uid`."""

    def __init__(self, directory: Path, prefix: str, uid: int) -> None:
        self.directory = directory
        self.prefix = prefix
        self.uid = uid
        self._stem = prefix + "sub_"
        self._fd = -1
        self._wd = -1
        self._stopping = False
        self._thread: threading.Thread | None = None
        self._log = log.bind(directory=str(directory), prefix=prefix)

    def is_subscription_file(self, name: str) -> bool:
        """A subscription (or its data) SHM of this instance: `<prefix>sub_<module>...` / `<prefix>sub_data_...`."""
        return name.startswith(self._stem) and "/" not in name

    def tighten(self, name: str) -> bool:
        """Take the "other" bits off `name` in the directory if it is one of our subscription files; True if it
        changed. Opened without following a link and changed through the descriptor, so what is checked is what
        is changed (the directory is sticky: no one else can replace our file meanwhile)."""
        if not self.is_subscription_file(name):
            return False
        try:
            fd = os.open(self.directory / name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError as exc:
            if exc.errno not in (errno.ENOENT, errno.ELOOP, errno.EACCES, errno.EPERM):
                self._log.warning("cannot open a subscription SHM", file=name, error=exc.strerror)
            return False  # gone already (unsubscribed), a link, or not ours to read
        try:
            st = os.fstat(fd)
            if st.st_uid != self.uid or not stat.S_ISREG(st.st_mode) or not st.st_mode & OTHER_BITS:
                return False
            os.fchmod(fd, stat.S_IMODE(st.st_mode) & ~OTHER_BITS)
            return True
        except OSError as exc:
            self._log.warning("cannot restrict a subscription SHM", file=name, error=exc.strerror)
            return False
        finally:
            os.close(fd)

    def sweep(self) -> int:
        """Tighten every subscription file there now; how many changed."""
        try:
            names = os.listdir(self.directory)
        except OSError as exc:
            self._log.warning("cannot list the SHM directory", error=exc.strerror)
            return 0
        return sum(self.tighten(name) for name in names)

    def start(self) -> None:
        """Watch the directory (inotify, a daemon thread), then sweep what is there already. Without inotify (no
        watch left, a system call filter) the sweep still runs once and the failure is logged."""
        if self._thread is not None:
            return
        try:
            self._fd, self._wd = _watch(self.directory, _IN_ATTRIB)  # not at creation nor rename: see above
        except OSError as exc:
            self._log.error("cannot watch sysrepo's SHM directory: subscription SHM made later stay as sysrepo "
                            "makes them (0664)", error=exc.strerror)
        else:
            self._thread = threading.Thread(target=self._run, name="shm-guard", daemon=True)
            self._thread.start()
        changed = self.sweep()
        self._log.info("guarding sysrepo's subscription SHM", tightened=changed, watching=self._thread is not None)

    def stop(self) -> None:
        """End the watch: removing it queues IN_IGNORED, which wakes the thread's read."""
        thread = self._thread
        if thread is None:
            return
        self._stopping = True
        _inotify().inotify_rm_watch(self._fd, self._wd)
        thread.join()
        self._thread = None

    def _run(self) -> None:
        try:
            while not self._stopping:
                try:
                    buf = os.read(self._fd, _READ_SIZE)
                except InterruptedError:
                    continue
                for mask, name in _events(buf):
                    if mask & _IN_IGNORED:
                        return  # our watch is gone: stop(), or the directory itself
                    if mask & _IN_Q_OVERFLOW:
                        self.sweep()
                    elif name and not mask & _IN_ISDIR:
                        self.tighten(name)
        except OSError as exc:
            self._log.error("the SHM watch failed", error=exc.strerror)
        finally:
            os.close(self._fd)
            self._fd = -1


def _events(buf: bytes) -> list[tuple[int, str]]:
    """(mask, name) of each inotify event in one read."""
    events = []
    offset = 0
    while offset + _EVENT.size <= len(buf):
        _wd, mask, _cookie, length = _EVENT.unpack_from(buf, offset)
        start = offset + _EVENT.size
        name = buf[start:start + length].split(b"\0", 1)[0]
        events.append((mask, os.fsdecode(name)))
        offset = start + length
    return events


_libc: ctypes.CDLL | None = None


def _inotify() -> ctypes.CDLL:
    global _libc
    if _libc is None:
        lib = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        lib.inotify_init1.argtypes = [ctypes.c_int]
        lib.inotify_init1.restype = ctypes.c_int
        lib.inotify_add_watch.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_uint32]
        lib.inotify_add_watch.restype = ctypes.c_int
        lib.inotify_rm_watch.argtypes = [ctypes.c_int, ctypes.c_int]
        lib.inotify_rm_watch.restype = ctypes.c_int
        _libc = lib
    return _libc


def _watch(directory: Path, mask: int) -> tuple[int, int]:
    lib = _inotify()
    fd = lib.inotify_init1(_IN_CLOEXEC)
    if fd < 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))
    wd = lib.inotify_add_watch(fd, os.fsencode(directory), mask)
    if wd < 0:
        err = ctypes.get_errno()
        os.close(fd)
        raise OSError(err, os.strerror(err), str(directory))
    return fd, wd


def from_environment(environ: Mapping[str, str] | None = None) -> ShmGuard:
    """A guard for the sysrepo instance this process's connections use (the same variables sysrepo reads)."""
    env = os.environ if environ is None else environ
    return ShmGuard(Path(env.get(DIR_ENV) or DEFAULT_DIR), env.get(PREFIX_ENV) or DEFAULT_PREFIX, os.geteuid())


_started: ShmGuard | None = None


def start() -> ShmGuard:
    """Each daemon's one call, before its first sysrepo subscription; a second call returns the first guard."""
    global _started
    if _started is None:
        _started = from_environment()
        _started.start()
    return _started

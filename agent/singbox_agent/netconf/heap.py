"""Giving freed memory back to the system (glibc's malloc; elsewhere both calls do nothing).

A large request or reply (a 10,000-entry edit, a get of it) leaves tens of MB that libyang, sysrepo and Python freed
in glibc's heaps, which keep it: the server's RSS stayed at its peak (143 MB after a 10,000-group NACM round, 88 MB
once trimmed; issue 17). So the heaps are limited to two arenas (each thread that allocates would otherwise get one
of its own, up to eight per core, each keeping its freed memory), and after a request the session's worker trims
them when they keep more than `TRIM_FREE_BYTES` freed, looking at most once per `TRIM_EVERY_S` (a trim walks the
heaps).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import threading
import time
from typing import Any

TRIM_FREE_BYTES = 4 * 1024 * 1024  # freed memory the heaps may keep
TRIM_EVERY_S = 1.0
_M_ARENA_MAX = -8  # glibc's mallopt parameter


class _MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in
                ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks",
                 "keepcost")]


_libc: Any = None
try:
    _found = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    if all(hasattr(_found, name) for name in ("malloc_trim", "mallopt", "mallinfo2")):
        _libc = _found
        _libc.mallinfo2.restype = _MallInfo2
except OSError:  # pragma: no cover - no C library by that name
    pass

_lock = threading.Lock()
_last_check = 0.0


def limit_arenas(arenas: int = 2) -> None:
    """At most `arenas` malloc arenas; call before threads start."""
    if _libc is not None:
        _libc.mallopt(_M_ARENA_MAX, arenas)


def after_request() -> None:
    """A request was handled (any thread): at most once per `TRIM_EVERY_S`, the heaps are trimmed when they keep
    more than `TRIM_FREE_BYTES` freed (a large reply, an edit that deleted thousands of entries from the cache)."""
    global _last_check
    if _libc is None:
        return
    with _lock:
        now = time.monotonic()
        if now - _last_check < TRIM_EVERY_S:
            return
        _last_check = now
    if _libc.mallinfo2().fordblks > TRIM_FREE_BYTES:
        _libc.malloc_trim(0)

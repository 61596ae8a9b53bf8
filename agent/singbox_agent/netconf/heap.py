"""Giving freed memory back to the system (glibc's malloc; elsewhere both calls do nothing).

A large request or reply (a 10,000-entry edit, a get of it) leaves tens of MB that libyang, sysrepo and Python freed
in glibc's heaps, which keep it: the server's RSS stayed at its peak (143 MB after a 10,000-group NACM round, 88 MB
once trimmed; issue 17). So the heaps are limited to two arenas (each thread that allocates would otherwise get one
of its own, up to eight per core, each keeping its freed memory), and after a request or reply of at least
`TRIM_AFTER_BYTES` the session's worker trims them, at most once per `TRIM_EVERY_S` (a trim walks the heaps).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import threading
import time
from typing import Any

TRIM_AFTER_BYTES = 512 * 1024
TRIM_EVERY_S = 1.0
_M_ARENA_MAX = -8  # glibc's mallopt parameter

_libc: Any = None
try:
    _found = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    if hasattr(_found, "malloc_trim") and hasattr(_found, "mallopt"):
        _libc = _found
except OSError:  # pragma: no cover - no C library by that name
    pass

_lock = threading.Lock()
_last_trim = 0.0


def limit_arenas(arenas: int = 2) -> None:
    """At most `arenas` malloc arenas; call before threads start."""
    if _libc is not None:
        _libc.mallopt(_M_ARENA_MAX, arenas)


def after_request(size: int) -> None:
    """A request or reply of `size` bytes was handled: trim the heaps when it was large (any thread)."""
    global _last_trim
    if _libc is None or size < TRIM_AFTER_BYTES:
        return
    with _lock:
        now = time.monotonic()
        if now - _last_trim < TRIM_EVERY_S:
            return
        _last_trim = now
    _libc.malloc_trim(0)

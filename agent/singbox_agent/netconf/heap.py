"""Giving freed memory back to the system (glibc's malloc; elsewhere every call does nothing).

A large request or reply (a 10,000-entry edit, a get of it) leaves tens of MB that libyang, sysrepo and Python freed
in glibc's heaps, which keep it: the server's RSS stayed at its peak (143 MB after a 10,000-group NACM round, issue
17). So, set up once by `configure()` before any thread starts:

- two malloc arenas (each thread that allocates would otherwise get one of its own, up to eight per core, each
  keeping its freed memory);
- blocks of `MMAP_THRESHOLD` and more (a request's text, its reply and every copy of them on the way to the socket,
  libyang's printed data) are mapped on their own and unmapped when freed. glibc's default threshold starts there
  but rises to the largest block freed so far, after which such blocks come from the heap and stay there;
- after a request that moved `BIG_BYTES` or more, or took `BIG_S` or more of the worker's CPU (a large edit copies
  the module's data several times in many small blocks; wall time is no measure: a one-leaf edit waiting 10 ms for
  a subscriber or for the CPU of a loaded machine allocated nothing more, and its trim — run on the session's
  worker — delayed the next request), the session's worker collects garbage cycles and trims the heaps once
  the reply went through SSH (the framed copy and the encrypted packets are freed by then). Every
  sysrepo read leaves a few cycles of libyang's and sysrepo's Python objects, and the interpreter keeps free lists
  of its own; left to the collector's next full turn they held 3-4 pymalloc arenas (MB) after a 10,000-entry
  round. With what start-up made frozen (`freeze_startup`, ~47,000 objects no collection walks again) a full
  collection takes ~0.2 ms and the trim well under a millisecond: cheaper than asking glibc how much the heaps
  keep (`mallinfo2` walks every free chunk: 15-50 ms there), which is why nothing asks first.
"""

from __future__ import annotations

import ctypes
import gc
from typing import Any

MMAP_THRESHOLD = 256 * 1024
BIG_BYTES = 256 * 1024  # request and reply together
BIG_S = 0.01
_M_TRIM_THRESHOLD = -1  # glibc's mallopt parameters
_M_MMAP_THRESHOLD = -3
_M_ARENA_MAX = -8

_libc: Any = None
try:
    _found = ctypes.CDLL("libc.so.6")  # glibc's soname (not ctypes.util: it imports shutil, tempfile, bz2, lzma)
    if all(hasattr(_found, name) for name in ("malloc_trim", "mallopt")):
        _libc = _found
except OSError:  # pragma: no cover - not glibc
    pass


def configure(arenas: int = 2) -> None:
    """At most `arenas` malloc arenas, and large blocks mapped on their own; call before threads start."""
    if _libc is not None:
        _libc.mallopt(_M_ARENA_MAX, arenas)
        _libc.mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)
        _libc.mallopt(_M_TRIM_THRESHOLD, MMAP_THRESHOLD)  # the top of a heap freed beyond this goes back at once


def freeze_startup() -> None:
    """Start-up is over: what exists now (modules, classes, the server's own objects) lives as long as the process,
    and the collector stops walking it — a full collection walked ~47,000 objects otherwise."""
    gc.collect()
    gc.freeze()


def trim() -> None:
    """Collect garbage cycles and empty the interpreter's free lists (only a full collection does), then give
    every free page of the heaps back to the system."""
    gc.collect()
    if _libc is not None:
        _libc.malloc_trim(0)


def big(size: int, cpu_seconds: float) -> bool:
    """Whether a request that moved `size` bytes (request and reply) and took `cpu_seconds` of its thread's CPU is
    followed by a trim."""
    return size >= BIG_BYTES or cpu_seconds >= BIG_S

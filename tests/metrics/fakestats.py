"""A stats segment laid out the way VPP lays out its own (stats segment version 2), served on a stats socket the
way VPP serves it (the memfd sent with SCM_RIGHTS to each client): the real `VppStatsSource` and vpp-papi's real
parser read it, without VPP. Pointers are absolute in a made-up address space starting at BASE, as VPP's are in
its own.

Layout (vlib/stats/shared.h): header {u64 version, void *base, u64 epoch, u64 in_progress, void *directory,
void *error_vector}; a vector's length is the u32 8 bytes before its first element; a directory entry is
{u32 type, u64 value, char name[128]}; a simple counter's value points to a vector of per-thread vectors of u64, a
combined counter's to vectors of {u64 packets, u64 bytes}, a name vector's to a vector of pointers to NUL-terminated
char vectors (0 for an empty slot); a gauge's value is the number itself.
"""

from __future__ import annotations

import mmap
import os
import socket
import struct
import threading
from pathlib import Path

BASE = 0x7F00_0000_0000
SIZE = 1 << 20
HEADER = struct.Struct("QPQQPP")
ENTRY = struct.Struct("IQ128s")
SCALAR, SIMPLE, COMBINED, NAME, GAUGE = 1, 2, 3, 4, 9


class FakeSegment:
    def __init__(self) -> None:
        self.fd = os.memfd_create("fake-stats")
        os.ftruncate(self.fd, SIZE)
        self.mem = mmap.mmap(self.fd, SIZE)
        self.top = HEADER.size + 64
        self.entries: list[tuple[int, int, str]] = []
        self.value_at: dict[str, int] = {}  # gauge name -> offset of its value in the directory
        self.epoch = 1
        self._write_header(0)

    def _write_header(self, directory: int, in_progress: int = 0) -> None:
        HEADER.pack_into(self.mem, 0, 2, BASE, self.epoch, in_progress, directory, 0)

    def _vector(self, data: bytes, count: int) -> int:
        self.top = (self.top + 15) & ~15
        struct.pack_into("I", self.mem, self.top, count)
        start = self.top + 8
        self.mem[start:start + len(data)] = data
        self.top = start + len(data) + 8
        return BASE + start

    def simple(self, name: str, rows: list[list[int]]) -> None:
        threads = [self._vector(struct.pack(f"{len(r)}Q", *r), len(r)) for r in rows]
        self.entries.append((SIMPLE, self._vector(struct.pack(f"{len(threads)}P", *threads), len(threads)), name))

    def combined(self, name: str, rows: list[list[tuple[int, int]]]) -> None:
        threads = [self._vector(b"".join(struct.pack("QQ", *c) for c in r), len(r)) for r in rows]
        self.entries.append((COMBINED, self._vector(struct.pack(f"{len(threads)}P", *threads), len(threads)),
                             name))

    def names(self, name: str, names: list[str]) -> None:
        ptrs = [self._vector(n.encode() + b"\0", len(n) + 1) if n else 0 for n in names]
        self.entries.append((NAME, self._vector(struct.pack(f"{len(ptrs)}P", *ptrs), len(ptrs)), name))

    def gauge(self, name: str, value: int) -> None:
        self.entries.append((GAUGE, value, name))

    def publish(self) -> None:
        """Writes the directory (a new vector) and bumps the epoch, as VPP does when entries come or go."""
        data = b"".join(ENTRY.pack(t, v, n.encode()) for t, v, n in self.entries)
        directory = self._vector(data, len(self.entries))
        start = directory - BASE
        self.value_at = {n: start + i * ENTRY.size + 8 for i, (_, _, n) in enumerate(self.entries)}
        self.epoch += 1
        self._write_header(directory)

    def set_gauge(self, name: str, value: int) -> None:
        """In place, without an epoch change (VPP updates gauges so)."""
        struct.pack_into("Q", self.mem, self.value_at[name], value)
        self.entries = [(t, value if n == name else v, n) for t, v, n in self.entries]

    def set_in_progress(self, flag: bool) -> None:
        struct.pack_into("Q", self.mem, 24, 1 if flag else 0)

    def close(self) -> None:
        self.mem.close()
        os.close(self.fd)


class FakeStatsSocket:
    """A SEQPACKET socket at `path` that sends `segment`'s memfd to each client, like VPP's stats socket."""

    def __init__(self, path: Path, segment: FakeSegment) -> None:
        self.path = path
        self.segment = segment
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.sock.bind(str(path))
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except (TimeoutError, OSError):
                continue
            with conn:
                try:
                    socket.send_fds(conn, [b""], [self.segment.fd])
                except OSError:
                    pass

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self.sock.close()
        self.path.unlink(missing_ok=True)

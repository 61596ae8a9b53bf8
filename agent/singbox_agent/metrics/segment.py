"""What a stats source hands the exporter: the entries of VPP's stats segment it needs, by stats path.

A `StatsSource` reads VPP's statistics segment (`vppstats.VppStatsSource`) or keeps entries in memory
(`MemorySource`, for tests and benchmarks); `snapshot.build` turns a `Segment` into the product's metrics. Values
keep the segment's shapes: a simple counter is [thread][index], a combined one [thread][index] of (packets, bytes),
a name vector is indexed like the counters it names (an empty string where an index has no name), gauges and
scalars are plain numbers.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True)
class SimpleCounter:
    rows: tuple[tuple[int, ...], ...]  # [thread][index]

    def at(self, index: int) -> int:
        """The value at `index` summed over threads (0 beyond a thread's vector)."""
        return sum(row[index] for row in self.rows if index < len(row))

    @property
    def width(self) -> int:
        return max((len(row) for row in self.rows), default=0)


@dataclass(frozen=True)
class CombinedCounter:
    rows: tuple[tuple[tuple[int, int], ...], ...]  # [thread][index] = (packets, bytes)

    def at(self, index: int) -> tuple[int, int]:
        packets = octets = 0
        for row in self.rows:
            if index < len(row):
                packets += row[index][0]
                octets += row[index][1]
        return packets, octets

    @property
    def width(self) -> int:
        return max((len(row) for row in self.rows), default=0)


@dataclass(frozen=True)
class NameVector:
    names: tuple[str, ...]  # [index]; "" where the index has no name (a deleted interface)

    def at(self, index: int) -> str:
        return self.names[index] if index < len(self.names) else ""


Value = int | float | SimpleCounter | CombinedCounter | NameVector


@dataclass(frozen=True)
class Segment:
    """The entries a source read, by stats path, and how long the read took."""

    entries: Mapping[str, Value]
    read_seconds: float = 0.0


class StatsSource(Protocol):
    """Where the exporter's numbers come from. `read` blocks (run it off the event loop) and returns None while
    there is no dataplane to read (VPP down, no stats socket); it is called from one thread at a time."""

    def read(self) -> Segment | None: ...

    def close(self) -> None: ...


# The stats paths the exporter reads: these exactly, and everything under the prefixes.
WANTED_PATHS = ("/if/names", "/if/rx", "/if/tx", "/if/drops", "/if/rx-error", "/if/tx-error", "/sys/boottime")
WANTED_PREFIXES = ("/singbox/",)


def wanted(path: str) -> bool:
    return path in WANTED_PATHS or path.startswith(WANTED_PREFIXES)


@dataclass
class MemorySource:
    """A stats segment in memory: tests and benchmarks set `entries` (or call `set`); `up=False` is a VPP that is
    not there."""

    entries: dict[str, Value] = field(default_factory=dict)
    up: bool = True
    reads: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def set(self, path: str, value: Value) -> None:
        with self._lock:
            self.entries[path] = value

    def remove(self, path: str) -> None:
        with self._lock:
            self.entries.pop(path, None)

    def read(self) -> Segment | None:
        with self._lock:
            self.reads += 1
            if not self.up:
                return None
            return Segment({k: v for k, v in self.entries.items() if wanted(k)})

    def close(self) -> None:
        pass

"""The YANG defaults of vpp-singbox, read from the schema by libyang: the mapping never restates one.

A leaf the configuration leaves out takes the `default` the module gives it. The agent reads them from the module
sysrepo has installed (`use_context`, at start); anything that maps configuration before that (unit tests, benches)
gets them from the module file the project ships (`current`). Values are plain Python (int, bool, str, or a tuple for
a leaf-list), copied out of libyang, so no schema node outlives the context it came from.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import libyang

MODULE = "vpp-singbox"
# Where the module file is: $SINGBOX_YANG_DIR, the Debian package's directory, the checkout's yang/.
_SEARCH = [Path("/usr/share/vpp-singbox/yang"), Path(__file__).resolve().parents[3] / "yang"]
# ietf-netconf-acm (imported by the module) ships with sysrepo, not libyang.
_SYSREPO_YANG = Path("/usr/share/yang/modules/sysrepo")

Default = int | bool | str | tuple[str, ...]


class Defaults:
    """Schema path below /vpp-singbox:singbox ('client/endpoint/port') -> the leaf's default value."""

    def __init__(self, values: dict[str, Default]) -> None:
        self._values = values

    def __getitem__(self, path: str) -> Default:
        """:raises KeyError: the path names no leaf with a default in this revision of the module."""
        return self._values[path]

    def get(self, path: str, fallback: Default) -> Default:
        """The default, or `fallback` when the installed revision of the module does not have the leaf (yet)."""
        return self._values.get(path, fallback)

    def __len__(self) -> int:
        return len(self._values)

    @classmethod
    def from_context(cls, ctx: libyang.Context) -> Defaults:
        module = ctx.get_module(MODULE)
        top = f"/{MODULE}:singbox/"
        values: dict[str, Default] = {}
        for node in _walk(module.children()):
            path = node.schema_path()
            if not path.startswith(top):
                continue
            rel = "/".join(step.rpartition(":")[2] for step in path[len(top):].split("/"))
            if isinstance(node, libyang.SLeafList):
                found = tuple(str(v) for v in node.defaults())
                if found:
                    values[rel] = found
            elif isinstance(node, libyang.SLeaf):
                value = node.default()
                if value is not None and not isinstance(value, float):
                    values[rel] = value
        return cls(values)

    @classmethod
    def from_files(cls) -> Defaults:
        dirs = [Path(d) for d in os.environ.get("SINGBOX_YANG_DIR", "").split(":") if d] + _SEARCH
        found = [d for d in dirs if any(d.glob(f"{MODULE}@*.yang"))]
        if not found:
            raise FileNotFoundError(f"no {MODULE}@*.yang in {', '.join(map(str, dirs))}")
        ctx = libyang.Context(":".join(str(d) for d in (found[0], _SYSREPO_YANG)))
        try:
            module = ctx.load_module(MODULE)
            module.feature_enable_all()
            return cls.from_context(ctx)
        finally:
            ctx.destroy()  # type: ignore[no-untyped-call]


def _walk(nodes: Iterator[Any]) -> Iterator[Any]:
    for node in nodes:
        if isinstance(node, (libyang.SLeaf, libyang.SLeafList)):
            yield node
        elif isinstance(node, (libyang.SContainer, libyang.SList, libyang.SChoice, libyang.SCase)):
            yield from _walk(node.children())


_lock = threading.Lock()
_current: Defaults | None = None


def current() -> Defaults:
    """The defaults in use: the installed module's once the agent started, else the shipped file's."""
    global _current
    found = _current  # every derive() asks: no lock once loaded
    if found is not None:
        return found
    with _lock:
        if _current is None:
            _current = Defaults.from_files()
        return _current


def use_context(ctx: libyang.Context) -> Defaults:
    """Take the defaults from the module in `ctx` (sysrepo's: the revision actually installed)."""
    global _current
    found = Defaults.from_context(ctx)
    with _lock:
        _current = found
    return found

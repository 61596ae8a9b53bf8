"""Operational data handed to sysrepo through libyang's C JSON parser instead of one cffi call per node.

sysrepo-python turns the dict an operational callback returns into a tree with `Module.parse_data_dict`, which
creates every node through cffi: about 450 ms for 10,000 sessions (120,000 nodes). libyang's own JSON parser does the
same in about a third of that. The bindings offer no other way to return a tree, so this module wraps
`Module.parse_data_dict` once, in the agent's process only, for dicts of the marker type `OperTree`; every other
dict takes the original path. Values in an OperTree already follow RFC 7951 (64-bit numbers as strings), so the
same dict is also correct for the original path. The whole sessions list (`SessionsOperTree`) does not go through
the parser: the agent keeps it as a tree between reads and hands over a copy (sessions_tree.py).
"""

from __future__ import annotations

import json
import threading
from typing import Any

import libyang

from singbox_agent.agent import sessions_tree

_installed = False
STORE_ONLY = False
_lock = threading.Lock()


class OperTree(dict[str, Any]):
    """Operational data in RFC 7951 form, top-level names without the module prefix (like any callback dict)."""


class SessionsOperTree(OperTree):
    """The whole sessions list ({"singbox": {"sessions": {"session": [...]}}}): handed over from the tree the agent
    keeps between reads (sessions_tree.py) instead of parsing it anew."""


class SessionsOnChangeTree(SessionsOperTree):
    """The whole sessions list with only its on-change notifiable leaf (the agent's poll: each session's id and
    state, oper.SESSIONS_ON_CHANGE_XPATH), in a tree of its own, kept between polls as the other."""


def install() -> None:
    global _installed
    with _lock:
        if _installed:
            return
        original = libyang.Module.parse_data_dict

        def parse_data_dict(self: libyang.Module, dic: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
            if not isinstance(dic, OperTree) or kwargs.get("rpc") or kwargs.get("rpcreply") \
                    or kwargs.get("notification"):
                return original(self, dic, *args, **kwargs)
            if isinstance(dic, SessionsOperTree) and self.name() == "vpp-singbox":
                entries = dic["singbox"]["sessions"]["session"]
                if isinstance(dic, SessionsOnChangeTree):
                    return sessions_tree.ON_CHANGE.copy(self.context, entries,
                                                        max_changes=sessions_tree.ON_CHANGE_MAX_CHANGES)
                return sessions_tree.SESSIONS.copy(self.context, entries)
            text = json.dumps({f"{self.name()}:{k}": v for k, v in dic.items()}, separators=(",", ":"))
            return self.context.parse_data_mem(text, "json", parse_only=True, strict=True, store_only=STORE_ONLY)

        libyang.Module.parse_data_dict = parse_data_dict  # type: ignore[method-assign]
        _installed = True

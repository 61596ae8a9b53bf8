"""The sessions list as one libyang tree kept between reads: each read changes only what changed and hands sysrepo a
copy (issue 18's cost of a periodic YANG-Push of /singbox/sessions).

Built anew, 10,000 sessions are 120,000 nodes through libyang's JSON parser at every read (~130 ms, fastoper.py),
and a periodic push or a poll reads them every period. Kept, a read of the same sessions changes the leaves that
moved (ages and byte counters: `lyd_change_term`), adds the sessions that started and frees those that ended, then
copies the tree for sysrepo, which takes ownership of what a callback returns (`lyd_dup_siblings`, ~40 ms at
10,000). Values go through libyang's type checks as with the parser (ranges, patterns: no LYD_NEW_VAL_STORE_ONLY).

libyang's calls the python binding does not declare (`lyd_change_term`, `lyd_new_list2`) are declared here for cffi
(ABI mode, the libyang the binding loaded); pointers cross between the two cffi instances as integers.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

import cffi
import libyang

from _libyang import ffi as ly_ffi

ffi = cffi.FFI()
ffi.cdef(
    """
    struct ly_ctx;
    struct lys_module;
    struct lyd_node;
    struct lyd_node_inner;
    struct lys_module *ly_ctx_get_module_implemented(const struct ly_ctx *ctx, const char *name);
    int lyd_new_inner(struct lyd_node *parent, const struct lys_module *module, const char *name, uint8_t output,
                      struct lyd_node **node);
    int lyd_new_list2(struct lyd_node *parent, const struct lys_module *module, const char *name, const char *keys,
                      uint32_t options, struct lyd_node **node);
    int lyd_new_term(struct lyd_node *parent, const struct lys_module *module, const char *name, const char *value,
                     uint32_t options, struct lyd_node **node);
    int lyd_change_term(struct lyd_node *term, const char *val_str);
    int lyd_dup_siblings(const struct lyd_node *node, struct lyd_node_inner *parent, uint32_t options,
                         struct lyd_node **dup);
    void lyd_free_tree(struct lyd_node *node);
    """
)
lib: Any = ffi.dlopen("libyang.so.3")
LYD_DUP_RECURSIVE = 0x01
_MISSING = object()
LY_ENOT = 11
MODULE = b"vpp-singbox"


class SessionsTreeError(Exception):
    pass


def _check(call: str, rc: int, what: str) -> None:
    if rc != 0:
        raise SessionsTreeError(f"{call} {what}: libyang error {rc}")


@dataclass
class _Entry:
    node: Any  # the session's list entry
    values: dict[str, Any]  # leaf name -> value, as oper.sessions gives it (the key included)
    leaves: dict[str, Any] = field(default_factory=dict)  # leaf name -> its node (not the key)


class SessionsTree:
    """/singbox/sessions kept in one libyang context; `copy` makes it equal to the entries and returns a copy."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._ctx: int = 0
        self._mod: Any = ffi.NULL
        self._top: Any = ffi.NULL  # singbox
        self._list: Any = ffi.NULL  # singbox/sessions
        self._entries: dict[str, _Entry] = {}

    def copy(self, ctx: libyang.Context, entries: list[dict[str, Any]], *,
             max_changes: int | None = None) -> libyang.DNode:
        """The tree holding exactly `entries` (oper.sessions' session dicts, in their order for new ones), a copy
        the caller owns. `max_changes`: at most this many sessions ended, started or changed are taken in (ended
        ones first, then in `entries`' order); the others stay as they were until a later call."""
        with self._lock:
            self._use(ctx)
            try:
                self._update(entries, max_changes)
            except SessionsTreeError:
                # half updated: drop it, the next read builds it again
                lib.lyd_free_tree(self._top)
                self._ctx, self._entries = 0, {}
                raise
            out = ffi.new("struct lyd_node **")
            _check("lyd_dup_siblings", lib.lyd_dup_siblings(self._top, ffi.NULL, LYD_DUP_RECURSIVE, out), "sessions")
            return libyang.DNode.new(ctx, ly_ffi.cast("struct lyd_node *", int(ffi.cast("uintptr_t", out[0]))))

    def reset(self) -> None:
        """Start over at the next call (a new poll subscription: sysrepo's cache of it starts empty too)."""
        with self._lock:
            self._ctx, self._entries = 0, {}

    def _use(self, ctx: libyang.Context) -> None:
        ptr = int(ly_ffi.cast("uintptr_t", ctx.cdata))
        if ptr == self._ctx:
            return
        # A new context (sysrepo's changed with a module installed): start over in it. The old tree is left, not
        # freed: its context may be gone already, and this happens once per context change.
        self._entries = {}
        cctx = ffi.cast("struct ly_ctx *", ptr)
        self._mod = lib.ly_ctx_get_module_implemented(cctx, MODULE)
        if self._mod == ffi.NULL:
            raise SessionsTreeError("vpp-singbox is not implemented in this context")
        top = ffi.new("struct lyd_node **")
        _check("lyd_new_inner", lib.lyd_new_inner(ffi.NULL, self._mod, b"singbox", 0, top), "singbox")
        lst = ffi.new("struct lyd_node **")
        _check("lyd_new_inner", lib.lyd_new_inner(top[0], self._mod, b"sessions", 0, lst), "sessions")
        self._top, self._list, self._ctx = top[0], lst[0], ptr

    def _update(self, entries: list[dict[str, Any]], max_changes: int | None) -> None:
        old = self._entries
        budget = len(old) + len(entries) if max_changes is None else max_changes
        live = {values["id"] for values in entries}
        for key in [k for k in old if k not in live]:  # ended
            if budget <= 0:
                break
            lib.lyd_free_tree(old.pop(key).node)
            budget -= 1
        new: dict[str, _Entry] = {}
        out = ffi.new("struct lyd_node **")
        for values in entries:
            key = values["id"]
            e = old.pop(key, None)
            if e is None:
                if budget <= 0:
                    continue  # started: taken in by a later call
                e = self._create(values, out)
                budget -= 1
            elif e.values != values and budget > 0:
                self._change(e, values, out)
                budget -= 1
            new[key] = e
        new.update(old)  # ended, not taken in yet
        self._entries = new

    def _create(self, values: dict[str, Any], out: Any) -> _Entry:
        key = values["id"]
        _check("lyd_new_list2", lib.lyd_new_list2(self._list, self._mod, b"session", f"[id='{key}']".encode(), 0, out),
               f"session {key}")
        e = _Entry(out[0], values)
        for name, value in values.items():
            if name != "id":
                e.leaves[name] = self._term(e.node, name, value, out)
        return e

    def _change(self, e: _Entry, values: dict[str, Any], out: Any) -> None:
        old = e.values
        if old.keys() != values.keys():
            for name in old.keys() - values.keys():
                lib.lyd_free_tree(e.leaves.pop(name))
        for name, value in values.items():  # what changed or came (the key never changes); a loop, not a set of
            if old.get(name, _MISSING) == value:  # items: 10,000 sessions every period
                continue
            leaf = e.leaves.get(name)
            if leaf is None:
                e.leaves[name] = self._term(e.node, name, value, out)
            else:
                rc = lib.lyd_change_term(leaf, str(value).encode())
                if rc not in (0, LY_ENOT):  # LY_ENOT: the same value in another spelling
                    _check("lyd_change_term", rc, f"{name} {value!r}")
        e.values = values

    def _term(self, parent: Any, name: str, value: Any, out: Any) -> Any:
        _check("lyd_new_term", lib.lyd_new_term(parent, self._mod, name.encode(), str(value).encode(), 0, out),
               f"{name} {value!r}")
        return out[0]


SESSIONS = SessionsTree()  # the agent's (one per process, as the agent)
ON_CHANGE = SessionsTree()  # the same sessions with only their on-change notifiable leaves: the agent's poll
# At most this many sessions starting, ending or changing state go into one poll of ON_CHANGE: sysrepo's srsn builds
# a push-change-update's YANG patch looking each edit's target up among the patch's edits so far (sn_yang_push.c,
# srsn_yp_ntf_change_edit_clear_target: an XPath search), quadratic in the edits; at 10,000 sessions a poll of 1 and
# 100 changes each way took 117 and 239 ms CPU, of 1,000 each way more than a minute (bench_push.py --batch). A
# burst larger than this is reported over the next polls, in order: ended sessions first.
ON_CHANGE_MAX_CHANGES = 200

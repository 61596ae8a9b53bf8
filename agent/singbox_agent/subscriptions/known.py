"""What an on-change subscriber of the operational datastore knows, so its YANG patches agree with it (RFC 8641).

sysrepo reports a change of pull data (counters, the sessions list, an endpoint's entry) only through an
operational poll subscription (agent/oper_poll.py), as the difference between two polls. A subscription established
between two polls gets, from the next one, what changed since the previous poll, before it existed: CI saw an
on-change subscriber of an endpoint committed just before get `create` of that endpoint, 30 s old, with nothing
changing (tests/subscriptions/test_oper_poll.py). A patch is to apply to what the subscriber holds: the selection as
it was when the subscription began (sync-on-start's push-update, or what a read would have shown then). srsn keeps
no copy of that, so this module does, per subscription (`Known`), and makes each push-change-update agree with it:

- an edit that creates or replaces a node with what the subscriber holds already is dropped; a `create` of a node it
  holds that adds or changes leaves becomes `merge` (push data's diff creates an endpoint entry with only its pushed
  oper-status while the subscriber holds the whole entry: neither create nor replace would be true of it);
- a `delete`/`remove` of a node it does not hold is dropped;
- a notification left with no edit is not sent; what is kept changes the copy as the subscriber's changes.

The copy is the push-update (sync-on-start, resync-subscription) when there is one, else a read of the selection
made just before srsn subscribes (`read`), by the subscription's session (NACM as for its notifications). A change
after that read is in the next poll's difference and is not in the copy: it is sent. Only the operational datastore:
a configuration datastore's changes are sysrepo's exact diffs of each commit. insert/move (user-ordered lists) pass
unchanged. Anything this cannot follow (a filter modified: the copy is of the old selection; a libyang error; a new
libyang context, sysrepo's after a module change) stops the filtering: the patches go out as srsn made them, until
a resync-subscription's push-update gives a starting point again.

The copy is a libyang tree of the connection's context, kept between reads (sessions: a few MB for 10,000); a
notification costs a lookup and a subtree comparison per edit. Pointers of the two cffi instances (the sysrepo and
the libyang binding) cross as integers.
"""

from __future__ import annotations

import threading
from typing import Any

import structlog
from _sysrepo import ffi as sr_ffi, lib as sr_lib

from singbox_agent.mgmt import libsysrepo
from singbox_agent.mgmt.xpath import parent_path

log = structlog.get_logger("subscriptions.known")

_CHANGES = ("create", "replace", "merge")
_REMOVALS = ("delete", "remove")


def _ly() -> tuple[Any, Any]:
    from _libyang import ffi as ly_ffi, lib as ly_lib

    return ly_ffi, ly_lib


def _addr(ffi: Any, ptr: Any) -> int:
    return int(ffi.cast("uintptr_t", ptr))


class KnownError(Exception):
    pass


class Known:
    """The selection as the subscriber holds it (see the module). `ready` once it has a starting point."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._tree: Any = None  # libyang `struct lyd_node *`, the first top-level node, None: nothing held
        self._ctx = 0  # the libyang context the tree is of
        self._removed: list[tuple[str, Any]] = []  # (path, node) deleted by the patch at hand, not freed yet
        self.ready = False
        self.following = True  # False: patches pass as they are (something this could not follow)

    # --- starting points -------------------------------------------------------------------------------------

    def read(self, session: Any, xpath: str | None) -> None:
        """The selection now, as srsn reads a push-update's: in operational, on the connection of the
        subscription's `session` (sysrepo-python), as its NACM user. Before srsn subscribes, without sync-on-start.
        Blocking (sysrepo). :raises KnownError:"""
        ffi, lib = _ly()
        conn = sr_lib.sr_session_get_connection(session.cdata)
        user = libsysrepo.lib.sr_nacm_get_user(libsysrepo.session_ptr(session))
        sess = sr_ffi.new("sr_session_ctx_t **")
        if sr_lib.sr_session_start(conn, sr_lib.SR_DS_OPERATIONAL, sess) != 0:
            raise KnownError("no session")
        try:
            if user != libsysrepo.ffi.NULL and libsysrepo.lib.sr_nacm_set_user(
                    libsysrepo.ffi.cast("sr_session_ctx_t *", _addr(sr_ffi, sess[0])), user) != 0:
                raise KnownError("the NACM user could not be set")
            ctx = sr_lib.sr_acquire_context(conn)
            try:
                data = sr_ffi.new("sr_data_t **")
                rc = sr_lib.sr_get_data(sess[0], (xpath or "/*").encode(), 0, 0, 0, data)
                if rc not in (0, sr_lib.SR_ERR_NOT_FOUND):
                    raise KnownError(f"the selection could not be read: {libsysrepo.strerror(rc)}")
                try:
                    tree = ffi.NULL if rc != 0 or data[0] == sr_ffi.NULL or data[0].tree == sr_ffi.NULL else \
                        ffi.cast("struct lyd_node *", _addr(sr_ffi, data[0].tree))
                    with self._lock:
                        self._set(tree, _addr(sr_ffi, ctx))
                finally:
                    if rc == 0 and data[0] != sr_ffi.NULL:
                        sr_lib.sr_release_data(data[0])
            finally:
                sr_lib.sr_release_context(conn)
        finally:
            sr_lib.sr_session_stop(sess[0])

    def _set(self, tree: Any, ctx: int) -> None:
        """Hold a copy of `tree` (NULL: nothing) of context `ctx`."""
        ffi, lib = _ly()
        self._drop()
        if tree != ffi.NULL:
            out = ffi.new("struct lyd_node **")
            if lib.lyd_dup_siblings(tree, ffi.NULL, lib.LYD_DUP_RECURSIVE, out) != 0:
                self._stop("the selection could not be copied")
                return
            self._tree = out[0]
        self._ctx = ctx
        self.ready = True

    def _drop(self) -> None:
        ffi, lib = _ly()
        if self._tree is not None:
            lib.lyd_free_all(self._tree)
        self._tree = None

    def _stop(self, why: str) -> None:
        if self.following:
            log.info("on-change patches go out as sysrepo made them", reason=why)
        self.following = False

    def stop(self, why: str) -> None:
        with self._lock:
            self._stop(why)

    def free(self, conn: Any) -> None:
        """Frees the copy, if the context of `conn` (the binding's `sr_conn_ctx_t *`) is still its context (else it
        is left: its context may be gone)."""
        ctx = sr_lib.sr_acquire_context(conn)
        try:
            with self._lock:
                if self._ctx == _addr(sr_ffi, ctx):
                    self._drop()
                self._tree = None
                self.following = False
        finally:
            sr_lib.sr_release_context(conn)

    # --- a notification ----------------------------------------------------------------------------------------

    def agree(self, notif: Any, ctx: int) -> bool:
        """Makes srsn's notification `notif` (a parsed libyang tree of context `ctx`) agree with the copy, in
        place; False when nothing is left to send. A push-update becomes the copy."""
        ffi, lib = _ly()
        with self._lock:
            name = ffi.string(notif.schema.name).decode()
            try:
                if name == "push-update":  # sync-on-start, resync-subscription: what the subscriber holds now
                    if ctx != self._ctx:
                        self._tree = None  # left, not freed: its context may be gone already
                    self.following = True
                    self._set(self._contents(notif), ctx)
                    return True
                if name != "push-change-update" or not self.following or not self.ready:
                    return True
                if ctx != self._ctx:
                    self._tree = None  # left, not freed: its context may be gone already
                    self._stop("a new libyang context")
                    return True
                return self._agree(notif)
            except KnownError as exc:
                self._drop()
                self._stop(str(exc))
                return True

    def _contents(self, notif: Any) -> Any:
        """The data tree of a push-update's datastore-contents (NULL: empty)."""
        ffi, lib = _ly()
        node = _find(notif, "datastore-contents")
        if node is None:
            return ffi.NULL
        return _any_tree(node)

    def _agree(self, notif: Any) -> bool:
        ffi, lib = _ly()
        patch = _find(notif, "datastore-changes/yang-patch")
        if patch is None:
            return True
        edits = [n for n in _children(patch) if ffi.string(n.schema.name).decode() == "edit"]
        kept = 0
        try:
            kept = self._edits(edits)
        finally:
            self._free_removed()
        return kept > 0

    def _edits(self, edits: list[Any]) -> int:
        ffi, lib = _ly()
        kept = 0
        for edit in edits:
            op_node, target_node = _find(edit, "operation"), _find(edit, "target")
            if op_node is None or target_node is None:
                kept += 1
                continue
            op, target = _value(op_node), _value(target_node)
            value_node = _find(edit, "value")
            value = _any_tree(value_node) if value_node is not None else ffi.NULL
            verdict = self._edit(op, target, value)
            if verdict == "drop":
                lib.lyd_free_tree(edit)
                continue
            if verdict == "merge":
                if lib.lyd_new_path(edit, ffi.NULL, b"operation", b"merge", lib.LYD_NEW_PATH_UPDATE,
                                    ffi.NULL) != 0:
                    raise KnownError("an edit's operation could not be set")
            kept += 1
        return kept

    def _edit(self, op: str, target: str, value: Any) -> str:
        """What to do with one edit ("keep", "drop", "merge"), the copy changed as the subscriber's will be."""
        ffi, lib = _ly()
        held = self._find(target)
        if op in _REMOVALS:
            if held is None:
                return "drop"
            # freed once the deletes that follow are seen: srsn deletes a container and then each of its entries
            # (the patch as srsn made it: each entry's delete is kept, as it held them)
            self._removed.append((target, held))
            return "keep"
        if op not in _CHANGES:
            return "keep"  # insert, move: user-ordered lists, not followed
        self._free_removed()
        if value == ffi.NULL:
            raise KnownError(f"a {op} edit without a value")
        top, node = self._typed(target, value)
        try:
            if held is not None and op == "create":
                # srsn's create of a node the subscriber holds: of push data (an entry with its pushed leaves
                # only) or of a poll's difference made before the subscription; what it adds, if anything, is a
                # merge
                before = _print(held)
                self._merge(top)
                after = self._find(target)
                return "drop" if after is not None and _print(after) == before else "merge"
            if held is not None:
                if _print(held) == _print(node):
                    return "drop"
                self._free_node(held)
            self._merge(top)
            return "keep"
        finally:
            lib.lyd_free_all(top)

    def _typed(self, target: str, value: Any) -> tuple[Any, Any]:
        """srsn's value (opaque nodes: the anydata of a parsed notification has no schema) as data of the context:
        (the top of a new tree with `target`'s parents, the node at `target`). :raises KnownError:"""
        ffi, lib = _ly()
        ctx = ffi.cast("struct ly_ctx *", self._ctx)
        out = ffi.new("struct lyd_node **")
        up = parent_path(target)
        top, parent = ffi.NULL, ffi.NULL
        if up:
            if lib.lyd_new_path(ffi.NULL, ctx, up.encode(), ffi.NULL, 0, out) != 0:
                raise KnownError(f"{up} could not be made")
            top = out[0]
            parent = _find(top, up)
            if parent is None:
                lib.lyd_free_all(top)
                raise KnownError(f"{up} made but not found")
        text = ffi.new("char[]", _print(value))
        ly_in = ffi.new("struct ly_in **")
        if lib.ly_in_new_memory(text, ly_in) != 0:
            raise KnownError("no input")
        try:
            rc = lib.lyd_parse_data(ctx, parent, ly_in[0], lib.LYD_XML, lib.LYD_PARSE_ONLY | lib.LYD_PARSE_STRICT, 0,
                                    out)
        finally:
            lib.ly_in_free(ly_in[0], 0)
        if rc != 0:
            if top != ffi.NULL:
                lib.lyd_free_all(top)
            raise KnownError(f"the value of {target} does not parse")
        if top == ffi.NULL:
            top = out[0]
        node = _find(top, target)
        if node is None:
            lib.lyd_free_all(top)
            raise KnownError(f"the value of {target} is not {target}")
        return top, node

    def _merge(self, top: Any) -> None:
        """A tree (`_typed`'s) merged into the copy: its leaves set, the copy's other nodes kept."""
        ffi, lib = _ly()
        first = ffi.new("struct lyd_node **", self._tree if self._tree is not None else ffi.NULL)
        # every leaf of the value, a default or not (it is what srsn says the node holds)
        if lib.lyd_merge_siblings(first, top, lib.LYD_MERGE_DEFAULTS) != 0:
            raise KnownError("a value could not be merged")
        self._tree = first[0] if first[0] != ffi.NULL else None

    def _free_removed(self) -> None:
        """Frees the nodes deleted so far, outermost first (an inner one goes with it)."""
        removed, self._removed = sorted(self._removed, key=lambda r: len(r[0])), []
        freed: list[str] = []
        for path, node in removed:
            if any(path == f or path.startswith(f + "/") for f in freed):
                continue
            self._free_node(node)
            freed.append(path)

    def _find(self, path: str) -> Any:
        ffi, lib = _ly()
        if self._tree is None:
            return None
        out = ffi.new("struct lyd_node **")
        if lib.lyd_find_path(self._tree, path.encode(), 0, out) != 0 or out[0] == ffi.NULL:
            return None
        return out[0]

    def _free_node(self, node: Any) -> None:
        ffi, lib = _ly()
        if node == self._tree:  # the first top-level node: the next one is first now
            self._tree = node.next if node.next != ffi.NULL else None
        lib.lyd_free_tree(node)

def _children(node: Any) -> list[Any]:
    ffi, lib = _ly()
    out = []
    child = lib.lyd_child(node)
    while child != ffi.NULL:
        out.append(child)
        child = child.next
    return out


def _find(node: Any, path: str) -> Any:
    ffi, lib = _ly()
    out = ffi.new("struct lyd_node **")
    if lib.lyd_find_path(node, path.encode(), 0, out) != 0 or out[0] == ffi.NULL:
        return None
    return out[0]


def _value(node: Any) -> str:
    ffi, lib = _ly()
    return str(ffi.string(lib.lyd_get_value(node)).decode())


def _any_tree(node: Any) -> Any:
    """The data tree of an anydata node (NULL: empty); KnownError when it holds something else."""
    ffi, lib = _ly()
    any_node = ffi.cast("struct lyd_node_any *", node)
    if any_node.value_type != lib.LYD_ANYDATA_DATATREE:
        raise KnownError(f"anydata of value type {int(any_node.value_type)}")
    return any_node.value.tree


def _print(node: Any) -> bytes:
    """A node's subtree as XML with every default leaf: a read flags defaults, srsn's values do not, and both
    print children in the schema's order (two nodes print the same: they hold the same)."""
    ffi, lib = _ly()
    out = ffi.new("char **")
    if lib.lyd_print_mem(out, node, lib.LYD_XML, lib.LYD_PRINT_SHRINK | lib.LYD_PRINT_WD_ALL) != 0:
        raise KnownError("a node could not be printed")
    if out[0] == ffi.NULL:
        return b""
    try:
        return bytes(ffi.string(out[0]))
    finally:
        lib.free(out[0])

"""sysrepo's change list as the agent needs it, read straight from the change tree inside the change callback.

The binding's safe subscription builds a Change for every node by printing its XPath and, for every container and
list entry, the whole subtree as a dict (`print_dict`): for a commit of 10,000 endpoints that took longer than the
callback itself and, with it, sysrepo's 5 s timeout. Here each node gives only what `mapping.changed_units` uses:
its path as segments (schema name, list key or leaf-list value: what `mapping.split_path` makes of the printed
XPath, without printing and parsing it) and, for a leaf, its typed value (as the binding gives it).
"""

from __future__ import annotations

from typing import Any

import libyang
from _libyang import ffi as ly_ffi
from _libyang import lib as ly_lib

from singbox_agent.agent.mapping import Change, Segment, unit_of
from singbox_agent.mgmt import libsysrepo

# as the binding's change list (include_implicit_defaults=True): default nodes in, empty non-presence containers out
_PRINT_FLAGS = ly_lib.LYD_PRINT_WD_ALL
_TERM = ly_lib.LYS_LEAF | ly_lib.LYS_LEAFLIST
_LIST = ly_lib.LYS_LIST
_LEAFLIST = ly_lib.LYS_LEAFLIST
_DEFAULT = ly_lib.LYD_DEFAULT
_NUM_TYPES = frozenset(libyang.Type.NUM_TYPES)


def _leaf_value(node: Any) -> Any:
    """A leaf's typed value, as the binding's `DLeaf.value()` gives it, without building libyang Type objects."""
    text = ly_ffi.string(ly_lib.lyd_get_value(node)).decode()
    value = ly_ffi.cast("struct lyd_node_term *", node).value
    base = value.realtype.basetype
    if base == ly_lib.LY_TYPE_UNION:
        base = value.subvalue.value.realtype.basetype
    if base in _NUM_TYPES:
        return int(text)
    if base == ly_lib.LY_TYPE_BOOL:
        return text == "true"
    if base == ly_lib.LY_TYPE_DEC64:
        return float(text)
    if base == ly_lib.LY_TYPE_EMPTY:
        return None
    return text


# a schema node's name and type, by the schema node (cffi pointers hash and compare by address, whatever their type)
Names = dict[Any, tuple[str, int]]


def _schema(schema: Any, names: Names) -> tuple[str, int]:
    found = names.get(schema)
    if found is None:
        found = names[schema] = (ly_ffi.string(schema.name).decode(), schema.nodetype)
    return found


_DIFF_OPS = {b"create": "created", b"replace": "modified", b"delete": "deleted"}  # "none": an ancestor only
_WHOLE = (b"create", b"delete")  # operations a node's whole subtree shares


def _own_op(node: Any) -> bytes | None:
    """The node's `yang:operation` in sysrepo's diff; None when it inherits its parent's."""
    meta = node.meta
    while meta != ly_ffi.NULL:
        if ly_ffi.string(meta.name) == b"operation":
            return bytes(ly_ffi.string(meta.value.enum_item.name))  # an enumeration annotation
        meta = meta.next
    return None


def read_changes(session: Any, xpath: str) -> list[Change]:
    """The changes under `xpath` (a top-level node, "/module:name") of the commit `session` (the callback's
    implicit sysrepo session) carries, parents before children.

    Walks sysrepo's diff tree itself (`sr_get_change_diff`) rather than sysrepo's change iterator, which visits
    every node of the diff one call at a time (~130,000 for 10,000 new endpoints, ~100,000 of them default leaves):
    a created default node is skipped with its subtree, and so is everything under a deleted unit entry (an
    endpoint, an interface, ...: the unit going says it all). A node's operation is its own `yang:operation` or
    its parent's; "none" marks an ancestor of changes, not a change."""
    module, _, name = xpath.lstrip("/").partition(":")
    address = libsysrepo.change_diff(session)
    out: list[Change] = []
    names: Names = {}
    top = ly_ffi.cast("struct lyd_node *", address) if address else ly_ffi.NULL
    while top != ly_ffi.NULL:
        schema = top.schema
        if (schema != ly_ffi.NULL and ly_ffi.string(schema.name).decode() == name
                and ly_ffi.string(schema.module.name).decode() == module):
            _walk(top, None, [], out, names)
        top = top.next
    return out


def _walk(node: Any, inherited: bytes | None, head: list[Segment], out: list[Change], names: Names) -> None:
    # Under a created or deleted node every node is created or deleted too: its own annotation, if it has one
    # (validation's defaults carry theirs), says the same, so it is not looked for.
    diff_op = inherited if inherited in _WHOLE else (_own_op(node) or inherited)
    op = _DIFF_OPS.get(diff_op) if diff_op is not None else None
    # A default node created says nothing `mapping.derive` does not know (a leaf the data leaves out takes its
    # default from the schema), nor does anything under it: ~10 of the ~13 nodes of a new endpoint. A leaf
    # modified to its default (its value deleted) is not skipped: it replaces the value the unit had.
    if op == "created" and node.flags & _DEFAULT:
        return
    name, nodetype = _schema(node.schema, names)
    key: str | None = None
    if nodetype == _LIST:
        first = ly_lib.lyd_child(node)  # a list entry's keys come first; this model's lists have one
        if first != ly_ffi.NULL:
            key = ly_ffi.string(ly_lib.lyd_get_value(first)).decode()
    elif nodetype == _LEAFLIST:
        key = ly_ffi.string(ly_lib.lyd_get_value(node)).decode()
    segments = [*head, (name, key)]
    if nodetype & _TERM:
        if op == "modified" and nodetype == _LEAFLIST:
            return  # moved: user-ordered leaf-lists only, none in this model
        if op is not None:
            out.append(Change(op, "", _leaf_value(node) if op != "deleted" else None, segments))
        return
    if op == "modified":
        return  # a list entry moved: user-ordered lists only, none in this model
    # as the binding's change list (include_implicit_defaults=True): empty non-presence containers left out
    if op is not None and ly_lib.lyd_node_should_print(node, _PRINT_FLAGS):
        out.append(Change(op, "", {} if op != "deleted" else None, segments))
        if op == "deleted" and nodetype == _LIST:
            located = unit_of(segments)
            if located is not None and len(located[0]) > 1 and not located[1]:
                return  # a unit entry gone: nothing under it matters
    created = op == "created"
    child = ly_lib.lyd_child(node)
    while child != ly_ffi.NULL:
        # The default children of a created node are skipped here, without a call: created too, whether they
        # inherit the operation or carry their own (the defaults validation added: ~8 of a new endpoint's ~13 nodes).
        if not (created and child.flags & _DEFAULT):
            _walk(child, diff_op, segments, out, names)
        child = child.next

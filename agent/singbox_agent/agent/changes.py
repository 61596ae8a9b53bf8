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
from _sysrepo import ffi as sr_ffi
from _sysrepo import lib as sr_lib
from sysrepo.errors import SysrepoError, check_call
from sysrepo.util import str2c

from singbox_agent.agent.mapping import Change, Segment, unit_of

_OPS = {sr_lib.SR_OP_CREATED: "created", sr_lib.SR_OP_MODIFIED: "modified", sr_lib.SR_OP_DELETED: "deleted"}
# as the binding's change list (include_implicit_defaults=True): default nodes in, empty non-presence containers out
_PRINT_FLAGS = ly_lib.LYD_PRINT_WD_ALL
_TERM = ly_lib.LYS_LEAF | ly_lib.LYS_LEAFLIST
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


def _segments(node: Any, cache: dict[Any, list[Segment]], names: Names) -> list[Segment]:
    """The node's path from the top, as `mapping.split_path` gives it; parents' segments come from `cache`."""
    parent = node.parent
    if parent == ly_ffi.NULL:
        head: list[Segment] = []
    else:
        found = cache.get(parent)
        if found is None:
            found = cache[parent] = _segments(ly_ffi.cast("struct lyd_node *", parent), cache, names)
        head = found
    name, nodetype = _schema(node.schema, names)
    key: str | None = None
    if nodetype == ly_lib.LYS_LIST:
        first = ly_lib.lyd_child(node)  # a list entry's keys come first; this model's lists have one
        if first != ly_ffi.NULL:
            key = ly_ffi.string(ly_lib.lyd_get_value(first)).decode()
    elif nodetype == ly_lib.LYS_LEAFLIST:
        key = ly_ffi.string(ly_lib.lyd_get_value(node)).decode()
    return [*head, (name, key)]


def read_changes(session: Any, xpath: str) -> list[Change]:
    """The changes under `xpath` of the commit `session` (the callback's implicit sysrepo session) carries."""
    iter_p = sr_ffi.new("sr_change_iter_t **")
    check_call(sr_lib.sr_get_changes_iter, session.cdata, str2c(xpath + "//."), iter_p)
    op_p = sr_ffi.new("sr_change_oper_t *")
    node_p = sr_ffi.new("struct lyd_node **")
    prev_val_p = sr_ffi.new("char **")
    prev_list_p = sr_ffi.new("char **")
    prev_dflt_p = sr_ffi.new("int *")
    out: list[Change] = []
    cache: dict[Any, list[Segment]] = {}
    names: Names = {}
    # Deleted unit entries (an endpoint, an interface, ...) and everything under them: sysrepo reports each node
    # of a deleted subtree (~13 per endpoint, defaults included), the unit going says it all.
    gone: set[Any] = set()
    try:
        next_change = sr_lib.sr_get_change_tree_next
        while True:
            # called directly: the binding's check_call wrapper cost as much as the call, ~130,000 times for
            # 10,000 new endpoints (sysrepo iterates the default nodes skipped below too)
            ret = next_change(session.cdata, iter_p[0], op_p, node_p, prev_val_p, prev_list_p, prev_dflt_p)
            if ret == sr_lib.SR_ERR_NOT_FOUND:
                break
            if ret != sr_lib.SR_ERR_OK:
                raise SysrepoError.new("sr_get_change_tree_next failed", ret)
            op = _OPS.get(op_p[0])
            if op is None:  # moved: user-ordered lists only, none in this model
                continue
            node = ly_ffi.cast("struct lyd_node *", node_p[0])
            nodetype = _schema(node.schema, names)[1]
            if op == "deleted" and gone and node.parent in gone:
                if not nodetype & _TERM:
                    gone.add(node)
                continue
            # A default node created says nothing `mapping.derive` does not know (a leaf the data leaves out
            # takes its default from the schema): ~10 of the ~13 nodes of a new endpoint, skipped. A leaf
            # modified to its default (its value deleted) is not skipped: it replaces the value the unit had.
            if op == "created" and node.flags & ly_lib.LYD_DEFAULT:
                continue
            value: Any = None
            if nodetype & _TERM:  # printed in every with-defaults mode: no need to ask libyang
                if op != "deleted":
                    value = _leaf_value(node)
            else:
                if not ly_lib.lyd_node_should_print(node, _PRINT_FLAGS):
                    continue
                if op != "deleted":
                    value = {}  # a container or list entry: `apply_change` needs only to know it is one
            segments = _segments(node, cache, names)
            if op == "deleted" and nodetype == ly_lib.LYS_LIST:
                located = unit_of(segments)
                if located is not None and len(located[0]) > 1 and not located[1]:
                    gone.add(node)
            out.append(Change(op, "", value, segments))
    finally:
        sr_lib.sr_free_change_iter(iter_p[0])
    return out

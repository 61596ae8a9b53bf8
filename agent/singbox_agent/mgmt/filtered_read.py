"""Reads with a filter that no NACM-hidden node can influence (RFC 8341 3.4.5), for NETCONF and RESTCONF.

sysrepo evaluates a read's XPath on the whole datastore and prunes what NACM hides only from the result: a predicate
on a hidden node (`endpoint[starts-with(password,'a')]`, `count(...)`, a subtree filter's content match on a
password) still decides which visible nodes come back, so a user who may not read a secret could learn it one
character at a time. Here a filter that could look at values — anything beyond a plain location path — is evaluated
by libyang on a copy of the data that is already NACM-pruned for the session's user: sysrepo reads the top-level
nodes of the modules the expression names (all of them when it can wander: wildcards, `//`, axes, `..`, `deref()`),
with the user's NACM applied, and the expression runs on that tree only. A hidden node is simply absent there, so no
predicate, function or content match can see it. Sessions without a NACM user (unrestricted: they see everything)
and plain paths (no predicate, no function: what they select does not depend on any value) read through sysrepo
directly, as before.

Notifications: sysrepo checks a realtime notification's NACM before it applies a subscription's filter, but replays
stored notifications with no NACM check at all; `notification_readable` is the check every delivery makes.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import libyang
import sysrepo
from _libyang import ffi as ly_ffi
from _libyang import lib as ly_lib

from singbox_agent.mgmt import nacm
from singbox_agent.mgmt.errors import invalid_value

ALL = "/*"

# A module prefix of a step (outside string literals), and the constructs whose targets a prefix does not name.
_LITERAL_OR_PREFIX = re.compile(r"('[^']*'|\"[^\"]*\")|([A-Za-z_][\w.-]*):(?![:])")
_LITERAL = re.compile(r"'[^']*'|\"[^\"]*\"")
_WANDERS = re.compile(r"//|\.\.|::|deref\s*\(|(?<![\w.:-])\*")
# What makes the selection depend on other nodes (whose presence or value NACM may hide): predicates, function
# calls, and steps back up (`password/..` selects an entry because it has a password).
_VALUE_DEPENDENT = re.compile(r"[\[(]|\.\.|::")

_DATA_KEYWORDS = frozenset({"container", "list", "leaf", "leaf-list", "anydata", "anyxml"})
_DUP_FLAGS = ly_lib.LYD_DUP_RECURSIVE | ly_lib.LYD_DUP_WITH_PARENTS | ly_lib.LYD_DUP_WITH_FLAGS


def restricted(sess: Any) -> bool:
    """Whether reads of `sess` are NACM-filtered (it has a NACM user)."""
    return nacm.nacm_user(sess) is not None


def needs_pruned_evaluation(sess: Any, xpath: str) -> bool:
    """Whether sysrepo must not evaluate `xpath` itself for this session: it is restricted and what the expression
    selects depends on other nodes (predicates, functions, parent steps)."""
    return bool(_VALUE_DEPENDENT.search(_LITERAL.sub("''", xpath))) and restricted(sess)


def scope(ctx: libyang.Context, xpath: str) -> str:
    """A plain XPath reading every top-level node `xpath` can reach: those of the modules it names, or everything."""
    if _WANDERS.search(_LITERAL.sub("''", xpath)):
        return ALL
    parts: list[str] = []
    for name in sorted({m.group(2) for m in _LITERAL_OR_PREFIX.finditer(xpath) if m.group(2)}):
        module = ctx.get_module(name)
        if module is None or not module.implemented():
            continue
        for node in module.children():
            if node.keyword() not in _DATA_KEYWORDS:
                continue
            parts.append(f"/{name}:{node.name()}")
    return " | ".join(parts) if parts else ALL


def _oper_flags(ds: str, no_state: bool, no_config: bool) -> dict[str, bool]:
    return {"no_state": no_state, "no_config": no_config} if ds == "operational" else {}


@contextmanager
def read(sess: Any, ds: str, xpath: str, *, max_depth: int = 0, no_state: bool = False,
         no_config: bool = False) -> Iterator[libyang.DNode | None]:
    """The data of `ds` selected by `xpath` as seen by the session's NACM user, or None when nothing is selected.

    The tree (all its siblings) is valid inside the `with` block. `sess` is switched to `ds`.
    :raises MgmtException: invalid-value for an expression libyang cannot evaluate on the pruned data.
    """
    sess.switch_datastore(ds)
    flags = _oper_flags(ds, no_state, no_config)
    if not needs_pruned_evaluation(sess, xpath):
        try:
            cm = sess.get_data_ly(xpath, max_depth=max_depth, **flags)
            tree = cm.__enter__()
        except sysrepo.SysrepoNotFoundError:
            yield None
            return
        try:
            yield tree
        finally:
            cm.__exit__(None, None, None)
        return
    selected = _select_on_pruned(sess, ds, xpath, max_depth, flags)
    try:
        yield selected
    finally:
        if selected is not None:
            selected.free()


def selected_paths(sess: Any, ds: str, xpath: str, *, no_state: bool = False, no_config: bool = False) -> str | None:
    """An XPath made of plain paths (list keys only) selecting what `xpath` selects for the session's NACM user;
    `xpath` itself when sysrepo may evaluate it; None when it selects nothing. For readers that need sysrepo's own
    read (origin annotations)."""
    if not needs_pruned_evaluation(sess, xpath):
        return xpath
    sess.switch_datastore(ds)
    with _pruned(sess, ds, xpath, _oper_flags(ds, no_state, no_config)) as source:
        if source is None:
            return None
        paths = [_path(n) for n in _top_selected(_find(source, xpath))]
    return " | ".join(paths) if paths else None


def notification_readable(sess: Any, notification: libyang.DNode) -> bool:
    """Whether the session's NACM user may receive this notification (RFC 8341 3.4.6); `notification` is any node
    of its tree."""
    return nacm.check_operation(sess, notification.root().cdata)


# --- evaluation on the pruned copy -------------------------------------------------------------------------------


@contextmanager
def _pruned(sess: Any, ds: str, xpath: str, flags: dict[str, bool]) -> Iterator[libyang.DNode | None]:
    """The NACM-pruned data `xpath` can reach (sysrepo applies the session's NACM to a plain read)."""
    ctx = sess.acquire_context()
    try:
        where = scope(ctx, xpath)
    finally:
        sess.release_context()
    try:
        cm = sess.get_data_ly(where, **flags)
        tree = cm.__enter__()
    except sysrepo.SysrepoNotFoundError:
        yield None
        return
    try:
        yield tree
    finally:
        cm.__exit__(None, None, None)


def _find(source: libyang.DNode, xpath: str) -> list[Any]:
    """The nodes `xpath` selects in `source` (cdata pointers, document order)."""
    out = ly_ffi.new("struct ly_set **")
    ret = ly_lib.lyd_find_xpath(ly_ffi.cast("struct lyd_node *", source.cdata), xpath.encode(), out)
    if ret != ly_lib.LY_SUCCESS:
        detail = source.context.error("the expression cannot be evaluated")
        raise invalid_value(f"Invalid XPath filter: {detail}", error_type="application")
    found = out[0]
    try:
        return [found.dnodes[i] for i in range(found.count)]
    finally:
        ly_lib.ly_set_free(found, ly_ffi.NULL)


def _top_selected(nodes: list[Any]) -> list[Any]:
    """`nodes` without those below another selected node (their subtree comes with it)."""
    chosen = {int(ly_ffi.cast("uintptr_t", n)) for n in nodes}
    out = []
    for node in nodes:
        parent = ly_ffi.cast("struct lyd_node *", node.parent)
        while parent != ly_ffi.NULL and int(ly_ffi.cast("uintptr_t", parent)) not in chosen:
            parent = ly_ffi.cast("struct lyd_node *", parent.parent)
        if parent == ly_ffi.NULL:
            out.append(node)
    return out


def _path(node: Any) -> str:
    raw = ly_lib.lyd_path(node, ly_lib.LYD_PATH_STD, ly_ffi.NULL, 0)
    try:
        return str(ly_ffi.string(raw).decode())
    finally:
        ly_lib.free(raw)


def _select_on_pruned(sess: Any, ds: str, xpath: str, max_depth: int,
                      flags: dict[str, bool]) -> libyang.DNode | None:
    with _pruned(sess, ds, xpath, flags) as source:
        if source is None:
            return None
        result = ly_ffi.new("struct lyd_node **")
        dup = ly_ffi.new("struct lyd_node **")
        try:
            for node in _top_selected(_find(source, xpath)):
                if ly_lib.lyd_dup_single(node, ly_ffi.NULL, _DUP_FLAGS, dup) != ly_lib.LY_SUCCESS:
                    raise source.context.error("cannot copy the selected data")
                if max_depth:
                    _trim(dup[0], max_depth)
                top = dup[0]
                while top.parent != ly_ffi.NULL:
                    top = ly_ffi.cast("struct lyd_node *", top.parent)
                if ly_lib.lyd_merge_siblings(result, top, ly_lib.LYD_MERGE_DESTRUCT) != ly_lib.LY_SUCCESS:
                    ly_lib.lyd_free_all(top)
                    raise source.context.error("cannot merge the selected data")
        except BaseException:
            if result[0] != ly_ffi.NULL:
                ly_lib.lyd_free_all(result[0])
            raise
        if result[0] == ly_ffi.NULL:
            return None
        return libyang.DNode.new(source.context, ly_lib.lyd_first_sibling(result[0]))


def _trim(node: Any, depth: int) -> None:
    """sysrepo's max-depth on a copied subtree: descendants deeper than `depth` go (1: the node alone), list keys
    always stay."""
    child = ly_lib.lyd_child(node)
    while child != ly_ffi.NULL:
        following = child.next
        if depth <= 1:
            if child.schema == ly_ffi.NULL or not child.schema.flags & ly_lib.LYS_KEY:
                ly_lib.lyd_free_tree(child)
        else:
            _trim(child, depth - 1)
        child = following

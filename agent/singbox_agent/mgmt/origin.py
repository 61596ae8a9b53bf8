"""NMDA origin (RFC 8342 5.3.4, RFC 8526 3.1.1): reading the operational datastore with `or:origin` annotations,
origin-filter / negated-origin-filter, with-origin.

sysrepo annotates operational data itself when asked (SR_OPER_WITH_ORIGIN; sysrepo-python 1.7 does not pass that
flag, so `sr_get_data` is called through `mgmt/libsysrepo.get_data`); a node without an annotation has its parent's origin, and the
top of the tree without one is `or:unknown` (ietf-netconf-nmda's origin-filters description).

Filtering is node by node, as the filter's description reads: a configuration node is kept when its origin matches,
or when a descendant is kept (it carries that descendant); list keys go with their entry; state nodes are not
affected. netopeer2 drops a non-matching subtree whole, hiding a matching leaf under a differently-originated
parent; that is the difference.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import libyang

from singbox_agent.mgmt import libsysrepo

ORIGIN_META = "origin"
UNKNOWN = "ietf-origin:unknown"


@contextmanager
def operational_with_origin(
    sess: Any,
    xpath: str,
    *,
    origins: set[str] | None = None,
    negated: bool = False,
    defaults_printed: bool = False,
    max_depth: int = 0,
    no_state: bool = False,
    no_config: bool = False,
) -> Iterator[libyang.DNode | None]:
    """The operational data selected by `xpath` with sysrepo's `or:origin` annotations, filtered by origin when
    `origins` is given (the identities that match, `negated` to invert; `filter_origin`), None when nothing is
    selected; freed on exit. `sess` must be on the operational datastore; NACM applies as for any read of the
    session. Both servers read NMDA origin through here: NETCONF's get-data and RESTCONF's with-origin."""
    flags = libsysrepo.OPER_WITH_ORIGIN
    if no_state:
        flags |= libsysrepo.OPER_NO_STATE
    if no_config:
        flags |= libsysrepo.OPER_NO_CONFIG
    ctx = sess.acquire_context()
    tree: libyang.DNode | None = None
    try:
        with libsysrepo.get_data(sess, xpath, max_depth, flags) as data:
            # A copy of our own: filtering frees nodes, which must not happen inside sysrepo's sr_data_t.
            if data is not None:
                tree = libyang.DNode.new(ctx, data).duplicate(with_siblings=True, recursive=True,
                                                              with_flags=True).first_sibling()
        if tree is not None:
            tree = filter_origin(tree, origins, negated=negated, defaults_printed=defaults_printed)
        yield tree
    finally:
        if tree is not None:
            tree.free(with_siblings=True)
        sess.release_context()


def read_operational(
    sess: Any,
    xpath: str,
    *,
    print_tree: Callable[[libyang.DNode], str],
    origins: set[str] | None = None,
    negated: bool = False,
    defaults_printed: bool = False,
    with_origin: bool = False,
    max_depth: int = 0,
    no_state: bool = False,
    no_config: bool = False,
) -> str:
    """`operational_with_origin` printed by `print_tree`, annotated with `or:origin` when `with_origin`; "" when
    nothing is selected."""
    with operational_with_origin(sess, xpath, origins=origins, negated=negated, defaults_printed=defaults_printed,
                                 max_depth=max_depth, no_state=no_state, no_config=no_config) as tree:
        if tree is None:
            return ""
        if with_origin:
            return print_tree(tree)
        plain = without_origin(tree)
        try:
            return print_tree(plain)
        finally:
            plain.free(with_siblings=True)


def derived_or_self(ctx: libyang.Context, identity: str) -> set[str]:
    """`identity` ("module:name") and every identity derived from it, transitively, as "module:name"."""
    module_name, _, name = identity.partition(":")
    module = ctx.get_module(module_name)
    start = next((i for i in module.identities() if i.name() == name), None)
    if start is None:
        return set()
    out: set[str] = set()
    todo = [start]
    while todo:
        ident = todo.pop()
        qualified = f"{ident.module().name()}:{ident.name()}"
        if qualified not in out:
            out.add(qualified)
            todo.extend(ident.derived())
    return out


def _is_state(node: libyang.DNode) -> bool:
    return bool(node.schema().config_false())


def _is_key(node: libyang.DNode) -> bool:
    schema = node.schema()
    return isinstance(schema, libyang.SLeaf) and schema.is_key()


def _is_container(node: libyang.DNode) -> bool:
    return isinstance(node, libyang.DContainer)


def _children(node: libyang.DNode) -> list[libyang.DNode]:
    return list(node.children()) if isinstance(node, libyang.DContainer) else []


def filter_origin(
    tree: libyang.DNode | None, origins: set[str] | None, *, negated: bool = False, defaults_printed: bool = False
) -> libyang.DNode | None:
    """Keep the configuration nodes whose origin is in `origins` (not in it when `negated`; every one when `origins`
    is None), with what they need (ancestors, keys) and the state nodes below what stays. Frees what goes; returns
    the first remaining top-level node or None.

    Default nodes are dropped when the reply's with-defaults mode does not report them: libyang prints a default node
    that carries an annotation even in explicit mode, and a list entry would otherwise stay, printed as a bare key,
    because of defaults nobody sees. For the same reason state nodes make their ancestors stay only when they hold
    something printable (sysrepo adds empty state containers).
    """

    def matches(origin: str) -> bool:
        return origins is None or (origin in origins) != negated

    def printable(node: libyang.DNode) -> bool:
        if node.is_default() and not defaults_printed:
            return False
        if not _is_container(node):
            return True
        schema = node.schema()
        if isinstance(node, libyang.DList) or (isinstance(schema, libyang.SContainer) and schema.presence()):
            return True
        return any(printable(c) for c in _children(node))

    def keep(node: libyang.DNode, inherited: str) -> bool:
        if node.is_default() and not defaults_printed:
            return False
        if _is_state(node):
            return printable(node)
        origin = node.get_meta(ORIGIN_META) or inherited
        kept_child = False
        for child in _children(node):
            if _is_key(child):
                continue
            if keep(child, origin):
                kept_child = True
            elif not _is_state(child):  # state nodes are not filtered (RFC 8526); empty ones go unprinted anyway
                child.free(with_siblings=False)
        return kept_child or matches(origin)

    if tree is None:
        return None
    remaining: list[libyang.DNode] = []
    for top in list(tree.siblings()):
        if keep(top, UNKNOWN):
            remaining.append(top)
        else:
            top.free(with_siblings=False)
    return remaining[0] if remaining else None


def without_origin(tree: libyang.DNode) -> libyang.DNode:
    """A copy of `tree` (all siblings) without annotations; the caller frees it."""
    return tree.duplicate(with_siblings=True, recursive=True, with_flags=True, no_meta=True).first_sibling()

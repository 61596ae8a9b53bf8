"""The edit units of an edit-config, for error-option stop-on-error and continue-on-error (RFC 6241 7.2).

sysrepo applies one edit batch all-or-nothing, which is rollback-on-error. The other two options need the edit cut
into pieces that are applied one after the other, so that what comes before a failing piece stays applied. A unit
is the smallest piece that still means what the client wrote:

- a node that carries an `nc:operation` attribute, with its whole subtree (the operation is about all of it);
- a list entry, leaf, leaf-list entry or any* node, with its subtree (a list entry with only some of its leaves
  could fail validation that the whole entry passes: mandatory leaves, unique);
- an empty container.

Containers without an operation only select where their children go, so the walk goes through them. Units come in
document order: libyang keeps siblings in schema order, so the order is taken from the request's own XML, matched
element by element.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable

import libyang

from singbox_agent.netconf.messages import split_qname

OPERATION_META = "operation"  # ietf-netconf's annotation, as libyang names it on a data node


def _is_container(node: libyang.DNode) -> bool:
    return isinstance(node, libyang.DContainer) and not isinstance(node, libyang.DList)


def _children(node: libyang.DNode) -> list[libyang.DNode]:
    if isinstance(node, libyang.DContainer):
        return list(node.children())
    return []


def _keys(node: libyang.DList) -> list[libyang.DLeaf]:
    out: list[libyang.DLeaf] = []
    for child in node.children():
        schema = child.schema()
        if isinstance(child, libyang.DLeaf) and isinstance(schema, libyang.SLeaf) and schema.is_key():
            out.append(child)
    return out


def _identity(node: libyang.DNode) -> tuple[str, ...]:
    """What tells instances of one schema node apart: list keys, a leaf-list value; nothing for the rest."""
    if isinstance(node, libyang.DList):
        return tuple(str(k.value()) for k in _keys(node))
    if isinstance(node, libyang.DLeafList):
        return (str(node.value()),)
    return ()


def _element_identity(element: ET.Element, node: libyang.DNode) -> tuple[str, ...]:
    if isinstance(node, libyang.DList):
        names = [k.name() for k in _keys(node)]
        by_name = {split_qname(c.tag)[1]: (c.text or "").strip() for c in element}
        return tuple(by_name.get(n, "") for n in names)
    if isinstance(node, libyang.DLeafList):
        return ((element.text or "").strip(),)
    return ()


def _in_document_order(
    nodes: list[libyang.DNode], elements: list[ET.Element] | None, module_of_ns: Callable[[str], str | None]
) -> list[tuple[libyang.DNode, ET.Element | None]]:
    """`nodes` (libyang siblings) paired with their XML elements, in the elements' order. libyang sorts siblings
    (schema order; ordered-by-system instances by key), so instances are matched by identity (keys, leaf-list
    value), the rest by name. Nodes no element matched keep libyang's order at the end: a mismatch (a key written
    in a non-canonical form) changes the order, never the content."""
    if elements is None:
        return [(n, None) for n in nodes]
    candidates: dict[tuple[str | None, str], list[libyang.DNode]] = {}
    for node in nodes:
        candidates.setdefault((node.module().name(), node.name()), []).append(node)
    out: list[tuple[libyang.DNode, ET.Element | None]] = []
    matched: set[int] = set()
    for element in elements:
        ns, name = split_qname(element.tag)
        same = candidates.get((module_of_ns(ns), name))
        if not same:
            continue
        wanted = _element_identity(element, same[0])
        for i, node in enumerate(same):
            if _identity(node) == wanted:
                out.append((node, element))
                matched.add(id(node))
                del same[i]
                break
    out.extend((n, None) for n in nodes if id(n) not in matched)
    return out


def edit_units(
    tree: libyang.DNode, config: ET.Element | None, module_of_ns: Callable[[str], str | None]
) -> list[libyang.DNode]:
    """The units of the edit whose top-level siblings start at `tree`, in the document order of `config` (the
    request's `<config>` element; None: libyang's order). The nodes belong to `tree`."""
    units: list[libyang.DNode] = []

    def walk(pairs: Iterable[tuple[libyang.DNode, ET.Element | None]]) -> None:
        for node, element in pairs:
            kids = _children(node)
            if _is_container(node) and kids and node.get_meta(OPERATION_META) is None:
                walk(_in_document_order(kids, list(element) if element is not None else None, module_of_ns))
            else:
                units.append(node)

    top = list(tree.siblings())
    walk(_in_document_order(top, list(config) if config is not None else None, module_of_ns))
    return units


def chunk_tree(units: list[libyang.DNode]) -> libyang.DNode:
    """One edit tree holding copies of `units` with their ancestors (no attributes on the ancestors, so they keep
    selecting only). The caller frees it (`free()` frees all top-level siblings)."""
    merged: libyang.DNode | None = None
    for unit in units:
        copy = unit.duplicate(recursive=True, with_parents=True).root()
        if merged is None:
            merged = copy
        else:
            try:
                merged.merge(copy, with_siblings=True)
            finally:
                copy.free()
    if merged is None:
        raise ValueError("no units")
    return merged.first_sibling()


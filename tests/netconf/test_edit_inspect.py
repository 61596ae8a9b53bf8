"""`ops.common._inspect`, the walk that finds a node given twice in one edit (RFC 6241: not 'last one wins') and
two cases of one choice, tells list entries and leaf-list values apart by the hash libyang keeps in each node and
compares their keys or values only when two hashes meet. Hashes of different entries can be equal: such entries
are still different, and a later entry equal to either is still found (the hashes forced equal here)."""

from __future__ import annotations

from typing import Any

import libyang
import pytest
from _libyang import ffi as ly_ffi
from _libyang import lib as ly_lib

from singbox_agent.netconf.ops.common import _inspect
from tests.yang.yangmodel import new_context

SBX = "urn:vpp-singbox:yang:vpp-singbox"


def ep(name: str) -> str:
    return f"<endpoint><name>{name}</name><address>198.18.0.1</address></endpoint>"


def iface(name: str, *prefixes: str) -> str:
    return (f"<interface><name>{name}</name><endpoint>a</endpoint>"
            + "".join(f"<bypass-prefix>{p}</bypass-prefix>" for p in prefixes) + "</interface>")


@pytest.fixture(scope="module")
def ctx() -> Any:
    ly = new_context()
    yield ly
    ly.destroy()


def parsed(ly: libyang.Context, *clients: str) -> libyang.DNode:
    """The content as one `<singbox>` with a `<client>` for each of `clients` (repeated containers merge)."""
    body = "".join(f"<client>{c}</client>" for c in clients)
    tree = ly.parse_data_mem(f'<singbox xmlns="{SBX}">{body}</singbox>', "xml", parse_only=True)
    assert tree is not None
    return tree


def entries(tree: libyang.DNode) -> list[Any]:
    """Every list entry and leaf-list value under the edit's clients."""
    out = []
    client = ly_lib.lyd_child(tree.cdata)
    while client != ly_ffi.NULL:
        node = ly_lib.lyd_child(client)
        while node != ly_ffi.NULL:
            out.append(node)
            child = ly_lib.lyd_child(node)
            while child != ly_ffi.NULL:
                if child.schema.nodetype == ly_lib.LYS_LEAFLIST:
                    out.append(child)
                child = child.next
            node = node.next
        client = client.next
    return out


def found(tree: libyang.DNode, *, same_hash: bool) -> tuple[str, str | None] | None:
    forced = entries(tree) if same_hash else []
    hashes = [node.hash for node in forced]
    for node in forced:
        node.hash = 7  # as if libyang's hashes of every entry and value had met
    try:
        opaque, twice = _inspect(tree.cdata, lenient=False)
        assert not opaque
        if twice is None:
            return None
        return libyang.DNode.new(tree.context, twice[0]).path(), twice[1]
    finally:
        for node, value in zip(forced, hashes):
            node.hash = value  # libyang's own hash tables find them by it when freeing
        tree.free()


@pytest.mark.parametrize("same_hash", [False, True])
def test_entries_told_apart_by_keys_and_values(ctx: Any, same_hash: bool) -> None:
    assert found(parsed(ctx, ep("a") + ep("b"), ep("c")), same_hash=same_hash) is None
    assert found(parsed(ctx, iface("i", "10.0.0.0/8", "10.1.0.0/16") + iface("j", "10.0.0.0/8")),
                 same_hash=same_hash) is None
    assert found(parsed(ctx, ep("a") + ep("b"), ep("b")), same_hash=same_hash) == (
        "/vpp-singbox:singbox/client/endpoint[name='b']", None)
    assert found(parsed(ctx, ep("a") + ep("b") + ep("c"), ep("a")), same_hash=same_hash) == (
        "/vpp-singbox:singbox/client/endpoint[name='a']", None)
    assert found(parsed(ctx, iface("i", "10.0.0.0/8", "10.1.0.0/16", "10.0.0.0/8")), same_hash=same_hash) == (
        "/vpp-singbox:singbox/client/interface[name='i']/bypass-prefix[.='10.0.0.0/8']", None)


def test_two_cases_and_a_leaf_twice(ctx: Any) -> None:
    both = "<interface><name>i</name><endpoint>a</endpoint><endpoint-group>g</endpoint-group></interface>"
    assert found(parsed(ctx, both), same_hash=False) == (
        "/vpp-singbox:singbox/client/interface[name='i']/endpoint-group", "endpoint")
    twice = "<interface><name>i</name><max-connections>1</max-connections><max-connections>2</max-connections>"
    assert found(parsed(ctx, twice + "</interface>"), same_hash=False) == (
        "/vpp-singbox:singbox/client/interface[name='i']/max-connections", None)
    assert found(parsed(ctx, iface("i"), iface("i")), same_hash=False) == (  # the entry itself, in another <client>
        "/vpp-singbox:singbox/client/interface[name='i']", None)

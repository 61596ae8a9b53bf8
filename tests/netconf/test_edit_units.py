"""edit_units.py on its own, against a bare libyang context: which nodes are units, and in which order."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import libyang
import pytest

from singbox_agent.mgmt.datastore import module_by_namespace
from singbox_agent.netconf.edit_units import chunk_tree, edit_units

TOP = Path(__file__).resolve().parents[2]
SEARCH = [TOP / "yang", TOP / "agent/singbox_agent/yang", Path("/usr/share/yang/modules/sysrepo"),
          Path("/usr/share/yang/modules/libyang")]
SBX = "urn:vpp-singbox:yang:vpp-singbox"
NC = "urn:ietf:params:xml:ns:netconf:base:1.0"
EP = "/vpp-singbox:singbox/client/endpoint"


@pytest.fixture(scope="module")
def ctx() -> Iterator[libyang.Context]:
    context = libyang.Context(":".join(str(p) for p in SEARCH if p.is_dir()))
    context.load_module("ietf-netconf")
    context.load_module("vpp-singbox")
    yield context
    context.destroy()


def units_of(ctx: libyang.Context, inner: str, *, document_order: bool = True) -> tuple[list[str], libyang.DNode]:
    config = ET.fromstring(f'<config xmlns="{NC}"><singbox xmlns="{SBX}" xmlns:nc="{NC}">{inner}</singbox></config>')
    text = "".join(ET.tostring(c, encoding="unicode") for c in config)
    tree = ctx.parse_data_mem(text, "xml", parse_only=True, strict=True, no_state=True)
    units = edit_units(tree, config if document_order else None, lambda ns: module_by_namespace(ctx, ns))
    return [u.path() for u in units], tree


def ep(name: str, op: str = "") -> str:
    attr = f' nc:operation="{op}"' if op else ""
    return f"<endpoint{attr}><name>{name}</name><address>198.18.0.1</address></endpoint>"


def test_units_follow_the_document_not_libyang(ctx: libyang.Context) -> None:
    paths, tree = units_of(ctx, f"<client>{ep('zz')}{ep('aa', 'create')}<session-timeout>500</session-timeout>"
                                f"</client><log-level>debug</log-level>")
    assert paths == [f"{EP}[name='zz']", f"{EP}[name='aa']", "/vpp-singbox:singbox/client/session-timeout",
                     "/vpp-singbox:singbox/log-level"]
    tree.free()
    paths, tree = units_of(ctx, f"<client>{ep('zz')}{ep('aa')}</client>", document_order=False)
    assert paths == [f"{EP}[name='aa']", f"{EP}[name='zz']"]  # what libyang alone gives (sorted)
    tree.free()


def test_a_node_with_an_operation_is_one_unit_and_lists_are_not_split(ctx: libyang.Context) -> None:
    paths, tree = units_of(ctx, '<client nc:operation="replace">' + ep("a") + ep("b") + "</client>"
                                + '<server nc:operation="delete"/>')
    assert paths == ["/vpp-singbox:singbox/client", "/vpp-singbox:singbox/server"]
    tree.free()
    paths, tree = units_of(ctx, "<client><endpoint><name>a</name><address>198.18.0.1</address><health-check>"
                                "<interval>10</interval></health-check></endpoint></client>")
    assert paths == [f"{EP}[name='a']"]  # a list entry with all it holds: mandatory leaves stay together
    tree.free()


def test_chunk_keeps_operations_and_only_the_chosen_units(ctx: libyang.Context) -> None:
    config = ET.fromstring(f'<config xmlns="{NC}"><singbox xmlns="{SBX}" xmlns:nc="{NC}"><client>{ep("x", "create")}'
                           f'{ep("y")}{ep("z", "delete")}</client></singbox></config>')
    text = "".join(ET.tostring(c, encoding="unicode") for c in config)
    tree = ctx.parse_data_mem(text, "xml", parse_only=True, strict=True, no_state=True)
    units = edit_units(tree, config, lambda ns: module_by_namespace(ctx, ns))
    chunk = chunk_tree([units[0], units[2]])
    try:
        printed = chunk.print_mem("xml", with_siblings=True)
        assert "<name>x</name>" in printed and "<name>z</name>" in printed and "<name>y</name>" not in printed
        assert 'operation="create"' in printed and 'operation="delete"' in printed
    finally:
        chunk.free()
        tree.free()

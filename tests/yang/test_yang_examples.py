"""Every example in yang/examples/ is accepted or rejected by libyang, the rejected ones for their stated reason."""

from __future__ import annotations

from pathlib import Path

import libyang
import pytest
from _libyang import lib
from yangmodel import (
    INVALID_DIR,
    MODULE_NAME,
    VALID_DIR,
    InvalidExample,
    doc_type_from_name,
    invalid_examples,
    new_context,
    parse_dependency,
    parse_document,
    valid_documents,
)

OP_KINDS = ("rpc", "reply", "notif")


def parse_valid(ctx: libyang.Context, path: Path) -> libyang.DNode:
    kind = doc_type_from_name(path)
    dependency = parse_dependency(ctx) if kind in OP_KINDS else None
    return parse_document(ctx, path, kind, dependency)


@pytest.mark.parametrize("path", valid_documents(), ids=lambda p: p.name)
def test_valid_example_is_accepted(path: Path) -> None:
    ctx = new_context()
    tree = parse_valid(ctx, path)
    assert tree is not None


@pytest.mark.parametrize("path", sorted(VALID_DIR.glob("*.xml")), ids=lambda p: p.name)
def test_xml_and_json_twins_are_the_same_tree(path: Path) -> None:
    twin = path.with_suffix(".json")
    assert twin.exists(), f"{path.name} has no JSON twin"
    ctx = new_context()
    from_xml = parse_valid(ctx, path).print_mem("json", with_siblings=True)
    from_json = parse_valid(ctx, twin).print_mem("json", with_siblings=True)
    assert from_xml == from_json


def test_every_json_example_has_an_xml_twin() -> None:
    orphans = [p.name for p in VALID_DIR.glob("*.json") if not p.with_suffix(".xml").exists()]
    assert orphans == []


@pytest.mark.parametrize("example", invalid_examples(), ids=lambda e: e.name)
def test_invalid_example_is_rejected_for_its_stated_reason(example: InvalidExample) -> None:
    ctx = new_context(features=example.features)
    # The operational datastore needs the features config-full.xml uses; no operation example disables them.
    dependency = parse_dependency(ctx) if example.kind in OP_KINDS else None
    with pytest.raises(libyang.LibyangError) as raised:
        parse_document(ctx, example.document, example.kind, dependency)
    assert raised.value.errors, f"{example.name}: rejected without a libyang error: {raised.value}"
    first = raised.value.errors[0]
    assert example.message in (first.msg or ""), f"{example.name} ({example.reason}) rejected for another reason"
    # libyang reports a schema path instead when the error is about a node that is absent (a choice's case).
    assert (first.data_path or first.schema_path) == example.path, f"{example.name}: error at another node"


def test_every_invalid_document_has_an_expectation() -> None:
    documents = {p.stem for p in [*INVALID_DIR.glob("*.xml"), *INVALID_DIR.glob("*.json")]}
    expectations = {p.stem for p in INVALID_DIR.glob("*.expect")}
    assert documents == expectations


def test_every_example_kind_has_valid_and_invalid_cases() -> None:
    valid_kinds = {doc_type_from_name(p) for p in valid_documents()}
    invalid_kinds = {e.kind for e in invalid_examples()}
    assert valid_kinds == invalid_kinds == {"config", "data", "rpc", "reply", "notif"}


def all_nodes(tree: libyang.DNode) -> list[libyang.DNode]:
    """Every node of a parsed document, including its top-level siblings (e.g. nacm defaults beside singbox)."""
    return [node for top in tree.first_sibling().siblings() for node in top.iter_tree()]


def test_valid_examples_use_every_node_of_the_module() -> None:
    ctx = new_context()
    module = ctx.get_module(MODULE_NAME)
    skipped = (lib.LYS_CHOICE, lib.LYS_CASE, lib.LYS_INPUT, lib.LYS_OUTPUT)
    every = {
        node.schema_path()
        for top in module.children()
        for node in top.iter_tree(full=True)
        if node.nodetype() not in skipped
    }
    used: set[str] = set()
    for path in valid_documents():
        used |= {node.schema().schema_path() for node in all_nodes(parse_valid(ctx, path))}
    assert sorted(every - used) == []
    assert "/vpp-singbox:singbox/sessions/session/state" in used


def test_valid_examples_use_every_session_state_and_allowed_command() -> None:
    ctx = new_context()
    seen: dict[str, set[str]] = {"state": set(), "allowed-command": set(), "mode": set()}
    for path in valid_documents():
        for node in all_nodes(parse_valid(ctx, path)):
            name = node.schema().name()
            if name in seen and node.schema().module().name() == MODULE_NAME:
                seen[name].add(str(node.value()))
    assert seen["state"] == {"greeting", "auth", "request", "connecting", "established", "closing"}
    assert seen["allowed-command"] == {"connect", "udp-associate"}
    assert seen["mode"] == {"client", "server"}

"""The sessions list kept between reads (agent/sessions_tree.py) is, after every read, the tree libyang's parser makes
of the same sessions (what the agent handed sysrepo before): sessions starting, ageing, moving bytes, changing an
optional leaf for another, ending; a bad value is refused as the parser refuses it and the next read starts over."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import pytest

from singbox_agent.agent import oper
from singbox_agent.agent.sessions_tree import SessionsTree, SessionsTreeError
from singbox_agent.dataplane.base import Session
from tests.yang.yangmodel import new_context


def parsed(ctx: Any, items: list[Session]) -> str:
    tree = oper.sessions(items)
    if not tree:
        return ""
    text = json.dumps({f"vpp-singbox:{k}": v for k, v in tree.items()})
    node = ctx.parse_data_mem(text, "json", parse_only=True, strict=True)
    try:
        return str(node.print_mem("xml", with_siblings=True))
    finally:
        node.free()


def kept(ctx: Any, tree: SessionsTree, items: list[Session]) -> str:
    whole = oper.sessions(items)
    node = tree.copy(ctx, whole["singbox"]["sessions"]["session"] if whole else [])
    try:
        return str(node.print_mem("xml", with_siblings=True) or "")  # no sessions: an empty container, no text
    finally:
        node.free()


def session(i: int, **kw: Any) -> Session:
    base = Session(i, "client" if i % 2 else "server", "established", "198.18.0.2", 40000 + i,
                   destination_address="198.18.1.1", destination_port=443, interface="tap0" if i % 2 else None,
                   endpoint="e" if i % 2 else None, username=None if i % 2 else "bob", bytes_from_client=i,
                   bytes_to_client=2 * i, age=i)
    return replace(base, **kw)


def test_every_read_is_the_tree_the_parser_makes() -> None:
    ctx = new_context()
    tree = SessionsTree()
    items = [session(i) for i in range(1, 8)]
    steps: list[list[Session]] = [
        items,
        # a second later: every session older, some moved bytes
        [replace(s, age=s.age + 1, bytes_to_client=s.bytes_to_client + 10 * (s.id % 3)) for s in items],
        # one ends, one starts (at the end), one's destination becomes a name (a leaf for another)
        [*(replace(s, destination_domain="example.org") if s.id == 3 else s for s in items if s.id != 5),
         session(100, state="connecting")],
        # an optional leaf goes, then everything ends, then sessions come back
        [replace(s, endpoint=None) for s in items[:2]],
        [],
        [session(7), session(2)],
    ]
    for n, items_now in enumerate(steps):
        assert kept(ctx, tree, items_now) == parsed(ctx, items_now), f"step {n}"


def test_a_bad_value_is_refused_and_the_next_read_starts_over() -> None:
    ctx = new_context()
    tree = SessionsTree()
    good = [session(1), session(2)]
    assert kept(ctx, tree, good) == parsed(ctx, good)
    with pytest.raises(SessionsTreeError, match="client-port"):
        kept(ctx, tree, [session(1), replace(session(2), client_port=70000)])  # uint16 (inet:port-number)
    assert kept(ctx, tree, good) == parsed(ctx, good)


def ids_states(ctx: Any, tree: SessionsTree, items: list[Session], max_changes: int) -> dict[str, str]:
    """The kept on-change projection (each session's id and state) after one call with `max_changes`."""
    entries = oper.sessions(items, on_change=True)["singbox"]["sessions"]["session"]
    node = tree.copy(ctx, entries, max_changes=max_changes)
    try:
        return {str(s["id"]): s["state"] for s in node.print_dict().get("singbox", {}).get("sessions", {})
                .get("session", [])}
    finally:
        node.free()


def test_at_most_max_changes_are_taken_in_per_call_ended_sessions_first() -> None:
    """The poll's projection takes a burst in over several calls (sysrepo's YANG patch is quadratic in its edits):
    ended sessions first, then started ones and state changes in the dataplane's order, each exactly once."""
    ctx = new_context()
    tree = SessionsTree()
    first = [session(i) for i in range(1, 6)]
    assert ids_states(ctx, tree, first, 10) == {str(i): "established" for i in range(1, 6)}
    # 1, 2, 3 end; 11, 12 start; 4 closes
    now = [replace(session(4), state="closing"), session(5), session(11), session(12)]
    assert ids_states(ctx, tree, now, 2) == {"3": "established", "4": "established", "5": "established"}
    assert ids_states(ctx, tree, now, 2) == {"4": "closing", "5": "established"}  # 3 ended, 4 changed
    assert ids_states(ctx, tree, now, 2) == {"4": "closing", "5": "established", "11": "established",
                                             "12": "established"}
    assert ids_states(ctx, tree, now, 2) == {"4": "closing", "5": "established", "11": "established",
                                             "12": "established"}
    assert ids_states(ctx, tree, [], 3) == {"12": "established"}
    tree.reset()  # a new poll: from nothing
    assert ids_states(ctx, tree, now, 1) == {"4": "closing"}

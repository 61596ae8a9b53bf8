"""subscriptions/known.py's rules on libyang data alone (tests/subscriptions/test_oper_poll.py has them end to end):
an edit of what the subscriber holds is dropped, a create of a held entry that adds leaves is a merge (what it
holds stays), a delete of what it does not hold is dropped, and the copy follows what is sent."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import libyang
import pytest

from singbox_agent.repository import project_yang_dirs
from singbox_agent.subscriptions import known as K

TOP = Path(__file__).resolve().parents[2]
E = "/vpp-singbox:singbox/client/endpoint[name='e']"


@pytest.fixture
def ctx() -> Iterator[libyang.Context]:
    dirs = [*project_yang_dirs(TOP), Path("/usr/share/yang/modules/sysrepo"), Path("/usr/share/yang/modules/libyang")]
    c = libyang.Context(":".join(str(d) for d in dirs))
    c.load_module("vpp-singbox")
    yield c
    c.destroy()


def data(ctx: libyang.Context, endpoint: dict[str, Any]) -> libyang.DNode:
    import json

    text = json.dumps({"vpp-singbox:singbox": {"client": {"endpoint": [endpoint]}}})
    tree = ctx.parse_data_mem(text, "json", no_state=False, parse_only=True, strict=True)
    assert tree is not None
    return tree


def held(ctx: libyang.Context, endpoint: dict[str, Any]) -> K.Known:
    from _libyang import ffi

    tree = data(ctx, endpoint)
    k = K.Known()
    k._set(tree.cdata, int(ffi.cast("uintptr_t", ctx.cdata)))
    tree.free()
    return k


def value(ctx: libyang.Context, endpoint: dict[str, Any], path: str) -> tuple[libyang.DNode, Any]:
    """An edit's value as srsn gives it: the node at `path`, without parents."""
    from _libyang import ffi, lib

    tree = data(ctx, endpoint)
    node = tree.find_path(path)
    assert node is not None
    out = ffi.new("struct lyd_node **")
    assert lib.lyd_dup_single(node.cdata, ffi.NULL, lib.LYD_DUP_RECURSIVE, out) == 0
    tree.free()
    return out[0], out[0]


def printed(k: K.Known) -> str:
    node = k._find(E)
    return "" if node is None else K._print(node).decode()


def test_parent_path() -> None:
    assert K.parent_path(E) == "/vpp-singbox:singbox/client"
    assert K.parent_path("/vpp-singbox:singbox") == ""
    assert K.parent_path("/m:a/b[k='x/y']/c") == "/m:a/b[k='x/y']"


def test_what_it_holds_is_dropped_and_what_it_adds_is_merged(ctx: libyang.Context) -> None:
    from _libyang import lib

    whole = {"name": "e", "address": "192.0.2.1", "oper-status": "up", "round-trip-time": 800}
    k = held(ctx, whole)
    _, same = value(ctx, whole, E)
    assert k._edit("create", E, same) == "drop"  # a poll's create of what the subscription began with
    _, pushed = value(ctx, {"name": "e", "oper-status": "down"}, E)
    assert k._edit("create", E, pushed) == "merge"  # push data's entry with its pushed leaf only
    assert "<oper-status>down</oper-status>" in printed(k) and "<address>192.0.2.1</address>" in printed(k)
    _, leaf = value(ctx, {"name": "e", "oper-status": "down"}, f"{E}/oper-status")
    assert k._edit("replace", f"{E}/oper-status", leaf) == "drop"  # it holds down now
    assert k._edit("delete", "/vpp-singbox:singbox/client/endpoint[name='x']", None) == "drop"
    assert k._edit("delete", E, None) == "keep"
    k._free_removed()  # at the patch's end
    assert k._find(E) is None
    _, back = value(ctx, whole, E)
    assert k._edit("create", E, back) == "keep"  # created again: news to the subscriber
    assert "<oper-status>up</oper-status>" in printed(k)
    for v in (same, pushed, leaf, back):
        lib.lyd_free_all(v)


def test_a_container_deleted_with_each_of_its_entries_keeps_every_delete(ctx: libyang.Context) -> None:
    """srsn's patch when the dataplane goes: the list's container, then each entry (all held before the patch)."""
    k = held(ctx, {"name": "e", "address": "192.0.2.1"})
    client = "/vpp-singbox:singbox/client"
    assert k._edit("delete", client, None) == "keep"
    assert k._edit("delete", E, None) == "keep"
    k._free_removed()
    assert k._find(client) is None and k._find("/vpp-singbox:singbox") is not None
    assert k._edit("delete", E, None) == "drop"  # a later patch: gone already

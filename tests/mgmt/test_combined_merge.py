"""`mgmt.combined`: running's selection is spent by the merge (moved into operational's tree, not copied), and the
combined data stay what merging a copy gives — with a module whose subscriber keeps its configuration in operational
(with and without state below), modules nobody subscribes to, depth, and a filter.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import libyang
import pytest
import sysrepo
from _libyang import ffi as ly_ffi
from _libyang import lib as ly_lib

from singbox_agent.mgmt import combined, datastore, filtered_read

SBX = "urn:vpp-singbox:yang:vpp-singbox"
NACM = "urn:ietf:params:xml:ns:yang:ietf-netconf-acm"


def _load(conn: Any) -> None:
    sess = conn.start_session("running")
    entries = "".join(f"<endpoint><name>e{i:03d}</name><address>198.18.0.{i + 1}</address></endpoint>"
                      for i in range(50))
    groups = "".join(f"<group><name>g{i:03d}</name><user-name>u{i}</user-name></group>" for i in range(50))
    with sess.get_ly_ctx() as ctx:
        tree = ctx.parse_data_mem(f'<singbox xmlns="{SBX}"><client>{entries}</client></singbox>'
                                  f'<nacm xmlns="{NACM}"><groups>{groups}</groups></nacm>', "xml", strict=True,
                                  no_state=True, parse_only=True)
        sess.edit_batch_ly(tree, "merge")
        sess.apply_changes()
        tree.free()
    sess.set_item("/ietf-system:system/hostname", "combined")
    sess.apply_changes()
    sess.stop()


@pytest.fixture
def conn(sysrepo_instance: object) -> Iterator[Any]:
    with sysrepo.SysrepoConnection(cache_running=True) as c:
        _load(c)
        yield c


def _reference(sess: Any, xpath: str, max_depth: int) -> str:
    """Operational's selection with a copy of running's merged in (the merge before this change)."""
    with filtered_read.read(sess, "operational", xpath, max_depth=max_depth) as in_use, \
            filtered_read.read(sess, "running", xpath, max_depth=max_depth) as config:
        return _print(combined.merge_config(in_use, config))


def _print(tree: libyang.DNode | None) -> str:
    return "\n".join(datastore.print_xml(tree, mode) for mode in ("explicit", "report-all-tagged"))


def _nodes(tree: libyang.DNode) -> set[int]:
    out: set[int] = set()
    todo = [ly_lib.lyd_first_sibling(ly_ffi.cast("struct lyd_node *", tree.cdata))]
    while todo:
        node = todo.pop()
        while node != ly_ffi.NULL:
            out.add(int(ly_ffi.cast("uintptr_t", node)))
            child = ly_lib.lyd_child(node)
            if child != ly_ffi.NULL:
                todo.append(child)
            node = node.next
    return out


@pytest.mark.parametrize("xpath, max_depth", [
    ("/*", 0), ("/*", 3), ("/vpp-singbox:singbox", 0), ("/ietf-netconf-acm:nacm/groups/group[name='g007']", 0),
    ("/ietf-system:system/hostname | /ietf-netconf-acm:nacm", 2),
])
@pytest.mark.parametrize("subscriber", ["none", "config only", "with state"])
def test_combined_read_is_the_merge_of_a_copy_and_spends_running(conn: Any, xpath: str, max_depth: int,
                                                                 subscriber: str) -> None:
    sub = conn.start_session("running")
    if subscriber != "none":  # vpp-singbox's configuration in operational, as with the agent
        sub.subscribe_module_change("vpp-singbox", "/vpp-singbox:singbox",
                                    lambda event, req_id, changes, private: None)
    if subscriber == "with state":
        sub.subscribe_oper_data_request(
            "vpp-singbox", "/vpp-singbox:singbox/client",
            lambda xpath, private: {"client": {"endpoint": [{"name": "e001", "oper-status": "up"}]}},
            oper_merge=True)
    sess = conn.start_session("operational")
    try:
        expected = _reference(sess, xpath, max_depth)
        with filtered_read.read(sess, "operational", xpath, max_depth=max_depth) as in_use, \
                combined.running_config(sess, xpath, max_depth=max_depth) as config:
            assert isinstance(config, combined.Running) and config.data is not None
            moved = _nodes(config.tree)
            merged = combined.merge_config(in_use, config)
            assert merged is not None
            got = _print(merged)
            held = _nodes(merged)
        assert got == expected
        if subscriber == "none" and in_use is not None:
            assert moved & held, "running's nodes were copied, not moved"
        with combined.read(sess, xpath, max_depth=max_depth) as tree:
            assert _print(tree) == expected
    finally:
        sess.stop()
        sub.stop()

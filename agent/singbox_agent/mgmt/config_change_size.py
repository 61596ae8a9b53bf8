"""An upper bound on the size of the netconf-config-change sysrepo stores for an edit, known before the edit is
applied (`mgmt.datastore.wait_for_replay_room`: whether the replay file of this second has room for it).

sysrepo 3.7.11 (modinfo.c, sr_modinfo_generate_config_change_notif) makes one `edit` entry per node of the change's
diff — every node of a created or deleted subtree, its `target` the node's path (lyd_path, LYD_PATH_STD) — and its
JSON plugin stores the notification printed as JSON (ntf_json.c). A merge or create edit's diff holds the edit's own
nodes and the default nodes validation adds under the containers and list entries it creates; the bound counts each
edit node by its path and, under each container or list entry, every leaf, leaf-list default and non-presence
container its schema could add. Anything else is unknown (None, and the caller assumes no room):
- an operation delete, remove or replace anywhere (or default-operation replace): the diff holds the whole subtree
  it removes from the datastore;
- a node in a choice: creating it removes the data of the other cases;
- a module with a `when` on a configuration node: a change can make validation delete the nodes whose condition
  turned false;
- opaque nodes, and edits of more than `MAX_NODES` (a bulk edit's notification fills a file by itself anyway).
Not covered: a `when` in another module referring to the edited one, and update subscribers adding nodes of their
own (this appliance's only ones rewrite password values: same nodes).
"""

from __future__ import annotations

import functools
import json
from typing import Any

import libyang
from _libyang import ffi as ly_ffi
from _libyang import lib as ly_lib

from singbox_agent.mgmt import datastore

# The notification without its edits: {"ietf-netconf-notifications:netconf-config-change":{"changed-by":
# {"username":...,"session-id":...},"datastore":"startup","edit":[...]}} with a user name of up to ~4 KB
HEADER = 4096
# One edit entry but its target string: {"target":,"operation":"replace"} and a comma
EDIT = 40
MAX_NODES = 1000

_REMOVING = frozenset({"delete", "remove", "replace"})
_INNER = ly_lib.LYS_CONTAINER | ly_lib.LYS_LIST
_IN_CHOICE = ly_lib.LYS_CHOICE | ly_lib.LYS_CASE


def bound(tree: libyang.DNode, default_operation: str) -> int | None:
    """Bytes (record header included) that the config-change of applying the edit `tree` (all its siblings) with
    `default_operation` can take in sysrepo's store at most; None when unknown (see the module's docstring)."""
    if default_operation == "replace":
        return None
    total = HEADER
    for count, node in enumerate(datastore.edit_nodes(tree), 1):
        schema = node.schema
        if count > MAX_NODES or schema == ly_ffi.NULL or _removes(node):
            return None
        if schema.parent != ly_ffi.NULL and schema.parent.nodetype & _IN_CHOICE:
            return None
        if node.parent == ly_ffi.NULL and _has_config_when(schema.module):
            return None
        path = _json_length(node)
        total += EDIT + path
        if schema.nodetype & _INNER:
            implied, relative = _implied(schema)
            total += implied * (EDIT + path + relative)
    return total + 20  # sysrepo's record header (replay_files.RECORD_HEAD_SIZE)


def _removes(node: Any) -> bool:
    meta = node.meta
    while meta != ly_ffi.NULL:
        if (ly_ffi.string(meta.name) == b"operation" and meta.annotation != ly_ffi.NULL
                and ly_ffi.string(meta.annotation.module.name) == b"ietf-netconf"):
            value = ly_lib.lyd_value_get_canonical(meta.annotation.module.ctx, ly_ffi.addressof(meta.value))
            return value == ly_ffi.NULL or ly_ffi.string(value).decode() in _REMOVING
        meta = meta.next
    return False


def _json_length(node: Any) -> int:
    """Bytes of the node's path as a JSON string."""
    raw = ly_lib.lyd_path(node, ly_lib.LYD_PATH_STD, ly_ffi.NULL, 0)
    if raw == ly_ffi.NULL:
        raise MemoryError("lyd_path")
    try:
        return len(json.dumps(ly_ffi.string(raw).decode(), ensure_ascii=False).encode())
    finally:
        ly_lib.free(raw)


def _implied(schema: Any) -> tuple[int, int]:
    return _implied_cached(int(ly_ffi.cast("uintptr_t", schema)), _schema_key(schema))


def _schema_key(schema: Any) -> tuple[str, str, str]:
    module = schema.module
    revision = ly_ffi.string(module.revision).decode() if module.revision != ly_ffi.NULL else ""
    return ly_ffi.string(module.name).decode(), revision, ly_ffi.string(schema.name).decode()


@functools.lru_cache(maxsize=4096)
def _implied_cached(address: int, key: tuple[str, str, str]) -> tuple[int, int]:
    """(how many nodes validation can add under an instance of the schema node at `address`, the longest of their
    paths relative to it). `key` only keeps a reused address of another context from hitting a stale entry."""
    count, longest = 0, 0
    todo = [(ly_lib.lysc_node_child(ly_ffi.cast("struct lysc_node *", address)), 0)]
    while todo:
        child, depth = todo.pop()
        while child != ly_ffi.NULL:
            kind = child.nodetype
            if not child.flags & ly_lib.LYS_CONFIG_W:
                pass  # state: not in running's diff
            elif kind & _IN_CHOICE:
                todo.append((ly_lib.lysc_node_child(child), depth))
            else:
                step = depth + 2 + len(ly_ffi.string(child.module.name)) + len(ly_ffi.string(child.name))
                if kind == ly_lib.LYS_LEAF:
                    count, longest = count + 1, max(longest, step)
                elif kind == ly_lib.LYS_LEAFLIST:
                    dflts = ly_ffi.cast("struct lysc_node_leaflist *", child).dflts
                    count += int(ly_ffi.cast("uint64_t *", dflts)[-1]) if dflts != ly_ffi.NULL else 0
                    longest = max(longest, step + 64)  # its value in a predicate
                elif kind == ly_lib.LYS_CONTAINER and not child.flags & ly_lib.LYS_PRESENCE:
                    count, longest = count + 1, max(longest, step)
                    todo.append((ly_lib.lysc_node_child(child), step))
            child = child.next
    return count, longest


def _has_config_when(module: Any) -> bool:
    return _config_when_cached(int(ly_ffi.cast("uintptr_t", module)), ly_ffi.string(module.name).decode())


@functools.lru_cache(maxsize=512)
def _config_when_cached(address: int, name: str) -> bool:
    """Whether a configuration node of the module at `address` (augments from other modules included) has a
    `when` of its own or from its uses or augment."""
    module = ly_ffi.cast("struct lys_module *", address)
    if module.compiled == ly_ffi.NULL:
        return False
    todo = [module.compiled.data]
    while todo:
        node = todo.pop()
        while node != ly_ffi.NULL:
            if node.flags & ly_lib.LYS_CONFIG_W:
                whens = ly_lib.lysc_node_when(node)
                if whens != ly_ffi.NULL and int(ly_ffi.cast("uint64_t *", whens)[-1]) > 0:
                    return True
                child = ly_lib.lysc_node_child(node)
                if child != ly_ffi.NULL:
                    todo.append(child)
            node = node.next
    return False

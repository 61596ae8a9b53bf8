"""The combined configuration and state data: NETCONF's `<get>` (RFC 6241 §7.7, "running configuration and device
state information") and RESTCONF's `{+restconf}/data` (RFC 8040 §3.3.1, "the combined configuration and state
data"; RFC 8527 §1 leaves it so).

sysrepo's operational datastore holds a module's configuration only while something subscribes to its changes (the
configuration in use, RFC 8342 §5.3): ietf-system's hostname set by edit-config or PUT, or the settings of a module
nobody implements, were in running but missing from `<get>` and `/data`. Both read operational's selection and
running's selection through the same filtered read (`mgmt.filtered_read`: the session's NACM user, the same XPath,
the same depth) and merge running's into operational's, running's values winning where both hold a configuration
node; state and the configuration only operational holds stay. NMDA's `<operational>` (get-data, `/ds/...:
operational`) stays what sysrepo holds: RFC 8342 §5.3 makes it the values "currently in use", and §5.3.1 leaves
configuration that is not applied out of it.

What the merge costs (bench/netconf/get_combined.py): running's selection is read as this module's own (`Running`),
so the merge moves its nodes into operational's tree instead of copying them (libyang's LYD_MERGE_DESTRUCT): a
module nobody subscribes to, all of whose configuration operational lacks, cost a copy of every node. A module whose
subscriber keeps its configuration in operational is still walked node by node (its nodes found and compared). Which
modules those are is not known without sysrepo's SHM internals (sr_module_oper_data_get_enabled counts only live,
non-passive change subscriptions; sysrepo-monitoring lists subscriptions without saying which are passive), and a
cheap compare of the two subtrees does not find them equal (operational adds the empty state containers of its
schema), so both reads stay.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import libyang
import sysrepo
from _libyang import ffi as ly_ffi
from _libyang import lib as ly_lib
from _sysrepo import ffi as sr_ffi
from _sysrepo import lib as sr_lib
from sysrepo.errors import check_call

from singbox_agent.mgmt import filtered_read


@dataclass
class Running:
    """Running's selection (`running_config`). With `data` (sysrepo's `sr_data_t` holding `tree`) the merge may
    spend the tree, detaching it from `data`; without (a tree `filtered_read` pruned) it is copied, as any tree."""

    tree: libyang.DNode
    data: Any = None  # sr_data_t * (the binding's cffi) when owned


def merge_config(in_use: libyang.DNode | None, config: Running | libyang.DNode | None) -> libyang.DNode | None:
    """`config` (running) merged into `in_use` (operational), in place; either may be None. Default nodes come too
    (a with-defaults mode decides what is printed); where both hold a leaf, running's value stays. An owned
    `Running` is spent: its nodes move into `in_use` (those `in_use` holds too are merged and freed). The result is
    valid while both trees are."""
    if isinstance(config, Running):
        if in_use is None or config.data is None:
            return config.tree if in_use is None else merge_config(in_use, config.tree)
        return _merge_owned(in_use, config)
    if config is None:
        return in_use
    if in_use is None:
        return config
    target = ly_ffi.new("struct lyd_node **", in_use.root().first_sibling().cdata)
    source = config.root().first_sibling().cdata
    if ly_lib.lyd_merge_siblings(target, source, ly_lib.LYD_MERGE_DEFAULTS) != ly_lib.LY_SUCCESS:
        raise in_use.context.error("cannot merge running's configuration into operational data")
    return libyang.DNode.new(in_use.context, target[0])


def _merge_owned(in_use: libyang.DNode, config: Running) -> libyang.DNode:
    target = ly_ffi.new("struct lyd_node **", in_use.root().first_sibling().cdata)
    source = ly_lib.lyd_first_sibling(ly_ffi.cast("struct lyd_node *", config.tree.cdata))
    config.data.tree = sr_ffi.NULL  # spent below: sysrepo's release frees nothing of it
    if ly_lib.lyd_merge_siblings(target, source, ly_lib.LYD_MERGE_DEFAULTS | ly_lib.LYD_MERGE_DESTRUCT
                                 ) != ly_lib.LY_SUCCESS:
        raise in_use.context.error("cannot merge running's configuration into operational data")
    return libyang.DNode.new(in_use.context, target[0])


@contextmanager
def running_config(sess: Any, xpath: str, *, max_depth: int = 0) -> Iterator[Running | None]:
    """Running's configuration `xpath` selects, as the session's NACM user may read it (None when none); `sess` is
    switched to running. Read as `filtered_read.read` reads it; when sysrepo selects (no pruned evaluation), the
    data is this module's to spend in `merge_config`."""
    if filtered_read.needs_pruned_evaluation(sess, xpath):
        with filtered_read.read(sess, "running", xpath, max_depth=max_depth) as tree:
            yield None if tree is None else Running(tree)
        return
    sess.switch_datastore("running")
    data = sr_ffi.new("sr_data_t **")
    try:
        check_call(sr_lib.sr_get_data, sess.cdata, xpath.encode(), max_depth, 0, 0, data)
    except sysrepo.SysrepoNotFoundError:
        yield None
        return
    try:
        if data[0] == sr_ffi.NULL or data[0].tree == sr_ffi.NULL:
            yield None
            return
        ctx: libyang.Context = sess.acquire_context()
        try:
            yield Running(libyang.DNode.new(ctx, ly_ffi.cast("struct lyd_node *", int(sr_ffi.cast(
                "uintptr_t", data[0].tree)))), data[0])
        finally:
            sess.release_context()
    finally:
        if data[0] != sr_ffi.NULL:
            sr_lib.sr_release_data(data[0])


@contextmanager
def read(sess: Any, xpath: str, *, max_depth: int = 0, no_state: bool = False, no_config: bool = False,
         running_sess: Any = None) -> Iterator[libyang.DNode | None]:
    """What `xpath` selects of the combined configuration and state data: operational's selection with running's
    merged in (one read of each; none of running with `no_config`). `running_sess` reads running (default `sess`,
    switched from operational to running). The tree is valid inside the `with` block."""
    with filtered_read.read(sess, "operational", xpath, max_depth=max_depth, no_state=no_state,
                            no_config=no_config) as in_use:
        if no_config:
            yield in_use
            return
        with running_config(running_sess if running_sess is not None else sess, xpath,
                            max_depth=max_depth) as config:
            yield merge_config(in_use, config)

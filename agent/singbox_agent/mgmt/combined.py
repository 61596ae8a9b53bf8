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
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import libyang
from _libyang import ffi as ly_ffi
from _libyang import lib as ly_lib

from singbox_agent.mgmt import filtered_read


def merge_config(in_use: libyang.DNode | None, config: libyang.DNode | None) -> libyang.DNode | None:
    """`config` (running) merged into `in_use` (operational), in place; either may be None. Default nodes come too
    (a with-defaults mode decides what is printed); where both hold a leaf, running's value stays. The result is
    valid while both trees are."""
    if config is None:
        return in_use
    if in_use is None:
        return config
    target = ly_ffi.new("struct lyd_node **", in_use.root().first_sibling().cdata)
    source = config.root().first_sibling().cdata
    if ly_lib.lyd_merge_siblings(target, source, ly_lib.LYD_MERGE_DEFAULTS) != ly_lib.LY_SUCCESS:
        raise in_use.context.error("cannot merge running's configuration into operational data")
    return libyang.DNode.new(in_use.context, target[0])


@contextmanager
def running_config(sess: Any, xpath: str, *, max_depth: int = 0) -> Iterator[libyang.DNode | None]:
    """Running's configuration `xpath` selects, as the session's NACM user may read it (None when none); `sess` is
    switched to running."""
    with filtered_read.read(sess, "running", xpath, max_depth=max_depth) as tree:
        yield tree


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

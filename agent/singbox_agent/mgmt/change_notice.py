"""Change subscriptions that only need to know THAT a module changed (and, for a few nodes, where).

sysrepo-python's `subscribe_module_change` turns every changed node into a Python `Change` object before calling
back — for each event (change and done), for each subscriber. The NETCONF server's own subscribers (its settings in
ietf-netconf-server/-keystore/-truststore, NACM) only invalidate caches, so a 10,000-entry truststore or NACM edit
spent most of its time building 20,000+ objects nobody read, with sysrepo (and the editing client) waiting for the
change event (issue 17). Here the binding's "unsafe" subscription hands over the event and its implicit session
only (its compiled callback: no cffi callback of ours, which would need a writable and executable page and so
`MemoryDenyWriteExecute=no` in the units); a subscriber that wants to know which nodes changed asks `changed_paths`
for at most a few of them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import structlog

from _libyang import ffi as ly_ffi
from _libyang import lib as ly_lib

from singbox_agent.mgmt import libsysrepo

log = structlog.get_logger("mgmt.change_notice")

# (event name, the implicit sysrepo session of the event (C pointer): valid during the call only, for `changed_paths`)
Notice = Callable[[str, Any], None]


def subscribe(session: Any, module: str, xpath: str, callback: Notice, *, passive: bool = True,
              done_only: bool = False) -> None:
    """Call `callback(event, event_session)` on changes of `xpath` in `module` (sysrepo's thread; what it raises
    is logged, never rejects the change)."""

    def on_event(ev_sess: Any, event: str, _req_id: int, _priv: Any) -> None:
        try:
            callback(event, ev_sess.cdata)
        except BaseException:  # noqa: BLE001 - a C callback must not raise
            log.exception("change notice failed", module=module)

    session.subscribe_module_change_unsafe(module, xpath, on_event, passive=passive, done_only=done_only)


def changed_paths(ev_sess: Any, xpath: str, limit: int) -> list[str] | None:
    """The data paths of the changed nodes under `xpath` (`//.` included) in the event's session, or None when
    there are more than `limit`: the caller then treats everything as changed, without walking the rest."""
    out: list[str] = []
    for _op, address, _prev_default in libsysrepo.changes(ev_sess, xpath):
        if len(out) == limit:
            return None
        node = ly_ffi.cast("struct lyd_node *", address)  # through libyang-python's cffi
        raw = ly_lib.lyd_path(node, ly_lib.LYD_PATH_STD, ly_ffi.NULL, 0)
        if raw == ly_ffi.NULL:
            return None
        try:
            out.append(ly_ffi.string(raw).decode())
        finally:
            ly_lib.free(raw)
    return out

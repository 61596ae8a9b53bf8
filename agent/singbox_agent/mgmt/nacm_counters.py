"""RFC 8341's denial counters for the appliance: `/ietf-netconf-acm:nacm/denied-operations`, `denied-data-writes`
and `denied-notifications` (config false, mandatory: "since the server last restarted").

libsysrepo counts the denials of its own process (one static record per process, none shared): an operation refused
by `sr_nacm_check_operation` (both servers check every operation with it; the replay check of a notification,
`filtered_read.notification_readable`, counts a refused one as a denied notification), a live notification sysrepo
withholds from a subscriber's session, and a write — `apply_changes`, `replace_config`, `copy_config` of a session
with a NACM user — whose change NACM refuses. `sr_nacm_init` publishes each process's three numbers as
`/sysrepo-monitoring:sysrepo-state/connection[cid]/nacm-stats`; the appliance's numbers are their sum over the
processes that enforce NACM (the NETCONF and the RESTCONF server).

sysrepo's own `sr_nacm_glob_stats_subscribe` sums them too, but subscribes without `SR_SUBSCR_OPER_MERGE`: the second
server's subscription is refused (silently), so the leaves would vanish with whichever server subscribed first.
Here every process that starts NACM (`nacm.init_nacm`) provides the three leaves with `SR_SUBSCR_OPER_MERGE`: while
either server runs they are served, each provider giving the same sum. A server that restarts starts its share from
zero (as sysrepo's and netopeer2's counters do).
"""

from __future__ import annotations

import threading
from typing import Any

import libyang
import structlog
import sysrepo
from sysrepo.session import SysrepoSession

from _sysrepo import ffi as sr_ffi
from _sysrepo import lib as sr_lib
from singbox_agent.mgmt import libsysrepo

log = structlog.get_logger("mgmt.nacm_counters")

MODULE = "ietf-netconf-acm"
LEAVES = ("denied-operations", "denied-data-writes", "denied-notifications")
STATS = "/sysrepo-monitoring:sysrepo-state/connection/nacm-stats"
# sr_get_oper_flag_t SR_OPER_NO_RUN_CACHED: not the connection's running cache (sysrepo's own sum avoids it: a read
# inside an operational callback)
_NO_RUN_CACHED = 0x40


class DenialCounters:
    """The three leaves provided from this process (a session on `conn`, the binding's `sr_conn_ctx_t *`, that
    reads sysrepo-monitoring without a NACM user); `stop()` ends it."""

    def __init__(self, conn: Any) -> None:
        out = sr_ffi.new("sr_session_ctx_t **")
        if sr_lib.sr_session_start(conn, sr_lib.SR_DS_OPERATIONAL, out) != sr_lib.SR_ERR_OK:
            raise RuntimeError("sr_session_start failed")
        self._sess = SysrepoSession(out[0])
        self._lock = threading.Lock()  # one subscription thread per leaf, one reading session
        for leaf in LEAVES:
            try:
                self._sess.subscribe_oper_data_request(MODULE, f"/{MODULE}:nacm/{leaf}", self._provider(leaf),
                                                       oper_merge=True)
            except sysrepo.SysrepoError as exc:  # another provider without OPER_MERGE (netopeer2 on this repository)
                log.warning("not providing a NACM counter", leaf=leaf, error=str(exc))

    def _provider(self, leaf: str) -> Any:
        def provide(_req_xpath: str | None, _private: Any) -> dict[str, Any]:
            return {"nacm": {leaf: self.total(leaf)}}
        return provide

    def total(self, leaf: str) -> int:
        """The sum of `leaf` over every connection publishing NACM statistics (sysrepo-monitoring)."""
        with self._lock:
            ctx = self._sess.acquire_context()
            try:
                with libsysrepo.get_data(self._sess, f"{STATS}/{leaf}", 0, _NO_RUN_CACHED) as data:
                    if data is None:
                        return 0
                    tree = libyang.DNode.new(ctx, data)
                    return sum(int(node.value()) for node in tree.find_all(f"{STATS}/{leaf}")
                               if isinstance(node, libyang.DLeaf))
            finally:
                self._sess.release_context()  # type: ignore[no-untyped-call]

    def stop(self) -> None:
        self._sess.stop()

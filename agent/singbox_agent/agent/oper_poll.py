"""On-change of the pull-only operational state (counters, statistics, the sessions list): sysrepo's operational
poll subscriptions (`sr_oper_poll_subscribe` with `SR_SUBSCR_OPER_POLL_DIFF`), which sysrepo-python 1.7.6 does not
wrap (declared in mgmt/libsysrepo.py).

sysrepo reports changes of the operational datastore to module-change subscribers (and so to RFC 8641 on-change
YANG-Push through srsn, in the NETCONF and RESTCONF processes) only for push data; what the agent's pull callbacks
return is built at each read. A poll subscription makes sysrepo read a pull subtree every period, in this process,
keep it in the agent connection's cache and report the difference to the previous read as a change of the
operational datastore: a counter that moved, a session that appeared or ended. The slowly changing leaves the
agent pushes at once (oper_push.py) are in the pull data too, so a change of one of them is reported again by the
next poll (the same value, replaced): the push is what meets the 100 ms, the poll what covers everything else.

Cost: every period, subscribers or not, a read of the subtree (the pull callback, sysrepo's hand-over) and a diff
with the previous one. Of the sessions list the poll reads each session's state only (oper.SESSIONS_ON_CHANGE_XPATH:
its counters and age would be a change per session per poll, and what it is does not change), and takes in at most
a bounded number of changes per poll (sessions_tree.ON_CHANGE_MAX_CHANGES: srsn's YANG patch is quadratic in its
edits); see agent/README.md. A period of 0 polls nothing. The first read is diffed with nothing: started with the agent, before the servers take
subscriptions, it reaches nobody (after an agent restart, on-change subscribers see the state re-created).

sysrepo runs the polls in the subscription's own thread; it must not share a subscription structure with the oper
get subscriptions it reads (their thread would wait for itself), so each poll gets its own.
"""

from __future__ import annotations

from typing import Any

import structlog

from singbox_agent.mgmt import libsysrepo

log = structlog.get_logger("agent.oper_poll")

# The agent's defaults (--oper-poll-ms, --sessions-poll-ms): a counter's move, a session starting or ending is heard
# within a second. The sessions' poll costs 48 ms CPU a second at 10,000 sessions with nobody subscribed
# (bench/subscriptions/bench_push.py --mode idle).
PERIOD_MS = 1000
SESSIONS_PERIOD_MS = 1000


class OperPollError(Exception):
    pass


class OperPoll:
    """Poll subscriptions of one module's pull subtrees; `stop()` ends them (before the pull callbacks go, so the
    last poll does not report everything as deleted)."""

    def __init__(self, session: Any, module: str) -> None:
        self._sess = session  # a sysrepo-python session of the agent's connection: the cache is the connection's
        self._module = module
        self._subs: list[tuple[str, Any]] = []

    def add(self, path: str, period_ms: int) -> None:
        """Poll `path` (the path of an oper get subscription) every `period_ms`, reporting changes; 0: not at all."""
        if period_ms <= 0:
            return
        sub = libsysrepo.ffi.new("sr_subscription_ctx_t **")
        rc = libsysrepo.lib.sr_oper_poll_subscribe(libsysrepo.session_ptr(self._sess), self._module.encode(),
                                                   path.encode(), period_ms, libsysrepo.SR_SUBSCR_OPER_POLL_DIFF, sub)
        if rc != 0:
            raise OperPollError(f"sr_oper_poll_subscribe {path}: {libsysrepo.strerror(rc)}")
        self._subs.append((path, sub))
        log.info("polling operational state for on-change subscribers", path=path, period_ms=period_ms)

    @property
    def paths(self) -> list[str]:
        return [path for path, _ in self._subs]

    def stop(self) -> None:
        subs, self._subs = self._subs, []
        for path, sub in subs:
            rc = libsysrepo.lib.sr_unsubscribe(sub[0])
            if rc != 0:
                log.warning("poll subscription not ended", path=path, error=libsysrepo.strerror(rc))
        self._sess.stop()


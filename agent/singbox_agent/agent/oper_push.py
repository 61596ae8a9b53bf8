"""The small, slowly changing part of the operational state, pushed into sysrepo's operational datastore.

sysrepo reports a change of the operational datastore (module-change events, and so RFC 8641 on-change YANG-Push
through srsn) only for *push* data: what the pull callbacks return is computed at each read and never compared
with the previous read. So what an operator wants to hear about when it changes (an endpoint's oper-status, the
endpoint an interface really uses, whether the dataplane is connected and holds the configuration) is also pushed
here, by the agent's worker thread, whenever the agent sees it change. Everything else (counters, sessions) stays
pull-only: reading it costs nothing until somebody asks (periodic YANG-Push asks every period).

The pull callbacks keep answering the same leaves (they are the dataplane's current truth, and sysrepo lays pull
data over push data on a read), so a read never shows a pushed value older than the dataplane's.

Push data belongs to the session that pushed it: sysrepo drops it when that session stops or its process dies, so
nothing stale outlives the agent.

The cost follows what changed, not the configuration's size: sysrepo 3.7.11 loads and diffs the session's whole
push data at every apply (sr_apply_oper_changes), so an apply happens only when a leaf really changed, and once for
all the nodes handed over together. `update` takes only the nodes the agent read again (the endpoints a commit
touched, the one an event is about); `replace` takes every node, at the agent's full re-reads (start, VPP
reconnecting, resync, and a periodic safety re-read for changes the dataplane reports no event for).
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

import structlog
import sysrepo

log = structlog.get_logger("agent.oper_push")

# xpath of a node (a list instance or a container) -> its pushed leaves, name -> value (str/bool/int). A node that
# is wanted with no leaves stays in the push data with its leaves deleted (the patch says "delete .../oper-status":
# unknown now); a node no longer wanted at all is deleted whole (the patch says the entry is gone, which is only
# true when the configuration no longer has it either).
Pushed = dict[str, dict[str, Any]]


class OperPush:
    """Keeps the push data of one operational session equal to the last wanted tree, with one apply per change."""

    def __init__(self, session: Any) -> None:
        self._sess = session  # a sysrepo session on the operational datastore, used by one thread only
        self._pushed: Pushed = {}
        self.applies = 0  # how many apply_changes sent a change (tests, bench)

    @property
    def pushed(self) -> Pushed:
        return {node: dict(leaves) for node, leaves in self._pushed.items()}

    def update(self, wanted: Pushed, gone: Collection[str] = ()) -> bool:
        """Push the difference between `wanted` (some nodes: their leaves now) and what was pushed of them, and
        delete the `gone` nodes (entries the configuration no longer has); other nodes stay as pushed. Nothing is
        applied when nothing changed. True when applied."""
        return self._apply(wanted, [node for node in gone if node in self._pushed and node not in wanted])

    def replace(self, wanted: Pushed) -> bool:
        """Make the push data `wanted`, every node: what was pushed and is not wanted is deleted."""
        return self._apply(wanted, list(self._pushed.keys() - wanted.keys()))

    def _apply(self, wanted: Pushed, gone: list[str]) -> bool:
        try:
            edits = self._edit(wanted, gone)
            if not edits:
                return False
            self._sess.apply_changes()
        except sysrepo.SysrepoError as exc:
            # Nothing of this edit was applied (apply_changes is all or nothing): what was pushed before stays, and
            # the next update tries the difference again.
            self._sess.discard_changes()
            log.warning("operational state not pushed", error=str(exc))
            return False
        for node in gone:
            del self._pushed[node]
        for node, leaves in wanted.items():
            if leaves or node in self._pushed:
                self._pushed[node] = dict(leaves)
        self.applies += 1
        return True

    def _edit(self, wanted: Pushed, gone: list[str]) -> int:
        edits = 0
        for node in gone:
            # the whole node: a leaf deleted alone would leave its list entry (the key) behind, a ghost entry
            # in operational once the configuration no longer has it
            self._sess.delete_item(node)
            edits += 1
        for node, leaves in wanted.items():
            old = self._pushed.get(node, {})
            for leaf in old.keys() - leaves.keys():
                self._sess.delete_item(f"{node}/{leaf}")
                edits += 1
            for leaf, value in leaves.items():
                if leaf not in old or old[leaf] != value:
                    self._sess.set_item(f"{node}/{leaf}", value)
                    edits += 1
        return edits

    def stop(self) -> None:
        """Stopping the session removes its push data from sysrepo."""
        self._sess.stop()
        self._pushed = {}

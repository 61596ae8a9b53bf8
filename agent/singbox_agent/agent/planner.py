"""The planner: two dataplane configurations in, the ordered calls that turn one into the other out. Pure.

Order: dependents are removed before what they depend on and created after it (an endpoint before the interface
that uses it; the interface's bypass prefixes and UDP relaying after the interface; on delete the reverse). Every
Op carries the value it replaces, so `undo(applied)` is the inverse calls in reverse order.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from singbox_agent.dataplane import objects
from singbox_agent.dataplane.objects import Key, Op, Value

# Sequence numbers: lower runs first.
# An endpoint group goes after the interfaces and default that use it and before its member endpoints; it is put
# after its members and before what uses it.
_DELETE_ORDER = {objects.INTERFACE_UDP: 9, objects.BYPASS: 10, objects.INTERFACE: 11, objects.LISTENER: 13,
                 objects.USER: 14, objects.ALLOWED_PREFIX: 15, objects.GROUP: 39, objects.ENDPOINT: 40}
_PUT_ORDER = {objects.LOG_LEVEL: 20, objects.ENDPOINT: 21, objects.GROUP: 22, objects.DEFAULT_ENDPOINT: 23,
              objects.DEFAULT_GROUP: 23, objects.CLIENT: 24, objects.INTERFACE: 25, objects.BYPASS: 26,
              objects.INTERFACE_UDP: 26, objects.USER: 27, objects.SERVER: 28, objects.SERVER_UPSTREAM: 28,
              objects.ALLOWED_PREFIX: 29,
              objects.LISTENER: 30, objects.SERVER_ENABLED: 31}
_STOP_SERVER = 12  # stopping the server comes before its listeners and users go


def _rank(op: Op) -> int:
    kind = op.key[0]
    if op.action == "delete":
        return _DELETE_ORDER[kind]
    if kind == objects.SERVER_ENABLED and op.value is False:
        return _STOP_SERVER
    return _PUT_ORDER[kind]


def plan(old: Mapping[Key, Value], new: Mapping[Key, Value]) -> list[Op]:
    """Calls that make a dataplane holding `old` hold `new`; keys in neither are untouched."""
    ops: list[Op] = []
    for key, value in new.items():
        before = old.get(key)
        if before is None or before != value:
            ops.append(Op("put", key, value, before))
    for key, before in old.items():
        if key not in new:
            ops.append(Op("delete", key, None, before))
    ops.sort(key=lambda op: (_rank(op), op.key))
    return ops


def undo_plan(applied: Sequence[Op]) -> list[Op]:
    """The calls that take back `applied` (which ran in order)."""
    return [op.inverse() for op in reversed(applied)]

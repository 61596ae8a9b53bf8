"""Dataplane.apply_batch without sysrepo: which ops run when one fails, with calls one after another and with
several under way (what the pipelining VPP adapter does), as the in-memory dataplane emulates it."""

from __future__ import annotations

import pytest

from singbox_agent.agent.planner import plan, undo_plan
from singbox_agent.dataplane import objects
from singbox_agent.dataplane.base import run_end
from singbox_agent.dataplane.memory import MemoryDataplane
from tests.agent.specs import endpoint_spec, interface_spec

HASH = "$6$saltsalt$1q7hOQNmD4hGCzJVaqKZ1J8b6T2a7LpyiS7wXqfjBmm5nU5aAhZ/pB2Xm5wcjFZ3Ue5XpGvRiMS2tf7h1XcQ4."


def wanted() -> dict[objects.Key, objects.Value]:
    want: dict[objects.Key, objects.Value] = dict(objects.FACTORY)
    for i in range(6):
        want[("endpoint", f"e{i}")] = endpoint_spec(f"192.0.2.{i + 1}")
    want[("interface", "tap0")] = interface_spec("e0")
    for i in range(4):
        want[("user", f"u{i}")] = objects.UserSpec(HASH)
    return want


def always(_op: objects.Op, _exc: objects.DataplaneError) -> bool:
    return True


def failing(dp: MemoryDataplane, *names: str) -> None:
    dp.fail_when = lambda op: (objects.DataplaneError(f"refused {op.key[1]}", objects.ErrorCode.INVALID_VALUE)
                               if len(op.key) > 1 and op.key[1] in names else None)


def test_without_a_stop_rule_every_op_is_attempted_and_each_failure_reported() -> None:
    dp = MemoryDataplane()
    ops = plan(dict(objects.FACTORY), wanted())
    failing(dp, "e2", "u1")
    results = dp.apply_batch(ops)
    assert len(results) == len(ops)
    assert [op.key for op, r in zip(ops, results) if r is not None] == [("endpoint", "e2"), ("user", "u1")]
    assert all(r is None or "refused" in str(r) for r in results)
    assert ("endpoint", "e3") in dp.objects and ("user", "u2") in dp.objects


@pytest.mark.parametrize("in_flight", [1, 3, 100])
def test_a_stop_ends_the_batch_after_what_was_under_way_in_the_same_run(in_flight: int) -> None:
    dp = MemoryDataplane(in_flight=in_flight)
    ops = plan(dict(objects.FACTORY), wanted())
    failing(dp, "e2")
    at = next(i for i, op in enumerate(ops) if op.key == ("endpoint", "e2"))
    results = dp.apply_batch(ops, stop=always)
    # ops of the endpoint run already sent complete; nothing of a later run (the interface using e0) is sent
    expected_len = min(at + in_flight, run_end(ops, at) + 1)
    assert len(results) == expected_len
    assert results[at] is not None and all(r is None for i, r in enumerate(results) if i != at)
    assert ("interface", "tap0") not in dp.objects
    # undoing what succeeded, in reverse, restores the factory state exactly
    done = [op for op, r in zip(ops, results) if r is None]
    assert not any(dp.apply_batch(undo_plan(done)))
    assert dp.objects == objects.FACTORY


def test_errors_the_stop_rule_accepts_do_not_end_the_batch() -> None:
    dp = MemoryDataplane(in_flight=4)
    ops = [objects.Op("delete", ("endpoint", "gone"), None, endpoint_spec("192.0.2.9")),
           objects.Op("put", ("endpoint", "e"), endpoint_spec("192.0.2.1"), None)]
    results = dp.apply_batch(ops, stop=lambda _op, exc: exc.code != objects.ErrorCode.NO_SUCH_ENTRY)
    assert results[0] is not None and results[0].code == objects.ErrorCode.NO_SUCH_ENTRY and results[1] is None
    assert ("endpoint", "e") in dp.objects


def test_losing_the_dataplane_raises() -> None:
    dp = MemoryDataplane()
    ops = plan(dict(objects.FACTORY), wanted())

    def drop(op: objects.Op) -> objects.DataplaneError | None:
        if op.key == ("endpoint", "e3"):
            dp._connected = False  # noqa: SLF001 - VPP died under the batch
            return objects.DataplaneUnavailable("connection reset")
        return None

    dp.fail_when = drop
    with pytest.raises(objects.DataplaneUnavailable):
        dp.apply_batch(ops)

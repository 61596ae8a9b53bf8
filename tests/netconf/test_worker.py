"""A session's worker (netconf/worker.py): calls in order on one thread, a Future only when asked for, the calls
given before shutdown still run, none after; a call that raises does not stop the next ones."""

from __future__ import annotations

import functools
import threading

import pytest

from singbox_agent.netconf.worker import Worker

WAIT_S = 30.0  # a bound for waits that end at once unless something hangs


def test_calls_run_in_order_on_one_thread_and_survive_a_failure() -> None:
    worker = Worker("test-worker")
    seen: list[tuple[int, str]] = []
    gate = threading.Event()
    worker.call(lambda: gate.wait(WAIT_S))  # everything below queues behind it
    def note(i: int) -> None:
        seen.append((i, threading.current_thread().name))

    for i in range(5):
        worker.call(functools.partial(note, i))
    worker.call(lambda: 1 / 0)  # logged; the worker goes on
    result = worker.submit(lambda: len(seen))
    failed = worker.submit(lambda: int("x"))
    worker.shutdown()
    gate.set()
    assert result.result(WAIT_S) == 5
    with pytest.raises(ValueError):
        failed.result(WAIT_S)
    assert [i for i, _ in seen] == [0, 1, 2, 3, 4]
    assert {name for _, name in seen} == {"test-worker"}
    with pytest.raises(RuntimeError):
        worker.call(lambda: None)
    with pytest.raises(RuntimeError):
        worker.submit(lambda: None)
    worker._thread.join(WAIT_S)
    assert not worker._thread.is_alive()  # ended after the calls it was given

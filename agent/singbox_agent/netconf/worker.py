"""A session's worker thread: calls run one at a time, in the order given.

What `concurrent.futures.ThreadPoolExecutor(max_workers=1)` did for a session, without its per-call machinery: a
submit there builds a Future and a work item, takes the executor's lock and its idle semaphore (a Python Condition),
and the worker then sets the Future running and done, each under the Future's Condition — 4-14 µs of the event
loop's and the worker's time with the GIL per request, twice per request for nothing (the session never waits for
its rpcs' Futures: the reply comes back through the event loop). Here a call is one put on a `queue.SimpleQueue` (C,
~0.1-0.8 µs); a Future only for callers that want a result (`submit`). Issue 17: the small edit's Python per request.

`shutdown()` lets the calls already given run, then the thread ends; calling after it raises RuntimeError (as the
executor did). As the executor's, the thread is not a daemon and is told to shut down when the interpreter exits
(threading's own exit hooks, which run before it joins such threads): it finishes what it was given, then ends.
"""

from __future__ import annotations

import concurrent.futures
import queue
import threading
from collections.abc import Callable
from typing import Any

import structlog

log = structlog.get_logger("netconf.worker")

# what concurrent.futures registers its workers' shutdown with (CPython 3.9+): called before the interpreter joins
# the threads that are no daemons, where `atexit` would come after that join and so never
_at_threading_exit: Callable[[Callable[[], Any]], None] = getattr(threading, "_register_atexit", lambda fn: None)


class Worker:
    def __init__(self, name: str) -> None:
        self._calls: queue.SimpleQueue[Callable[[], Any] | None] = queue.SimpleQueue()
        self._shut = False
        self._lock = threading.Lock()  # orders `call` against `shutdown` (from any thread)
        self._thread = threading.Thread(target=self._run, name=name)
        self._thread.start()
        _at_threading_exit(self.shutdown)

    def call(self, fn: Callable[[], Any]) -> None:
        """Run `fn()` after the calls given before; what it raises is logged. :raises RuntimeError: shut down."""
        with self._lock:
            if self._shut:
                raise RuntimeError("cannot schedule new calls after shutdown")
            self._calls.put(fn)

    def submit(self, fn: Callable[[], Any]) -> concurrent.futures.Future[Any]:
        """`call`, with a Future of its result."""
        future: concurrent.futures.Future[Any] = concurrent.futures.Future()

        def run() -> None:
            if not future.set_running_or_notify_cancel():
                return
            try:
                result = fn()
            except BaseException as exc:  # noqa: BLE001 - handed to whoever waits
                future.set_exception(exc)
            else:
                future.set_result(result)

        self.call(run)
        return future

    def shutdown(self) -> None:
        """No more calls; the thread ends after those given (does not wait)."""
        with self._lock:
            if not self._shut:
                self._shut = True
                self._calls.put(None)

    def _run(self) -> None:
        while (fn := self._calls.get()) is not None:
            try:
                fn()
            except BaseException:  # noqa: BLE001 - the next call runs all the same
                log.exception("worker call failed")
            del fn  # not kept alive (and its arguments: a request's bytes) until the next call comes

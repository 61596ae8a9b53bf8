"""One NETCONF session: the sans-IO protocol driver around a transport.

`NetconfSession` owns the framer, the hello exchange, the sysrepo session and a single worker thread (`worker.py`) on which
operations of this session run — sysrepo's Python API blocks and its locks belong to a sysrepo session, so one
thread per NETCONF session keeps the same sysrepo session doing the lock and the commit, answers pipelined rpcs
in order, and keeps the event loop free. The transport only calls `data_received` and gets bytes through `send`.

Short operations skip the worker. The two thread hops (the submit, and the reply's wake-up of the event loop with
the GIL handed back and forth) cost about as much as a small edit itself; profiled, the wake-up alone was a fifth
of the server's busy time. So a read or edit whose previous runs in this session took under `INLINE_BUDGET_S` runs
right on the event loop (reads, never an edit: those wait for subscribers), when nothing of this session is queued on the worker (replies stay in order) and the
sysrepo session is free (`_sr_lock`: the worker, a confirmed-commit rollback and an inline run never share it). A
slow run (large data, a slow subscriber) raises the estimate and sends the next ones back to the worker.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import re
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import structlog
import sysrepo

from singbox_agent.mgmt import datastore, nacm
from singbox_agent.mgmt.errors import MgmtError, path_namespaces
from singbox_agent.netconf import heap, limits, messages
from singbox_agent.netconf.framing import Framer, FramingError, MessageTooBig
from singbox_agent.netconf.worker import Worker

if TYPE_CHECKING:
    from singbox_agent.netconf.server import NetconfServer

log = structlog.get_logger("netconf.session")

KILL_WAIT_S = 10.0

# Operations that may run on the event loop: they neither wait for other sessions nor for the loop itself
# (kill-session and close-session do; commit may roll back through another session's worker), nor for sysrepo's
# subscribers: edit-config and edit-data wait for the agent's change callback (which talks to VPP), lock for a
# commit in progress, and every session would stall behind them however fast their previous runs were.
INLINE_OPS = frozenset({"get", "get-config", "get-data", "unlock", "validate", "discard-changes"})
# SINGBOX_NETCONF_INLINE_BUDGET_MS=0 turns the inline path off (A/B measurements: bench/netconf).
INLINE_BUDGET_S = float(os.environ.get("SINGBOX_NETCONF_INLINE_BUDGET_MS", "3")) / 1000
_COST_WEIGHT = 0.3  # of the newest run in the moving estimate
# The operation's local name, read cheaply before the real parse; anything unusual simply goes to the worker.
_MESSAGE_ID = re.compile(rb"""\bmessage-id\s*=\s*["']([^"'<>]{0,256})["']""")
_OP_NAME = re.compile(rb"<(?:[A-Za-z_][\w.-]*:)?rpc\b[^>]*>\s*<(?:[A-Za-z_][\w.-]*:)?([A-Za-z_][\w.-]*)")


class NetconfSession:
    def __init__(
        self,
        server: NetconfServer,
        user: str,
        send: Callable[[bytes], None],
        close_transport: Callable[[], None],
        source_host: str = "",
        loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        self.server = server
        self.user = user
        self.id = server.state.new_session_id()
        self.source_host = source_host
        self.login_time = time.time()
        self.framer = Framer(server.limits.max_message_size)
        self.hello_done = False
        self.closed = False
        self.in_rpcs = 0
        self.in_bad_rpcs = 0
        self.out_rpc_errors = 0
        self.out_notifications = 0
        self.subscription: Any = None  # notification subscription (ops.create_subscription)
        self.sr: Any = None
        self._nacm_generation = -1
        self._ending = False
        self._eof = False  # the client sent EOF: answer what was received, then close (RFC 6242 over SSH)
        self.end_reason = "dropped"  # RFC 6470 termination-reason, set where the session ends otherwise
        self.killed_by: int | None = None
        self._send = send
        self._close_transport = close_transport
        self._loop = loop or asyncio.get_running_loop()
        self._worker = Worker(f"netconf-{self.id}")
        self._sr_lock = threading.Lock()  # whoever uses self.sr holds it
        self._queued = 0  # rpcs handed to the worker whose replies were not sent yet (event loop only)
        self._cost: dict[str, float] = {}  # operation -> moving estimate of its duration, seconds
        self.log = log.bind(session_id=self.id, user=user)
        with server.state.lock:
            server.state.sessions[self.id] = self
            server.state.stats.in_sessions += 1
        self._worker.call(self._start_sysrepo)

    # --- transport side (event loop) ---------------------------------------------------------------------------

    def start(self) -> None:
        hello = messages.build_hello(self.server.capabilities(), self.id)
        self._send(self.framer.frame(hello))
        self._loop.call_later(self.server.hello_timeout, self._hello_deadline)

    def _hello_deadline(self) -> None:
        if not self.hello_done and not self.closed:
            self._bad_hello(f"no client hello within {self.server.hello_timeout:g} s")

    def data_received(self, data: bytes) -> int:
        """Feed the framer; returns how many requests these bytes completed — each gets a reply, which carries the
        TCP acknowledgement of the read (tcp_ack.py acknowledges every other read at once)."""
        requests = 0
        if self.closed:
            return requests
        try:
            self.framer.max_message = self.server.limits.max_message_size
            self.framer.receive_data(data)
            while not self.closed:
                try:
                    message = self.framer.next_message()
                except MessageTooBig as exc:
                    requests += 1
                    self._too_big(exc)
                    continue
                if message is None:
                    break
                requests += self.hello_done  # the client's <hello> gets no answer
                self._message(message)
        except FramingError as exc:
            self.log.info("framing error, closing session", reason=str(exc))
            self.close(dropped=True)
        return requests

    def _message(self, message: bytes) -> None:
        if not self.hello_done:
            try:
                hello = messages.parse_hello(message, self.server.limits)
            except Exception:
                self._bad_hello("client hello is not a valid <hello>")
                return
            if hello.session_id is not None:
                self._bad_hello("client hello carries a session-id")
                return
            if messages.BASE_1_1 in hello.capabilities:
                self.framer.switch_to_chunked()
            elif messages.BASE_1_0 not in hello.capabilities:
                self._bad_hello("client supports neither base:1.0 nor base:1.1")
                return
            self.hello_done = True
            return
        m = _OP_NAME.match(message, 0, 2048) or _OP_NAME.search(message, 0, 2048)
        op = m.group(1).decode() if m else ""
        if (op in INLINE_OPS and self._cost.get(op, INLINE_BUDGET_S + 1) < INLINE_BUDGET_S and self._queued == 0
                and self.sr is not None and self._sr_lock.acquire(blocking=False)):
            try:
                with datastore.no_waiting():  # the event loop never sleeps on sysrepo's locks
                    reply, close_after = self._dispatch(message, op)
            except datastore.WouldWait:
                reply = b""  # nothing was changed: the worker runs it again and may wait
            finally:
                self._sr_lock.release()
            if reply:
                self._send_now(reply)
                return
            self._cost[op] = INLINE_BUDGET_S + 1  # next ones go to the worker until one is fast again
        self._queued += 1
        self._worker.call(lambda: self._run_rpc(message, op))

    def _too_big(self, exc: MessageTooBig) -> None:
        """A request over max-message-size was dropped unread: `too-big`, in order with the other replies."""
        if not self.hello_done:
            self._bad_hello(f"hello of {exc.size} bytes or more exceeds max-message-size")
            return
        m = _MESSAGE_ID.search(exc.head)
        attributes = {"message-id": m.group(1).decode(errors="replace")} if m else {}
        self.log.info("request too big, dropped", size=exc.size)
        reply = self.error_reply(attributes, list(limits.message_too_big(exc.size, self.server.limits).errors),
                                 bad=True)
        if self._queued:
            self._queued += 1
            self._worker.call(lambda: self._loop.call_soon_threadsafe(self._worker_reply, reply))
        else:
            self._send_now(reply)

    def error_reply(self, attributes: dict[str, str], errs: list[MgmtError], *, bad: bool = False) -> bytes:
        """An rpc-reply with `errs`, counted in the session's and the server's statistics (RFC 6022)."""
        with self.server.state.lock:
            self.server.state.stats.out_rpc_errors += 1
            if bad:
                self.server.state.stats.in_bad_rpcs += 1
        self.out_rpc_errors += 1
        if bad:
            self.in_bad_rpcs += 1
        return messages.reply_errors(attributes, errs, self._path_namespaces)

    def _path_namespaces(self, path: str) -> dict[str, str]:
        ctx: Any
        with self.server.conn.get_ly_ctx() as ctx:
            return path_namespaces(path, ctx)

    def _bad_hello(self, reason: str) -> None:
        self.end_reason = "bad-hello"
        with self.server.state.lock:
            self.server.state.stats.in_bad_hellos += 1
        self.log.info("bad hello, closing session", reason=reason)
        self.close(dropped=True)

    def run_on_worker(self, fn: Callable[[], Any]) -> concurrent.futures.Future[Any]:
        """Run `fn` on this session's worker (with its sysrepo session); RuntimeError once the session closed."""

        def locked() -> Any:
            with self._sr_lock:
                return fn()

        return self._worker.submit(locked)

    def send_threadsafe(self, message: bytes) -> None:
        """Send one whole message from any thread, framed for this session."""
        self._loop.call_soon_threadsafe(self._send_now, message)

    def _send_now(self, message: bytes) -> None:
        if not self.closed:
            self._send(self.framer.frame(message))

    def close(self, *, dropped: bool = False) -> None:
        """Stop the session: transport closed now, sysrepo cleanup on the worker after any running operation."""
        if self.closed:
            return
        self.closed = True
        if dropped:
            with self.server.state.lock:
                self.server.state.stats.dropped_sessions += 1
        self._worker.call(self._cleanup)
        self._worker.shutdown()
        try:
            self._close_transport()
        except Exception:  # noqa: BLE001 - the transport may already be gone
            pass

    def wait_closed(self, timeout: float) -> None:
        """Block until the worker finished its cleanup (or `timeout`)."""
        deadline = time.monotonic() + timeout
        while self.id in self.server.state.sessions and time.monotonic() < deadline:
            time.sleep(0.02)

    def connection_lost(self) -> None:
        if not self.closed:
            self.close(dropped=True)

    def eof_received(self) -> None:
        """The client will send nothing more (`printf ... | ssh -s HOST netconf`). Every complete request it sent
        is still answered, in order, and only then the session ends (as netopeer2 does); an incomplete trailing
        message is dropped. Requests answered inline were answered already; the worker's come through
        `_worker_reply`, which closes after the last one."""
        if self.closed:
            return
        self._eof = True
        if not self.hello_done:
            self.close(dropped=True)
        elif self._queued == 0:
            self._end_after_eof()

    def _end_after_eof(self) -> None:
        self.log.info("client sent EOF, session ends after its requests were answered")
        self.close(dropped=True)  # no close-session (that one closes in _worker_reply): RFC 6470 'dropped'

    # --- worker side (this session's thread) -------------------------------------------------------------------

    def _start_sysrepo(self) -> None:
        with self._sr_lock:
            self._start_sysrepo_locked()

    def _start_sysrepo_locked(self) -> None:
        sr = self.server.conn.start_session("running")
        try:
            datastore.mark_changed_by(sr, self.user, self.id)  # RFC 6470 changed-by of its config-change events
            self.sr = sr
            self._nacm_generation = -1
            self.refresh_nacm()
            self.server.events.session_start(self)
        except Exception:
            # Never serve a session whose NACM identity could not be set: it would run unrestricted.
            self.log.exception("cannot prepare the sysrepo session")
            self.sr = None
            sr.stop()

    def refresh_nacm(self) -> None:
        """Give the sysrepo session this user's NACM identity, or none when NACM would permit everything anyway."""
        policy = self.server.nacm_policy
        generation = policy.generation
        if generation == self._nacm_generation:
            return
        if self.user in self.server.recovery_users:
            nacm.enable_nacm(self.sr, None, recovery=True)
        else:
            nacm.enable_nacm(self.sr, policy.identity(self.user))
        self._nacm_generation = generation

    def _dispatch(self, message: bytes, op: str) -> tuple[bytes, bool]:
        """Run one rpc (caller holds `_sr_lock`), keeping the duration estimate of its operation."""
        started = time.perf_counter()
        try:
            return self.server.dispatch(self, message)
        except datastore.WouldWait:
            raise
        except Exception:  # noqa: BLE001 - a client always gets an answer
            self.log.exception("dispatch failed")
            return messages.reply_errors({}, [MgmtError("application", "operation-failed", "Internal error.")]), False
        finally:
            took = time.perf_counter() - started
            previous = self._cost.get(op)
            self._cost[op] = took if previous is None else previous + _COST_WEIGHT * (took - previous)

    def _run_rpc(self, message: bytes, op: str) -> None:
        if self.closed or self._ending:  # killed, or an earlier close-session: queued rpcs are not run
            self._loop.call_soon_threadsafe(self._worker_reply, None)
            return
        # the worker's CPU, not the wall time: an edit that waited for a subscriber (the agent) or for the CPU on a
        # loaded machine allocated no more than a quick one, and its trim delayed the session's next request
        started = time.thread_time()
        with self._sr_lock:
            reply, close_after = self._dispatch(message, op)
        if close_after:
            self._ending = True  # before the worker takes the next queued rpc
            self.end_reason = "closed"
        trim = heap.big(len(message) + len(reply), time.thread_time() - started)
        self._loop.call_soon_threadsafe(self._worker_reply, reply, close_after, trim)

    def _worker_reply(self, reply: bytes | None, close_after: bool = False, trim: bool = False) -> None:
        """On the event loop: the worker's reply goes out, and only then may later rpcs run inline (order). After a
        big request the worker trims the heaps once the reply went through SSH (its packets' copies freed too)."""
        self._queued -= 1
        if reply is not None:
            self._send_now(reply)
        if close_after:
            self.close()
        elif self._eof and self._queued == 0:
            self._end_after_eof()
        elif trim and not self.closed:
            self._worker.call(heap.trim)
        if reply is not None and not self.closed:
            # An edit's commit queued inotify events on the request limits' watch (mgmt/change_notice: it sees every
            # module's running file). Read now, while the client reads this reply, they no longer cost the next
            # request's look ~20 µs on its way in (bench/netconf/request_stages.py).
            try:
                self.server.look_at_limits()
            except Exception:  # noqa: BLE001 - the next message looks again and answers for it
                self.log.exception("reading the request limits failed")

    def _cleanup(self) -> None:
        with self._sr_lock:
            self._cleanup_locked()

    def _cleanup_locked(self) -> None:
        try:
            for hook in self.server.session_end_hooks:  # the operations' own cleanup: subscription, locks
                hook(self)
            self.server.confirmed_on_session_end(self)
        except Exception as exc:  # noqa: BLE001 - cleanup must go on
            self.log.warning("session cleanup failed", error=str(exc))
        finally:
            if self.sr is not None:
                try:
                    self.sr.stop()  # also ends this session's notification subscriptions
                except Exception:  # noqa: BLE001
                    pass
                self.sr = None
            if self.hello_done or self.end_reason == "bad-hello":
                self.server.events.session_end(self)
            with self.server.state.lock:  # last: shutdown waits for this before disconnecting from sysrepo
                self.server.state.sessions.pop(self.id, None)
            self.log.info("session closed")

    def kill_from_other_thread(self) -> None:
        """kill-session: close this session and wait until its locks are released (RFC 6241 7.9)."""
        done = concurrent.futures.Future[None]()

        def on_loop() -> None:
            if not self.closed:
                self.closed = True  # not dropped: RFC 6022 counts no session ended by <kill-session>
                cleanup = self._worker.submit(self._cleanup)
                self._worker.shutdown()
                cleanup.add_done_callback(lambda f: done.set_result(None))
                try:
                    self._close_transport()
                except Exception:  # noqa: BLE001
                    pass
            else:
                done.set_result(None)

        self._loop.call_soon_threadsafe(on_loop)
        try:
            done.result(timeout=KILL_WAIT_S)
        except concurrent.futures.TimeoutError:
            self.log.warning("killed session still busy; its locks go when its operation ends")

"""The agent: keeps the dataplane equal to sysrepo's running configuration of vpp-singbox, all-or-nothing per
commit, and serves the module's operational state, RPCs and notifications.

Threads: sysrepo calls the change, oper-data and RPC callbacks in its own threads; the dataplane reports events from
its thread; one worker thread of ours resynchronises and sends notifications. `_lock` serialises everything that
touches the dataplane's configuration or the running-config cache.
"""

from __future__ import annotations

import gc
import queue
from collections import deque
import secrets
import threading
import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

import structlog
import sysrepo

from singbox_agent.agent import defaults, fastoper, oper, sessions_tree
from singbox_agent.agent.oper_poll import OperPoll
from singbox_agent.agent.oper_push import OperPush, Pushed
from singbox_agent.mgmt import crypt, password_hashing, xpath
from singbox_agent.agent.changes import read_changes
from singbox_agent.agent.mapping import MODULE, TOP, Change, RunningConfig, Unit, UnitData, derive, derive_units
from singbox_agent.agent.planner import plan, undo_plan
from singbox_agent.agent.resolve import Resolver, hold_unresolved
from singbox_agent.dataplane.base import (
    ClearScope,
    Connected,
    Dataplane,
    Disconnected,
    EndpointEvent,
    Event,
    OperState,
    StatePart,
    Versions,
)
from singbox_agent.dataplane.objects import (
    CLIENT,
    DEFAULT_ENDPOINT,
    DEFAULT_GROUP,
    ENDPOINT,
    GROUP,
    INTERFACE,
    LISTENER,
    SERVER,
    SERVER_ENABLED,
    USER,
    DataplaneError,
    DataplaneUnavailable,
    EndpointSpec,
    ErrorCode,
    InterfaceSpec,
    Key,
    Op,
    ServerSettings,
    Value,
    describe_key,
)

log = structlog.get_logger("agent")

TICK_S = 1.0
INTERFACE_LIMIT_TICKS = 5
# A transaction with neither done nor abort after this long (its originator timed out on us): its outcome is
# unknown, so the running config is re-read and the dataplane resynchronised to it.
STALE_TXN_S = 120.0
# Objects the dataplane refused during a resync are retried after RESYNC_FIRST_RETRY_S, then twice as long each time
# up to RESYNC_RETRY_S: right after VPP (re)starts it often refuses what depends on configuration others add a
# moment later (a listener before its interface address exists), and that must not wait half a minute.
RESYNC_FIRST_RETRY_S = 0.5
RESYNC_RETRY_S = 30.0
USER_PASSWORD_XPATH = f"{TOP}/server/authentication/user/password"
# The pushed operational state (oper_push.py) is re-read whole at start, reconnect and resync, and at this interval:
# a safety net for what changes in the dataplane without an event (an endpoint's state reset when VPP's DNS answers)
OPER_PUSH_FULL_S = 60.0
# Re-reads asked for are pushed together (one sysrepo apply) this late: a burst of commits or events costs one
# re-read and one apply, not one per commit (issue 17: the worker's re-read after every one-leaf commit competed with
# the next commit for the CPU and the GIL)
OPER_PUSH_BATCH_S = 0.1
# Units whose change can move an interface's effective endpoint (the plugin fails over to any endpoint not down)
_MOVES_INTERFACES = frozenset((ENDPOINT, GROUP, DEFAULT_ENDPOINT, DEFAULT_GROUP, CLIENT))
# Units whose change can change the server's oper-status
_SERVER_UNITS = frozenset((SERVER, SERVER_ENABLED, LISTENER))
# children of /singbox/client and /singbox/server with state -> what the dataplane must report for them
CLIENT_STATE: dict[str, frozenset[StatePart]] = {"endpoint": frozenset({"endpoints"}),
                                                 "interface": frozenset({"interfaces"}),
                                                 "endpoint-group": frozenset({"groups"})}
SERVER_STATE: dict[str, frozenset[StatePart]] = {"oper-status": frozenset({"server"}),
                                                 "statistics": frozenset({"server"}),
                                                 "listen": frozenset({"listeners"}),
                                                 "authentication": frozenset({"users"})}


@dataclass
class Transaction:
    req_id: int
    started: float
    new_units: dict[Unit, UnitData | None]
    ops: list[Op]
    applied: list[Op] = field(default_factory=list)
    pending: bool = False  # not (completely) applied: the dataplane was away
    # objects held back until their endpoint's name has an address (resolve.py), with the reason
    held: dict[Key, str] = field(default_factory=dict)
    held_before: bool = False  # some objects the commit replaces were held back: the dataplane may differ
    plan_ms: float = 0.0  # change list -> units -> plan
    apply_ms: float = 0.0  # dataplane calls


@dataclass
class CommitDone:
    """A commit's done, for the worker: it writes the commit's log line (rendering and writing it inside the done
    callback made every apply_changes wait for it, issue 17), with the other commits' of the same burst."""
    req_id: int
    result: str
    txn: Transaction | None  # None: a commit that started before we subscribed
    duration_ms: float | None


@dataclass
class DataplaneStatus:
    connected: bool = False
    versions: Versions | None = None
    last_sync: str | None = None
    last_error: str | None = None
    # The agent knows what the dataplane holds (a resync completed since it connected): commits apply directly.
    in_sync: bool = False
    pending: bool = False  # committed configuration the dataplane has not taken (yet): away, or refused it


def _already_gone(op: Op, exc: DataplaneError) -> bool:
    """Deleting what the dataplane does not have reaches the goal: the plugin's NO_SUCH_ENTRY is success here."""
    return op.action == "delete" and exc.code == ErrorCode.NO_SUCH_ENTRY


def _summary(errors: list[str]) -> str:
    return "; ".join(errors[:5]) + (f" (+{len(errors) - 5} more)" if len(errors) > 5 else "")


class Agent:
    def __init__(self, dataplane: Dataplane, *, change_priority: int = 0, resolver: Resolver | None = None,
                 oper_poll_ms: int = 0, sessions_poll_ms: int = 0,
                 heartbeat: Callable[[], object] = lambda: None) -> None:
        self.dataplane = dataplane
        # called on every turn of the worker's loop (at least every TICK_S): systemd's watchdog (mgmt/systemd.py)
        self.heartbeat = heartbeat
        # on-change of the pull-only state (oper_poll.py): client/server/dataplane, and the sessions list; 0: off
        self.oper_poll_ms = oper_poll_ms
        self.sessions_poll_ms = sessions_poll_ms
        self._oper_poll: OperPoll | None = None
        # endpoint host names: looked up outside every callback and lock; a new answer is applied by a resync
        self.resolver = resolver if resolver is not None else Resolver()
        self.running = RunningConfig()
        self.status = DataplaneStatus()
        self.change_priority = change_priority
        self._lock = threading.RLock()
        self._txns: dict[int, Transaction] = {}
        self._events: queue.Queue[Event | str] = queue.Queue()
        # commits done whose log line the worker has not written yet (appended under _lock, taken by the worker)
        self._commits_done: deque[CommitDone] = deque()
        self._stop = threading.Event()
        self._worker: threading.Thread | None = None
        self._next_resync = 0.0
        self._resync_due = False  # a resync was asked for while a commit was under way: its done/abort runs it
        self._retry_s = RESYNC_FIRST_RETRY_S
        self._limit_reported: set[tuple[str, ...]] = set()
        self._endpoint_change: dict[str, float] = {}
        self._discontinuity: dict[tuple[str, ...], str] = {(): oper.timestamp()}
        self._conn: Any = None  # sysrepo.SysrepoConnection
        self._sess: Any = None  # sysrepo.session.SysrepoSession
        self._notif_sess: Any = None
        self._read_sess: Any = None
        self._oper_push: OperPush | None = None
        # what the next push re-reads (oper_push): everything, or the endpoints, interfaces (or all of them) and server
        # that commits and events since the last push touched; guarded by _lock (commits ask from sysrepo's thread)
        self._push_full = True
        self._push_endpoints: set[str] = set()
        self._push_interfaces: set[str] = set()
        self._push_all_interfaces = False
        self._push_server = False
        # when the oldest deferred work (a re-read not pushed yet, a commit's log line) was asked for: the worker
        # does it OPER_PUSH_BATCH_S later (`_next_item`); set by the worker or a commit's done, under _lock
        self._push_since: float | None = None
        self._next_full_push = 0.0
        self._interface_names: list[str] | None = None  # the configured interfaces (None: not known), under _lock
        self._marks: dict[int, threading.Event] = {}
        self._enabled_done_due = False
        self._ticks = 0
        self._read_failed_until = 0.0
        self.last_timing: tuple[float, float] = (0.0, 0.0)  # plan_ms, apply_ms of the last applied commit
        self.last_resync_timing: tuple[float, float, float] = (0.0, 0.0, 0.0)  # read_ms, plan_ms, apply_ms
        self.resolver.set_listener(lambda: self._events.put("resync"))

    # lifecycle ----------------------------------------------------------------------------------------------

    def start(self) -> None:
        fastoper.install()
        self._conn = sysrepo.SysrepoConnection()
        with self._conn.get_ly_ctx() as ctx:
            defaults.use_context(ctx)  # YANG defaults of the revision sysrepo has installed
        self._sess = self._conn.start_session("running")
        self._notif_sess = self._conn.start_session("running")
        self._read_sess = self._conn.start_session("running")
        self._oper_push = OperPush(self._conn.start_session("operational"))
        self._worker = threading.Thread(target=self._work, name="agent-worker", daemon=True)
        self._worker.start()
        self.dataplane.set_event_sink(self._events.put)
        sess = self._sess
        # `enabled`: the current running config arrives as the first event, atomically with the subscription.
        # Unsafe: the callback reads the change tree itself (changes.py), not the binding's slow change objects.
        sess.subscribe_module_change_unsafe(MODULE, TOP, self._on_change, priority=self.change_priority,
                                            enabled=True)
        # filter_origin: sysrepo itself skips the update event of a commit that touches no password, instead of a
        # round trip to this callback for every commit of the module (password_hashing.subscribe)
        sess.subscribe_module_change_unsafe(MODULE, USER_PASSWORD_XPATH, password_hashing.hasher(USER_PASSWORD_XPATH),
                                            update=True, filter_origin=True)
        sess.subscribe_oper_data_request(MODULE, f"{TOP}/dataplane", self._oper_dataplane)
        sess.subscribe_oper_data_request(MODULE, f"{TOP}/sessions", self._oper_sessions)
        sess.subscribe_oper_data_request(MODULE, f"{TOP}/client", self._oper_client, oper_merge=True)
        sess.subscribe_oper_data_request(MODULE, f"{TOP}/server", self._oper_server, oper_merge=True)
        sess.subscribe_rpc_call(f"/{MODULE}:clear-statistics", self._rpc_clear_statistics)
        sess.subscribe_rpc_call(f"/{MODULE}:disconnect-session", self._rpc_disconnect_session)
        sess.subscribe_rpc_call(f"/{MODULE}:test-endpoint", self._rpc_test_endpoint)
        self._oper_poll = OperPoll(self._conn.start_session("operational"), MODULE)
        for part in ("dataplane", "client", "server"):
            self._oper_poll.add(f"{TOP}/{part}", self.oper_poll_ms)
        sessions_tree.ON_CHANGE.reset()  # the poll's cache starts empty: so does what it reads
        self._oper_poll.add(oper.SESSIONS_ON_CHANGE_XPATH, self.sessions_poll_ms)  # starts, ends, state
        self.dataplane.start()
        log.info("agent started", units=len(self.running.units), dataplane_connected=self.dataplane.connected)

    def stop(self) -> None:
        """Unsubscribe and disconnect; VPP keeps its state."""
        self._stop.set()
        self._events.put("stop")
        # The worker finishes what it is doing (a resync is bounded by the dataplane's call timeout) before the
        # sessions it sends notifications on go: a notification sent on a stopped session crashed the process.
        if self._worker is not None:
            self._worker.join(timeout=30)
            if self._worker.is_alive():
                log.error("the worker did not stop: leaving the sysrepo connection to sysrepo's recovery")
                self.dataplane.stop()
                return
        if self._oper_poll is not None:
            self._oper_poll.stop()  # before the pull callbacks it reads
        if self._sess is not None:
            self._sess.stop()
        if self._notif_sess is not None:
            self._notif_sess.stop()
        if self._read_sess is not None:
            self._read_sess.stop()
        if self._oper_push is not None:
            self._oper_push.stop()
        if self._conn is not None:
            self._conn.disconnect()
        self.dataplane.stop()
        self.resolver.close()
        log.info("agent stopped")

    def wait_idle(self, timeout: float = 5.0) -> bool:
        """Until the worker has handled every queued event (tests)."""
        done = threading.Event()
        self._marks[id(done)] = done
        self._events.put(f"mark:{id(done)}")
        return done.wait(timeout)

    # configuration changes ----------------------------------------------------------------------------------

    def _on_change(self, ev_sess: Any, event: str, req_id: int, _priv: Any) -> None:
        if event == "change":
            self._change(req_id, read_changes(ev_sess, TOP))
        elif event == "done":
            # only a commit that started before we subscribed needs its changes read
            self._done(req_id, lambda: read_changes(ev_sess, TOP))
        elif event == "abort":
            self._abort(req_id)
        elif event == "enabled":
            self._enabled_done_due = True
            with self._lock:
                self.running = RunningConfig()
                self.running.updated(self.running.changed_units(read_changes(ev_sess, TOP)))
                self._interface_names = None
                self.status.in_sync = False
            # The config cache is large and long-lived: keep it out of the collector's full passes, which would
            # otherwise walk it during commits.
            gc.collect()
            gc.freeze()
            self._events.put("resync")
            self._events.put("hash-clear-passwords")

    def _sendable(self, objs: dict[Key, Value], new_units: dict[Unit, UnitData | None] | None = None
                  ) -> tuple[dict[Key, Value], dict[Key, str]]:
        """`objs` with endpoint names resolved from the cache, and the objects held back until a name has an
        address (resolve.hold_unresolved). The rest of the configuration is the running one, or, for the units
        in `new_units`, theirs. Never waits: a name not in the cache is looked up in the background."""
        def unit_data(unit: Unit) -> UnitData | None:
            if new_units is not None and unit in new_units:
                return new_units[unit]
            return self.running.units.get(unit)

        def endpoint_host(name: str) -> str | None:
            data = unit_data((ENDPOINT, name))
            return None if data is None else str(data.get("address", ""))

        def default_endpoint() -> str:
            default = objs.get((DEFAULT_ENDPOINT,))
            if default is None:
                default = derive((DEFAULT_ENDPOINT,), unit_data((DEFAULT_ENDPOINT,)))[(DEFAULT_ENDPOINT,)]
            return str(default)

        def group_members(name: str) -> list[str]:
            return sorted((unit_data((GROUP, name)) or {}).get("member", {}))

        return hold_unresolved(objs, self.resolver.address, endpoint_host, default_endpoint, self.resolver.reason,
                               group_members)

    def _change(self, req_id: int, changes: list[Change]) -> None:
        started = time.perf_counter()
        with self._lock:
            new_units = self.running.changed_units(changes)
            old, held_before = self._sendable(derive_units({u: self.running.units.get(u) for u in new_units}))
            new, held = self._sendable(derive_units(new_units), new_units)
            for key in held:
                old.pop(key, None)  # held back: what the dataplane has stays until the name has an address
            txn = Transaction(req_id, started, new_units, plan(old, new), held=held, held_before=bool(held_before))
            planned = time.perf_counter()
            txn.plan_ms = (planned - started) * 1e3
            self._txns[req_id] = txn
            if not (self.dataplane.connected and self.status.in_sync):
                txn.pending = True  # stored now, applied by the resync after reconnect
                return
            try:
                # e.g. deleting an interface a resync could not enable reaches the goal: not a failure
                results = self.dataplane.apply_batch(txn.ops, stop=lambda op, exc: not _already_gone(op, exc))
            except DataplaneUnavailable:
                txn.pending = True  # VPP went away mid-commit: the resync on reconnect completes it
                self.status.in_sync = False
                results = []
            # Ops already under way when one failed may have succeeded after it: all of them are undone.
            txn.applied = [op for op, error in zip(txn.ops, results) if error is None]
            failed = next(((step, op, error) for step, (op, error) in enumerate(zip(txn.ops, results), 1)
                           if error is not None and not _already_gone(op, error)), None)
            if failed is not None:
                step, op, error = failed
                message = f"{describe_key(op.key)}: the dataplane refused to {op.action} it: {error}"
                self._undo(txn)
                del self._txns[req_id]
                self.status.last_error = message
                log.warning("commit", txn=req_id, result="rejected", error=message, step=step,
                            steps=len(txn.ops), duration_ms=round((time.perf_counter() - started) * 1e3, 3))
                raise sysrepo.SysrepoValidationFailedError(message) from None
            txn.apply_ms = (time.perf_counter() - planned) * 1e3
            self.last_timing = (txn.plan_ms, txn.apply_ms)

    def _undo(self, txn: Transaction) -> None:
        inverses = undo_plan(txn.applied)
        try:
            failures = [(op, error) for op, error in zip(inverses, self.dataplane.apply_batch(inverses)) if error]
        except DataplaneUnavailable as exc:
            failures = [(inverses[0], exc)] if inverses else []
        for op, error in failures:
            # The dataplane no longer matches what we know: the resync after this transaction repairs it.
            self.status.in_sync = False
            self.status.pending = True
            log.error("undo failed", txn=txn.req_id, op=op.describe(), error=str(error))
        txn.applied.clear()

    def _done(self, req_id: int, changes: Callable[[], list[Change]]) -> None:
        with self._lock:
            txn = self._txns.pop(req_id, None)
            if txn is None and self._enabled_done_due:
                self._enabled_done_due = False
                return  # the `done` that follows the initial `enabled` event (sysrepo sends it as request 0)
            if txn is None:  # a commit that started before we subscribed
                self.running.updated(self.running.changed_units(changes()))
                self.status.in_sync = False
                self.status.pending = True
                result = "pending"
            else:
                self.running.updated(txn.new_units)
                result = "pending" if txn.pending or txn.held else "applied"
                if txn.held:
                    self.status.last_error = _summary(list(txn.held.values()))
            if result == "pending":
                self.status.pending = True
            # Objects held back before this commit may be in the dataplane under their previous form: a resync
            # compares. Objects held back now are applied when their name has an address: the resolver's event
            # asks for a resync, which waits for this done when the answer came while the commit was under way.
            resync = not self.status.in_sync or self._resync_due or (txn is not None and txn.held_before)
            self._resync_due = False
            self._ask_push(None if txn is None else txn.new_units)  # what it touched is read again
            duration_ms = (time.perf_counter() - txn.started) * 1e3 if txn else None
            self._commits_done.append(CommitDone(req_id, result, txn, duration_ms))
            # The worker is woken by the first commit of a burst only, to count OPER_PUSH_BATCH_S from it; the
            # burst's log lines and re-reads wait for that (issue 17: a wake-up per commit had the worker take a
            # core and the GIL right after each done, while the commit returned and the next request came in).
            wake = self._push_since is None
            if wake:
                self._push_since = time.monotonic()
        if resync:
            self._events.put("resync")
        elif wake:
            self._events.put("commits")

    def _abort(self, req_id: int) -> None:
        with self._lock:
            txn = self._txns.pop(req_id, None)
            if txn is None:
                return
            self._undo(txn)
            resync = not self.status.in_sync or self._resync_due
            self._resync_due = False
        log.info("commit", txn=req_id, result="aborted", undone=len(txn.ops),
                 duration_ms=round((time.perf_counter() - txn.started) * 1e3, 3))
        if resync:
            self._events.put("resync")

    # resynchronisation and events (worker thread) -----------------------------------------------------------

    def resync(self) -> bool:
        """Make the dataplane hold the running config, changing only what differs. True when in sync."""
        with self._lock:
            if self._txns:  # a commit is between change and done: its done/abort runs the resync
                self._resync_due = True
                return False
            if not self.dataplane.connected:
                return False
            started = time.perf_counter()
            try:
                have = dict(self.dataplane.read_config())
                read = time.perf_counter()
                desired, held = self._sendable(self.running.desired())
                for key in held:
                    have.pop(key, None)  # left as the dataplane has it until the name has an address
                ops = plan(have, desired)
            except DataplaneUnavailable:
                return False
            except DataplaneError as exc:
                # The dataplane cannot tell what it holds: retry later, not at every reconnect.
                self.status.in_sync = False
                self.status.pending = True
                self.status.last_error = f"reading the dataplane's configuration failed: {exc}"
                self._read_failed_until = time.monotonic() + RESYNC_RETRY_S
                self._next_resync = self._read_failed_until
                log.error("resync", result="failed", error=self.status.last_error)
                return False
            planned = time.perf_counter()
            try:
                results = self.dataplane.apply_batch(ops)
            except DataplaneUnavailable:
                return False
            applied = time.perf_counter()
            self.last_resync_timing = ((read - started) * 1e3, (planned - read) * 1e3, (applied - planned) * 1e3)
            errors: list[str] = []
            for op, error in zip(ops, results):
                if error is not None and not _already_gone(op, error):
                    # each refusal on its own line: which objects are pending, and why
                    log.warning("resync refused", op=op.describe(), error=str(error), code=str(error.code))
                    errors.append(f"{describe_key(op.key)}: {error}")
            refused = len(errors)
            errors += [f"{describe_key(key)}: {why}" for key, why in held.items()]
            # Refused and held objects stay pending and are retried; everything else is known, so commits apply directly
            # (a commit touching a refused object gets the dataplane's answer itself).
            self.status.in_sync = True
            self.status.pending = bool(errors)
            if errors:
                self._next_resync = time.monotonic() + self._retry_s
                self._retry_s = min(self._retry_s * 2, RESYNC_RETRY_S)
            else:
                self._retry_s = RESYNC_FIRST_RETRY_S
            if errors:
                self.status.last_error = _summary(errors)
            else:
                self.status.last_sync = oper.timestamp()
        log.info("resync", result="in-sync" if not errors else "incomplete", applied=len(ops) - refused,
                 failed=refused, held=len(held), changes=[op.describe() for op in ops[:20]],
                 read_ms=round(self.last_resync_timing[0], 3), plan_ms=round(self.last_resync_timing[1], 3),
                 apply_ms=round(self.last_resync_timing[2], 3),
                 duration_ms=round((time.perf_counter() - started) * 1e3, 3))
        return not errors

    def _work(self) -> None:
        while not self._stop.is_set():
            self.heartbeat()
            item = self._next_item()
            try:
                # Commits' log lines go out before whatever the worker does next (its own lines stay in order),
                # except for the first commit's wake-up: they wait for the flush it schedules, all together.
                if item != "commits":
                    self._log_commits()
                if isinstance(item, str) and item.startswith("mark:"):
                    self._push_oper(item, now=True)  # what came before the mark is pushed before it is set
                self._handle(item)
                self._push_oper(item)
            except Exception:  # noqa: BLE001 - the worker must survive anything one event does
                log.exception("worker event failed", event=str(item))
        self._log_commits()  # the commits done before the stop are still logged

    def _next_item(self) -> Event | str:
        """The next queued item; "push-due" when a deferred push (`_push_oper`) is due first, "tick" every TICK_S."""
        since = self._push_since
        timeout = TICK_S if since is None else max(0.0, min(TICK_S, since + OPER_PUSH_BATCH_S - time.monotonic()))
        try:
            return self._events.get(timeout=timeout)
        except queue.Empty:
            return "tick" if since is None else "push-due"

    def _log_commits(self) -> None:
        """The log lines of the commits done so far, in their order (worker thread)."""
        while self._commits_done:
            self._log_commit(self._commits_done.popleft())

    @staticmethod
    def _log_commit(item: CommitDone) -> None:
        txn, duration_ms = item.txn, item.duration_ms
        log.info("commit", txn=item.req_id, result=item.result, held=list(txn.held.values())[:20] if txn else None,
                 applied=[op.describe() for op in (txn.ops[:20] if txn else [])],
                 steps=len(txn.ops) if txn else None,
                 plan_ms=round(txn.plan_ms, 3) if txn else None, apply_ms=round(txn.apply_ms, 3) if txn else None,
                 duration_ms=round(duration_ms, 3) if duration_ms is not None else None)

    def _ask_push(self, units: Mapping[Unit, Any] | None) -> None:
        """Have the next push re-read what a commit touched (`units`; None: unknown, everything). Under _lock."""
        if units is None:
            self._push_full = True
            self._interface_names = None
            return
        for unit in units:
            kind = unit[0]
            if kind == ENDPOINT:
                self._push_endpoints.add(unit[1])
            elif kind == INTERFACE:
                self._interface_names = None  # one may have come or gone
                self._push_interfaces.add(unit[1])
            if kind in _MOVES_INTERFACES:
                self._push_all_interfaces = True
            if kind in _SERVER_UNITS:
                self._push_server = True

    def _push_oper(self, item: Event | str, *, now: bool = False) -> None:
        """The pushed part of the operational state follows what the worker just handled (oper_push.py): what a
        commit touched or an event is about is read again, everything at start, reconnect, resync and every
        OPER_PUSH_FULL_S; the dataplane's status is compared after anything (no read). Re-reads go out together,
        OPER_PUSH_BATCH_S after the first was asked for (`now`: at once)."""
        if self._oper_push is None or self._stop.is_set():
            return
        at = time.monotonic()
        with self._lock:
            if isinstance(item, (Connected, Disconnected)) or item == "resync" \
                    or (item == "tick" and at >= self._next_full_push):
                self._push_full = True
            elif isinstance(item, EndpointEvent):
                self._push_endpoints.add(item.endpoint)
                self._push_all_interfaces = True  # interfaces using it fail over
            due = self._push_full or bool(self._push_endpoints) or bool(self._push_interfaces) \
                or self._push_all_interfaces or self._push_server
            if due and self._push_since is None:
                self._push_since = at
            if due and not now and at - (self._push_since or at) < OPER_PUSH_BATCH_S:
                return  # a burst (commits, events) gets one push for all of it; _next_item wakes the worker for it
            full, self._push_full = self._push_full, False
            endpoints, self._push_endpoints = self._push_endpoints, set()
            interfaces, self._push_interfaces = self._push_interfaces, set()
            all_interfaces, self._push_all_interfaces = self._push_all_interfaces, False
            server, self._push_server = self._push_server, False
            # log lines of commits done since the worker wrote the last ones: their flush is due in turn
            self._push_since = at if self._commits_done else None
            if full:
                self._next_full_push = at + OPER_PUSH_FULL_S
            units = self.running.units
            enabled_default = defaults.current()["client/interface/enabled"]
            if full:
                endpoints = {u[1] for u in units if u[0] == ENDPOINT}
                all_interfaces = True
                self._interface_names = None
            # entries no longer configured go whole (`replace` finds them itself)
            gone = [oper.endpoint_node(n) for n in endpoints if (ENDPOINT, n) not in units]
            gone += [oper.interface_node(n) for n in interfaces if (INTERFACE, n) not in units]
            read_endpoints = [n for n in endpoints if (ENDPOINT, n) in units]
            if all_interfaces:
                if self._interface_names is None:  # a walk of every unit, only when interfaces came or went
                    self._interface_names = [u[1] for u in units if u[0] == INTERFACE]
                interfaces = set(self._interface_names)
            read_interfaces = [(n, bool(units[(INTERFACE, n)].get("enabled", enabled_default)))
                               for n in interfaces if (INTERFACE, n) in units]
        wanted: Pushed = {}
        if due:
            parts: set[StatePart] = set()
            if read_endpoints:
                parts.add("endpoints")
            if read_interfaces:
                parts.add("interfaces")
            if full or server:
                parts.add("server")
            state = self._read_state(frozenset(parts), endpoints=None if full else read_endpoints,
                                     interfaces=None if full else [n for n, _ in read_interfaces]) if parts else None
            wanted = oper.pushed_objects(state, read_endpoints, read_interfaces, server=full or server)
        wanted.update(oper.pushed_dataplane(self.dataplane.connected, self.status.pending, self.status.last_error))
        if full:
            self._oper_push.replace(wanted)
        else:
            self._oper_push.update(wanted, gone)

    def _handle(self, item: Event | str) -> None:
        if isinstance(item, str):
            if item.startswith("mark:"):
                self._marks.pop(int(item[5:])).set()
            elif item == "hash-clear-passwords":
                self._hash_clear_passwords()
            elif item == "resync" or (item == "tick" and self.dataplane.connected
                                      and (not self.status.in_sync or self.status.pending)
                                      and time.monotonic() >= self._next_resync):
                if not self.resync() and self.dataplane.connected and time.monotonic() >= self._next_resync:
                    self._next_resync = time.monotonic() + RESYNC_RETRY_S  # a resync that could not run
            if item == "tick":
                self.resolver.tick()
                self._expire_stale_transactions()
                if self.status.connected:
                    self._check_limits()
            return
        if isinstance(item, Connected):
            self.status.connected = True
            self.status.versions = item.versions
            self.status.in_sync = False
            self._discontinuity = {(): oper.timestamp()}
            self._limit_reported.clear()
            self._retry_s = RESYNC_FIRST_RETRY_S
            log.info("dataplane connected", vpp_version=item.versions.vpp, plugin_version=item.versions.plugin)
            if time.monotonic() >= self._read_failed_until:
                self.resync()
            self._notify("dataplane-connected", {"vpp-version": item.versions.vpp,
                                                 "plugin-version": item.versions.plugin})
        elif isinstance(item, Disconnected):
            was = self.status.connected
            self.status.connected = False
            self.status.in_sync = False
            log.warning("dataplane disconnected", reason=item.reason)
            if was:
                self._notify("dataplane-disconnected", {"reason": item.reason})
        elif isinstance(item, EndpointEvent):
            self._endpoint_change[item.endpoint] = time.time()
            if item.up:
                self._notify("endpoint-up", {"endpoint": item.endpoint, "round-trip-time": item.rtt_us})
            else:
                body: dict[str, Any] = {"endpoint": item.endpoint, "reason": item.result}
                if item.message:
                    body["message"] = item.message
                self._notify("endpoint-down", body)

    def _hash_clear_passwords(self) -> None:
        """'$0$' server passwords committed while the agent was not running (so no update event hashed them) are
        replaced by '$6$' hashes now, through an ordinary commit of our own."""
        with self._lock:
            clear = [(u[1], str(d["password"])) for u, d in self.running.units.items()
                     if u[0] == USER and str(d.get("password", "")).startswith("$0$")]
        if not clear or self._read_sess is None:
            return
        for username, password in clear:
            path = f"{TOP}/server/authentication/user[username={xpath.quote(username, in_path=True)}]/password"
            try:
                stored = crypt.stored_form(password)
            except crypt.PasswordError as exc:
                # No event could refuse it: the clear text must still go. A hash of a random secret keeps the
                # entry valid and lets nobody in until an operator sets the password again.
                log.warning("clear-text server password refused; the user cannot log in until it is set again",
                            user=username, reason=str(exc))
                stored = crypt.hash_password(secrets.token_urlsafe(32))
            self._read_sess.set_item(path, stored)
        try:
            self._read_sess.apply_changes(timeout_ms=30000)
            log.info("clear-text server passwords hashed", users=len(clear))
        except sysrepo.SysrepoError as exc:
            self._read_sess.discard_changes()
            log.error("hashing clear-text server passwords failed", error=str(exc))

    def _expire_stale_transactions(self) -> None:
        with self._lock:
            now = time.perf_counter()
            stale = [t for t in self._txns.values() if now - t.started > STALE_TXN_S]
            if not stale:
                return
            for t in stale:
                del self._txns[t.req_id]
                log.error("commit", txn=t.req_id, result="unknown",
                          error="neither done nor abort arrived; re-reading the running configuration")
            self.reload_running()
            self.status.in_sync = False
        self._events.put("resync")

    def reload_running(self) -> None:
        """Rebuild the running-config cache from sysrepo (O(datastore); only when a commit's fate is unknown)."""
        if self._read_sess is None:
            return
        changes: list[Change] = []
        with self._lock, self._read_sess.get_data_ly(TOP) as data:
            for node in data.iter_tree():
                value = node.value() if hasattr(node, "value") else {}
                changes.append(Change("created", node.path(), value))
            self.running = RunningConfig()
            self.running.updated(self.running.changed_units(changes))
            self._interface_names = None

    def _check_limits(self) -> None:
        """session-limit-reached, once per limit until the count drops below it again. The server every tick,
        interfaces every INTERFACE_LIMIT_TICKS (one dump of all interfaces); never under the agent's lock."""
        self._ticks += 1
        with_interfaces = self._ticks % INTERFACE_LIMIT_TICKS == 0
        try:
            load = self.dataplane.read_load(with_interfaces)
        except DataplaneError:
            return
        checks: list[tuple[tuple[str, ...], int, int, dict[str, Any]]] = []
        server = self.running.desired_unit((SERVER,))
        if isinstance(server, ServerSettings) and load.server_running:
            checks.append(((SERVER,), load.server_sessions, server.max_sessions, {"server": None}))
        if with_interfaces:
            for name, active in load.interface_connections.items():
                spec = self.running.desired_unit((INTERFACE, name))
                if isinstance(spec, InterfaceSpec):
                    checks.append(((INTERFACE, name), active, spec.max_connections, {"interface": name}))
            for key in [k for k in self._limit_reported if k[0] == INTERFACE
                        and k[1] not in load.interface_connections]:
                self._limit_reported.discard(key)
        for key, active, limit, body in checks:
            if limit and active >= limit:
                if key not in self._limit_reported:
                    self._limit_reported.add(key)
                    self._notify("session-limit-reached", {**body, "limit": limit})
            else:
                self._limit_reported.discard(key)

    def _notify(self, name: str, body: dict[str, Any]) -> None:
        if self._notif_sess is None or self._stop.is_set():
            return
        try:
            self._notif_sess.notification_send(f"/{MODULE}:{name}", body)
        except Exception as exc:  # noqa: BLE001 - a notification nobody can take must not stop the agent
            log.warning("notification not sent", notification=name, error=str(exc))

    # operational data ---------------------------------------------------------------------------------------

    def _oper_dataplane(self, _xpath: str, _priv: Any, **_: Any) -> dict[str, Any]:
        st = self.status
        connected = self.dataplane.connected
        dp: dict[str, Any] = {"connected": connected, "config-pending": st.pending}
        versions = self.dataplane.versions() if connected else st.versions
        if versions is not None:
            dp["vpp-version"] = versions.vpp
            dp["plugin-version"] = versions.plugin
        if st.last_sync:
            dp["last-sync"] = st.last_sync
        if st.last_error:
            dp["last-error"] = st.last_error
        return {"singbox": {"dataplane": dp}}

    def _read_state(self, parts: frozenset[StatePart], *, endpoints: Collection[str] | None = None,
                    interfaces: Collection[str] | None = None) -> OperState | None:
        if not self.dataplane.connected:
            return None
        try:
            return self.dataplane.read_state(parts, endpoints=endpoints, interfaces=interfaces)
        except DataplaneError as exc:
            log.warning("operational state unavailable", error=str(exc))
            return None

    # Each callback builds (and reads from the dataplane) only what the request xpath can select: a read of the
    # server's counters does not dump every user, a read of one session does not build 10,000.
    def _oper_client(self, xpath: str | None, _priv: Any, **_: Any) -> dict[str, Any]:
        child = oper.requested_child(xpath, "client")
        parts = CLIENT_STATE.get(child, frozenset()) if child else frozenset[StatePart]().union(*CLIENT_STATE.values())
        if not parts:
            return {}  # a configuration node: nothing to add
        with self._lock:
            endpoints = [u[1] for u in self.running.units if u[0] == ENDPOINT and "endpoints" in parts]
            enabled_default = defaults.current()["client/interface/enabled"]
            interfaces = [(u[1], bool(d.get("enabled", enabled_default))) for u, d in self.running.units.items()
                          if u[0] == INTERFACE and "interfaces" in parts]
            groups = [u[1] for u in self.running.units if u[0] == GROUP and "groups" in parts]
        state = self._read_state(parts)
        if state is None:
            return oper.client_state(OperState(), [], [(n, e) for n, e in interfaces if not e], self._discontinuity)
        return oper.client_state(state, endpoints, interfaces, self._discontinuity, groups)

    def _oper_server(self, xpath: str | None, _priv: Any, **_: Any) -> dict[str, Any]:
        child = oper.requested_child(xpath, "server")
        parts = SERVER_STATE.get(child, frozenset()) if child else frozenset[StatePart]().union(*SERVER_STATE.values())
        if not parts:
            return {}
        with self._lock:
            listeners = [u[1] for u in self.running.units if u[0] == LISTENER and "listeners" in parts]
            users = [u[1] for u in self.running.units if u[0] == USER and "users" in parts]
        return oper.server_state(self._read_state(parts), listeners, users, self._discontinuity,
                                 counters="server" in parts)

    def _oper_sessions(self, xpath: str | None, _priv: Any, **_: Any) -> dict[str, Any]:
        on_change = xpath == oper.SESSIONS_ON_CHANGE_XPATH  # the agent's poll (oper_poll.py)
        if not self.dataplane.connected:
            return oper.sessions([], on_change=on_change)
        try:
            return oper.sessions(self.dataplane.read_sessions(), only=oper.requested_session(xpath),
                                 on_change=on_change)
        except DataplaneError as exc:
            log.warning("sessions unavailable", error=str(exc))
            if on_change:  # not "all ended": this poll fails, sysrepo keeps what it had and reports nothing
                raise sysrepo.SysrepoOperationFailedError(f"sessions unavailable: {exc}") from exc
            return {}

    # RPCs ---------------------------------------------------------------------------------------------------

    def _require_dataplane(self) -> None:
        if not self.dataplane.connected:
            raise sysrepo.SysrepoOperationFailedError("the dataplane (VPP) is not connected")

    def _rpc_clear_statistics(self, _xpath: str, params: dict[str, Any], _event: str, _priv: Any,
                              **_: Any) -> None:
        self._require_dataplane()
        scope: ClearScope
        if "interface" in params:
            scope = ("interface", str(params["interface"]))
        elif "endpoint" in params:
            scope = ("endpoint", str(params["endpoint"]))
        elif "server" in params:
            scope = ("server",)
        elif "endpoint-group" in params:
            scope = ("endpoint-group", str(params["endpoint-group"]))
        else:
            scope = ("all",)
        try:
            self.dataplane.clear_stats(scope)
        except DataplaneError as exc:
            raise sysrepo.SysrepoOperationFailedError(f"clear-statistics: {exc}") from None
        now = oper.timestamp()
        if scope[0] == "all":
            self._discontinuity = {(): now}
        else:
            self._discontinuity[tuple(scope)] = now
        log.info("statistics cleared", scope=list(scope))

    def _rpc_disconnect_session(self, _xpath: str, params: dict[str, Any], _event: str, _priv: Any,
                                **_: Any) -> None:
        self._require_dataplane()
        session_id = int(params["id"])
        try:
            self.dataplane.disconnect_session(session_id)
        except DataplaneError as exc:
            if exc.code == ErrorCode.NO_SUCH_ENTRY:
                raise sysrepo.SysrepoNotFoundError(f"no session with id {session_id}") from None
            raise sysrepo.SysrepoOperationFailedError(f"disconnect-session {session_id}: {exc}") from None
        log.info("session disconnected", session=session_id)

    def _rpc_test_endpoint(self, _xpath: str, params: dict[str, Any], _event: str, _priv: Any,
                           **_: Any) -> dict[str, Any]:
        name = str(params["endpoint"])
        if not self.dataplane.connected:
            return {"result": "dataplane-unavailable", "message": "the dataplane (VPP) is not connected"}
        spec = self.running.desired_unit((ENDPOINT, name))
        timeout_s = (spec.health_check_timeout + spec.connect_timeout + 1) if isinstance(spec, EndpointSpec) else 30
        try:
            probe = self.dataplane.test_endpoint(name, timeout_s)
        except DataplaneUnavailable:
            return {"result": "dataplane-unavailable", "message": "the dataplane (VPP) is not connected"}
        except DataplaneError as exc:
            raise sysrepo.SysrepoOperationFailedError(f"test-endpoint {name}: {exc}") from None
        out: dict[str, Any] = {"result": probe.result}
        if probe.result == "success":
            out["round-trip-time"] = probe.rtt_us
        if probe.message:
            out["message"] = probe.message
        return out

"""Notification subscriptions with replay (RFC 5277 :replay, RFC 8040 §6 start-time/stop-time) on sysrepo.

sysrepo stores the notifications of modules whose replay support is on and replays them to a subscription that has
a start time. The 1.7.6 binding's notification callback drops the events that carry no notification (replay
complete, stop time reached), and RFC 5277 needs exactly those for <replayComplete/> and <notificationComplete/>:
the subscriptions are made through `libsysrepo.notif_subscribe_tree`, which passes every event (with the binding's
compiled callback: the units run with `MemoryDenyWriteExecute=yes`). They are registered as binding
`Subscription`s, so stopping the sysrepo session ends them as usual. Replay support is switched through
`libsysrepo` too (sr_set/get_module_replay_support, which the binding does not wrap).
"""

from __future__ import annotations

import datetime
import threading
from collections.abc import Callable
from typing import Any

import libyang
import structlog
import sysrepo

from singbox_agent.mgmt import libsysrepo

log = structlog.get_logger("mgmt.replay")

NOTIFICATION = "notification"
REPLAY_COMPLETE = "replayComplete"
NOTIFICATION_COMPLETE = "notificationComplete"
# RFC 5277 section 4: replayComplete and notificationComplete live in this namespace (module nc-notifications).
NC_NOTIFICATIONS_NS = "urn:ietf:params:xml:ns:netmod:notification"

EV_REALTIME = 0
EV_REPLAY = 1
EV_REPLAY_COMPLETE = 2
EV_STOP_TIME = 7

# (kind, notification tree or None for the two RFC 5277 markers, eventTime). The tree is valid during the call only.
Deliver = Callable[[str, "libyang.DNode | None", str], None]


def _notification_modules(ctx: Any) -> list[str]:
    return [m.name() for m in ctx if m.implemented() and any(True for _ in m.notifications())]


def notification_modules(conn: sysrepo.SysrepoConnection) -> list[str]:
    ctx: Any
    with conn.get_ly_ctx() as ctx:
        return _notification_modules(ctx)


def replay_info(conn: sysrepo.SysrepoConnection | Any, module: str) -> tuple[bool, float | None]:
    """(replay support on, time of the earliest stored notification or None)."""
    earliest = libsysrepo.ffi.new("struct timespec *")
    enabled = libsysrepo.ffi.new("int *")
    ret = libsysrepo.lib.sr_get_module_replay_support(libsysrepo.conn_ptr(conn), module.encode(), earliest, enabled)
    if ret != 0:
        return False, None
    when = earliest.tv_sec + earliest.tv_nsec / 1e9 if (earliest.tv_sec or earliest.tv_nsec) else None
    return bool(enabled[0]), when


def enable_replay(conn: sysrepo.SysrepoConnection) -> list[str]:
    """Turn replay support on for every module with notifications; returns those that were off."""
    changed = []
    for module in notification_modules(conn):
        if replay_info(conn, module)[0]:
            continue
        ret = libsysrepo.lib.sr_set_module_replay_support(libsysrepo.conn_ptr(conn), module.encode(), 1)
        if ret != 0:
            log.warning("cannot enable notification replay", module=module, error=ret)
        else:
            changed.append(module)
    return changed


def session_replay_state(session: Any) -> tuple[bool, float | None]:
    """For the NETCONF stream as seen from a sysrepo session: (replay on for every module with notifications,
    the earliest notification still stored for replay, or None when none is)."""
    conn = libsysrepo.session_connection(session)
    with session.get_ly_ctx() as ctx:
        modules = _notification_modules(ctx)
    infos = [replay_info(conn, m) for m in modules]
    times = [t for _, t in infos if t is not None]
    return bool(infos) and all(on for on, _ in infos), (min(times) if times else None)


def event_time(sec: int, nsec: int = 0) -> str:
    base = datetime.datetime.fromtimestamp(sec, datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{base}.{nsec // 1000:06d}Z" if nsec else f"{base}Z"


def parse_time(value: str) -> float:
    """RFC 3339 date-and-time to epoch seconds; ValueError when malformed."""
    parsed = datetime.datetime.fromisoformat(value.strip().replace("z", "Z").replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        raise ValueError("a time zone is required")
    return parsed.timestamp()


def check_window(start: float | None, stop: float | None) -> str | None:
    """The RFC 5277 2.1.1 rule a replay window breaks ("startTime"/"stopTime"), or None."""
    now = datetime.datetime.now(datetime.UTC).timestamp()
    if start is not None and start > now:
        return "startTime"
    if stop is not None and (start is None or stop < start):
        return "stopTime"
    return None


class ReplaySubscription:
    """Subscriptions to several modules on one sysrepo session, with the RFC 5277 markers sent once for all."""

    def __init__(self, conn: sysrepo.SysrepoConnection, deliver: Deliver, start: float | None,
                 stop: float | None) -> None:
        self.conn = conn
        self.deliver = deliver
        self.start = start
        self.stop = stop
        self._lock = threading.Lock()
        # One extra count each until ready(): markers wait for every module's subscription to be made.
        self._replaying = 1 if start is not None else 0
        self._running = 1
        self.finished = False

    def subscribe(self, session: Any, module: str, xpath: str | None) -> None:
        replaying = 1 if self.start is not None else 0
        with self._lock:  # counted first: sysrepo's thread may complete the replay before the call returns
            self._running += 1
            self._replaying += replaying
        try:
            libsysrepo.notif_subscribe_tree(session, module, xpath, self.start, self.stop, self.on_event)
        except sysrepo.SysrepoError:
            with self._lock:
                self._running -= 1
                self._replaying -= replaying
            raise

    def on_event(self, ev: int, notif: Any, ts: Any) -> None:
        """sysrepo's thread (through `_dispatch`): never raise."""
        try:
            when = event_time(int(ts.tv_sec), int(ts.tv_nsec)) if ts else event_time(0)
            with self._lock:
                if self.finished:
                    return
                if ev in (EV_REALTIME, EV_REPLAY) and notif:
                    ctx: Any
                    with self.conn.get_ly_ctx() as ctx:
                        node = libyang.DNode.new(ctx, notif)
                        self.deliver(NOTIFICATION, node.root(), when)
                elif ev == EV_REPLAY_COMPLETE:
                    self._replay_done(when)
                elif ev == EV_STOP_TIME:
                    self._stopped(when)
        except BaseException:  # noqa: BLE001 - a C callback must not raise
            log.exception("cannot deliver notification")

    def ready(self) -> None:
        """Every module is subscribed: the markers may go once the subscriptions report them."""
        now = datetime.datetime.now(datetime.UTC).timestamp()
        when = event_time(int(now), int((now % 1) * 1e9))
        with self._lock:
            if self.start is not None:
                self._replay_done(when)
            if self.stop is not None and (self._running > 1 or self.stop <= now):
                self._stopped(when)

    def _replay_done(self, when: str) -> None:
        self._replaying -= 1
        if self._replaying == 0:
            self.deliver(REPLAY_COMPLETE, None, when)

    def _stopped(self, when: str) -> None:
        self._running -= 1
        if self._running == 0:
            self.finished = True
            self.deliver(NOTIFICATION_COMPLETE, None, when)

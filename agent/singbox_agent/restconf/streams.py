"""RFC 8040 §6 event streams: the NETCONF stream (every YANG notification) as server-sent events.

Each client stream owns a sysrepo session with its NACM user set, so sysrepo drops notifications the user may not
read; `filter` becomes the subscription XPath, `start-time`/`stop-time` sysrepo's replay window (netconf/replay.py: the
RFC 5277 replayComplete/notificationComplete markers; the stream ends after notificationComplete). The notification
content is printed by libyang; the RFC 8040 §6.4 envelope (`ietf-restconf:notification` + eventTime) is added here.
"""

from __future__ import annotations

import asyncio
import datetime
import json
import re
import threading
from collections.abc import AsyncIterator, Callable
from typing import Any

import libyang
import structlog
import sysrepo
from sysrepo.session import SysrepoSession

from singbox_agent.mgmt.nacm import NacmPolicy, enable_nacm
from singbox_agent.mgmt import replay
from singbox_agent.restconf.errors import bad_request
from singbox_agent.restconf.store import acquired_context
from singbox_agent.restconf.dynamic_subscriptions import DynamicSubscriptions
from singbox_agent.mgmt.request_limits import check_subscriptions
from singbox_agent.restconf.limits import RestconfLimits
from singbox_agent.restconf.uri import Encoding, QueryParams

log = structlog.get_logger("restconf.streams")

KEEPALIVE_S = 15.0
_MAX_QUEUED = 1000
_STOP_GRACE_S = 10.0
_PREFIX_RE = re.compile(r"([A-Za-z_][A-Za-z0-9_.\-]*):[A-Za-z_*]")
NETCONF_NOTIFICATION_NS = "urn:ietf:params:xml:ns:netconf:notification:1.0"


def replay_window(query: QueryParams) -> tuple[float | None, float | None]:
    """start-time/stop-time as epoch seconds; RFC 8040 §4.8.7/4.8.8: a start in the future, or a stop before the
    start, is an invalid value."""
    try:
        start = replay.parse_time(query.start_time) if query.start_time is not None else None
        stop = replay.parse_time(query.stop_time) if query.stop_time is not None else None
    except ValueError as exc:
        raise bad_request(f"start-time/stop-time: {exc}") from None
    broken = replay.check_window(start, stop)
    if broken == "startTime":
        raise bad_request("start-time is in the future")
    if broken == "stopTime":
        raise bad_request("stop-time is earlier than start-time")
    return start, stop


class Subscription:
    """One client's stream: a sysrepo session with notification subscriptions feeding an asyncio queue."""

    def __init__(self, session: SysrepoSession, loop: asyncio.AbstractEventLoop, encoding: Encoding,
                 ctx_source: sysrepo.SysrepoConnection, stop_time: float | None) -> None:
        self.session = session
        self.loop = loop
        self.encoding = encoding
        self.conn = ctx_source
        self.stop_time = stop_time
        self.queue: asyncio.Queue[bytes | None] = asyncio.Queue(_MAX_QUEUED)
        self._closed = threading.Event()
        self._close_lock = threading.Lock()
        self.on_close: Callable[[Subscription], None] | None = None
        self.sysrepo_lock: threading.Lock | None = None  # EventStreams': subscribing and unsubscribing one at a time

    def deliver(self, kind: str, tree: Any, event_time: str) -> None:
        """sysrepo's thread (through replay.ReplaySubscription, which catches what this raises)."""
        body = self._print(kind, tree, event_time)
        self.loop.call_soon_threadsafe(self._put, body)
        if kind == replay.NOTIFICATION_COMPLETE:  # RFC 5277 2.2.1: the subscription ends with it
            self.loop.call_soon_threadsafe(self._put, None)

    def _put(self, body: bytes | None) -> None:
        if body is not None and self.queue.full():
            log.warning("stream client too slow, dropping notification")
            return
        if body is None and self.queue.full():
            self.queue.get_nowait()
        self.queue.put_nowait(body)

    def _print(self, kind: str, tree: Any, event_time: str) -> bytes:
        if tree is None:  # replayComplete / notificationComplete (RFC 5277 section 4, module nc-notifications)
            if self.encoding == Encoding.JSON:
                return json.dumps({"ietf-restconf:notification": {"eventTime": event_time,
                                                                  f"nc-notifications:{kind}": {}}}).encode()
            return (
                f'<notification xmlns="{NETCONF_NOTIFICATION_NS}"><eventTime>{event_time}</eventTime>'
                f'<{kind} xmlns="{replay.NC_NOTIFICATIONS_NS}"/></notification>'
            ).encode()
        printed = tree.print_mem(self.encoding.value, with_siblings=True, pretty=False)
        text = printed if isinstance(printed, str) else printed.decode()
        if self.encoding == Encoding.JSON:
            inner = json.loads(text)
            return json.dumps({"ietf-restconf:notification": {"eventTime": event_time, **inner}}).encode()
        return (
            f'<notification xmlns="{NETCONF_NOTIFICATION_NS}"><eventTime>{event_time}</eventTime>{text}</notification>'
        ).encode()

    async def events(self) -> AsyncIterator[bytes]:
        while not self._closed.is_set():
            timeout = KEEPALIVE_S
            if self.stop_time is not None:
                # notificationComplete ends the stream; this only bounds a stream sysrepo never stops
                remaining = self.stop_time + _STOP_GRACE_S - datetime.datetime.now(datetime.UTC).timestamp()
                if remaining <= 0:
                    return
                timeout = min(timeout, remaining)
            try:
                item = await asyncio.wait_for(self.queue.get(), timeout)
            except TimeoutError:
                yield b""  # keepalive: the adapter sends an SSE comment
                continue
            if item is None:
                return
            yield item

    def end(self) -> None:
        """Event loop only: the response ends after what is queued."""
        self._put(None)

    @property
    def closed(self) -> bool:
        return self._closed.is_set()

    def close(self) -> None:
        # The stream's own end (a worker thread) and server shutdown (the main thread) may both close it.
        with self._close_lock:
            if self._closed.is_set():
                return
            self._closed.set()
            try:
                if self.sysrepo_lock is not None:
                    with self.sysrepo_lock:
                        self.session.stop()
                else:
                    self.session.stop()
            except sysrepo.SysrepoError:
                log.warning("stopping a stream session failed")
        if self.on_close is not None:
            self.on_close(self)


class EventStreams:
    """Opens subscriptions on the shared connection: RFC 8040 streams, and RFC 8650 dynamic subscriptions
    (`dynamic`)."""

    def __init__(self, connection: sysrepo.SysrepoConnection, policy: NacmPolicy) -> None:
        self.conn = connection
        self.policy = policy
        self.dynamic = DynamicSubscriptions(connection, policy)
        self.dynamic.running = self.running  # max-subscriptions counts streams and dynamic subscriptions together
        self._live: set[Subscription] = set()
        self._live_lock = threading.Lock()
        # sysrepo 3.7 crashes (SIGSEGV in sr_notif_subscribe_tree) when several threads subscribe to notifications
        # on one connection at once: seen with 100 streams opened together (1 run in 5). Subscribing costs ~1 ms per
        # stream; ending one (its session's unsubscribe) takes the same lock.
        self._subscribe_lock = threading.Lock()

    def close_all(self) -> None:
        """At shutdown, before the connection goes: a stream whose client is still attached keeps a sysrepo
        session with listener threads, and disconnecting under them aborts the process (robust mutex of a
        session already torn down)."""
        with self._live_lock:
            live = list(self._live)
        for sub in live:
            sub.close()
        self.dynamic.close_all()

    def end_all(self) -> None:
        """On the event loop, when the server stops: every attached stream ends as if its stop-time had come, so the
        HTTP server's graceful shutdown is not held open by endless responses."""
        with self._live_lock:
            live = list(self._live)
        for sub in live:
            sub.end()
        self.dynamic.end_all()

    def running(self) -> int:
        """Event streams and dynamic subscriptions running now (max-subscriptions counts both)."""
        with self._live_lock:
            streams = len(self._live)
        return streams + self.dynamic.count()

    def _forget(self, sub: Subscription) -> None:
        with self._live_lock:
            self._live.discard(sub)

    def notification_modules(self) -> list[str]:
        with acquired_context(self.conn) as ctx:
            return [
                m.name()
                for m in ctx
                if m.implemented() and any(True for _ in m.children(types=(libyang.SNode.NOTIF,)))
            ]

    def subscribe(
        self, user: str | None, query: QueryParams, encoding: Encoding, loop: asyncio.AbstractEventLoop,
        limits: RestconfLimits | None = None,
    ) -> Subscription:
        check_subscriptions(self.running(), limits or RestconfLimits(), "event streams and subscriptions")
        modules = self.notification_modules()
        if query.filter is not None:
            named = set(_PREFIX_RE.findall(query.filter))
            unknown = named - set(modules)
            if unknown:
                raise bad_request(f"filter names modules without notifications: {', '.join(sorted(unknown))}")
            modules = [m for m in modules if m in named] if named else modules
        start, stop = replay_window(query)
        with self._subscribe_lock:
            sub = self._subscribe(user, query, encoding, loop, modules, start, stop)
        sub.on_close = self._forget
        sub.sysrepo_lock = self._subscribe_lock
        with self._live_lock:
            self._live.add(sub)
        return sub

    def _subscribe(self, user: str | None, query: QueryParams, encoding: Encoding, loop: asyncio.AbstractEventLoop,
                   modules: list[str], start: float | None, stop: float | None) -> Subscription:
        session = self.conn.start_session("running")
        try:
            enable_nacm(session, self.policy.identity(user))
            sub = Subscription(session, loop, encoding, self.conn, stop)
            notifs = replay.ReplaySubscription(self.conn, sub.deliver, start, stop)
            for module in modules:
                xpath = query.filter if query.filter is not None else f"/{module}:*"
                notifs.subscribe(session, module, xpath)
            notifs.ready()
        except BaseException:
            session.stop()
            raise
        return sub

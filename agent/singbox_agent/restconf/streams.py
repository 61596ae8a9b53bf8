"""RFC 8040 §6 event streams: the NETCONF stream (every YANG notification) as server-sent events.

Each client stream owns a sysrepo session with its NACM user set, so sysrepo drops notifications the user may not
read; `filter` becomes the subscription XPath, `start-time`/`stop-time` sysrepo's replay window. The notification
content is printed by libyang; the RFC 8040 §6.4 envelope (`ietf-restconf:notification` + eventTime) is added here.
"""

from __future__ import annotations

import asyncio
import datetime
import json
import re
import threading
from collections.abc import AsyncIterator
from typing import Any

import libyang
import structlog
import sysrepo
from sysrepo.session import SysrepoSession

from singbox_agent.mgmt.nacm import NacmPolicy, enable_nacm
from singbox_agent.restconf.errors import bad_request
from singbox_agent.restconf.datastore import acquired_context
from singbox_agent.restconf.uri import Encoding, QueryParams

log = structlog.get_logger("restconf.streams")

KEEPALIVE_S = 15.0
_MAX_QUEUED = 1000
_PREFIX_RE = re.compile(r"([A-Za-z_][A-Za-z0-9_.\-]*):[A-Za-z_*]")
NETCONF_NOTIFICATION_NS = "urn:ietf:params:xml:ns:netconf:notification:1.0"


def _epoch(value: str | None) -> int:
    if value is None:
        return 0
    parsed = datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
    return int(parsed.timestamp())


def _event_time(ts: int) -> str:
    return datetime.datetime.fromtimestamp(ts, datetime.UTC).isoformat().replace("+00:00", "Z")


class Subscription:
    """One client's stream: a sysrepo session with notification subscriptions feeding an asyncio queue."""

    def __init__(self, session: SysrepoSession, loop: asyncio.AbstractEventLoop, encoding: Encoding,
                 ctx_source: sysrepo.SysrepoConnection, stop_time: int) -> None:
        self.session = session
        self.loop = loop
        self.encoding = encoding
        self.conn = ctx_source
        self.stop_time = stop_time
        self.queue: asyncio.Queue[bytes | None] = asyncio.Queue(_MAX_QUEUED)
        self._closed = threading.Event()

    def on_notification(self, xpath: str, notif_type: str, notif: dict[str, Any], timestamp: int, _: Any) -> None:
        """sysrepo's thread: never raise."""
        try:
            body = self._print(xpath, notif, timestamp)
            self.loop.call_soon_threadsafe(self._put, body)
        except Exception:  # noqa: BLE001 - a C callback must not raise
            log.exception("cannot deliver notification", xpath=xpath)

    def _put(self, body: bytes) -> None:
        if self.queue.full():
            log.warning("stream client too slow, dropping notification")
            return
        self.queue.put_nowait(body)

    def _print(self, xpath: str, notif: dict[str, Any], timestamp: int) -> bytes:
        module_name, _, name = xpath.lstrip("/").partition(":")
        with acquired_context(self.conn) as ctx:
            module = ctx.get_module(module_name)
            node = module.parse_data_dict({name: notif}, notification=True, validate=False, strict=False)
            try:
                printed = node.print_mem(self.encoding.value, with_siblings=True, pretty=False)
            finally:
                node.free()
        text = printed if isinstance(printed, str) else printed.decode()
        event_time = _event_time(timestamp)
        if self.encoding == Encoding.JSON:
            inner = json.loads(text)
            return json.dumps({"ietf-restconf:notification": {"eventTime": event_time, **inner}}).encode()
        return (
            f'<notification xmlns="{NETCONF_NOTIFICATION_NS}"><eventTime>{event_time}</eventTime>{text}</notification>'
        ).encode()

    async def events(self) -> AsyncIterator[bytes]:
        loop = asyncio.get_running_loop()
        while not self._closed.is_set():
            timeout = KEEPALIVE_S
            if self.stop_time:
                remaining = self.stop_time - datetime.datetime.now(datetime.UTC).timestamp()
                if remaining <= 0:
                    return
                timeout = min(timeout, remaining)
            try:
                item = await asyncio.wait_for(self.queue.get(), timeout)
            except TimeoutError:
                del loop
                loop = asyncio.get_running_loop()
                yield b""  # keepalive: the adapter sends an SSE comment
                continue
            if item is None:
                return
            yield item

    def close(self) -> None:
        if self._closed.is_set():
            return
        self._closed.set()
        try:
            self.session.stop()
        except sysrepo.SysrepoError:
            log.warning("stopping a stream session failed")


class EventStreams:
    """Opens subscriptions on the shared connection."""

    def __init__(self, connection: sysrepo.SysrepoConnection, policy: NacmPolicy) -> None:
        self.conn = connection
        self.policy = policy

    def notification_modules(self) -> list[str]:
        with acquired_context(self.conn) as ctx:
            return [
                m.name()
                for m in ctx
                if m.implemented() and any(True for _ in m.children(types=(libyang.SNode.NOTIF,)))
            ]

    def subscribe(
        self, user: str | None, query: QueryParams, encoding: Encoding, loop: asyncio.AbstractEventLoop
    ) -> Subscription:
        modules = self.notification_modules()
        if query.filter is not None:
            named = set(_PREFIX_RE.findall(query.filter))
            unknown = named - set(modules)
            if unknown:
                raise bad_request(f"filter names modules without notifications: {', '.join(sorted(unknown))}")
            modules = [m for m in modules if m in named] if named else modules
        session = self.conn.start_session("running")
        try:
            enable_nacm(session, self.policy.identity(user))
            sub = Subscription(session, loop, encoding, self.conn, _epoch(query.stop_time))
            for module in modules:
                xpath = query.filter if query.filter is not None else f"/{module}:*"
                session.subscribe_notification(
                    module,
                    xpath,
                    sub.on_notification,
                    start_time=_epoch(query.start_time),
                    stop_time=_epoch(query.stop_time),
                )
        except BaseException:
            session.stop()
            raise
        return sub

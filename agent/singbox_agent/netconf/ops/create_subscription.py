"""<create-subscription> (RFC 5277) on the NETCONF stream, with subtree/XPath filters; :interleave is native
(the session keeps answering rpcs while notifications flow); :replay with startTime/stopTime from sysrepo's
notification store (see mgmt/replay.py), ended by <replayComplete/> and, with stopTime, <notificationComplete/>.

Notifications come from sysrepo subscriptions made on this session's own sysrepo session, so libsysrepo's NACM
drops those the user may not read (RFC 8341 3.4.6), and stopping the session ends them.
"""

from __future__ import annotations

import threading
from typing import Any

import sysrepo

from singbox_agent.mgmt import datastore, filtered_read, replay
from singbox_agent.mgmt.errors import (
    MgmtError, MgmtException, bad_element, clip, invalid_value, missing_element,
)
from singbox_agent.netconf import limits, messages
from singbox_agent.netconf.dispatch import OpContext, on_session_end, register
from singbox_agent.netconf.messages import NOTIF_NS, qname
from singbox_agent.netconf.ops.common import filter_from_element, leaf
from singbox_agent.netconf.session import NetconfSession

STREAM = "NETCONF"


@register(NOTIF_NS, "create-subscription")
def handle(ctx: OpContext) -> str:
    session = ctx.session
    if session.subscription is not None:
        raise MgmtException(MgmtError("protocol", "in-use", "This session already has a subscription."))
    stream = leaf(ctx, "stream") or STREAM
    if stream != STREAM:
        raise invalid_value(f'Unknown stream "{clip(stream)}".', error_type="application")
    start = _time_leaf(ctx, "startTime")
    stop = _time_leaf(ctx, "stopTime")
    if stop is not None and start is None:
        raise missing_element("startTime", message="stopTime needs startTime (RFC 5277 2.1.1).")
    broken = replay.check_window(start, stop)
    if broken == "startTime":
        raise bad_element("startTime", "startTime is in the future.")
    if broken == "stopTime":
        raise bad_element("stopTime", "stopTime is earlier than startTime.")
    filter_el = ctx.rpc.op.find(qname(NOTIF_NS, "filter"))
    if filter_el is None:
        filter_el = ctx.rpc.op.find(qname(messages.BASE_NS, "filter"))
    xpath = filter_from_element(ctx, filter_el)
    modules = [m.name() for m in ctx.ly if m.implemented() and any(True for _ in m.notifications())]
    server = session.server
    sr = ctx.sr

    def deliver(kind: str, tree: Any, when: str) -> None:
        if session.closed:
            return
        if tree is not None and not filtered_read.notification_readable(sr, tree):
            return  # sysrepo replays stored notifications without a NACM check (RFC 8341 3.4.6)
        if tree is not None:
            content = datastore.print_xml(tree)
        else:
            content = f'<{kind} xmlns="{replay.NC_NOTIFICATIONS_NS}"/>'
        with server.state.lock:
            server.state.stats.out_notifications += 1
        session.out_notifications += 1
        after_reply.send(messages.notification(when, content))
        if kind == replay.NOTIFICATION_COMPLETE:
            session.subscription = None

    after_reply = _AfterReply(session)
    try:
        _subscribe(ctx, session, stream, xpath, modules, start, stop, deliver)
    finally:
        after_reply.release()
    return "<ok/>"


def _subscribe(ctx: OpContext, session: NetconfSession, stream: str, xpath: str | None, modules: list[str],
               start: float | None, stop: float | None, deliver: replay.Deliver) -> None:
    server = session.server
    with limits.subscription_slot(server, server.limits):
        sub = replay.ReplaySubscription(server.conn, deliver, start, stop)
        subscribed = 0
        if xpath is not None:
            for module in modules:
                wanted = xpath == "/*" or f"/{module}:" in xpath
                if not wanted:
                    continue
                try:
                    sub.subscribe(ctx.sr, module, None if xpath == "/*" else xpath)
                    subscribed += 1
                except sysrepo.SysrepoError as exc:
                    session.log.info("no notification subscription", module=module, reason=str(exc))
        sub.ready()
        with server.state.lock:
            if not sub.finished:  # a stopTime already past may have ended it before we get here
                session.subscription = {"stream": stream, "filter": xpath, "modules": subscribed, "start": start,
                                        "stop": stop}


class _AfterReply:
    """The subscription's first messages wait for the <ok/> that creates it (RFC 5277 2.2: notifications are sent
    "once the subscription has been set up"). sysrepo replays stored notifications, and with a stopTime already
    past sends every marker, from its own thread as soon as the module is subscribed: before the handler returns,
    so a client read <notification>s, even <replayComplete/>, before the reply to its create-subscription."""

    def __init__(self, session: NetconfSession) -> None:
        self.session = session
        self._lock = threading.Lock()
        self._held: list[bytes] | None = []

    def send(self, message: bytes) -> None:
        with self._lock:  # sent under the lock: nothing overtakes what release() flushes
            if self._held is not None:
                self._held.append(message)
            else:
                self.session.send_threadsafe(message)

    def release(self) -> None:
        """Let the held messages go after the reply. The flush runs on the session's worker once this rpc's run
        ended, which queued its reply on the event loop first (an inline rpc's reply is sent before the loop takes
        anything queued from another thread): either way the loop sends the reply, then these."""

        def flush() -> None:
            with self._lock:
                for message in self._held or ():
                    self.session.send_threadsafe(message)
                self._held = None

        try:
            self.session.run_on_worker(flush)
        except RuntimeError:  # the session closed: nothing to send to
            pass


@limits.counts_subscriptions
def running(server: Any) -> int:
    """The server's sessions with a create-subscription (for max-subscriptions)."""
    with server.state.lock:
        return sum(1 for s in server.state.sessions.values() if s.subscription is not None)


def _time_leaf(ctx: OpContext, name: str) -> float | None:
    value = leaf(ctx, name)
    if value is None:
        return None
    try:
        return replay.parse_time(value)
    except ValueError:
        raise bad_element(name, f"{name} is not an RFC 3339 date-and-time.") from None


@on_session_end
def stop_subscription(session: NetconfSession) -> None:
    """Subscriptions end with the sysrepo session (stopped by the session cleanup)."""
    session.subscription = None

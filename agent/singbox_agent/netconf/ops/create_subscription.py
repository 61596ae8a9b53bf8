"""<create-subscription> (RFC 5277) on the NETCONF stream, with subtree/XPath filters; :interleave is native
(the session keeps answering rpcs while notifications flow).

Notifications come from sysrepo subscriptions made on this session's own sysrepo session, so libsysrepo's NACM
drops those the user may not read (RFC 8341 3.4.6), and stopping the session ends them.
"""

from __future__ import annotations

import datetime
from typing import Any

import sysrepo

from singbox_agent.mgmt import datastore
from singbox_agent.mgmt.errors import MgmtError, MgmtException, invalid_value, operation_not_supported
from singbox_agent.netconf import messages
from singbox_agent.netconf.dispatch import OpContext, register
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
        raise invalid_value(f'Unknown stream "{stream}".', error_type="application")
    if leaf(ctx, "startTime") is not None or leaf(ctx, "stopTime") is not None:
        raise operation_not_supported("Replay (startTime/stopTime) is not supported.")
    filter_el = ctx.rpc.op.find(qname(NOTIF_NS, "filter"))
    if filter_el is None:
        filter_el = ctx.rpc.op.find(qname(messages.BASE_NS, "filter"))
    xpath = filter_from_element(ctx, filter_el)
    modules = [m.name() for m in ctx.ly if m.implemented() and any(True for _ in m.notifications())]
    server = session.server

    def deliver(xpath_: str, notif_type: str, notif: dict[str, Any], timestamp: int, private_data: Any) -> None:
        if notif_type != "realtime" or session.closed:
            return
        module, _, name = xpath_.lstrip("/").partition(":")
        ly: Any
        tree: Any
        with server.conn.get_ly_ctx() as ly:
            tree = ly.get_module(module).parse_data_dict({name: notif}, notification=True, validate=False)
            try:
                content = datastore.print_xml(tree)
            finally:
                tree.free()
        when = datetime.datetime.fromtimestamp(timestamp, datetime.UTC).isoformat().replace("+00:00", "Z")
        with server.state.lock:
            server.state.stats.out_notifications += 1
        session.out_notifications += 1
        session.send_threadsafe(messages.notification(when, content))

    subscribed = 0
    if xpath is not None:
        for module in modules:
            wanted = xpath == "/*" or f"/{module}:" in xpath
            if not wanted:
                continue
            try:
                ctx.sr.subscribe_notification(
                    module, None if xpath == "/*" else xpath, deliver, private_data=None
                )
                subscribed += 1
            except sysrepo.SysrepoError as exc:
                session.log.info("no notification subscription", module=module, reason=str(exc))
    session.subscription = {"stream": stream, "filter": xpath, "modules": subscribed}
    return "<ok/>"


def stop_subscription(session: NetconfSession) -> None:
    """Subscriptions end with the sysrepo session (stopped by the session cleanup)."""
    session.subscription = None

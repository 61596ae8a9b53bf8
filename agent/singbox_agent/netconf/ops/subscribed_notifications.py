"""RFC 8639 dynamic subscriptions over NETCONF (RFC 8640) and RFC 8641 YANG-Push: establish-, modify-, delete-,
kill-subscription (ietf-subscribed-notifications) and resync-subscription (ietf-yang-push), through sysrepo's own
implementation (`singbox_agent.subscriptions.srsn`, as netopeer2's netconf_subscribed_notifications.c does).

Each subscription runs on the NETCONF session's sysrepo session (its user: NACM applies to what sysrepo delivers)
and has a thread that reads its pipe and sends each notification on the session, after the rpc-reply that
established it (RFC 8640 2.1). Several subscriptions may run on one session, besides an RFC 5277 one.

What sysrepo leaves to the server: subscription-modified after modify-subscription (sent here, counted with
`srsn.notif_sent`); subscription-completed at the stop time (sysrepo 3.7 sends subscription-terminated with reason
no-such-subscription there instead: rewritten here when the stop time has passed and nobody terminated it). At the
end of the NETCONF session its subscriptions end without a notification. `/subscriptions` and `/streams` are
served in operational once the first subscription is made.

Needs ietf-subscribed-notifications and ietf-yang-push installed with the features `srsn.MODULES` names; without
them libyang does not know these operations and the dispatcher answers operation-not-supported.
"""

from __future__ import annotations

import datetime
import threading
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field, replace
from typing import Any

import structlog

from singbox_agent.mgmt.errors import MgmtError, MgmtException, clip
from singbox_agent.netconf import limits, messages
from singbox_agent.netconf.dispatch import OpContext, on_session_end, register
from singbox_agent.netconf.messages import escape
from singbox_agent.netconf.session import NetconfSession
from singbox_agent.subscriptions import dynamic, srsn

log = structlog.get_logger("netconf.subscriptions")

SN_NS = srsn.SN_NS
YP_NS = srsn.YP_NS
SN = dynamic.SN
YP = dynamic.YP
POLL_MS = 250


@dataclass
class _Sub:
    session: NetconfSession
    sub: srsn.Subscription
    yang_push: bool
    stop: datetime.datetime | None
    filter_xml: str = ""  # the filter as the client gave it, for subscription-modified
    terminated_by_us: bool = False
    thread: threading.Thread | None = field(default=None, repr=False)
    # while a modify-subscription runs: the notifications its thread would send, held until subscription-modified
    # went out after the rpc-reply
    held: list[tuple[str, str]] | None = field(default=None, repr=False)
    send_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)


_lock = threading.Lock()
_subs: dict[int, _Sub] = {}
_providers: list[Any] = []  # oper data subscriptions (/subscriptions, /streams), made once per process


def _filter(ctx: OpContext, yang_push: bool) -> tuple[str | None, str]:
    """(XPath for sysrepo, the filter element as given) from the stream or datastore filter choice."""
    ns, prefix = (YP_NS, "datastore") if yang_push else (SN_NS, "stream")
    dynamic.check_input(ctx.op, yang_push)
    xpath = dynamic.xpath_filter(ctx.op, yang_push)
    if xpath is not None:
        limits.check_xpath(xpath, ctx.session.server.limits, what=f"The {prefix}-xpath-filter")
        return xpath or None, f'<{prefix}-xpath-filter xmlns="{ns}">{escape(xpath)}</{prefix}-xpath-filter>'
    element = ctx.rpc.op.find(f"{{{ns}}}{prefix}-subtree-filter")
    if element is None:
        return None, ""
    combined = dynamic.subtree_xpath(ctx.ly, element, prefix)
    if combined:
        limits.check_xpath(combined, ctx.session.server.limits, what=f"The XPath equivalent of the {prefix} filter")
    return combined, ET.tostring(element, encoding="unicode")


@register(SN_NS, "establish-subscription")
def establish(ctx: OpContext) -> str:
    encoding = dynamic.leaf(ctx.op, "encoding")
    if encoding is not None and encoding.rsplit(":", 1)[-1] != "encode-xml":
        raise MgmtException(MgmtError("application", "invalid-value",
                                      f'Encoding "{clip(encoding)}" is not supported over NETCONF; use encode-xml.',
                                      error_app_tag=f"{SN}:encoding-unsupported"))
    xpath, filter_xml = _filter(ctx, yang_push=dynamic.is_yang_push(ctx.op))
    server = ctx.session.server
    with limits.subscription_slot(server, server.limits):
        made = dynamic.establish(ctx.sr, ctx.op, xpath, dynamic.NETCONF_IDS)
        sub, yang_push, stop, replay_start = made.sub, made.yang_push, made.stop, made.replay_start
        entry = _Sub(ctx.session, sub, yang_push, stop, filter_xml)
        with _lock:
            _subs[sub.id] = entry
    _ensure_providers(ctx)
    thread = threading.Thread(target=_deliver, args=(entry,), name=f"subscription-{sub.id}", daemon=True)
    entry.thread = thread
    # Started by the session's worker after this operation: its rpc-reply goes out before any notification.
    ctx.session.run_on_worker(thread.start)
    ctx.session.log.info("subscription established", subscription=sub.id, yang_push=yang_push)
    out = f'<id xmlns="{SN_NS}">{sub.id}</id>'
    if replay_start is not None:
        out += (f'<replay-start-time-revision xmlns="{SN_NS}">{dynamic.stamp(replay_start)}'
                "</replay-start-time-revision>")
    return out


@limits.counts_subscriptions
def running(server: Any) -> int:
    """The server's RFC 8639 subscriptions, until their thread has ended them in sysrepo (for max-subscriptions)."""
    with _lock:
        return sum(1 for e in _subs.values() if e.session.server is server)


def _own(ctx: OpContext, *, yang_push: bool | None = None) -> _Sub:
    sub_id = int(dynamic.leaf(ctx.op, "id") or 0)
    with _lock:
        entry = _subs.get(sub_id)
    if entry is None or entry.session is not ctx.session or entry.terminated_by_us or \
            (yang_push is not None and entry.yang_push != yang_push):
        raise dynamic.error_no_such(sub_id, " of this session")
    return entry


@register(SN_NS, "modify-subscription")
def modify(ctx: OpContext) -> str:
    yang_push = ctx.op.find_path(f"{YP}:datastore") is not None
    entry = _own(ctx, yang_push=yang_push)
    sub_id = entry.sub.id
    xpath, filter_xml = _filter(ctx, yang_push)
    # RFC 8639 2.7.2: notifications "from this point on" conform to the modified terms, so subscription-modified
    # comes first, and after this operation's rpc-reply (RFC 8640 2.1, as for establish). sysrepo pushes at once
    # with the new terms: the subscription's own messages wait meanwhile.
    with entry.send_lock:
        entry.held = []
    modified: tuple[str, str] | None = None
    try:
        stop = dynamic.modify(sub_id, ctx.op, yang_push, xpath)
        entry.filter_xml, entry.stop = filter_xml, stop
        modified = dynamic.stamp(dynamic.now()), dynamic.modified_xml(sub_id, stop, filter_xml)
        dynamic.apply_stop_time(sub_id, stop)
    finally:
        # the session's worker runs this once the reply is queued on the event loop
        ctx.session.run_on_worker(lambda: _release(entry, modified))
    return "<ok/>"


def _release(entry: _Sub, first: tuple[str, str] | None) -> None:
    with entry.send_lock:
        held, entry.held = entry.held or [], None
        for when, content in ([first] if first is not None else []) + held:
            _send_now(entry, when, content)


def _terminate(entry: _Sub) -> None:
    entry.terminated_by_us = True
    if not dynamic.terminate(entry.sub.id):
        log.info("subscription already gone", subscription=entry.sub.id)


@register(SN_NS, "delete-subscription")
def delete(ctx: OpContext) -> str:
    _terminate(_own(ctx))
    return "<ok/>"


@register(SN_NS, "kill-subscription")
def kill(ctx: OpContext) -> str:
    """Any session's subscription (nacm:default-deny-all in the module: administrators only)."""
    sub_id = int(dynamic.leaf(ctx.op, "id") or 0)
    with _lock:
        entry = _subs.get(sub_id)
    if entry is None or entry.terminated_by_us:
        raise dynamic.error_no_such(sub_id)
    _terminate(entry)
    return "<ok/>"


@register(YP_NS, "resync-subscription")
def resync(ctx: OpContext) -> str:
    try:
        entry = _own(ctx, yang_push=True)
    except MgmtException as exc:  # RFC 8641 4.4.4 (resync-subscription-error): its own identity
        raise MgmtException(*(replace(e, error_app_tag=f"{YP}:no-such-subscription-resync") for e in exc.errors)) \
            from None
    dynamic.resync(entry.sub.id)
    return "<ok/>"


def _send(entry: _Sub, when: str, content: str) -> None:
    with entry.send_lock:
        if entry.held is not None:
            entry.held.append((when, content))
        else:
            _send_now(entry, when, content)


def _send_now(entry: _Sub, when: str, content: str) -> None:
    session = entry.session
    if session.closed:
        return
    with session.server.state.lock:
        session.server.state.stats.out_notifications += 1
    session.out_notifications += 1
    session.send_threadsafe(messages.notification(when, content))


def _deliver(entry: _Sub) -> None:
    """The subscription's thread: its pipe to its session, until the subscription or the session ends."""
    conn = entry.session.server.conn
    sub = entry.sub
    try:
        while not entry.session.closed:
            try:
                if not sub.poll(POLL_MS):
                    continue
                ly_ctx: Any
                with conn.get_ly_ctx() as ly_ctx:
                    n = sub.read(ly_ctx, 0)
            except EOFError:
                break
            if n is None:
                continue
            _send(entry, dynamic.stamp(n.time),
                  dynamic.completed_instead(n.content, sub.id, entry.stop, entry.terminated_by_us))
    except Exception as exc:  # noqa: BLE001 - a reader thread never dies silently
        log.error("subscription delivery failed", subscription=sub.id, error=repr(exc))
    finally:
        with _lock:
            _subs.pop(sub.id, None)
        sub.close()  # ends it in sysrepo too, without a notification, if it still runs (the session went)


@on_session_end
def end_session_subscriptions(session: NetconfSession) -> None:
    """The session's subscriptions end with it, without a notification (there is nobody to send it to)."""
    with _lock:
        mine = [e for e in _subs.values() if e.session is session]
    for entry in mine:
        entry.terminated_by_us = True
        dynamic.terminate(entry.sub.id, None)
        if entry.thread is not None and entry.thread.is_alive():
            entry.thread.join(timeout=2 * POLL_MS / 1000)


def _ensure_providers(ctx: OpContext) -> None:
    """`/streams` (sysrepo's callback) and `/subscriptions` (ours) in operational, from the first subscription on,
    on a sysrepo session of the server's own."""
    with _lock:
        if _providers:
            return
        sess = ctx.session.server.conn.start_session("running")
        try:
            _providers.append(srsn.StreamsProvider(sess))
            # merged with the RESTCONF server's (its own subscriptions, same path): sysrepo refuses a second
            # provider of a path unless both merge
            sess.subscribe_oper_data_request(SN, f"/{SN}:subscriptions", _oper_subscriptions, oper_merge=True)
        except Exception as exc:  # noqa: BLE001 - the subscriptions work without their state
            log.warning("subscription state not provided", error=str(exc))
        _providers.append(sess)


def _oper_subscriptions(_xpath: str, _priv: Any, **_: Any) -> dict[str, Any]:
    with _lock:
        receivers = {i: {"name": f"NETCONF session {e.session.id}"} for i, e in _subs.items()}
    return dynamic.state(receivers)

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
from dataclasses import dataclass, field
from typing import Any
from xml.sax.saxutils import escape

import structlog

from singbox_agent.mgmt import datastore
from singbox_agent.mgmt.errors import MgmtError, MgmtException, bad_element, invalid_value, operation_failed
from singbox_agent.netconf import limits, messages
from singbox_agent.netconf.dispatch import OpContext, on_session_end, register
from singbox_agent.netconf.session import NetconfSession
from singbox_agent.subscriptions import srsn

log = structlog.get_logger("netconf.subscriptions")

SN_NS = srsn.SN_NS
YP_NS = srsn.YP_NS
SN = "ietf-subscribed-notifications"
YP = "ietf-yang-push"
NO_SUCH_SUBSCRIPTION = f"{SN}:no-such-subscription"
POLL_MS = 250
_DATASTORES: dict[str, srsn.Datastore] = {"ietf-datastores:running": "running", "ietf-datastores:startup": "startup",
               "ietf-datastores:candidate": "candidate", "ietf-datastores:operational": "operational"}


@dataclass
class _Sub:
    session: NetconfSession
    sub: srsn.Subscription
    yang_push: bool
    stop: datetime.datetime | None
    filter_xml: str = ""  # the filter as the client gave it, for subscription-modified
    terminated_by_us: bool = False
    thread: threading.Thread | None = field(default=None, repr=False)


_lock = threading.Lock()
_subs: dict[int, _Sub] = {}
_providers: list[Any] = []  # oper data subscriptions (/subscriptions, /streams), made once per process


def _error_no_such(sub_id: int, detail: str = "") -> MgmtException:
    return MgmtException(MgmtError("application", "invalid-value",
                                   f"Subscription {sub_id}{detail} does not exist.",
                                   error_app_tag=NO_SUCH_SUBSCRIPTION))


def _time(ctx: OpContext, path: str) -> datetime.datetime | None:
    node = ctx.op.find_path(path)
    if node is None:
        return None
    text = str(node.value())
    try:
        return datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise bad_element(path.rsplit(":", 1)[-1], f'"{text}" is not a date-and-time.') from None


def _leaf(ctx: OpContext, path: str) -> str | None:
    node = ctx.op.find_path(path)
    return None if node is None or node.value() is None else str(node.value())


def _filter(ctx: OpContext, yang_push: bool) -> tuple[str | None, str]:
    """(XPath for sysrepo, the filter element as given) from the stream or datastore filter choice."""
    ns, prefix = (YP_NS, "datastore") if yang_push else (SN_NS, "stream")
    if ctx.op.find_path(f"{YP + ':' if yang_push else ''}{'selection-filter-ref' if yang_push else 'stream-filter-name'}"):
        raise MgmtException(MgmtError("application", "operation-not-supported",
                                      "Filters by reference (configured filters) are not supported; give the filter "
                                      "in the request.", error_app_tag=f"{SN}:filter-unsupported"))
    xpath = _leaf(ctx, f"{YP + ':' if yang_push else ''}{prefix}-xpath-filter")
    if xpath is not None:
        limits.check_xpath(xpath, ctx.session.server.limits, what=f"The {prefix}-xpath-filter")
        return xpath or None, f'<{prefix}-xpath-filter xmlns="{ns}">{escape(xpath)}</{prefix}-xpath-filter>'
    element = ctx.rpc.op.find(f"{{{ns}}}{prefix}-subtree-filter")
    if element is None:
        return None, ""
    children = list(element)
    xpaths = datastore.subtree_to_xpaths(ctx.ly, children) if children else []
    if children and not xpaths:
        raise invalid_value(f"The {prefix}-subtree-filter selects nothing this server knows.",
                            error_type="application")
    combined = " | ".join(xpaths) or None
    if combined:
        limits.check_xpath(combined, ctx.session.server.limits, what=f"The XPath equivalent of the {prefix} filter")
    return combined, ET.tostring(element, encoding="unicode")


def _centiseconds(ctx: OpContext, path: str) -> int | None:
    value = _leaf(ctx, path)
    return None if value is None else int(value) * 10


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def _stamp(at: datetime.datetime) -> str:
    return at.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@register(SN_NS, "establish-subscription")
def establish(ctx: OpContext) -> str:
    encoding = _leaf(ctx, "encoding")
    if encoding is not None and encoding.rsplit(":", 1)[-1] != "encode-xml":
        raise MgmtException(MgmtError("application", "invalid-value",
                                      f'Encoding "{encoding}" is not supported over NETCONF; use encode-xml.',
                                      error_app_tag=f"{SN}:encoding-unsupported"))
    stop = _time(ctx, "stop-time")
    stream = _leaf(ctx, "stream")
    target = _leaf(ctx, f"{YP}:datastore")
    replay_start: datetime.datetime | None = None
    if stream is not None:
        start = _time(ctx, "replay-start-time")
        now = _now()
        if start is not None and start > now:
            raise bad_element("replay-start-time", "replay-start-time is in the future.", error_type="application")
        if start is None and stop is not None and stop < now:
            raise bad_element("stop-time", "stop-time is in the past.", error_type="application")
        if start is not None and stop is not None and stop < start:
            raise bad_element("stop-time", "stop-time is earlier than replay-start-time.", error_type="application")
        xpath, filter_xml = _filter(ctx, yang_push=False)
        try:
            sub = srsn.subscribe(ctx.sr, stream, xpath=xpath, stop=stop, start=start)
        except srsn.SrsnError as exc:
            raise operation_failed(f"The subscription could not be established: {exc}") from None
        replay_start = sub.replay_start if start is not None and sub.replay_start and sub.replay_start > start \
            else None
        yang_push = False
    elif target is not None:
        ds = _DATASTORES.get(target)
        if ds is None:
            raise invalid_value(f'Datastore "{target}" is not supported.', error_type="application")
        if stop is not None and stop < _now():
            raise bad_element("stop-time", "stop-time is in the past.", error_type="application")
        xpath, filter_xml = _filter(ctx, yang_push=True)
        try:
            if ctx.op.find_path(f"{YP}:periodic") is not None:
                period = _centiseconds(ctx, f"{YP}:periodic/period")
                assert period is not None  # mandatory in the schema
                sub = srsn.yang_push_periodic(ctx.sr, ds, period_ms=period, xpath=xpath,
                                              anchor=_time(ctx, f"{YP}:periodic/anchor-time"), stop=stop)
            elif ctx.op.find_path(f"{YP}:on-change") is not None:
                excluded = tuple(str(n.value()) for n in ctx.op.find_all(f"{YP}:on-change/excluded-change")  # type: ignore[attr-defined]
                                 )
                sync = _leaf(ctx, f"{YP}:on-change/sync-on-start")
                sub = srsn.yang_push_on_change(ctx.sr, ds, xpath=xpath,
                                               dampening_ms=_centiseconds(ctx, f"{YP}:on-change/dampening-period")
                                               or 0, sync_on_start=sync != "false", excluded=excluded, stop=stop)
            else:
                raise MgmtException(MgmtError("protocol", "missing-element",
                                              "A datastore subscription needs periodic or on-change.",
                                              info={"bad-element": "update-trigger"}))
        except srsn.SrsnError as exc:
            raise operation_failed(f"The subscription could not be established: {exc}") from None
        yang_push = True
    else:
        raise MgmtException(MgmtError("protocol", "missing-element", "Give a stream or a datastore.",
                                      info={"bad-element": "stream"}))
    entry = _Sub(ctx.session, sub, yang_push, stop, filter_xml)
    _ensure_providers(ctx)
    with _lock:
        _subs[sub.id] = entry
    thread = threading.Thread(target=_deliver, args=(entry,), name=f"subscription-{sub.id}", daemon=True)
    entry.thread = thread
    # Started by the session's worker after this operation: its rpc-reply goes out before any notification.
    ctx.session.run_on_worker(thread.start)
    ctx.session.log.info("subscription established", subscription=sub.id, yang_push=yang_push)
    out = f'<id xmlns="{SN_NS}">{sub.id}</id>'
    if replay_start is not None:
        out += f'<replay-start-time-revision xmlns="{SN_NS}">{_stamp(replay_start)}</replay-start-time-revision>'
    return out


def _own(ctx: OpContext, *, yang_push: bool | None = None) -> _Sub:
    sub_id = int(_leaf(ctx, "id") or 0)
    with _lock:
        entry = _subs.get(sub_id)
    if entry is None or entry.session is not ctx.session or entry.terminated_by_us or \
            (yang_push is not None and entry.yang_push != yang_push):
        raise _error_no_such(sub_id, " of this session")
    return entry


@register(SN_NS, "modify-subscription")
def modify(ctx: OpContext) -> str:
    yang_push = ctx.op.find_path(f"{YP}:datastore") is not None
    entry = _own(ctx, yang_push=yang_push)
    sub_id = entry.sub.id
    stop = _time(ctx, "stop-time")
    xpath, filter_xml = _filter(ctx, yang_push)
    try:
        if yang_push and ctx.op.find_path(f"{YP}:periodic") is not None:
            period = _centiseconds(ctx, f"{YP}:periodic/period")
            assert period is not None
            srsn.modify_period(sub_id, period, _time(ctx, f"{YP}:periodic/anchor-time"))
        elif yang_push and ctx.op.find_path(f"{YP}:on-change") is not None:
            srsn.modify_dampening(sub_id, _centiseconds(ctx, f"{YP}:on-change/dampening-period") or 0)
        srsn.modify_xpath(sub_id, xpath)
    except srsn.SrsnError as exc:
        raise operation_failed(f"The subscription could not be modified: {exc}") from None
    entry.filter_xml, entry.stop = filter_xml, stop
    _send(entry, _stamp(_now()), _modified_xml(entry))
    try:
        srsn.notif_sent(sub_id)
        # last, so that a stop time already past ends it after the subscription-modified
        srsn.modify_stop_time(sub_id, stop)
    except srsn.SrsnError as exc:
        raise operation_failed(f"The subscription could not be modified: {exc}") from None
    return "<ok/>"


def _modified_xml(entry: _Sub) -> str:
    state = next((s for s in srsn.subscriptions() if s.id == entry.sub.id), None)
    parts = [f"<id>{entry.sub.id}</id>"]
    if entry.stop is not None:
        parts.append(f"<stop-time>{_stamp(entry.stop)}</stop-time>")
    parts.append(entry.filter_xml)
    if state is not None and state.kind != "stream":
        parts.append(f'<datastore xmlns="{YP_NS}" xmlns:ds="urn:ietf:params:xml:ns:yang:ietf-datastores">'
                     f"ds:{state.datastore}</datastore>")
        if state.kind == "periodic":
            parts.append(f'<periodic xmlns="{YP_NS}"><period>{(state.period_ms or 0) // 10}</period></periodic>')
        else:
            parts.append(f'<on-change xmlns="{YP_NS}"><dampening-period>{(state.dampening_ms or 0) // 10}'
                         f"</dampening-period></on-change>")
    return f'<subscription-modified xmlns="{SN_NS}">{"".join(parts)}</subscription-modified>'


def _terminate(entry: _Sub) -> None:
    entry.terminated_by_us = True
    try:
        srsn.terminate(entry.sub.id, NO_SUCH_SUBSCRIPTION)
    except srsn.SrsnError as exc:
        log.info("subscription already gone", subscription=entry.sub.id, error=str(exc))


@register(SN_NS, "delete-subscription")
def delete(ctx: OpContext) -> str:
    _terminate(_own(ctx))
    return "<ok/>"


@register(SN_NS, "kill-subscription")
def kill(ctx: OpContext) -> str:
    """Any session's subscription (nacm:default-deny-all in the module: administrators only)."""
    sub_id = int(_leaf(ctx, "id") or 0)
    with _lock:
        entry = _subs.get(sub_id)
    if entry is None or entry.terminated_by_us:
        raise _error_no_such(sub_id)
    _terminate(entry)
    return "<ok/>"


@register(YP_NS, "resync-subscription")
def resync(ctx: OpContext) -> str:
    entry = _own(ctx, yang_push=True)
    try:
        srsn.resync(entry.sub.id)
    except srsn.SrsnError as exc:
        raise operation_failed(f"The subscription could not be resynchronised: {exc}") from None
    return "<ok/>"


def _send(entry: _Sub, when: str, content: str) -> None:
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
            content = n.content
            if content.startswith("<subscription-terminated") and not entry.terminated_by_us and \
                    entry.stop is not None and _now() >= entry.stop:
                content = f'<subscription-completed xmlns="{SN_NS}"><id>{sub.id}</id></subscription-completed>'
            _send(entry, _stamp(n.time), content)
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
        try:
            srsn.terminate(entry.sub.id)
        except srsn.SrsnError:
            pass
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
            sess.subscribe_oper_data_request(SN, f"/{SN}:subscriptions", _oper_subscriptions)
        except Exception as exc:  # noqa: BLE001 - the subscriptions work without their state
            log.warning("subscription state not provided", error=str(exc))
        _providers.append(sess)


def _oper_subscriptions(_xpath: str, _priv: Any, **_: Any) -> dict[str, Any]:
    with _lock:
        owners = {i: e for i, e in _subs.items()}
    out: list[dict[str, Any]] = []
    for state in srsn.subscriptions():
        entry = owners.get(state.id)
        if entry is None:
            continue
        item: dict[str, Any] = {"id": state.id}
        if state.kind == "stream":
            item["stream"] = state.stream
            if state.xpath:
                item["stream-xpath-filter"] = state.xpath
        else:
            item[f"{YP}:datastore"] = f"ietf-datastores:{state.datastore}"
            if state.xpath:
                item[f"{YP}:datastore-xpath-filter"] = state.xpath
            if state.kind == "periodic":
                item[f"{YP}:periodic"] = {"period": (state.period_ms or 0) // 10}
            else:
                item[f"{YP}:on-change"] = {"dampening-period": (state.dampening_ms or 0) // 10}
        if state.stop is not None:
            item["stop-time"] = _stamp(state.stop)
        item["receivers"] = {"receiver": [{
            "name": f"NETCONF session {entry.session.id}",
            "sent-event-records": str(state.sent),
            "excluded-event-records": str(state.excluded),
            "state": "suspended" if state.suspended else "active",
        }]}
        out.append(item)
    return {"subscriptions": {"subscription": out}} if out else {}

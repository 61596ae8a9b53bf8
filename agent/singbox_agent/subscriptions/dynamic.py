"""RFC 8639 dynamic subscriptions without a protocol: what establish-, modify-, delete- and kill-subscription do
with the rpc's input (a libyang tree of ietf-subscribed-notifications / ietf-yang-push), on sysrepo's `srsn`.

The NETCONF operation (netconf/ops/subscribed_notifications.py, RFC 8640) and RESTCONF (restconf/
dynamic_subscriptions.py, RFC 8650) both build on it; each keeps what is its protocol's own: how the filter arrives
(a subtree filter is XML anydata over NETCONF), who owns a subscription (a NETCONF session, a RESTCONF user), and
how notifications travel (<notification> messages, server-sent events). Errors are `MgmtException`s, which both
servers render.
"""

from __future__ import annotations

import datetime
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from typing import Any

from libyang import LibyangError

from singbox_agent.mgmt import datastore
from singbox_agent.mgmt.errors import (
    MgmtError, MgmtException, bad_element, clip, invalid_value, operation_failed,
)
from singbox_agent.subscriptions import srsn

SN = "ietf-subscribed-notifications"
YP = "ietf-yang-push"
NO_SUCH_SUBSCRIPTION = f"{SN}:no-such-subscription"
# The id spaces (RFC 8639 2.4.2: ids unique to the publisher; srsn's are per process, see srsn.ID_TAG): the NETCONF
# server's subscriptions have srsn's ids, the RESTCONF server's the same with the top bit set.
NETCONF_IDS = 0
RESTCONF_IDS = srsn.ID_TAG
DATASTORES: dict[str, srsn.Datastore] = {"ietf-datastores:running": "running", "ietf-datastores:startup": "startup",
                                         "ietf-datastores:candidate": "candidate",
                                         "ietf-datastores:operational": "operational"}


def now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def stamp(at: datetime.datetime) -> str:
    return at.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def error_no_such(sub_id: int, detail: str = "") -> MgmtException:
    return MgmtException(MgmtError("application", "invalid-value", f"Subscription {sub_id}{detail} does not exist.",
                                   error_app_tag=NO_SUCH_SUBSCRIPTION))


def leaf(op: Any, path: str) -> str | None:
    """A leaf of the rpc's input (`op`: the libyang rpc node), None when absent."""
    node = op.find_path(path)
    return None if node is None or node.value() is None else str(node.value())


def time_leaf(op: Any, path: str) -> datetime.datetime | None:
    text = leaf(op, path)
    if text is None:
        return None
    try:
        return datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise bad_element(path.rsplit(":", 1)[-1], f'"{clip(text)}" is not a date-and-time.') from None


_MAX_PERIOD_MS = 2**31 - 1


def centiseconds(op: Any, path: str) -> int | None:
    """A period in centiseconds (RFC 8641) as milliseconds. sysrepo takes milliseconds in a uint32, and its timer
    arithmetic wraps near the top of that range (a period of 4,294,967,280 ms hung delete-subscription and the
    server's shutdown in srsn): one beyond 2^31-1 ms (~24.8 days; RFC 8641's uint32 of centiseconds goes 20 times
    further) is refused, as period-unsupported for a period (past 2^32 ms it failed in the C call's conversion, an
    operation-failed)."""
    value = leaf(op, path)
    if value is None:
        return None
    if int(value) * 10 > _MAX_PERIOD_MS:
        raise MgmtException(MgmtError("application", "invalid-value",
                                      f"The {path.rsplit('/', 1)[-1]} must be at most {_MAX_PERIOD_MS // 10} "
                                      "centiseconds.", error_app_tag=f"{YP}:period-unsupported"
                                      if path.endswith("/period") else None, error_path=_input_path(op, path)))
    return int(value) * 10


def is_yang_push(op: Any) -> bool:
    return op.find_path(f"{YP}:datastore") is not None


def filter_unsupported(message: str, path: str | None = None) -> MgmtException:
    """RFC 8639 2.4.2: a filter the publisher cannot apply (establish- and modify-subscription)."""
    return MgmtException(MgmtError("application", "invalid-value", message, error_app_tag=f"{SN}:filter-unsupported",
                                   error_path=path))


def _input_path(op: Any, name: str) -> str:
    """The error-path of `name` (a leaf or choice of the rpc's input, "ietf-yang-push:..." for YANG-Push's)."""
    return f"/{SN}:{op.schema().name()}/{name}"


def _filter_name(yang_push: bool, kind: str) -> str:
    return f"{YP}:datastore-{kind}-filter" if yang_push else f"stream-{kind}-filter"


def _schema_knows(ly: Any, path: str) -> bool:
    try:
        return next(iter(ly.find_path(path)), None) is not None
    except LibyangError:
        return False


def _unknown_node(ly: Any, elements: list[ET.Element]) -> str | None:
    """The schema path of the first element of a subtree filter (content match nodes too) that names no node of
    its module, None when all do; elements in namespaces of no implemented module select nothing (RFC 6241 6.2.5)
    and are not looked at. Each distinct path is looked up once (3,000 identical siblings: one lookup)."""
    modules: dict[str, str | None] = {}
    known: set[str] = set()

    def walk(el: ET.Element, parent: str, parent_mod: str | None) -> str | None:
        ns, _, name = el.tag[1:].partition("}") if el.tag.startswith("{") else ("", "", el.tag)
        if ns and ns not in modules:
            modules[ns] = datastore.module_by_namespace(ly, ns)
        mod = modules[ns] if ns else parent_mod
        if mod is None:
            return None
        path = f"{parent}/{mod}:{name}" if mod != parent_mod else f"{parent}/{name}"
        if path not in known:
            if not _schema_knows(ly, path):
                return path
            known.add(path)
        for child in el:
            bad = walk(child, path, mod)
            if bad is not None:
                return bad
        return None

    for element in elements:
        bad = walk(element, "", None)
        if bad is not None:
            return bad
    return None


def subtree_xpath(ly: Any, element: ET.Element, prefix: str) -> str | None:
    """The XPath selecting what a stream-/datastore-subtree-filter element selects (None: everything, an empty
    filter); a filter that selects nothing this server knows, or names a node its module does not have, is refused
    (filter-unsupported, naming the node: sysrepo would fail on the XPath with no word of which)."""
    children = list(element)
    xpaths = datastore.subtree_to_xpaths(ly, children) if children else []
    if children and not xpaths:
        raise invalid_value(f"The {prefix}-subtree-filter selects nothing this server knows.",
                            error_type="application")
    unknown = _unknown_node(ly, children)
    if unknown is not None:
        raise filter_unsupported(f"The {prefix}-subtree-filter names {unknown}, which this server's modules do not "
                                 "have.")
    return " | ".join(xpaths) or None


def check_input(op: Any, yang_push: bool) -> None:
    """What the schema's choices would refuse if libyang validated an rpc's input (it parses it only): two
    filters, two triggers, a stream and a datastore; and a filter given by reference (configured filters are not
    supported)."""
    if op.find_path(f"{YP}:selection-filter-ref" if yang_push else "stream-filter-name"):
        raise MgmtException(MgmtError("application", "operation-not-supported",
                                      "Filters by reference (configured filters) are not supported; give the filter "
                                      "in the request.", error_app_tag=f"{SN}:filter-unsupported"))
    if op.find_path(_filter_name(yang_push, "xpath")) is not None and \
            op.find_path(_filter_name(yang_push, "subtree")) is not None:
        raise filter_unsupported("Give an XPath filter or a subtree filter, not both.",
                                 _input_path(op, _filter_name(yang_push, "subtree")))
    if op.find_path("stream") is not None and op.find_path(f"{YP}:datastore") is not None:
        raise bad_element("datastore", "Give a stream or a datastore, not both.", error_type="application",
                          path=_input_path(op, f"{YP}:datastore"))
    if op.find_path(f"{YP}:periodic") is not None and op.find_path(f"{YP}:on-change") is not None:
        raise bad_element("on-change", "Give periodic or on-change, not both.", error_type="application",
                          path=_input_path(op, f"{YP}:on-change"))


def xpath_filter(op: Any, yang_push: bool) -> str | None:
    """The stream-/datastore-xpath-filter as given (None: not given; "" selects everything); one that does not
    parse or selects no node of this server's schema is refused (filter-unsupported, with libyang's words)."""
    name = _filter_name(yang_push, "xpath")
    xpath = leaf(op, name)
    if xpath:
        try:
            found = next(iter(op.context.find_path(xpath)), None)
        except LibyangError as exc:
            found, detail = None, str(exc).partition(": ")[2]
        else:
            detail = ""
        if found is None:
            raise filter_unsupported(f'The {name.rsplit(":", 1)[-1]} "{clip(xpath)}" selects nothing in this server\'s '
                                     "modules" + (f": {detail}" if detail else "."), _input_path(op, name))
    return xpath


def period(op: Any) -> int | None:
    """periodic/period in milliseconds (None: not given); 0 is refused (period-unsupported): sysrepo would take it
    and push without pause."""
    value = centiseconds(op, f"{YP}:periodic/period")
    if value == 0:
        raise MgmtException(MgmtError("application", "invalid-value", "The period must be at least 1 centisecond.",
                                      error_app_tag=f"{YP}:period-unsupported",
                                      error_path=_input_path(op, f"{YP}:periodic/period")))
    return value


@dataclass
class Established:
    sub: srsn.Subscription
    yang_push: bool
    stop: datetime.datetime | None
    replay_start: datetime.datetime | None  # replay-start-time-revision, when sysrepo moved the start


def establish(sr: Any, op: Any, xpath: str | None, id_space: int) -> Established:
    """establish-subscription on the sysrepo session `sr` (its user: NACM applies to what is delivered): a stream
    (with replay-start-time) or a datastore (periodic / on-change); `xpath`: the filter, resolved by the caller;
    `id_space`: NETCONF_IDS or RESTCONF_IDS, the server's (every id of the subscription is in it from here on)."""
    stop = time_leaf(op, "stop-time")
    stream = leaf(op, "stream")
    target = leaf(op, f"{YP}:datastore")
    if stream is not None:
        start = time_leaf(op, "replay-start-time")
        at = now()
        if start is not None and start > at:
            raise bad_element("replay-start-time", "replay-start-time is in the future.", error_type="application")
        if start is None and stop is not None and stop < at:
            raise bad_element("stop-time", "stop-time is in the past.", error_type="application")
        if start is not None and stop is not None and stop < start:
            raise bad_element("stop-time", "stop-time is earlier than replay-start-time.", error_type="application")
        try:
            sub = srsn.subscribe(sr, stream, xpath=xpath, stop=stop, start=start, id_tag=id_space)
        except srsn.SrsnError as exc:
            if exc.rc == srsn.ERR_NOT_FOUND:  # the filter was checked: the stream is not one of sysrepo's
                # RFC 8639 2.4.2: "stream-unavailable", the identity as error-app-tag (RFC 8640 2.4.3)
                raise invalid_value(f'Stream "{clip(stream)}" does not exist' +
                                    (" or has none of the notifications the filter selects." if xpath else "."),
                                    _input_path(op, "stream"), error_type="application",
                                    app_tag=f"{SN}:stream-unavailable") from None
            raise operation_failed(f"The subscription could not be established: {exc}") from None
        moved = sub.replay_start if start is not None and sub.replay_start and sub.replay_start > start else None
        return Established(sub, False, stop, moved)
    if target is None:
        raise MgmtException(MgmtError("protocol", "missing-element", "Give a stream or a datastore.",
                                      info={"bad-element": "stream"}))
    ds = DATASTORES.get(target)
    if ds is None:
        raise invalid_value(f'Datastore "{clip(target)}" is not supported.', error_type="application")
    if stop is not None and stop < now():
        raise bad_element("stop-time", "stop-time is in the past.", error_type="application")
    try:
        if op.find_path(f"{YP}:periodic") is not None:
            period_ms = period(op)
            if period_ms is None:  # mandatory in the schema, which the parse does not check
                raise MgmtException(MgmtError("protocol", "missing-element", "periodic needs a period.",
                                              info={"bad-element": "period"}))
            sub = srsn.yang_push_periodic(sr, ds, period_ms=period_ms, xpath=xpath,
                                          anchor=time_leaf(op, f"{YP}:periodic/anchor-time"), stop=stop,
                                          id_tag=id_space)
        elif op.find_path(f"{YP}:on-change") is not None:
            excluded = tuple(str(n.value()) for n in op.find_all(f"{YP}:on-change/excluded-change"))
            # a boolean: libyang gives True/False (str() of it is "False", which is not the XML "false")
            sync = op.find_path(f"{YP}:on-change/sync-on-start")
            sub = srsn.yang_push_on_change(sr, ds, xpath=xpath,
                                           dampening_ms=centiseconds(op, f"{YP}:on-change/dampening-period") or 0,
                                           sync_on_start=sync is None or sync.value() in (True, "true"), excluded=excluded, stop=stop,
                                           id_tag=id_space)
        else:
            raise MgmtException(MgmtError("protocol", "missing-element",
                                          "A datastore subscription needs periodic or on-change.",
                                          info={"bad-element": "update-trigger"}))
    except srsn.SrsnError as exc:
        raise operation_failed(f"The subscription could not be established: {exc}") from None
    return Established(sub, True, stop, None)


def modify(sub_id: int, op: Any, yang_push: bool, xpath: str | None) -> datetime.datetime | None:
    """modify-subscription's filter, period or dampening; returns the new stop time, which the caller applies with
    `apply_stop_time` after sending subscription-modified (a stop time already past then ends it after that)."""
    stop = time_leaf(op, "stop-time")  # read before anything changes
    try:
        if yang_push and op.find_path(f"{YP}:periodic") is not None:
            period_ms = period(op)
            if period_ms is not None:
                srsn.modify_period(sub_id, period_ms, time_leaf(op, f"{YP}:periodic/anchor-time"))
        elif yang_push and op.find_path(f"{YP}:on-change") is not None:
            srsn.modify_dampening(sub_id, centiseconds(op, f"{YP}:on-change/dampening-period") or 0)
        srsn.modify_xpath(sub_id, xpath)
    except srsn.SrsnError as exc:
        raise operation_failed(f"The subscription could not be modified: {exc}") from None
    return stop


def apply_stop_time(sub_id: int, stop: datetime.datetime | None) -> None:
    """After subscription-modified went out: counts it, then sets the stop time."""
    try:
        srsn.notif_sent(sub_id)
        srsn.modify_stop_time(sub_id, stop)
    except srsn.SrsnError as exc:
        raise operation_failed(f"The subscription could not be modified: {exc}") from None


def modified_xml(sub_id: int, stop: datetime.datetime | None, filter_xml: str) -> str:
    """subscription-modified (RFC 8639 2.7.2) as XML: the subscription as it now is."""
    state = next((s for s in srsn.subscriptions() if s.id == sub_id), None)
    parts = [f"<id>{sub_id}</id>"]
    if stop is not None:
        parts.append(f"<stop-time>{stamp(stop)}</stop-time>")
    parts.append(filter_xml)
    if state is not None and state.kind != "stream":
        parts.append(f'<datastore xmlns="{srsn.YP_NS}" xmlns:ds="urn:ietf:params:xml:ns:yang:ietf-datastores">'
                     f"ds:{state.datastore}</datastore>")
        if state.kind == "periodic":
            parts.append(f'<periodic xmlns="{srsn.YP_NS}"><period>{(state.period_ms or 0) // 10}</period></periodic>')
        else:
            parts.append(f'<on-change xmlns="{srsn.YP_NS}"><dampening-period>{(state.dampening_ms or 0) // 10}'
                         f"</dampening-period></on-change>")
    return f'<subscription-modified xmlns="{srsn.SN_NS}">{"".join(parts)}</subscription-modified>'


def resync(sub_id: int) -> None:
    """resync-subscription (RFC 8641 4.6): a push-update of everything an on-change subscription selects, sent
    next on its stream; any other subscription does not exist for it (no-such-subscription-resync). The caller
    has checked that the subscription is the requester's."""
    state = next((s for s in srsn.subscriptions() if s.id == sub_id), None)
    if state is None or state.kind != "on-change":
        raise MgmtException(MgmtError("application", "invalid-value",
                                      f"Subscription {sub_id} is not an on-change subscription of this requester.",
                                      error_app_tag=f"{YP}:no-such-subscription-resync"))
    try:
        srsn.resync(sub_id)
    except srsn.SrsnError as exc:
        raise operation_failed(f"The subscription could not be resynchronised: {exc}") from None


def state(receivers: dict[int, dict[str, Any]]) -> dict[str, Any]:
    """`/subscriptions` (RFC 8639 state) of this process's subscriptions that `receivers` names (id -> the
    receiver's name and any leaves of its own, e.g. RFC 8650's uri), as an operational callback returns it."""
    out: list[dict[str, Any]] = []
    for st in srsn.subscriptions():
        receiver = receivers.get(st.id)
        if receiver is None:
            continue
        item: dict[str, Any] = {"id": st.id}
        if st.kind == "stream":
            item["stream"] = st.stream
            if st.xpath:
                item["stream-xpath-filter"] = st.xpath
        else:
            item[f"{YP}:datastore"] = f"ietf-datastores:{st.datastore}"
            if st.xpath:
                item[f"{YP}:datastore-xpath-filter"] = st.xpath
            if st.kind == "periodic":
                item[f"{YP}:periodic"] = {"period": (st.period_ms or 0) // 10}
            else:
                item[f"{YP}:on-change"] = {"dampening-period": (st.dampening_ms or 0) // 10}
        if st.stop is not None:
            item["stop-time"] = stamp(st.stop)
        item["receivers"] = {"receiver": [{
            **receiver,
            "sent-event-records": str(st.sent),
            "excluded-event-records": str(st.excluded),
            "state": "suspended" if st.suspended else "active",
        }]}
        out.append(item)
    return {"subscriptions": {"subscription": out}} if out else {}


def terminate(sub_id: int, reason: str | None = NO_SUCH_SUBSCRIPTION) -> bool:
    """delete-/kill-subscription: sysrepo sends subscription-terminated with `reason` (None: nothing) and ends the
    pipe; False when it had ended already."""
    try:
        srsn.terminate(sub_id, reason)
    except srsn.SrsnError:
        return False
    return True


def completed_instead(content: str, sub_id: int, stop: datetime.datetime | None, terminated_by_us: bool,
                      fmt: str = "xml") -> str:
    """sysrepo 3.7 ends a subscription at its stop time with subscription-terminated (no-such-subscription), where
    RFC 8639 2.7.5 wants subscription-completed: rewritten when nobody terminated it and the stop time passed."""
    terminated = content.startswith("<subscription-terminated") if fmt == "xml" else \
        content.lstrip().startswith(f'{{"{SN}:subscription-terminated"')
    if terminated and not terminated_by_us and stop is not None and now() >= stop:
        if fmt == "xml":
            return f'<subscription-completed xmlns="{srsn.SN_NS}"><id>{sub_id}</id></subscription-completed>'
        return f'{{"{SN}:subscription-completed":{{"id":{sub_id}}}}}'
    return content

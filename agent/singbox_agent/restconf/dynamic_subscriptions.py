"""RFC 8650 dynamic subscriptions over RESTCONF: establish-, modify-, delete- and kill-subscription as RPCs, each
subscription's notifications as server-sent events at its own URI (`{+restconf}/subscriptions/<id>`).

What a subscription does is `subscriptions.dynamic`'s (shared with NETCONF); here is what RFC 8650 adds:
- establish-subscription answers with the id and `ietf-restconf-subscribed-notifications:uri`; the subscription runs
  on a sysrepo session of its own with the user's NACM identity;
- only the user that established it may GET its URI, modify or delete it (others: 404, as if it did not exist);
  kill-subscription ends anyone's (NACM: default-deny-all in the module);
- a subscription whose URI is not opened within `open_timeout_s` ends; closing the SSE connection ends it (§3.4);
- notifications carry RFC 8040 §6.4's envelope (`ietf-restconf:notification` with eventTime), in the encoding the
  `encoding` leaf asks for, or else the encoding of the establish request.
Everything here but `Attached.events` blocks briefly: call it from a worker thread.
"""

from __future__ import annotations

import asyncio
import datetime
import json
import os
import threading
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any
from xml.sax.saxutils import escape

import libyang
import structlog
import sysrepo

from singbox_agent.mgmt.errors import MgmtError, MgmtException, clip
from singbox_agent.mgmt.nacm import NacmPolicy, enable_nacm
from singbox_agent.mgmt.request_limits import check_subscriptions, check_subtree_filter, check_xpath
from singbox_agent.restconf.errors import RestconfError
from singbox_agent.restconf.limits import RestconfLimits
from singbox_agent.restconf.uri import API_ROOT, Encoding
from singbox_agent.subscriptions import dynamic, srsn

log = structlog.get_logger("restconf.subscriptions")

RSN_NS = "urn:ietf:params:xml:ns:yang:ietf-restconf-subscribed-notifications"
RSN = "ietf-restconf-subscribed-notifications"
NETCONF_NOTIFICATION_NS = "urn:ietf:params:xml:ns:netconf:notification:1.0"
PATH_PREFIX = f"{API_ROOT}/subscriptions/"
RPCS = frozenset({*(f"/{dynamic.SN}:{name}" for name in
                    ("establish-subscription", "modify-subscription", "delete-subscription", "kill-subscription")),
                  f"/{dynamic.YP}:resync-subscription"})
# RFC 8650 leaves the time to open the URI to the server; the environment variable is for tests.
OPEN_TIMEOUT_S = float(os.environ.get("SINGBOX_RESTCONF_SUBSCRIPTION_OPEN_S", "30"))
KEEPALIVE_S = 15.0
POLL_MS = 250
_MAX_QUEUED = 1000


@dataclass(eq=False)
class Entry:
    user: str | None
    sub: srsn.Subscription
    session: Any  # the sysrepo session it runs on (its user's NACM identity)
    encoding: Encoding
    yang_push: bool
    stop: datetime.datetime | None
    filter_xml: str = ""
    uri: str = ""
    attached: bool = False
    terminated_by_us: bool = False
    ended: bool = False
    queue: asyncio.Queue[bytes | None] | None = None
    loop: asyncio.AbstractEventLoop | None = None
    timer: threading.Timer | None = field(default=None, repr=False)

    @property
    def id(self) -> int:
        return self.sub.id


def _not_found(sub_id: int, app_tag: str = dynamic.NO_SUCH_SUBSCRIPTION) -> RestconfError:
    return RestconfError("application", "invalid-value", f"No subscription {sub_id} of this user", status=404,
                         app_tag=app_tag)


def _sub_id(id_text: str) -> int:
    """The id a subscription URI's last segment names (-1: none)."""
    return int(id_text) if id_text.isascii() and id_text.isdigit() and len(id_text) < 11 else -1


class DynamicSubscriptions:
    """The RESTCONF server's dynamic subscriptions, by id."""

    def __init__(self, conn: sysrepo.SysrepoConnection, policy: NacmPolicy) -> None:
        self.conn = conn
        self.policy = policy
        self.open_timeout_s = OPEN_TIMEOUT_S
        self._lock = threading.Lock()
        self._entries: dict[int, Entry] = {}
        self._state_session: Any = None  # provides /subscriptions, from the first subscription on
        # what max-subscriptions counts: these alone, or (EventStreams sets it) with the event streams
        self.running: Callable[[], int] = self.count

    def count(self) -> int:
        with self._lock:
            return len(self._entries)

    # ---- RPCs (a worker thread; `op` is the rpc's input tree in sysrepo's context, NACM exec already checked) ----

    def invoke(self, user: str | None, op: libyang.DNode, encoding: Encoding, base_url: str,
               stream_encoding: Encoding, limits: RestconfLimits | None = None) -> bytes | None:
        """The rpc's output printed in `encoding` (None: no output); `stream_encoding`: the notifications' when
        establish-subscription's `encoding` leaf does not say; filters are checked against `limits` before
        anything compiles them."""
        limits = limits or RestconfLimits()
        name = op.schema().name()
        if name == "establish-subscription":
            return self._establish(user, op, encoding, base_url, stream_encoding, limits)
        sub_id = int(dynamic.leaf(op, "id") or 0)
        if name == "kill-subscription":
            with self._lock:
                entry = self._entries.get(sub_id)
            if entry is None or entry.terminated_by_us:
                raise _not_found(sub_id)
            self._terminate(entry)
            return None
        if name == "resync-subscription":
            # RFC 8641 4.4.4 (resync-subscription-error): its own identity, not no-such-subscription
            self._own(user, sub_id, app_tag=f"{dynamic.YP}:no-such-subscription-resync")
            dynamic.resync(sub_id)
            return None
        entry = self._own(user, sub_id)
        if name == "delete-subscription":
            self._terminate(entry)
            return None
        yang_push = dynamic.is_yang_push(op)
        if yang_push != entry.yang_push:
            raise _not_found(sub_id)
        xpath, filter_xml = self._filter(op, yang_push, limits)
        stop = dynamic.modify(sub_id, op, yang_push, xpath)
        entry.filter_xml, entry.stop = filter_xml, stop
        self._push_xml(entry, dynamic.stamp(dynamic.now()), dynamic.modified_xml(sub_id, stop, filter_xml))
        dynamic.apply_stop_time(sub_id, stop)
        return None

    @staticmethod
    def _filter(op: libyang.DNode, yang_push: bool, limits: RestconfLimits) -> tuple[str | None, str]:
        """(XPath for sysrepo, the filter as given), each within `limits` before libyang compiles it."""
        dynamic.check_input(op, yang_push)
        prefix, ns = ("datastore", srsn.YP_NS) if yang_push else ("stream", srsn.SN_NS)
        subtree = op.find_path(f"{dynamic.YP + ':' if yang_push else ''}{prefix}-subtree-filter")
        if subtree is not None:
            # the anydata, in XML or JSON as the request had it, printed as the RFC 6241 subtree it is
            text = subtree.print_mem("xml", with_siblings=False) or f'<{prefix}-subtree-filter xmlns="{ns}"/>'
            element = ET.fromstring(text)
            check_subtree_filter(sum(1 for _ in element.iter()) - 1, limits, f"The {prefix}-subtree-filter")
            combined = dynamic.subtree_xpath(op.context, element, prefix)
            if combined:
                check_xpath(combined, limits, what=f"The XPath equivalent of the {prefix}-subtree-filter")
            return combined, ET.tostring(element, encoding="unicode")
        given = dynamic.leaf(op, f"{dynamic.YP + ':' if yang_push else ''}{prefix}-xpath-filter")
        if given is not None:
            check_xpath(given, limits, what=f"The {prefix}-xpath-filter")
        xpath = dynamic.xpath_filter(op, yang_push)
        if xpath is None:
            return None, ""
        return xpath or None, f'<{prefix}-xpath-filter xmlns="{ns}">{escape(xpath)}</{prefix}-xpath-filter>'

    def _establish(self, user: str | None, op: libyang.DNode, encoding: Encoding, base_url: str,
                   stream_encoding: Encoding, limits: RestconfLimits) -> bytes:
        asked = dynamic.leaf(op, "encoding")
        if asked is not None:
            kind = asked.rsplit(":", 1)[-1]
            if kind not in ("encode-json", "encode-xml"):
                raise MgmtException(MgmtError("application", "invalid-value", f'Encoding "{clip(asked)}" is not supported.',
                                              error_app_tag=f"{dynamic.SN}:encoding-unsupported"))
            stream_encoding = Encoding.JSON if kind == "encode-json" else Encoding.XML
        yang_push = dynamic.is_yang_push(op)
        xpath, filter_xml = self._filter(op, yang_push, limits)
        check_subscriptions(self.running(), limits, "event streams and subscriptions")
        session = self.conn.start_session("running")
        try:
            enable_nacm(session, self.policy.identity(user))
            made = dynamic.establish(session, op, xpath, dynamic.RESTCONF_IDS)
        except BaseException:
            session.stop()
            raise
        entry = Entry(user, made.sub, session, stream_encoding, made.yang_push, made.stop, filter_xml)
        entry.uri = f"{base_url}{PATH_PREFIX}{entry.id}"
        self._provide_state()
        entry.timer = threading.Timer(self.open_timeout_s, self._unopened, args=(entry,))
        entry.timer.daemon = True
        with self._lock:
            self._entries[entry.id] = entry
        entry.timer.start()
        uri = entry.uri
        log.info("subscription established", subscription=entry.id, user=user, yang_push=made.yang_push)
        revision = dynamic.stamp(made.replay_start) if made.replay_start is not None else None
        if encoding == Encoding.JSON:
            out: dict[str, Any] = {"id": entry.id, f"{RSN}:uri": uri}
            if revision is not None:
                out["replay-start-time-revision"] = revision
            return (json.dumps({f"{dynamic.SN}:output": out}, indent=2) + "\n").encode()
        extra = f"<replay-start-time-revision>{revision}</replay-start-time-revision>" if revision else ""
        return (f'<output xmlns="{srsn.SN_NS}"><id>{entry.id}</id>{extra}<uri xmlns="{RSN_NS}">{escape(uri)}</uri>'
                "</output>\n").encode()

    def _provide_state(self) -> None:
        """`/subscriptions` in operational: this server's subscriptions (with RFC 8650's receiver uri), beside the
        NETCONF server's (sysrepo merges what both provide)."""
        with self._lock:
            if self._state_session is not None:
                return
            self._state_session = sess = self.conn.start_session("running")
        try:
            # merged with the NETCONF server's: sysrepo refuses a second provider of a path unless both merge
            sess.subscribe_oper_data_request(dynamic.SN, f"/{dynamic.SN}:subscriptions", self._oper_state,
                                             oper_merge=True)
        except sysrepo.SysrepoError as exc:  # the subscriptions work without their state
            log.warning("subscription state not provided", error=str(exc))

    def _oper_state(self, _xpath: str, _priv: Any, **_: Any) -> dict[str, Any]:
        with self._lock:
            receivers = {i: {"name": f"RESTCONF user {e.user or ''}".rstrip(), f"{RSN}:uri": e.uri}
                         for i, e in self._entries.items() if not e.terminated_by_us}
        return dynamic.state(receivers)

    def _own(self, user: str | None, sub_id: int, app_tag: str = dynamic.NO_SUCH_SUBSCRIPTION) -> Entry:
        with self._lock:
            entry = self._entries.get(sub_id)
        if entry is None or entry.user != user or entry.terminated_by_us:
            raise _not_found(sub_id, app_tag)
        return entry

    def _terminate(self, entry: Entry) -> None:
        """delete-/kill-subscription: subscription-terminated goes out, then the stream ends (the reader sees the
        end of the pipe); one never opened ends here."""
        entry.terminated_by_us = True
        dynamic.terminate(entry.id)
        if not entry.attached:
            self._cleanup(entry)

    # ---- the SSE side ----------------------------------------------------------------------------------------

    def check(self, user: str | None, id_text: str) -> None:
        """Whether the subscription's URI is a resource for `user` (its owner, not yet opened): a 404 otherwise.
        For the methods other than GET (HEAD, OPTIONS, and the 405 of the rest)."""
        sub_id = _sub_id(id_text)
        with self._lock:
            entry = self._entries.get(sub_id)
            if entry is None or entry.user != user or entry.attached or entry.terminated_by_us:
                raise _not_found(sub_id)

    def attach(self, user: str | None, id_text: str, loop: asyncio.AbstractEventLoop) -> Entry:
        """GET of the subscription's URI by its owner, once (404 otherwise); starts the thread that reads it."""
        sub_id = _sub_id(id_text)
        with self._lock:
            entry = self._entries.get(sub_id)
            if entry is None or entry.user != user or entry.attached or entry.terminated_by_us:
                raise _not_found(sub_id)
            entry.attached = True
        if entry.timer is not None:
            entry.timer.cancel()
        entry.loop = loop
        entry.queue = asyncio.Queue(_MAX_QUEUED)
        threading.Thread(target=self._read, args=(entry,), name=f"rc-subscription-{sub_id}", daemon=True).start()
        return entry

    async def events(self, entry: Entry) -> AsyncIterator[bytes]:
        """The entry's events as printed; b"" for a keepalive; ends with the subscription."""
        assert entry.queue is not None
        while True:
            try:
                item = await asyncio.wait_for(entry.queue.get(), KEEPALIVE_S)
            except TimeoutError:
                yield b""
                continue
            if item is None:
                return
            yield item

    def detach(self, entry: Entry) -> None:
        """The client closed the connection: the subscription ends (RFC 8650 §3.4), without a notification."""
        if not entry.ended:
            entry.terminated_by_us = True
            dynamic.terminate(entry.id, None)

    def _put(self, entry: Entry, body: bytes | None) -> None:
        assert entry.loop is not None and entry.queue is not None
        queue = entry.queue

        def put() -> None:
            if queue.full():
                if body is not None:
                    log.warning("subscription client too slow, dropping notification", subscription=entry.id)
                    return
                queue.get_nowait()
            queue.put_nowait(body)

        try:
            entry.loop.call_soon_threadsafe(put)
        except RuntimeError:  # the loop is gone (shutdown)
            pass

    def _envelope(self, entry: Entry, when: str, text: str) -> bytes:
        if entry.encoding == Encoding.JSON:
            inner = json.loads(text)
            return json.dumps({"ietf-restconf:notification": {"eventTime": when, **inner}}).encode()
        return (f'<notification xmlns="{NETCONF_NOTIFICATION_NS}"><eventTime>{when}</eventTime>{text}'
                "</notification>").encode()

    def _push_xml(self, entry: Entry, when: str, xml: str) -> None:
        """A notification the server makes itself (subscription-modified), in the stream's encoding."""
        if not entry.attached:
            return
        text = xml
        if entry.encoding == Encoding.JSON:
            ctx: Any
            with self.conn.get_ly_ctx() as ctx:
                tree: Any = ctx.parse_op_mem("xml", xml, libyang.DataType.NOTIF_YANG)
                try:
                    text = str(tree.print_mem("json", with_siblings=True, pretty=False))
                finally:
                    tree.free()
        self._put(entry, self._envelope(entry, when, text))

    def _read(self, entry: Entry) -> None:
        """The subscription's thread: its pipe into the stream's queue, until it ends."""
        fmt: Any = "json" if entry.encoding == Encoding.JSON else "xml"
        try:
            while True:
                try:
                    if not entry.sub.poll(POLL_MS):
                        continue
                    ly_ctx: Any
                    with self.conn.get_ly_ctx() as ly_ctx:
                        n = entry.sub.read(ly_ctx, 0, fmt=fmt)
                except EOFError:
                    break
                if n is None:
                    continue
                text = dynamic.completed_instead(n.content, entry.id, entry.stop, entry.terminated_by_us, fmt)
                self._put(entry, self._envelope(entry, dynamic.stamp(n.time), text))
        except Exception as exc:  # noqa: BLE001 - a reader thread never dies silently
            log.error("subscription delivery failed", subscription=entry.id, error=repr(exc))
        finally:
            entry.ended = True
            self._put(entry, None)
            self._cleanup(entry)

    def _unopened(self, entry: Entry) -> None:
        with self._lock:
            if entry.attached:
                return
        log.info("subscription not opened in time: ended", subscription=entry.id, timeout_s=self.open_timeout_s)
        entry.terminated_by_us = True
        self._cleanup(entry)

    def _cleanup(self, entry: Entry) -> None:
        with self._lock:
            if self._entries.get(entry.id) is not entry:
                return
            del self._entries[entry.id]
        if entry.timer is not None:
            entry.timer.cancel()
        entry.sub.close()  # ends it in sysrepo without a notification if it still runs
        try:
            entry.session.stop()
        except sysrepo.SysrepoError:
            log.warning("stopping a subscription's session failed", subscription=entry.id)

    def end_all(self) -> None:
        """On the event loop, when the server stops: every open stream's response ends."""
        with self._lock:
            entries = [e for e in self._entries.values() if e.attached]
        for entry in entries:
            self._put(entry, None)

    def close_all(self) -> None:
        """At shutdown, before the connection goes: every subscription ends, without a notification."""
        with self._lock:
            entries = list(self._entries.values())
            state, self._state_session = self._state_session, None
        for entry in entries:
            entry.terminated_by_us = True
            self._cleanup(entry)
        if state is not None:
            state.stop()

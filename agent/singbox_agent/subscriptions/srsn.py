"""sysrepo's subscribed-notifications API (`srsn_*`, libsysrepo's <sysrepo/subscribed_notifications.h>) in Python.

netopeer2 implements RFC 8639/8640/8641 on this API; sysrepo-python 1.7 does not wrap it: it is declared in
`mgmt/libsysrepo.py` (the one cffi home of libsysrepo's calls) and wrapped here. A subscription is a pipe
that sysrepo writes notifications into: `Subscription.read` polls it and returns each notification printed as
XML, ready for a NETCONF <notification> (or JSON for RESTCONF's SSE).

What sysrepo needs installed: ietf-subscribed-notifications (features replay, subtree, xpath, encode-xml,
encode-json) and ietf-yang-push (feature on-change), from sysrepo's own module directory (`MODULES`); without them
the calls fail with SR_ERR_UNSUPPORTED.

Sessions come from sysrepo-python (`SysrepoSession`); the subscription runs with that session's user, so NACM
applies to what it delivers. Everything blocks briefly (no network I/O): call it from a worker, not an event loop.
"""

from __future__ import annotations

import datetime
import os
import queue
import select
import struct
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from _sysrepo import lib as _sysrepo_lib

from singbox_agent.mgmt import libsysrepo
from singbox_agent.subscriptions.known import Known

SR_MODULE_DIR = Path("/usr/share/yang/modules/sysrepo")
# (module file, features) in installation order: what srsn_* needs (their imports come from the same directory).
MODULES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("ietf-subscribed-notifications@2019-09-09.yang", ("replay", "subtree", "xpath", "encode-xml", "encode-json")),
    ("ietf-yang-push@2019-09-09.yang", ("on-change",)),
)
SN_NS = "urn:ietf:params:xml:ns:yang:ietf-subscribed-notifications"
YP_NS = "urn:ietf:params:xml:ns:yang:ietf-yang-push"

Datastore = Literal["startup", "running", "candidate", "operational"]
CHANGES = ("create", "delete", "insert", "move", "replace")  # srsn_yp_change_t, as RFC 8641 names them
_HEAD = struct.Struct("=qqI")  # struct timespec (x86-64: two longs), uint32 LYB size: srsn's pipe framing
MESSAGE_REST_S = 5.0
# RFC 8639 2.4.2 wants a subscription id unique to the publisher, but srsn numbers the subscriptions of each process
# from 1 (a counter of the process in sysrepo's sn_common.c, nothing shared), and the NETCONF and the RESTCONF
# server are two processes on one sysrepo. So a subscription made with `id_tag` ID_TAG shows the id srsn gave it
# with the top bit set, everywhere: `Subscription.id`, `State.id`, the `id` leaf of the notifications `read`
# returns; every call taking an id takes that id and finds srsn's back (`_raw`), refusing an id of the other space.
# The NETCONF server's ids are srsn's as they are, the RESTCONF server's are tagged (subscriptions/dynamic.py).
ID_TAG = 0x80000000
_tags: dict[int, int] = {}  # srsn's id -> the tag of this process's subscriptions made with one
_knowns: dict[int, Known] = {}  # srsn's id -> what the subscriber of an on-change subscription of operational holds

# RFC 8641 periodic: "push-update notifications are sent at anchor-time + n * period" (the start without one). srsn
# in sysrepo 3.7 arms a periodic subscription's next push a period after the previous one was built and sent
# (srsn_timer_thread in sn_common.c: trigger = now + interval, taken after the callback), so a push that takes a
# second (10,000 sessions on a busy box) made a 1 s subscription push every 2-4 s. After `Subscription.read` takes a
# push-update, its timer is set to the next point of the subscription's grid through srsn's own modify call, whose
# anchor arithmetic is: trigger = now + ((now - anchor) in whole ms, mod period) for an anchor in the past (an
# anchor in the future counts as 1 ms: sr_time_sub_ms is -1 for any negative difference). So the anchor handed over
# is `now - (the time to the grid point) - period`; it differs at every call (srsn reschedules only for an anchor
# other than the one it holds).
# The call is made by a thread of its own (`_Rearm`), never by the reader: srsn's modify waits for the
# subscription's timer lock, which the timer thread holds while it builds and writes the next push, and a push larger
# than the pipe is written only as the reader reads it (a 10,000-session push that came before the modify deadlocked
# the reader with the timer thread).
# A push that took longer than its period is followed by srsn's own arming (a period after it was sent) when that
# comes before the next point still ahead: pushes then come a period plus their own time apart, as without this.
# srsn's id of a periodic subscription -> (period ms, grid origin, epoch s)
_grids: dict[int, tuple[int, float]] = {}
_GRID_LATE_S = 0.001  # aim this much after the point: srsn counts whole milliseconds, rounding down
# srsn's modulo wraps to 0 (a push at once) if its clock reads a period or more after `anchor`: right after a push
# the point is almost a period away, so the call waits until the point is this much nearer (less for short periods;
# the timer cannot be armed more than a period ahead, so the point is never aimed early instead)
_GRID_GUARD_S = 0.02
_GRID_MAX_PERIOD_MS = 2**30  # srsn computes (now - anchor), up to two periods, in int milliseconds

_ffi = libsysrepo.ffi  # the one cffi home of libsysrepo's calls
ERR_NOT_FOUND: int = _sysrepo_lib.SR_ERR_NOT_FOUND  # the binding's declaration of sr_error_t


def _sr() -> Any:
    return libsysrepo.lib


class SrsnError(Exception):
    """A srsn_* call failed: `rc` is sysrepo's error code, the message sysrepo's (and its session's) words."""

    def __init__(self, call: str, rc: int, detail: str = "") -> None:
        super().__init__(f"{call}: {libsysrepo.strerror(rc)}" + (f": {detail}" if detail else ""))
        self.rc = rc
        self.detail = detail


def _constants() -> tuple[dict[str, int], int, int]:
    """sr_datastore_t values and the two error codes srsn_poll/srsn_read_notif answer besides success."""
    return libsysrepo.DATASTORES, libsysrepo.ERR_TIME_OUT, libsysrepo.ERR_UNSUPPORTED  # timeout; end of file


_session_ptr = libsysrepo.session_ptr


def _check(call: str, rc: int, session: Any = None) -> None:
    if rc != 0:
        raise SrsnError(call, rc, libsysrepo.session_error(session))


def _timespec(at: datetime.datetime | None) -> Any:
    if at is None:
        return _ffi.NULL
    if at.tzinfo is None:
        raise ValueError("times must be timezone-aware")
    ts = _ffi.new("struct timespec *")
    micro = int(at.timestamp() * 1_000_000)
    ts.tv_sec, ts.tv_nsec = divmod(micro, 1_000_000)
    ts.tv_nsec *= 1000
    return ts


def _datetime(ts: Any) -> datetime.datetime | None:
    if ts.tv_sec == 0 and ts.tv_nsec == 0:
        return None
    return datetime.datetime.fromtimestamp(ts.tv_sec + ts.tv_nsec / 1e9, datetime.UTC)


@dataclass(frozen=True)
class Notification:
    """One notification a subscription delivered: its eventTime and its content printed (without the
    <notification> envelope)."""

    time: datetime.datetime
    content: str


class Subscription:
    """A dynamic subscription: `id` (RFC 8639's subscription id), the pipe sysrepo writes to."""

    def __init__(self, sub_id: int, fd: int, sr_sub: Any = None, replay_start: datetime.datetime | None = None,
                 id_tag: int = 0, known: tuple[Known, Any] | None = None) -> None:
        self.raw_id = sub_id  # srsn's
        self.tag = id_tag
        self.id = sub_id | id_tag  # what the subscriber sees
        if id_tag:
            _tags[sub_id] = id_tag
        self.fd = fd
        self.replay_start = replay_start  # the first stored notification replayed, with start_time
        self._sr_sub = sr_sub  # the sysrepo subscription behind a stream / on-change subscription (None: its own)
        # on-change of operational: what its subscriber holds, and the connection it is of (known.py)
        self._known = known
        if known is not None:
            _knowns[sub_id] = known[0]
        self._closed = False

    def poll(self, timeout_ms: int) -> bool:
        """Whether a notification waits within `timeout_ms` (no libyang context needed); EOFError once the
        subscription ended and everything before its end was read."""
        _, time_out, eof = _constants()
        rc = _sr().srsn_poll(self.fd, timeout_ms)
        if rc == time_out:
            return False
        if rc == eof:
            raise EOFError(f"subscription {self.id} ended")
        _check("srsn_poll", rc)
        return True

    def read(self, ly_ctx: Any, timeout_ms: int, *, fmt: Literal["xml", "json"] = "xml") -> Notification | None:
        """The next notification within `timeout_ms`, or None. `ly_ctx`: the libyang context of the connection
        (`SysrepoConnection.get_ly_ctx()`). Once the subscription ended, after its subscription-terminated
        (terminate() with a reason, or the stop time: sysrepo 3.7 sends subscription-terminated with reason
        no-such-subscription there, where RFC 8639 2.7.5 wants subscription-completed), `EOFError`.

        The pipe carries {struct timespec, uint32 size, size bytes of LYB} per notification. sysrepo's own
        srsn_read_notif takes the LYB with one read(), which returns at most what the pipe holds (64 KiB): a larger
        notification (a push-update of 1,000 sessions) failed with SR_ERR_SYS, and the writer then crashed the
        process. So the message is read here whole, and parsed with libyang as srsn_read_notif would."""
        if not self.poll(timeout_ms):
            return None
        head = self._read_exact(_HEAD.size)
        sec, nsec, size = _HEAD.unpack(head)
        body = self._read_exact(size)
        text = _print_lyb(ly_ctx, body, fmt, self.tag, self._known[0] if self._known is not None else None)
        if text is None:
            return None  # a patch of changes the subscriber has seen: nothing to send (known.py)
        when = datetime.datetime.fromtimestamp(sec + nsec / 1e9, datetime.UTC) if sec or nsec else \
            datetime.datetime.now(datetime.UTC)
        if self.raw_id in _grids and text.startswith(("<push-update", '{"ietf-yang-push:push-update"')):
            _REARM.ask(self.raw_id, when.timestamp())
        return Notification(when, text)

    def _read_exact(self, n: int) -> bytes:
        """`n` bytes of a message whose start was read: the writer delivers the rest at once (bounded wait)."""
        chunks: list[bytes] = []
        missing = n
        deadline = time.monotonic() + MESSAGE_REST_S
        while missing:
            try:
                chunk = os.read(self.fd, missing)
            except BlockingIOError:
                chunk = None
            if chunk == b"":
                raise EOFError(f"subscription {self.id} ended in the middle of a notification")
            if chunk:
                chunks.append(chunk)
                missing -= len(chunk)
                continue
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self.fd], [], [], left)[0]:
                raise SrsnError("read", _constants()[1], f"a notification of {n} bytes did not arrive whole")
        return b"".join(chunks)

    def _drain(self, done: threading.Event) -> None:
        while not done.is_set():
            if select.select([self.fd], [], [], 0.05)[0]:
                try:
                    if not os.read(self.fd, 1 << 16):
                        return  # end of file: the writer is gone
                except BlockingIOError:
                    pass

    def close(self) -> None:
        """Ends the subscription in sysrepo (no notification) if it still runs, stops sysrepo's subscription behind
        it, and closes the pipe; idempotent. Closing the pipe first would leave sysrepo writing into it."""
        if self._closed:
            return
        self._closed = True
        lib = _sr()
        # srsn_terminate waits for the subscription's timer thread, which may be writing a push larger than the pipe
        # (a periodic push of thousands of sessions): it finishes only as the pipe is read, so drain it meanwhile
        draining = threading.Event()
        drain = threading.Thread(target=self._drain, args=(draining,), name="srsn-drain", daemon=True)
        drain.start()
        lib.srsn_terminate(self.raw_id, _ffi.NULL)  # SR_ERR_NOT_FOUND when it ended already: nothing to do
        if self._sr_sub is not None:
            lib.sr_unsubscribe(self._sr_sub[0])
        draining.set()
        drain.join()
        os.close(self.fd)
        _tags.pop(self.raw_id, None)
        _grids.pop(self.raw_id, None)
        if self._known is not None:
            _knowns.pop(self.raw_id, None)
            self._known[0].free(self._known[1])


class _Rearm:
    """The thread that arms periodic subscriptions at their grid points (`_keep_period`), started at first need."""

    def __init__(self) -> None:
        self._asks: queue.SimpleQueue[tuple[int, float, float]] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def ask(self, raw: int, sent: float) -> None:
        """After a push-update of `raw` that srsn stamped `sent` (epoch s) was read."""
        self._asks.put((raw, sent, time.time()))
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="srsn-periodic-grid", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        while True:
            raw, sent, asked = self._asks.get()
            grid = _grids.get(raw)
            # an ask that waited behind a blocked modify for half a period or more is stale: srsn's own arming
            # (a period after that push) stands, the next push asks again
            if grid is not None and time.time() - asked < grid[0] / 2000:
                _keep_period(raw, sent)


_REARM = _Rearm()


def _keep_period(raw: int, sent: float) -> None:
    """Arms periodic subscription `raw`'s next push at the next point of its grid (see `_grids`), unless srsn's own
    arming (a period after the push stamped `sent`) comes first."""
    grid = _grids.get(raw)
    if grid is None:
        return  # closed meanwhile
    period_ms, origin = grid
    if period_ms > _GRID_MAX_PERIOD_MS:
        return  # pushes days apart: a push's own time is nothing against the period
    period = period_ms / 1000
    now = time.time()
    # pushes come at their point or just after it (never early): the next point is the one after now
    point = origin + (int((now - origin) // period) + 1) * period + _GRID_LATE_S
    if point >= sent + period:
        return
    nearest = period - min(_GRID_GUARD_S, period / 4)
    if point - now > nearest:
        time.sleep(point - now - nearest)
        now = time.time()
    wait = max(point - now, 0.0)
    anchor = datetime.datetime.fromtimestamp(now - wait - period, datetime.UTC)
    # it ended meanwhile (SR_ERR_NOT_FOUND): nothing to arm
    _sr().srsn_yang_push_modify_periodic(raw, period_ms, _timespec(anchor))


def _raw(call: str, sub_id: int) -> int:
    """srsn's id of the subscription the subscriber calls `sub_id`; SR_ERR_NOT_FOUND for an id of the other space
    (the same srsn id with the other tag is another subscription)."""
    raw = sub_id & ~ID_TAG
    if _tags.get(raw, 0) != sub_id & ID_TAG:
        raise SrsnError(call, ERR_NOT_FOUND, f"no subscription {sub_id}")
    return raw


def _print_lyb(ly_ctx: Any, lyb: bytes, fmt: Literal["xml", "json"], id_tag: int = 0,
               known: Known | None = None) -> str | None:
    """A notification in LYB (libyang's binary format) printed as XML or JSON; with `id_tag`, the `id` leaf of
    srsn's own notifications (push-update, push-change-update, subscription-terminated, replay-completed...) as the
    subscriber knows it. A stream's notifications are left as they are (an `id` of theirs is their own). With
    `known`, a YANG patch made to agree with what the subscriber holds: None when nothing of it is left."""
    from _libyang import ffi as ly_ffi, lib as ly_lib

    data = ly_ffi.new("char[]", lyb)
    ly_in = ly_ffi.new("struct ly_in **")
    tree = ly_ffi.new("struct lyd_node **")
    out = ly_ffi.new("char **")
    if ly_lib.ly_in_new_memory(data, ly_in) != 0:
        raise SrsnError("ly_in_new_memory", 4)
    try:
        if ly_lib.lyd_parse_op(ly_ctx.cdata, ly_ffi.NULL, ly_in[0], ly_lib.LYD_LYB, ly_lib.LYD_TYPE_NOTIF_YANG, tree,
                               ly_ffi.NULL) != 0:
            raise SrsnError("lyd_parse_op", 2, "the notification does not parse in this libyang context")
        try:
            if known is not None and not known.agree(tree[0], int(ly_ffi.cast("uintptr_t", ly_ctx.cdata))):
                return None
            if id_tag:
                _tag_id(tree[0], id_tag)
            if ly_lib.lyd_print_mem(out, tree[0], ly_lib.LYD_XML if fmt == "xml" else ly_lib.LYD_JSON,
                                    ly_lib.LYD_PRINT_WITHSIBLINGS | ly_lib.LYD_PRINT_SHRINK) != 0:
                raise SrsnError("lyd_print_mem", 2)
            return ly_ffi.string(out[0]).decode() if out[0] != ly_ffi.NULL else ""
        finally:
            if out[0] != ly_ffi.NULL:
                ly_lib.free(out[0])
            ly_lib.lyd_free_all(tree[0])
    finally:
        ly_lib.ly_in_free(ly_in[0], 0)


def _tag_id(notif: Any, id_tag: int) -> None:
    from _libyang import ffi as ly_ffi, lib as ly_lib

    if ly_ffi.string(notif.schema.module.name).decode() not in ("ietf-subscribed-notifications", "ietf-yang-push"):
        return
    node = ly_ffi.new("struct lyd_node **")
    if ly_lib.lyd_find_path(notif, b"id", 0, node) != 0:
        return
    raw = int(ly_ffi.string(ly_lib.lyd_get_value(node[0])).decode())
    if ly_lib.lyd_new_path(notif, ly_ffi.NULL, b"id", str(raw | id_tag).encode(), ly_lib.LYD_NEW_PATH_UPDATE,
                           ly_ffi.NULL) != 0:
        raise SrsnError("lyd_new_path", 2, "the notification's id could not be set")


def subscribe(session: Any, stream: str = "NETCONF", *, xpath: str | None = None,
              stop: datetime.datetime | None = None, start: datetime.datetime | None = None,
              id_tag: int = 0) -> Subscription:
    """RFC 8639 establish-subscription on `stream` (replay from `start`); `id_tag`: 0 or ID_TAG, the id space."""
    lib = _sr()
    sub = _ffi.new("sr_subscription_ctx_t **")
    replay = _ffi.new("struct timespec *")
    fd = _ffi.new("int *")
    sub_id = _ffi.new("uint32_t *")
    _check("srsn_subscribe", lib.srsn_subscribe(_session_ptr(session), stream.encode(),
                                                xpath.encode() if xpath else _ffi.NULL, _timespec(stop),
                                                _timespec(start), 0, sub, replay, fd, sub_id), session)
    return Subscription(int(sub_id[0]), int(fd[0]), sub, _datetime(replay) if start is not None else None, id_tag)


def yang_push_periodic(session: Any, datastore: Datastore, *, period_ms: int, xpath: str | None = None,
                       anchor: datetime.datetime | None = None,
                       stop: datetime.datetime | None = None, id_tag: int = 0) -> Subscription:
    """RFC 8641 periodic subscription: a push-update of the (filtered) datastore every `period_ms`."""
    lib = _sr()
    fd = _ffi.new("int *")
    sub_id = _ffi.new("uint32_t *")
    _check("srsn_yang_push_periodic", lib.srsn_yang_push_periodic(
        _session_ptr(session), _constants()[0][datastore], xpath.encode() if xpath else _ffi.NULL, period_ms,
        _timespec(anchor), _timespec(stop), fd, sub_id), session)
    _grids[int(sub_id[0])] = (period_ms, anchor.timestamp() if anchor is not None else time.time())
    return Subscription(int(sub_id[0]), int(fd[0]), id_tag=id_tag)


def yang_push_on_change(session: Any, datastore: Datastore, *, xpath: str | None = None, dampening_ms: int = 0,
                        sync_on_start: bool = True, excluded: tuple[str, ...] = (),
                        stop: datetime.datetime | None = None, id_tag: int = 0) -> Subscription:
    """RFC 8641 on-change subscription: push-change-update (a YANG patch) of every change, at most one per
    `dampening_ms`; with `sync_on_start` a push-update of the whole selection first. `excluded`: change kinds
    (CHANGES) not to report. Of the operational datastore, the patches agree with what the subscriber holds
    (known.py): without sync-on-start, the selection is read first."""
    lib = _sr()
    unknown = set(excluded) - set(CHANGES)
    if unknown:
        raise ValueError(f"unknown change kinds: {sorted(unknown)}")
    known: tuple[Known, Any] | None = None
    if datastore == "operational":
        known = (Known(), libsysrepo.session_connection(session))
        if not sync_on_start:  # with it, srsn's push-update is what the subscriber holds
            try:
                known[0].read(session, xpath)
            except Exception as exc:  # noqa: BLE001 - the subscription still works, as srsn alone makes it
                known[0].stop(f"the selection could not be read: {exc}")
    flags = _ffi.new("int[5]", [1 if c in excluded else 0 for c in CHANGES])
    sub = _ffi.new("sr_subscription_ctx_t **")
    fd = _ffi.new("int *")
    sub_id = _ffi.new("uint32_t *")
    try:
        _check("srsn_yang_push_on_change", lib.srsn_yang_push_on_change(
            _session_ptr(session), _constants()[0][datastore], xpath.encode() if xpath else _ffi.NULL, dampening_ms,
            1 if sync_on_start else 0, flags, _timespec(stop), 0, sub, fd, sub_id), session)
    except SrsnError:
        if known is not None:
            known[0].free(known[1])
        raise
    return Subscription(int(sub_id[0]), int(fd[0]), sub, id_tag=id_tag, known=known)


def modify_xpath(sub_id: int, xpath: str | None) -> None:
    raw = _raw("srsn_modify_xpath_filter", sub_id)
    _check("srsn_modify_xpath_filter", _sr().srsn_modify_xpath_filter(raw, xpath.encode() if xpath else _ffi.NULL))
    known = _knowns.get(raw)
    if known is not None:  # what it holds is of the old selection (a resync-subscription starts it again)
        known.stop("the filter was modified")


def modify_stop_time(sub_id: int, stop: datetime.datetime | None) -> None:
    _check("srsn_modify_stop_time", _sr().srsn_modify_stop_time(_raw("srsn_modify_stop_time", sub_id), _timespec(stop)))


def modify_period(sub_id: int, period_ms: int, anchor: datetime.datetime | None = None) -> None:
    raw = _raw("srsn_yang_push_modify_periodic", sub_id)
    _check("srsn_yang_push_modify_periodic", _sr().srsn_yang_push_modify_periodic(raw, period_ms, _timespec(anchor)))
    if raw in _grids:  # without an anchor srsn pushes at once: the new grid starts now
        _grids[raw] = (period_ms, anchor.timestamp() if anchor is not None else time.time())


def modify_dampening(sub_id: int, dampening_ms: int) -> None:
    _check("srsn_yang_push_modify_on_change", _sr().srsn_yang_push_modify_on_change(
        _raw("srsn_yang_push_modify_on_change", sub_id), dampening_ms))


def resync(sub_id: int) -> None:
    """RFC 8641 resync-subscription: a push-update of the whole selection now."""
    _check("srsn_yang_push_on_change_resync", _sr().srsn_yang_push_on_change_resync(
        _raw("srsn_yang_push_on_change_resync", sub_id)))


def notif_sent(sub_id: int) -> None:
    """Counts a notification the server sent itself (subscription-modified) in the subscription's sent count."""
    _check("srsn_notif_sent", _sr().srsn_notif_sent(_raw("srsn_notif_sent", sub_id)))


class StreamsProvider:
    """`/ietf-subscribed-notifications:streams` in operational, served by sysrepo's own callback
    (`srsn_oper_data_streams_cb`: every stream with its replay support) on `session` until `close()`."""

    def __init__(self, session: Any) -> None:
        lib = _sr()
        self._sub = _ffi.new("sr_subscription_ctx_t **")
        _check("sr_oper_get_subscribe", lib.sr_oper_get_subscribe(
            _session_ptr(session), b"ietf-subscribed-notifications", b"/ietf-subscribed-notifications:streams",
            lib.srsn_oper_data_streams_cb, _ffi.NULL, 0, self._sub), session)

    def close(self) -> None:
        if self._sub is not None:
            _sr().sr_unsubscribe(self._sub[0])
            self._sub = None


def terminate(sub_id: int, reason: str | None = None) -> None:
    """Ends a subscription (RFC 8639 delete-/kill-subscription): sysrepo sends subscription-terminated with
    `reason` (an identity such as "ietf-subscribed-notifications:no-such-subscription"); without one, nothing."""
    _check("srsn_terminate", _sr().srsn_terminate(_raw("srsn_terminate", sub_id), reason.encode() if reason else _ffi.NULL))


@dataclass(frozen=True)
class State:
    """One subscription as `/ietf-subscribed-notifications:subscriptions` reports it."""

    id: int
    kind: Literal["stream", "periodic", "on-change"]
    xpath: str | None
    stop: datetime.datetime | None
    sent: int
    excluded: int
    suspended: bool
    stream: str | None = None
    datastore: str | None = None
    period_ms: int | None = None
    dampening_ms: int | None = None


def subscriptions() -> Iterator[State]:
    """Every dynamic subscription of this process, by the ids their subscribers know."""
    lib = _sr()
    names = {v: k for k, v in _constants()[0].items()}
    subs = _ffi.new("srsn_state_sub_t **")
    count = _ffi.new("uint32_t *")
    _check("srsn_oper_data_subscriptions", lib.srsn_oper_data_subscriptions(subs, count))
    out: list[State] = []
    try:
        for i in range(count[0]):
            s = subs[0][i]
            xpath = _ffi.string(s.xpath_filter).decode() if s.xpath_filter != _ffi.NULL else None
            kind: Literal["stream", "periodic", "on-change"] = (
                "stream" if s.type == lib.SRSN_SUB_NOTIF else
                "periodic" if s.type == lib.SRSN_YANG_PUSH_PERIODIC else "on-change")
            out.append(State(
                id=int(s.sub_id) | _tags.get(int(s.sub_id), 0), kind=kind, xpath=xpath, stop=_datetime(s.stop_time), sent=int(s.sent_count),
                excluded=int(s.excluded_count), suspended=bool(s.suspended),
                stream=_ffi.string(s.sub_notif.stream).decode() if kind == "stream" else None,
                datastore=names.get(int(s.yp_periodic.ds if kind == "periodic" else s.yp_on_change.ds))
                if kind != "stream" else None,
                # sysrepo keeps both in centiseconds, RFC 8641's unit for them
                period_ms=int(s.yp_periodic.period) * 10 if kind == "periodic" else None,
                dampening_ms=int(s.yp_on_change.dampening_period) * 10 if kind == "on-change" else None))
    finally:
        lib.srsn_oper_data_subscriptions_free(subs[0], count[0])
    return iter(out)

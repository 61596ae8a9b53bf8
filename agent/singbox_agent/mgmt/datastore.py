"""Helpers shared by the NETCONF and RESTCONF servers: datastore names, with-defaults printing, subtree filters.

Data is always printed by libyang (`lyd_print_mem`); the with-defaults modes of RFC 6243 map onto libyang's
printer flags. Subtree filters (RFC 6241 section 6) are converted to one XPath union, the way netopeer2 does, so
sysrepo does the selection.
"""

from __future__ import annotations

import functools
import random
import re
import struct
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import cffi
import libyang
import structlog
from _libyang import ffi as ly_ffi
from _libyang import lib as ly_lib

import sysrepo
from sysrepo.session import SysrepoSession

from singbox_agent.mgmt import libsysrepo, nacm, replay_files, xpath
from singbox_agent.mgmt.errors import in_use, invalid_value

T = TypeVar("T")

log = structlog.get_logger("mgmt.datastore")

# NETCONF element / RESTCONF NMDA name -> sysrepo datastore name.
CONVENTIONAL = ("running", "candidate", "startup")
NMDA_IDENTITIES = {
    "ietf-datastores:running": "running",
    "ietf-datastores:candidate": "candidate",
    "ietf-datastores:startup": "startup",
    "ietf-datastores:operational": "operational",
}

WITH_DEFAULTS_MODES = ("report-all", "report-all-tagged", "trim", "explicit")
BASIC_MODE = "explicit"

_WD_FLAGS = {
    "report-all": ly_lib.LYD_PRINT_WD_ALL,
    "report-all-tagged": ly_lib.LYD_PRINT_WD_ALL_TAG,
    "trim": ly_lib.LYD_PRINT_WD_TRIM,
    "explicit": ly_lib.LYD_PRINT_WD_EXPLICIT,
}


_WD_MODULE_NS = 'xmlns:ncwd="urn:ietf:params:xml:ns:yang:ietf-netconf-with-defaults"'
_WD_XML_NS = 'xmlns:ncwd="urn:ietf:params:xml:ns:netconf:default:1.0"'


def commit_and_persist(conn: Any, sess: SysrepoSession, edits: list[tuple[str, dict[str, Any]]]) -> None:
    """Merge each (module, data) edit into running through `sess`, then copy those modules to startup, so what a
    bootstrap seeds survives a reboot. sysrepo takes one batch per pending change set: one commit per module."""
    for module, data in edits:
        sess.edit_batch(data, module)
        sess.apply_changes()
    startup = conn.start_session("startup")
    try:
        for module, _ in edits:
            startup.copy_config("running", module)
    finally:
        startup.stop()


def print_xml(tree: libyang.DNode | None, with_defaults: str | None = None, *, pretty: bool = False) -> str:
    """All siblings of `tree` as XML in the given RFC 6243 mode (None: the basic mode, explicit).

    libyang tags defaults with its annotation in the ietf-netconf-with-defaults module namespace; RFC 6243 section 6
    (and RFC 8040 4.8.9 for XML) put the `default` attribute in urn:ietf:params:xml:ns:netconf:default:1.0, so the
    declaration of libyang's fixed `ncwd` prefix is redirected there.
    """
    text = print_tree(tree, "xml", with_defaults, pretty=pretty)
    if with_defaults == "report-all-tagged":
        text = text.replace(_WD_MODULE_NS, _WD_XML_NS)
    return text


def print_tree(tree: libyang.DNode | None, fmt: str, with_defaults: str | None = None, *, pretty: bool = False) -> str:
    if tree is None:
        return ""
    flags = ly_lib.LYD_PRINT_WITHSIBLINGS | _WD_FLAGS[with_defaults or BASIC_MODE]
    if not pretty:
        flags |= ly_lib.LYD_PRINT_SHRINK
    buf = ly_ffi.new("char **")
    fmt_c = ly_lib.LYD_XML if fmt == "xml" else ly_lib.LYD_JSON
    first = ly_lib.lyd_first_sibling(ly_ffi.cast("struct lyd_node *", tree.cdata))
    if ly_lib.lyd_print_mem(buf, first, fmt_c, flags) != ly_lib.LY_SUCCESS:
        raise tree.context.error("cannot print data")
    if buf[0] == ly_ffi.NULL:
        return ""
    try:
        return str(ly_ffi.string(buf[0]).decode())
    finally:
        ly_lib.free(buf[0])


def module_namespace(module: Any) -> str:
    return str(ly_ffi.string(module.cdata.ns).decode())


def module_deviations(module: Any) -> list[str]:
    """Names of the modules that deviate `module` (libyang's compiled `deviated_by` sized array)."""
    array = module.cdata.deviated_by
    if array == ly_ffi.NULL:
        return []
    count = int(ly_ffi.cast("uint64_t *", array)[-1])  # LY_ARRAY: the count precedes the items
    return [str(ly_ffi.string(array[i].name).decode()) for i in range(count)]


def module_by_namespace(ctx: libyang.Context, namespace: str) -> str | None:
    for module in ctx:
        if module.implemented() and module_namespace(module) == namespace:
            return str(module.name())
    return None


def subtree_to_xpaths(ctx: libyang.Context, elements: list[ET.Element]) -> list[str]:
    """XPaths selecting what an RFC 6241 subtree filter with these top-level elements selects.

    Elements in namespaces of no implemented module select nothing (RFC 6241 6.2.5 leaves it to the server; an
    empty result is what netopeer2 returns too).
    """
    cache: dict[str, str | None] = {}

    def mod_of(ns: str, parent_mod: str | None) -> str | None:
        if not ns:
            return parent_mod
        if ns not in cache:
            cache[ns] = module_by_namespace(ctx, ns)
        return cache[ns]

    out: list[str] = []

    def walk(el: ET.Element, path: str, mod: str) -> None:
        children = list(el)
        if not children:
            out.append(path)
            return
        predicates: list[str] = []
        content_paths: list[str] = []
        subs: list[tuple[ET.Element, str, str]] = []
        for child in children:
            cns, cname = _split(child.tag)
            cmod = mod_of(cns, mod)
            if cmod is None:
                continue
            step = cname if cmod == mod else f"{cmod}:{cname}"
            text = (child.text or "").strip()
            if len(child) == 0 and text:
                predicates.append(f"[{step}={xpath.quote(text)}]")
                content_paths.append(step)
            else:
                subs.append((child, step, cmod))
        # Repeated content matches select nothing more: each predicate and each content path once (3,000 identical
        # siblings made 3,000 paths of 3,000 predicates each).
        base = path + "".join(dict.fromkeys(predicates))
        if not subs:
            out.append(base)
            return
        out.extend(f"{base}/{step}" for step in dict.fromkeys(content_paths))
        for child, step, cmod in subs:
            walk(child, f"{base}/{step}", cmod)

    for el in elements:
        ns, name = _split(el.tag)
        # RFC 6241 6.2.1: an element not qualified by a namespace (xmlns="") makes the server "evaluate all the XML
        # namespaces it supports": every module with a top-level node of that name
        for mod in ([mod_of(ns, None)] if ns else _modules_with_top_node(ctx, name)):
            if mod is None:
                continue
            top = f"/{mod}:{name}"
            text = (el.text or "").strip()
            if len(el) == 0 and text:  # a top-level leaf content match
                out.append(f"{top}[.={xpath.quote(text)}]")
            else:
                walk(el, top, mod)
    return out


def _modules_with_top_node(ctx: libyang.Context, name: str) -> list[str]:
    """The implemented modules with a top-level schema node `name` (choices and cases see through)."""
    return [str(module.name()) for module in ctx
            if module.implemented() and any(child.name() == name for child in module.children())]


def _split(tag: str) -> tuple[str, str]:
    if tag.startswith("{"):
        ns, _, name = tag[1:].partition("}")
        return ns, name
    return "", tag


def check_with_defaults(mode: str | None) -> str | None:
    if mode is not None and mode not in WITH_DEFAULTS_MODES:
        raise invalid_value(f'Unsupported with-defaults mode "{mode}".')
    return mode


def parse_netconf_rpc(ctx: libyang.Context, message: bytes) -> libyang.DNode:
    """The operation of a whole NETCONF `<rpc>` message as a libyang tree (validated against its schema).

    libyang-python's `parse_op` leaks the envelope tree; this frees it. The caller frees the returned tree.
    """
    data_in = ly_ffi.new("struct ly_in **")
    keep = ly_ffi.new("char[]", message)  # NUL-terminated copy, alive until the parse ends
    if ly_lib.ly_in_new_memory(keep, data_in) != ly_lib.LY_SUCCESS:
        raise ctx.error("cannot read the message")
    envelope = ly_ffi.new("struct lyd_node **")
    op = ly_ffi.new("struct lyd_node **")
    try:
        ret = ly_lib.lyd_parse_op(ctx.cdata, ly_ffi.NULL, data_in[0], ly_lib.LYD_XML, ly_lib.LYD_TYPE_RPC_NETCONF,
                                  envelope, op)
    finally:
        ly_lib.ly_in_free(data_in[0], 0)
        if envelope[0] != ly_ffi.NULL:
            ly_lib.lyd_free_all(envelope[0])
    if ret != ly_lib.LY_SUCCESS:
        if op[0] != ly_ffi.NULL:
            ly_lib.lyd_free_all(op[0])
        raise ctx.error("invalid request")
    return libyang.DNode.new(ctx, op[0])


# --- writes while others write -----------------------------------------------------------------------------------

# sysrepo takes each module's lock with a short timeout; under many concurrent editors a valid write failed with
# "Locking a rwlock failed (sr_shmmod_lock: Connection timed out), read lock held by running process 6 (CID 5)".
# Such a failure says nothing about the edit: it is retried, with a growing randomised pause, while the datastore
# makes progress — until BUSY_WAIT_S pass with no write of this process getting through (a lock that stays held:
# in-use then), or BUSY_CAP_S in all. A fixed 30 s per write refused valid edits that were merely queued: 200 commits
# behind a 50 ms subscriber take 20 s on an idle box and over 30 s on a loaded one, every one of them progress.
BUSY_WAIT_S = 30.0
BUSY_CAP_S = 120.0
_progress_lock = threading.Lock()
_last_progress = 0.0  # time.monotonic() of the last write retry_busy saw succeed, in any thread
_BUSY = re.compile(r"Locking a (?:rw)?lock failed|lock .*timed out|timed out .*lock", re.IGNORECASE)
_INTERNAL = re.compile(r"\s*\(sr_\w+:[^)]*\)|,?\s*(?:read|write|read-upgr|upgr)?\s*lock held by [^.;]*|\s*\(CID \d+\)"
                       r"|\b(?:process|PID) \d+|\bCID \d+|/dev/shm/\S+|\bsr_(?:main|ext|mod|sub|ds)\w*\b",
                       re.IGNORECASE)
BUSY_MESSAGE = "The datastore stayed busy with other clients' changes; nothing was changed, try again."
# How long a write waits for the subscribers of each event (update, change, done) before sysrepo fails it with
# "SHM event ... processing timed out". sysrepo's own default (timeout 0) is 5 s: singbox-agent applying 10,000
# endpoints in one commit is well inside that alone, but not on a machine busy enough to give it a fraction of a
# core (the edit was refused although nothing was wrong). The writer waits in a worker thread, never on an event
# loop; a subscriber that hangs delays the writes of its module by this much and then fails them.
SUBSCRIBER_TIMEOUT_MS = 60_000


class WouldWait(Exception):
    """Raised instead of waiting for busy locks where the caller may not block (`no_waiting`): nothing was changed,
    the caller runs the whole request again where it may wait."""


_waiting = threading.local()


@contextmanager
def no_waiting() -> Iterator[None]:
    """Within the block `retry_busy` raises `WouldWait` instead of sleeping (an event loop must not sleep)."""
    before = getattr(_waiting, "forbidden", False)
    _waiting.forbidden = True
    try:
        yield
    finally:
        _waiting.forbidden = before


def waiting_allowed() -> bool:
    return not getattr(_waiting, "forbidden", False)


def is_busy(exc: BaseException) -> bool:
    """Whether `exc` is sysrepo failing to take a datastore lock in time (not a subscriber's timeout)."""
    if not isinstance(exc, sysrepo.SysrepoError):
        return False
    text = str(getattr(exc, "msg", None) or exc)
    return bool(_BUSY.search(text)) and "callback" not in text.lower()


def scrub(message: str) -> str:
    """`message` without sysrepo's process internals (pids, connection ids, lock owners, SHM file names)."""
    return _INTERNAL.sub("", message).strip() if _INTERNAL.search(message) else message


def _note_progress() -> None:
    global _last_progress
    with _progress_lock:
        _last_progress = time.monotonic()


def retry_busy(fn: Callable[[], T], *, total_s: float = BUSY_WAIT_S, cap_s: float = BUSY_CAP_S) -> T:
    """`fn()`, run again while sysrepo reports its locks busy: until `total_s` pass in which no write of this process
    got through (neither this one nor another thread's), or `cap_s` in all.

    Only for calls that change nothing when they fail this way (apply_changes, copy_config, lock): the pending edit
    stays in the session. :raises MgmtException: in-use with `BUSY_MESSAGE` when the locks stayed busy.
    """
    start = time.monotonic()
    cap = start + cap_s
    pause = 0.005
    while True:
        try:
            result = fn()
        except sysrepo.SysrepoError as exc:
            if not is_busy(exc):
                raise
            if not waiting_allowed():
                raise WouldWait() from None
            now = time.monotonic()
            with _progress_lock:
                progress = max(start, _last_progress)
            left = min(progress + total_s, cap) - now
            if left <= 0:
                raise in_use(BUSY_MESSAGE, error_type="application") from None
            time.sleep(min(left, random.uniform(pause / 2, pause)))
            pause = min(pause * 2, 0.5)
        else:
            _note_progress()
            return result


def _noting_denial(sess: SysrepoSession, write: Callable[[], T], *, names_nodes: bool = True) -> Callable[[], T]:
    """`write` whose NACM refusal (sysrepo.SysrepoUnauthorizedError) carries sysrepo's NETCONF error record — error-type
    protocol, access-denied, the refused node as error-path (RFC 8341 3.4.5; the binding's exception has only the
    message) — as `exc.netconf_errors`, read before any other call on `sess` replaces it, each with whether its path
    names a node of the request itself: absent from the datastore, so the edit created it (`names_nodes`: the
    write's content is the request's; a copy from another datastore names none). `errors.hide_unreadable` keeps
    such a path; a path read from the datastore (a node the edit changed or deleted) only when the user may read it."""
    def run() -> T:
        try:
            return write()
        except sysrepo.SysrepoUnauthorizedError as exc:
            records = libsysrepo.netconf_errors(sess)
            exc.netconf_errors = [(record, names_nodes and record.error_path is not None  # type: ignore[attr-defined]
                                   and not libsysrepo.exists_without_nacm(sess, record.error_path)) for record in records]
            raise
    return run


def apply_changes(sess: SysrepoSession, notification_bound: Callable[[], int | None] | None = None) -> None:
    """`sess.apply_changes()`, retried while other writers hold the datastore (`retry_busy`), its subscribers given
    `SUBSCRIBER_TIMEOUT_MS`; a write to running or startup makes room for its config-change first
    (`wait_for_replay_room`, with `notification_bound`: how large that can be, `config_change_size.bound` of the
    pending edit). A NACM refusal carries sysrepo's error record (`_noting_denial`)."""
    if sess.get_datastore() in CONFIG_CHANGE_DATASTORES:
        if notification_bound is None:
            wait_for_replay_room()
        else:
            wait_for_replay_room(notification_bound)
    retry_busy(_noting_denial(sess, lambda: sess.apply_changes(timeout_ms=SUBSCRIBER_TIMEOUT_MS)))


# A write that creates many nodes goes through a connection without the running cache (`apply_bulk`). A server's
# connection caches running (SR_CONN_CACHE_RUNNING) and sysrepo keeps as that cache the tree its last write built;
# every later write of the module starts from a copy of it and frees the one before. After a write of 10,000 list
# entries through the cached connection, every later one-leaf write of that module cost ~1.5x what it costs once the
# cache is read again from the datastore (bench/netconf/README.md, session 10). Same tree, same node count; what the
# profiles point to is its place in memory: built among that write's temporaries (its edit, diff, validation sets),
# each later copy filling the holes its predecessor left, so copying, validating, printing and freeing it walk
# memory scattered over the heap. Through a connection without the cache, the write's tree is freed whole once
# stored, and the cached connection reads the module again on its next use. The NETCONF server's first write to
# running opens that connection in the background (`prepare_bulk`).
BULK_NODES = 1_000
_bulk_lock = threading.Lock()
_bulk_conns: list[sysrepo.SysrepoConnection] = []


def edit_nodes(tree: libyang.DNode) -> Iterator[Any]:
    """Every node (libyang's `struct lyd_node *`, opaque ones included) of the edit `tree` and its siblings, each
    parent before its children."""
    todo = [ly_lib.lyd_first_sibling(ly_ffi.cast("struct lyd_node *", tree.cdata))]
    while todo:
        node = todo.pop()
        while node != ly_ffi.NULL:
            yield node
            child = ly_lib.lyd_child(node)
            if child != ly_ffi.NULL:
                todo.append(child)
            node = node.next


def is_bulk(tree: libyang.DNode) -> bool:
    """Whether the edit `tree` (with its siblings) has at least `BULK_NODES` nodes, opaque ones included."""
    return any(count >= BULK_NODES for count, _ in enumerate(edit_nodes(tree), 1))


# libyang's copy of a tree into another context, which libyang-python 3 does not declare: one cffi ABI instance on
# the library the binding loaded (as mgmt/libsysrepo.py does for sysrepo). A bulk edit reaches the other
# connection's context as a copy: 10,000 endpoints in ~0.1 s, where printing and parsing it again took ~0.45 s
# (bench/netconf/README.md, session 11) — and a copy keeps what a reparse might not (opaque nodes' prefixes).
_ly_abi = cffi.FFI()
_ly_abi.cdef(
    """
    struct lyd_node;
    struct ly_ctx;
    struct lyd_node_inner;
    int lyd_dup_siblings_to_ctx(const struct lyd_node *node, const struct ly_ctx *trg_ctx,
                                struct lyd_node_inner *parent, uint32_t options, struct lyd_node **dup);
    """
)
_ly_abi_lib: Any = _ly_abi.dlopen("libyang.so.3")


def copy_to_context(tree: libyang.DNode, ctx: libyang.Context) -> libyang.DNode:
    """A copy of `tree` with all its siblings (from the first) in the context `ctx`, which must hold its modules; the
    caller frees it. Copied as sysrepo copies an edit (`sr_edit_batch`): recursively, metadata and attributes
    included, no node flags."""
    first = ly_lib.lyd_first_sibling(ly_ffi.cast("struct lyd_node *", tree.cdata))
    out = _ly_abi.new("struct lyd_node **")
    rc = _ly_abi_lib.lyd_dup_siblings_to_ctx(
        _ly_abi.cast("struct lyd_node *", int(ly_ffi.cast("uintptr_t", first))),
        _ly_abi.cast("struct ly_ctx *", int(ly_ffi.cast("uintptr_t", ctx.cdata))),
        _ly_abi.NULL, ly_lib.LYD_DUP_RECURSIVE, out)
    if rc != ly_lib.LY_SUCCESS:
        raise ctx.error("copying the edit to another context failed")
    return libyang.DNode.new(ctx, ly_ffi.cast("struct lyd_node *", int(_ly_abi.cast("uintptr_t", out[0]))))


_bulk_opener: list[threading.Thread] = []  # the thread `prepare_bulk` started, once


def _bulk_connection() -> sysrepo.SysrepoConnection:
    with _bulk_lock:
        if not _bulk_conns:
            _bulk_conns.append(sysrepo.SysrepoConnection())  # no cache_running: see BULK_NODES
        return _bulk_conns[0]


def prepare_bulk() -> None:
    """Open the connection `apply_bulk` writes through in the background, once (a large edit waits for it only
    while it is being opened). Opening it is a sysrepo connect with its own libyang context: 30-40 ms on an idle
    box, 0.4-1 s on a loaded one, which the first large edit of the process paid inside its own time (~2 MB RSS)."""
    if _bulk_conns or _bulk_opener:  # without the lock: the common case, every later edit
        return
    with _bulk_lock:
        if _bulk_conns or _bulk_opener:
            return
        opener = threading.Thread(target=_open_bulk, name="bulk-connect", daemon=True)
        _bulk_opener.append(opener)
        opener.start()


def _open_bulk() -> None:
    try:
        _bulk_connection()
    except Exception as exc:  # noqa: BLE001 - apply_bulk opens it then, and reports the failure to its client
        log.warning("cannot open the connection for large edits", error=str(exc))


def close_bulk() -> None:
    """Disconnect the connection `apply_bulk` opened, if it did (before the process's other connections go)."""
    with _bulk_lock:
        openers = list(_bulk_opener)
    for opener in openers:
        opener.join()
    with _bulk_lock:
        _bulk_opener.clear()
        while _bulk_conns:
            _bulk_conns.pop().disconnect()


def apply_bulk(sess: SysrepoSession, tree: libyang.DNode, default_operation: str, changed_by: tuple[str, int]
               ) -> None:
    """Apply the edit `tree` to `sess`'s datastore as `sess.edit_batch_ly` + `apply_changes` would, with `sess`'s
    NACM user, through a session of this process's connection without the running cache (see BULK_NODES).
    `changed_by`: the user and session-id `sess` was marked with (`mark_changed_by`; sysrepo reads a session's
    originator back only in events). `tree` stays the caller's; nothing stays pending. The sysrepo lock of `sess`,
    if it holds one, does not cover the other session: a caller holding one writes through `sess` itself."""
    bulk = _bulk_connection().start_session(sess.get_datastore())
    try:
        mark_changed_by(bulk, *changed_by)
        user = nacm.nacm_user(sess)
        nacm.enable_nacm(bulk, user, recovery=user is None)
        ly: libyang.Context = bulk.acquire_context()
        try:
            edit = copy_to_context(tree, ly)  # opaque nodes too (an emptied leaf to delete)
            try:
                bulk.edit_batch_ly(edit, default_operation)
                apply_changes(bulk)
            finally:
                bulk.discard_changes()
                edit.free()
        finally:
            bulk.release_context()  # type: ignore[no-untyped-call]
    finally:
        bulk.stop()


def replace_config(sess: SysrepoSession, tree: Callable[[], Any], module: str | None = None) -> None:
    """`sess.replace_config_ly(tree(), module)` as `apply_changes` does its write: retried while busy, subscribers
    given `SUBSCRIBER_TIMEOUT_MS`, room for the config-change first. sysrepo spends the tree it is given (also on
    failure): `tree` makes a new one for each attempt."""
    if sess.get_datastore() in CONFIG_CHANGE_DATASTORES:
        wait_for_replay_room()
    retry_busy(_noting_denial(sess, lambda: sess.replace_config_ly(tree(), module, timeout_ms=SUBSCRIBER_TIMEOUT_MS)))


def copy_config(sess: SysrepoSession, source: str, module: str | None = None) -> None:
    """`sess.copy_config(source, module)` into the session's datastore, as `apply_changes` does its write."""
    if sess.get_datastore() in CONFIG_CHANGE_DATASTORES:
        wait_for_replay_room()
    retry_busy(_noting_denial(sess, lambda: sess.copy_config(source, module, timeout_ms=SUBSCRIBER_TIMEOUT_MS),  # type: ignore[arg-type]
                              names_nodes=False))


# datastores whose writes sysrepo reports in a netconf-config-change notification
CONFIG_CHANGE_DATASTORES = ("running", "startup")
CONFIG_CHANGE_MODULE = "ietf-netconf-notifications"


@functools.cache
def _notification_dir() -> Any:
    return replay_files.notification_dir()


# A file of this second is renamed only this early in it: a store of the next second that listed the directory
# before the rename and opened the old name after it would fail (replay_files.retire)
RETIRE_BEFORE_S = 0.8
_room_lock = threading.Lock()
_room_counts = {"waited": 0, "retired": 0}


def room_counts() -> dict[str, int]:
    """How often this process's writes waited for the next second ("waited") and renamed the file of this second
    instead ("retired") before their config-change (`wait_for_replay_room`)."""
    with _room_lock:
        return dict(_room_counts)


def _count(what: str) -> None:
    with _room_lock:
        _room_counts[what] += 1


def wait_for_replay_room(bound: Callable[[], int | None] | None = None) -> None:
    """Before a write to running or startup: make sure sysrepo can store its netconf-config-change for replay.

    sysrepo generates and stores that notification after the write, and refuses to store it when the newest replay
    file was started in the notification's own second and has no room for it (a large config-change is stored
    whole: any edit right after one, in its second) — the change applied, its notification delivered live and
    never replayable. When this second started a file (one stat; rare, see `replay_files.started_file_size`):
    - nothing to do when the file has room for `bound()` (`config_change_size.bound` of the edit: sysrepo appends
      the notification);
    - otherwise (no room, or no bound known) the file is renamed to start a second earlier (`replay_files.retire`,
      which argues from sysrepo's code why that is sound): sysrepo then starts a file for this write's
      notification, or appends it to the renamed file when it fits. No waiting;
    - only when that name is taken by a file of the second before, or this second is nearly over, the write waits
      for the next second, as every such write did before (sysrepo starts a new file then).
    Not covered: another writer's large notification landing between this check and this write's own, in the same
    second — still refused, counted and logged (`notify.record_loss`). `room_counts` counts waits and renames.
    :raises WouldWait: where the caller may not block (`no_waiting`).
    """
    directory = _notification_dir()
    needed: list[int | None] = []
    for _ in range(3):  # a file another writer renamed meanwhile: look again
        now = time.time()
        sec = int(now)
        size = replay_files.started_file_size(directory, CONFIG_CHANGE_MODULE, sec)
        if size is None:
            return
        if not needed:
            needed.append(bound() if bound is not None else None)  # computed only when a file was started
        if needed[0] is not None and size + needed[0] <= replay_files.FILE_MAX_SIZE:
            return
        if now - sec >= RETIRE_BEFORE_S:
            break
        retired = replay_files.retire(directory, CONFIG_CHANGE_MODULE, sec)
        if retired:
            _count("retired")
            return
        if retired is False:
            break
    else:
        return
    if not waiting_allowed():
        raise WouldWait()
    _count("waited")
    now = time.time()
    time.sleep(max(0.0, int(now) + 1 - now + 0.001))


# --- who made a change (RFC 6470 changed-by) ------------------------------------------------------------------

# sysrepo writes netconf-config-change's changed-by from the originator data only for this originator name (modinfo.c,
# sr_modinfo_generate_config_change_notif): chunk 1 the NETCONF session-id (uint32), chunk 2 the user name; any
# other name gets the process's user (root) and session-id 0.
CHANGED_BY_ORIGINATOR = "netopeer2"
_SESSION_ID = struct.Struct("=I")


def mark_changed_by(sess: SysrepoSession, user: str, session_id: int = 0, tag: bytes = b"") -> None:
    """Make the changes `sess` commits name `user` and `session_id` (0: not a NETCONF session) in sysrepo's
    netconf-config-change. `tag` rides after the user name's NUL, for a server to recognise the events of its own
    sessions (`changed_by_tag`). Replaces any earlier marking (call it again when the session acts for another
    user)."""
    libsysrepo.set_originator(sess, CHANGED_BY_ORIGINATOR, [_SESSION_ID.pack(session_id), user.encode() + b"\0" + tag])


def changed_by_tag(event_sess: SysrepoSession) -> bytes | None:
    """In a change callback: the `tag` the originating session was marked with, None when it was not marked."""
    raw = libsysrepo.originator_chunk(event_sess, CHANGED_BY_ORIGINATOR, 1)
    return None if raw is None else raw.partition(b"\0")[2]


# operations that write running and startup (sysrepo's own factory-reset): config-change notifications follow
WRITING_RPCS = frozenset({"/ietf-factory-default:factory-reset"})


@contextmanager
def rpc_output(sess: SysrepoSession, op: libyang.DNode) -> Iterator[libyang.DNode | None]:
    """Send an RPC/action through sysrepo and yield its output tree, or None when the operation has no output.

    sysrepo-python 1.7's `rpc_send_ly` raises "sr_rpc_send_tree returned NULL" for the SUCCESS of an operation
    without output (clear-statistics, disconnect-session): both servers send through here instead. An operation
    that writes the configuration (`WRITING_RPCS`) is sent as `apply_changes` writes: room for its config-change
    first, its subscribers given `SUBSCRIBER_TIMEOUT_MS`.
    """
    writes = op.path() in WRITING_RPCS
    if writes:
        wait_for_replay_room()
    with libsysrepo.rpc_send(sess, op, SUBSCRIBER_TIMEOUT_MS if writes else 0) as output:
        if output is None:
            yield None
            return
        ctx: libyang.Context = sess.acquire_context()
        try:
            yield libyang.DNode.new(ctx, output)
        finally:
            sess.release_context()  # type: ignore[no-untyped-call]

"""Every sysrepo operation of the RESTCONF server, blocking, meant to run in a worker thread.

One sysrepo session per request, taken from a small per-(user, datastore) pool: the session carries the NACM user
(`mgmt.nacm.enable_nacm`), so sysrepo itself filters reads and rejects writes, RPCs and notifications the user may
not perform. A session is only ever used by one thread at a time and always leaves with its changes discarded.
Edits go through one `edit_batch_ly` + `apply_changes`, so a failing request changes nothing.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, replace
from typing import Any, cast

import libyang
import sysrepo
import structlog
from sysrepo.session import SysrepoSession
from _libyang import ffi, lib

from singbox_agent.mgmt import datastore as mgmt_datastore
from singbox_agent.mgmt import change_notice, combined, filtered_read, notify, origin
from singbox_agent.mgmt.datastore import rpc_output
from singbox_agent.mgmt.errors import applied_anyway
from singbox_agent.mgmt.nacm import NacmPolicy, check_operation, enable_nacm
from singbox_agent.restconf import schema
from singbox_agent.restconf.errors import RestconfError, bad_request, not_found
from singbox_agent.restconf.uri import Encoding, QueryParams

log = structlog.get_logger("restconf")

_POOL_MAX_PER_KEY = 8
# RPCs sysrepo itself carries out (sr_rpc_send_tree answers them with no subscriber)
SYSREPO_RPCS = ("/ietf-factory-default:factory-reset",)
_MISSING = object()

# with-defaults (RFC 6243 modes, RFC 8040 §4.8.9) -> libyang print flags. Our basic mode is "explicit".
_WD_FLAGS = {
    None: lib.LYD_PRINT_WD_EXPLICIT,
    "explicit": lib.LYD_PRINT_WD_EXPLICIT,
    "report-all": lib.LYD_PRINT_WD_ALL,
    "trim": lib.LYD_PRINT_WD_TRIM,
    "report-all-tagged": lib.LYD_PRINT_WD_ALL_TAG,
}


_WD_MODULE_NS = b'xmlns:ncwd="urn:ietf:params:xml:ns:yang:ietf-netconf-with-defaults"'
_WD_XML_NS = b'xmlns:ncwd="urn:ietf:params:xml:ns:netconf:default:1.0"'


def acquired_context(conn: sysrepo.SysrepoConnection) -> AbstractContextManager[libyang.Context]:
    """sysrepo's libyang context, read-locked for the duration of the `with` block."""
    return cast(AbstractContextManager[libyang.Context], conn.get_ly_ctx())


def print_nodes(
    nodes: list[libyang.DNode], encoding: Encoding, with_defaults: str | None = None, *, keep_empty: bool = False
) -> bytes:
    """libyang prints each node (one resource, or all instances of a list/leaf-list) as one document."""
    flags = _WD_FLAGS[with_defaults] | (lib.LYD_PRINT_KEEPEMPTYCONT if keep_empty else 0)
    fmt = lib.LYD_JSON if encoding == Encoding.JSON else lib.LYD_XML
    if len(nodes) == 1:
        out = _print_one(nodes[0].cdata, fmt, flags)
        if not out.strip() or out.split() == [b"{", b"}"]:
            # an empty container asked for by name (a non-presence one, or one trim emptied) prints as itself,
            # empty, rather than nothing (XML) or an object without it (JSON)
            out = _print_one(nodes[0].cdata, fmt, flags | lib.LYD_PRINT_KEEPEMPTYCONT)
            if not out.strip() or out.split() == [b"{", b"}"]:  # libyang leaves out a container flagged default
                out = _print_empty(nodes[0].cdata, fmt)
        return out
    # Several instances: print them from a duplicate chain of siblings.
    first = ffi.new("struct lyd_node **")
    chain = ffi.NULL
    try:
        for node in nodes:
            dup = ffi.new("struct lyd_node **")
            if lib.lyd_dup_single(node.cdata, ffi.NULL, lib.LYD_DUP_RECURSIVE, dup) != lib.LY_SUCCESS:
                raise RestconfError("application", "operation-failed", "cannot copy data for printing")
            if chain == ffi.NULL:
                chain = dup[0]
                first[0] = chain
            else:
                lib.lyd_insert_sibling(chain, dup[0], ffi.NULL)
        return _print_one(first[0], fmt, flags | lib.LYD_PRINT_WITHSIBLINGS)
    finally:
        if first[0] != ffi.NULL:
            lib.lyd_free_all(first[0])


def _print_empty(cdata: Any, fmt: int) -> bytes:
    """A container printed empty: a copy without children and without the default flag (with-defaults modes
    that leave out defaults leave out a container holding only defaults, itself flagged default)."""
    dup = ffi.new("struct lyd_node **")
    if lib.lyd_dup_single(cdata, ffi.NULL, 0, dup) != lib.LY_SUCCESS:
        raise RestconfError("application", "operation-failed", "cannot copy data for printing")
    try:
        dup[0].flags &= ~lib.LYD_DEFAULT
        return _print_one(dup[0], fmt, lib.LYD_PRINT_KEEPEMPTYCONT)
    finally:
        lib.lyd_free_all(dup[0])


def _fmt(encoding: Encoding) -> int:
    return int(lib.LYD_JSON if encoding == Encoding.JSON else lib.LYD_XML)


def _print_one(cdata: Any, fmt: int, flags: int) -> bytes:
    buf = ffi.new("char **")
    if lib.lyd_print_mem(buf, cdata, fmt, flags) != lib.LY_SUCCESS:
        raise RestconfError("application", "operation-failed", "libyang could not print the data")
    try:
        return bytes(ffi.string(buf[0])) if buf[0] != ffi.NULL else b""
    finally:
        lib.free(buf[0])


def etag_of(body: bytes, representation: str = "") -> str:
    """A strong entity tag: SHA-256 of the resource's canonical print and the representation's name (RFC 7232
    §2.1: each representation of a resource has its own strong tag), see README: why a hash."""
    digest = hashlib.sha256(body)
    if representation:
        digest.update(b"\0" + representation.encode())
    return '"' + digest.hexdigest()[:32] + '"'


@dataclass(frozen=True)
class ReadResult:
    body: bytes  # printed in the requested encoding
    etag: str  # `config_etags`: of the resource's configuration, one tag per encoding


@dataclass(frozen=True)
class EditResult:
    created_path: str | None = None  # data path of a node POST created (for Location)
    existed: bool = True  # whether `check_exists` existed before the edit (PUT: 204 rather than 201)



def apply_changes(sess: SysrepoSession, replace_all: bool = False, tree: Any = None) -> None:
    """`sess.apply_changes()` (or `replace_config_ly(tree)` for `replace_all`) as NETCONF's writes do it
    (`mgmt.datastore.apply_changes`: retried while other writers hold the datastore's locks, subscribers given
    `SUBSCRIBER_TIMEOUT_MS`, room for its config-change waited for; the server runs this in its executor, never on
    the event loop), except that a change sysrepo committed but whose config-change notification it could not store
    for replay is a success: answering with an error would make the client retry an applied change."""
    try:
        if replace_all:
            # sysrepo takes the tree it is given (frees it, also on failure): each attempt gets a copy
            mgmt_datastore.replace_config(sess, lambda: _dup_all(tree))
        else:
            mgmt_datastore.apply_changes(sess)
    except sysrepo.SysrepoOperationFailedError as exc:
        if not applied_anyway(exc):
            raise
        notify.record_loss("netconf-config-change", str(exc), delivered=notify.file_full(exc))
        sess.discard_changes()

class Datastore:
    """The server's sysrepo connection and its session pools."""

    def __init__(self, connection: sysrepo.SysrepoConnection) -> None:
        self.conn = connection
        self.policy = NacmPolicy(connection)
        self._pool: dict[tuple[str | None, str], list[SysrepoSession]] = {}
        self._pool_generation = -1
        self._lock = threading.Lock()
        self.last_modified = LastModified()
        self._identities: dict[tuple[int, str | None], str | None] = {}
        # Where the server is reached: yang-library locations point at {base_url}/restconf/yang/... (set once serving)
        self.base_url = ""

    # ---- sessions ---------------------------------------------------------------------------------------------

    @contextmanager
    def session(self, user: str | None, datastore: str) -> Iterator[SysrepoSession]:
        """A session acting for `user`. Users NACM permits everything (`NacmPolicy.unrestricted`, as the NETCONF
        server decides it) get no NACM user: the outcome is the same and large reads skip a per-node walk."""
        generation = self.policy.generation
        identity = self._identity(user, generation)
        key = (identity, datastore)
        stale: list[SysrepoSession] = []
        with self._lock:
            if generation != self._pool_generation:  # NACM changed: pooled identities may be wrong now
                stale = [s for sessions in self._pool.values() for s in sessions]
                self._pool = {}
                self._pool_generation = generation
            idle = self._pool.get(key)
            sess = idle.pop() if idle else None
        for old in stale:
            old.stop()
        if sess is None:
            sess = self.conn.start_session(datastore)
            enable_nacm(sess, identity)
        self._mark(sess, user)
        try:
            yield sess
        finally:
            reusable = True
            try:
                sess.discard_changes()  # a failed request leaves nothing behind for the next one
            except sysrepo.SysrepoError:
                reusable = False
            with self._lock:
                idle = self._pool.setdefault(key, [])
                if reusable and generation == self._pool_generation and len(idle) < _POOL_MAX_PER_KEY:
                    idle.append(sess)
                    sess = None
            if sess is not None:
                sess.stop()

    def _identity(self, user: str | None, generation: int) -> str | None:
        """`NacmPolicy.identity`, remembered per NACM generation: it walks the rule lists, tens of microseconds
        that every request would otherwise pay."""
        cached = self._identities.get((generation, user), _MISSING)
        if cached is not _MISSING:
            return cast(str | None, cached)
        identity = self.policy.identity(user)
        if self.policy.generation == generation:  # not computed from a newer configuration than its key says
            if len(self._identities) > 4096:
                self._identities.clear()
            self._identities[(generation, user)] = identity
        return identity

    def _mark(self, sess: SysrepoSession, user: str | None) -> None:
        """Mark a session for this request with its user, sent with every event of its commits (what
        netconf-config-change names, RFC 6470)."""
        try:
            mgmt_datastore.mark_changed_by(sess, user or "", 0)
        except sysrepo.SysrepoError as exc:
            log.warning("cannot mark the session with its user", error=str(exc))

    def watch_changes(self) -> list[str]:
        """Last-Modified of running follows every commit, whoever made it (NETCONF, the agent, sysrepocfg), from
        sysrepo's own modification times of running (`change_notice.RunningStamps`: no subscription, so no commit
        waits for this server). Returns the modules followed.

        It used to be a passive done-only subscription per module with configuration: sysrepo's apply_changes waits
        for done callbacks too, so every commit of anyone paid a round trip to this process. A module whose running
        data is not kept in a file that way (another datastore plugin) is still followed by such a subscription.
        Candidate and startup raise no change events; their Last-Modified moves with this server's own writes.
        """
        with acquired_context(self.conn) as ctx:
            modules = [m.name() for m in ctx if m.implemented() and _has_config(m)]
        stamps = change_notice.RunningStamps(modules)
        self.last_modified.follow(stamps)
        self._watch_session = self.conn.start_session("running")
        followed = [m for m in modules if m not in stamps.unwatched]
        for name in stamps.unwatched:
            try:
                change_notice.subscribe(self._watch_session, name, f"/{name}:*", self._on_change, done_only=True)
                followed.append(name)
            except sysrepo.SysrepoError:
                continue  # modules sysrepo keeps internally cannot be subscribed to; nobody else changes them
        return followed

    def _on_change(self, event: str, ev_sess: Any) -> None:
        self._touch("running")

    def close(self) -> None:
        watch = getattr(self, "_watch_session", None)
        if watch is not None:
            watch.stop()
        self.last_modified.close()
        with self._lock:
            pools, self._pool = self._pool, {}
        for sessions in pools.values():
            for sess in sessions:
                sess.stop()
        self.policy.close()

    # ---- reads ------------------------------------------------------------------------------------------------

    def get(
        self,
        user: str | None,
        datastore: str,
        path: str | None,
        query: QueryParams,
        encoding: Encoding,
        *,
        base_url: str | None = None,
        unified: bool = False,
    ) -> ReadResult:
        """GET of a data resource or a whole datastore (RFC 8040 §4.3, RFC 8527 §3.2). `base_url`: how the client
        reached the server, for the schema locations in ietf-yang-library (default: the listen address).

        `unified`: the read is RFC 8040's `{+restconf}/data` (`datastore` is operational), "the combined
        configuration and state data": running's configuration is merged into what operational holds. sysrepo's
        operational datastore holds a module's configuration only while something subscribes to its changes (the
        configuration in use, RFC 8342 §5.3), so a leaf PUT to `/data` read back from `/data` was 404 for every
        module nobody implements (ietf-system's hostname, a module of the client's); RFC 8527 §1 leaves `/data`'s
        meaning as RFC 8040 defined it. Running's values win where both hold a configuration node; state and the
        configuration only operational holds stay. `/ds/ietf-datastores:operational` stays sysrepo's operational."""
        xpaths = self._read_xpaths(path, query)
        no_state = query.content == "config"
        no_config = query.content == "nonconfig"
        if no_config and datastore != "operational":
            # conventional datastores hold only config: content=nonconfig reads nothing
            if path is not None:
                raise not_found(f"No data at {path}", path)
            body = _wrap_datastore(b"", encoding)
            return ReadResult(body, self._tag(user, datastore, None, body, encoding))
        with self.session(user, datastore) as sess, (_read_with_origin(
            sess, " | ".join(xpaths), max_depth=query.depth or 0, no_state=no_state, no_config=no_config,
            defaults_printed=query.with_defaults in ("report-all", "report-all-tagged"),
        ) if query.with_origin else filtered_read.read(
            # fields (RFC 8040 §4.8.3) are evaluated on NACM-pruned data: a hidden node never decides what is shown
            sess, datastore, " | ".join(xpaths), max_depth=query.depth or 0, no_state=no_state, no_config=no_config
        )) as in_use, self._running_config(
            user, " | ".join(xpaths), query.depth or 0, unified and not no_config and not query.with_origin
        ) as config:
            tree = combined.merge_config(in_use, config)  # the one merge, shared with NETCONF's <get>
            if tree is not None and schema.has_yang_library(tree):
                schema.rewrite_locations(tree, base_url or self.base_url)
            if tree is not None and base_url and base_url != self.base_url:
                _rebase_stream_locations(tree, self.base_url, base_url)
            if path is None:
                body = b""
                if tree is not None:
                    # The whole datastore: print the top-level siblings as they are, no copy.
                    first = tree.root().first_sibling()
                    print_flags = lib.LYD_PRINT_WITHSIBLINGS | _WD_FLAGS[query.with_defaults]
                    if query.depth is not None:
                        print_flags |= lib.LYD_PRINT_KEEPEMPTYCONT
                    body = _print_one(first.cdata, _fmt(encoding), print_flags)
                body = _wrap_datastore(body, encoding)
            else:
                targets = [t for t in tree.find_all(path)] if tree is not None else []
                # RFC 8040 §3.5.4: a GET whose target is a leaf or leaf-list not instantiated returns "the default
                # value or values that are in use by the server", ignoring the basic mode (it was 404); a
                # with-defaults mode the client asks for still decides
                in_use_defaults = query.with_defaults is None and bool(targets) and all(map(_is_term, targets))
                if query.with_defaults in ("explicit", "trim") or (query.with_defaults is None
                                                                   and not in_use_defaults):
                    # RFC 6243: in these modes a node that exists only as a default is not reported.
                    targets = [t for t in targets if not _default_only(t)]
                if query.with_defaults == "trim":
                    # RFC 6243 2.2 / RFC 8040 §4.8.9: trim reports no leaf whose value is its default, set
                    # explicitly or not — such a target is no more there than a default-only one (404, not 200
                    # with nothing in it)
                    targets = [t for t in targets if not (_is_term(t) and lib.lyd_is_default(t.cdata))]
                if not targets and query.fields:
                    # RFC 8040 §4.8.3: fields picks nodes "within the target resource"; selecting none of them
                    # leaves the resource, which exists or not whatever fields says (it was 404 for an existing
                    # entry whose fields were unset): the target alone, as depth=1 reads it (keys of an entry)
                    bare = replace(query, fields=(), depth=1)
                    return self.get(user, datastore, path, bare, encoding, base_url=base_url, unified=unified)
                if not targets:
                    raise not_found(f"No data at {path}", path)
                if query.with_origin:
                    for target in targets:
                        _own_origin(target)
                if len(targets) > 1 and encoding == Encoding.XML:
                    raise bad_request(
                        f"{path} names {len(targets)} instances; XML holds one element: name one entry by its keys "
                        "or ask for JSON (RFC 8040 §4.3)"
                    )
                body = print_nodes(targets, encoding, "report-all" if in_use_defaults else query.with_defaults,
                                   keep_empty=query.depth is not None)
        if encoding == Encoding.XML and query.with_defaults == "report-all-tagged":
            # RFC 8040 §4.8.9 / RFC 6243 §6: in XML the `default` attribute is in
            # urn:ietf:params:xml:ns:netconf:default:1.0; libyang declares its prefix for the module's namespace
            # (the NETCONF server redirects it the same way, mgmt.datastore.print_xml). JSON keeps RFC 8040
            # Appendix B.3.9's "ietf-netconf-with-defaults:default".
            body = body.replace(_WD_MODULE_NS, _WD_XML_NS)
        return ReadResult(body, self._tag(user, datastore, path, body, encoding))

    @contextmanager
    def _running_config(self, user: str | None, xpath: str, max_depth: int, wanted: bool
                        ) -> Iterator[combined.Running | None]:
        """Running's configuration `xpath` selects, as `user` may read it (None when not `wanted` or none)."""
        if not wanted:
            yield None
            return
        with self.session(user, "running") as sess, combined.running_config(sess, xpath, max_depth=max_depth) as tree:
            yield tree

    def _tag(self, user: str | None, datastore: str, path: str | None, body: bytes, encoding: Encoding) -> str:
        """The ETag of a GET: the resource's configuration (`config_etags`); a resource without any (state only)
        is tagged by what was printed."""
        tags = self.config_etags(user, datastore, path)
        return tags[encoding] if tags is not None else etag_of(body, encoding.value)

    def config_etags(self, user: str | None, datastore: str, path: str | None) -> dict[Encoding, str] | None:
        """The entity tags of a resource, one per encoding (RFC 7232 §2.1: a strong tag per representation), from
        its configuration as `user` may read it: in `datastore`, or running for operational (RFC 8040 §3.4.1.2 and
        §3.5.2: a datastore's or data resource's tag changes with configuration only, never with state such as
        sessions or streams). None: the resource holds no configuration (a datastore always has a tag)."""
        source = "running" if datastore == "operational" else datastore
        with self.session(user, source) as sess, read_tree(sess, path or "/*", 0, {}) as tree:
            if path is None:
                first = tree.root().first_sibling() if tree is not None else None
                printed = b"" if first is None else _print_one(
                    first.cdata, lib.LYD_JSON, lib.LYD_PRINT_WITHSIBLINGS | lib.LYD_PRINT_WD_EXPLICIT)
            else:
                found = list(tree.find_all(path)) if tree is not None else []
                targets = [t for t in found if not _default_only(t)]
                if targets:
                    printed = print_nodes(targets, Encoding.JSON)
                elif found:
                    # a leaf or leaf-list holding only its default: a GET returns that default (RFC 8040 §3.5.4)
                    # with this tag, so If-Match with it holds and If-None-Match: * does not (RFC 9110 §13.1)
                    printed = print_nodes(found, Encoding.JSON, "report-all")
                else:
                    return None
        return {enc: etag_of(printed, enc.value) for enc in Encoding}

    @staticmethod
    def _read_xpaths(path: str | None, query: QueryParams) -> list[str]:
        base = path if path is not None else ""
        if query.fields:
            return [f"{base}/{f}" for f in query.fields]
        return [path if path is not None else "/*"]

    def can_read(self, user: str | None, xpath: str) -> bool:
        """Whether NACM lets `user` read anything `xpath` selects in operational (sysrepo filters silently)."""
        if self._identity(user, self.policy.generation) is None:
            return True
        with self.session(user, "operational") as sess, read_tree(sess, xpath, 1, {}) as tree:
            return tree is not None and any(True for _ in tree.find_all(xpath))

    # ---- writes -----------------------------------------------------------------------------------------------

    def edit(
        self,
        user: str | None,
        datastore: str,
        build: Callable[[libyang.Context, Reader], tuple[libyang.DNode | None, str | None]],
        *,
        must_exist: str | None = None,
        delete_path: str | None = None,
        replace_all: bool = False,
        check_exists: str | None = None,
        empty_ok: bool = False,
    ) -> EditResult:
        """Parse the edit with `build` (under sysrepo's context; the `Reader` sees the datastore as the request's
        session does), apply it in one transaction, then copy what changed in running to startup (`persist`).

        `build` returns (edit tree or None, data path of a created node). `delete_path`: a strict delete.
        `replace_all`: the tree replaces the whole datastore (PUT on the datastore resource).
        `check_exists`: report whether this node existed before the edit (PUT: 201 or 204).
        `empty_ok`: an edit that comes to nothing (YANG Patch removes of absent nodes) succeeds without a commit.
        """
        with self.session(user, datastore) as sess:
            reader = Reader(sess)
            if delete_path is not None:
                if not reader.exists(delete_path):
                    raise RestconfError(
                        "application", "data-missing", f"No data at {delete_path}", path=delete_path, status=404
                    )
                sess.delete_item(delete_path)
                apply_changes(sess)
                self._committed(datastore, {_module_of(delete_path)})
                return EditResult()
            existed = True
            with acquired_context(self.conn) as ctx:
                tree, created = build(ctx, reader)  # a body that cannot be parsed fails first, whatever the target
                if tree is None and empty_ok:
                    return EditResult(created)
                try:
                    if must_exist is not None and not reader.exists(must_exist):
                        raise not_found(f"No data at {must_exist}: PATCH does not create its target", must_exist)
                    modules = None if replace_all else _modules_of(tree)
                    creating = None
                    if check_exists is not None:
                        # Read right before the commit, through the request's session (running: from the
                        # connection's cache). A done event of our own commit said it exactly, but a subscription
                        # for it made every commit of anyone wait for this server (watch_changes). An absent target
                        # is created with nc:operation "create", which sysrepo refuses (data-exists) if another
                        # writer created it since: then it is replaced, 204. What stays open is the other order: a
                        # target deleted by another writer between the read and the commit is created again by
                        # the replace and answered 204.
                        existed = reader.exists(check_exists)
                        creating = None if existed or tree is None else _replaced_target(tree, check_exists)
                        if creating is not None:
                            _set_operation(creating, "create")
                    if replace_all:
                        apply_changes(sess, replace_all=True, tree=tree)
                    else:
                        if tree is None:
                            raise bad_request("The request body holds no data")
                        try:
                            sess.edit_batch_ly(tree, "merge")
                            apply_changes(sess)
                        except sysrepo.SysrepoExistsError:
                            if creating is None:
                                raise
                            sess.discard_changes()
                            _set_operation(creating, "replace")
                            existed = True
                            sess.edit_batch_ly(tree, "merge")
                            apply_changes(sess)
                finally:
                    if tree is not None:
                        tree.root().first_sibling().free()
        self._committed(datastore, modules)
        return EditResult(created, existed)

    def _committed(self, datastore: str, modules: set[str] | None) -> None:
        """After a commit: Last-Modified, and RFC 8040 §1.4 — running is copied to startup after every successful
        edit of running (the modules the edit touched; None: all), before the client hears of the success."""
        self._touch(datastore)
        if datastore == "running":
            self.persist(modules)

    def persist(self, modules: set[str] | None) -> None:
        """Copy running to startup for `modules` (None: every module). The server's own act (RFC 8040 §1.4), so
        no NACM user: the client was allowed the edit of running."""
        with self.session(None, "startup") as startup:
            for module in sorted(modules) if modules is not None else [None]:

                try:
                    mgmt_datastore.copy_config(startup, "running", module)  # None: all modules
                except sysrepo.SysrepoOperationFailedError as exc:
                    if not applied_anyway(exc):  # copied; only its change notification was not stored
                        raise
        self._touch("startup")

    def _touch(self, datastore: str) -> None:
        self.last_modified[datastore] = time.time()

    # ---- operations -------------------------------------------------------------------------------------------

    def invocable_rpcs(self) -> frozenset[str]:
        """The RPCs (`/module:name`) an invocation can reach now: sysrepo's own (factory-reset) and those with a
        subscriber (sysrepo-monitoring's rpc-sub list). Others answer "no matching subscribers" (405)."""
        found = set(SYSREPO_RPCS)
        with self.session(None, "operational") as sess, read_tree(sess, "/sysrepo-monitoring:sysrepo-state/rpc", 0,
                                                                  {}) as tree:
            if tree is not None:
                for rpc in tree.find_all("/sysrepo-monitoring:sysrepo-state/rpc"):
                    path = rpc.find_one("path")
                    if path is not None and rpc.find_one("rpc-sub") is not None:
                        found.add(_term(path))
        return frozenset(found)

    # ---- operations (invoke) ---------------------------------------------------------------------------------------

    def invoke(
        self, user: str | None, build: Callable[[libyang.Context], libyang.DNode], encoding: Encoding
    ) -> bytes | None:
        """An RPC or action: NACM exec check, sysrepo sends it, libyang prints the output (None: no output)."""
        with self.session(user, "running") as sess, acquired_context(self.conn) as ctx:
            op = build(ctx)
            try:
                if not check_operation(sess, op.cdata):
                    raise RestconfError("application", "access-denied", f"Access to {op.path()} denied", status=403)
                with rpc_output(sess, op.root()) as reply:
                    return None if reply is None else _print_output(reply, encoding)
            finally:
                op.root().free()


class LastModified(dict[str, float]):
    """Last-Modified of each datastore (seconds since the epoch): this server's own writes, and for running also
    every commit `RunningStamps` saw (read when asked for)."""

    def __init__(self) -> None:
        now = time.time()
        super().__init__({ds: now for ds in ("running", "candidate", "startup")})
        self._stamps: change_notice.RunningStamps | None = None

    def follow(self, stamps: change_notice.RunningStamps) -> None:
        self._stamps = stamps

    def __getitem__(self, datastore: str) -> float:
        own = super().__getitem__(datastore)
        if datastore == "running" and self._stamps is not None:
            return max(own, self._stamps.latest())
        return own

    def get(self, datastore: str, default: Any = None) -> Any:
        return self[datastore] if datastore in self else default

    def close(self) -> None:
        if self._stamps is not None:
            self._stamps.close()


def _print_output(reply: libyang.DNode, encoding: Encoding) -> bytes | None:
    """RFC 8040 §3.6.2: output as `<module>:output`. libyang prints the operation node; we rename its envelope."""
    op = _find_operation(reply)
    if op is None:
        return None
    children = [c for c in op.children() if not c.cdata.flags & lib.LYD_DEFAULT] if hasattr(op, "children") else []
    if not children:
        return None
    module = op.module().name()
    body = print_nodes([op], encoding, "report-all")
    name = op.name()
    if encoding == Encoding.JSON:
        return body.replace(f'"{module}:{name}"'.encode(), f'"{module}:output"'.encode(), 1)
    start = body.index(b"<" + name.encode())
    end = body.rindex(b"</" + name.encode() + b">")
    return body[:start] + b"<output" + body[start + 1 + len(name) : end] + b"</output>" + body[end + 3 + len(name) :]


def _find_operation(tree: libyang.DNode) -> libyang.DNode | None:
    for node in tree.root().iter_tree():
        if node.schema().nodetype() in (libyang.SNode.RPC, libyang.SNode.ACTION):
            return node
    return None


_STREAM_LOCATIONS = "/ietf-restconf-monitoring:restconf-state/streams/stream/access/location"


def _rebase_stream_locations(tree: libyang.DNode, listen_url: str, client_url: str) -> None:
    """ietf-restconf-monitoring's stream locations (RFC 8040 §9.3, absolute URLs the monitoring callback builds on
    the listen address) on the scheme and host the client used, as the yang-library locations and RFC 8650's
    subscription URIs are: a server listening on 0.0.0.0 or [::] announced https://0.0.0.0:443/restconf/streams/..."""
    node: libyang.DNode | None = tree.root().first_sibling()
    while node is not None and not (node.module().name() == "ietf-restconf-monitoring"
                                    and node.name() == "restconf-state"):
        node = node.next()
    if node is None:
        return
    prefix = listen_url + "/"
    for location in list(node.find_all(_STREAM_LOCATIONS)):
        value = _term(location)
        access = location.parent()
        if value.startswith(prefix) and access is not None:
            lib.lyd_free_tree(location.cdata)
            access.context.create_data_path("location", parent=access, value=client_url + "/" + value[len(prefix):])


@contextmanager
def _read_with_origin(
    sess: SysrepoSession, xpath: str, *, max_depth: int, no_state: bool, no_config: bool, defaults_printed: bool
) -> Iterator[libyang.DNode | None]:
    """RFC 8527 §3.2.2 with-origin: operational data with sysrepo's `or:origin` annotations (SR_OPER_WITH_ORIGIN,
    which needs sysrepo's own read: `xpath` is first resolved on NACM-pruned data, as the NETCONF server's get-data
    does). libyang prints the annotations; default nodes the reply's mode does not report are dropped here, as a
    default node carrying an annotation would be printed even in explicit mode (`mgmt.origin.filter_origin`)."""
    selected = filtered_read.selected_paths(sess, "operational", xpath, no_state=no_state, no_config=no_config)
    sess.switch_datastore("operational")
    if selected is None:
        yield None
        return
    with origin.operational_with_origin(sess, selected, max_depth=max_depth, no_state=no_state, no_config=no_config,
                                        defaults_printed=defaults_printed) as tree:
        yield tree


def _own_origin(node: libyang.DNode) -> None:
    """A data resource printed without its ancestors carries the origin it inherits (RFC 8342 §5.3.4: a node
    without an annotation has its parent's; sysrepo annotates only where the origin changes, so a list entry
    under an annotated container came back without any)."""
    if node.get_meta(origin.ORIGIN_META) is not None:
        return
    parent = node.parent()
    while parent is not None:
        inherited = parent.get_meta(origin.ORIGIN_META)
        if inherited is not None:
            node.new_meta("ietf-origin:origin", inherited)
            return
        parent = parent.parent()


@contextmanager
def read_tree(
    sess: SysrepoSession, xpath: str, max_depth: int, flags: dict[str, bool]
) -> Iterator[libyang.DNode | None]:
    """sysrepo's get_data as a context manager that yields None when nothing matches."""
    try:
        cm: Any = sess.get_data_ly(xpath, max_depth=max_depth, **flags)
        tree: libyang.DNode = cm.__enter__()
    except sysrepo.SysrepoNotFoundError:
        yield None
        return
    try:
        yield tree
    finally:
        cm.__exit__(None, None, None)


def _replaced_target(tree: libyang.DNode, path: str) -> libyang.DNode | None:
    """The node at `path` in a PUT's edit tree when it carries nc:operation replace (as PUT builds it)."""
    node = tree.find_one(path)
    return node if node is not None and node.get_meta("operation") == "replace" else None


def _set_operation(node: libyang.DNode, operation: str) -> None:
    node.meta_free("operation")
    node.new_meta("ietf-netconf:operation", operation)


def _module_of(path: str) -> str:
    """The module of a data path's top-level node (`/m:a/b` -> `m`): sysrepo raises change events per module."""
    return path[1 : path.index(":")] if path.startswith("/") and ":" in path else ""


def _has_config(module: libyang.Module) -> bool:
    try:
        return any(not node.config_false() for node in module.children())
    except libyang.LibyangError:
        return False


def _is_term(node: libyang.DNode) -> bool:
    return bool(node.cdata.schema != ffi.NULL and node.cdata.schema.nodetype & (lib.LYS_LEAF | lib.LYS_LEAFLIST))


def _term(node: libyang.DNode) -> str:
    raw = lib.lyd_get_value(node.cdata)
    return ffi.string(raw).decode() if raw != ffi.NULL else ""


def _default_only(node: libyang.DNode) -> bool:
    """A leaf or leaf-list entry that exists only as its schema default (RFC 6243's explicit mode: not there)."""
    return bool(node.cdata.flags & lib.LYD_DEFAULT) and _is_term(node)


class Reader:
    """The datastore as an edit's own session sees it (NACM included), for edits whose meaning depends on it."""

    # paths per prefetch read: an XPath union of this many
    PREFETCH_BATCH = 256

    def __init__(self, sess: SysrepoSession) -> None:
        self._sess = sess
        # data path -> None (absent) or its value ("" for a node that is not a leaf): what `prefetch` read
        self._known: dict[str, str | None] = {}

    def prefetch(self, paths: list[str]) -> None:
        """Reads whether each of `paths` exists (and a leaf's value) with one sysrepo read per `PREFETCH_BATCH`
        of them — an XPath union — so that `exists` and `leaf_value` answer them without a read each (YANG Patch's
        delete and remove: 2,000 deletes read sysrepo 2,000 times, 7 s on the loaded box). Valid while the
        session's datastore is what it was: an edit's reader, read before anything is applied."""
        todo = [p for p in dict.fromkeys(paths) if p not in self._known]
        for i in range(0, len(todo), self.PREFETCH_BATCH):
            batch = todo[i : i + self.PREFETCH_BATCH]
            with read_tree(self._sess, " | ".join(batch), 1, {}) as tree:
                for path in batch:
                    found = [n for n in tree.find_all(path) if not _default_only(n)] if tree is not None else []
                    self._known[path] = None if not found else _term(found[0]) if _is_term(found[0]) else ""

    def exists(self, path: str) -> bool:
        """Whether data exist at `path`, in the sense RESTCONF's basic mode (RFC 6243 explicit, RFC 8040 §4.8.9)
        gives every resource: a leaf holding only its schema default does not exist. The one meaning for PUT,
        POST, PATCH, DELETE and YANG Patch's create, delete and remove (RFC 8072 §2.5)."""
        if path in self._known:
            return self._known[path] is not None
        with read_tree(self._sess, path, 1, {}) as tree:
            return tree is not None and any(not _default_only(n) for n in tree.find_all(path))

    def leaf_value(self, path: str) -> str | None:
        """The canonical value of the leaf at `path` when it exists (a default-only leaf does not)."""
        if path in self._known:
            return self._known[path]
        with read_tree(self._sess, path, 0, {}) as tree:
            node = tree.find_one(path) if tree is not None else None
            if node is None or _default_only(node):
                return None
            raw = lib.lyd_get_value(node.cdata)
            return ffi.string(raw).decode() if raw != ffi.NULL else ""


DATA_NS = "urn:ietf:params:xml:ns:yang:ietf-restconf"


def _wrap_datastore(body: bytes, encoding: Encoding) -> bytes:
    """RFC 8040 §3.4 (and Appendix B.3.1): a datastore is one `data` node of ietf-restconf in either encoding."""
    if encoding == Encoding.JSON:
        inner = body.strip() or b"{}"
        return b'{\n  "ietf-restconf:data": ' + inner + b"\n}\n"
    if not body.strip():
        return b'<data xmlns="' + DATA_NS.encode() + b'"/>\n'
    return b'<data xmlns="' + DATA_NS.encode() + b'">\n' + body + b"</data>\n"


def _modules_of(tree: libyang.DNode | None) -> set[str]:
    """The modules of an edit tree's top-level nodes (what a commit of it can change)."""
    if tree is None:
        return set()
    out: set[str] = set()
    node: libyang.DNode | None = tree.root().first_sibling()
    while node is not None:
        out.add(node.module().name())
        node = node.next()
    return out


def _dup_all(tree: libyang.DNode | None) -> libyang.DNode | None:
    """A copy of `tree` with all its top-level siblings (sysrepo's replace_config takes what it is given)."""
    if tree is None:
        return None
    first = tree.root().first_sibling()
    dup = ffi.new("struct lyd_node **")
    if lib.lyd_dup_siblings(first.cdata, ffi.NULL, lib.LYD_DUP_RECURSIVE, dup) != lib.LY_SUCCESS:
        raise RestconfError("application", "operation-failed", "cannot copy the new datastore content")
    return libyang.DNode.new(first.context, dup[0])

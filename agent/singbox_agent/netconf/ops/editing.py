"""Applying an edit tree to a datastore, shared by <edit-config> and <edit-data> (the way netopeer2's handlers share
common.c): edit_batch → apply (or validate), one cleanup path that always discards pending changes.

error-option: sysrepo applies one batch all-or-nothing, which is rollback-on-error (and what a request without
error-option gets, see `edit_config.handle`). stop-on-error and continue-on-error start the same way — the whole edit as one batch, so a valid edit costs one commit and is
judged as a whole (an interface may name an endpoint created later in the same edit). Only when that fails is the
edit cut into units (`edit_units.py`, document order) to find the first failing one: bisection, each half applied
as its own sysrepo change, so what precedes the failing unit is committed in O(log n) changes. stop-on-error then
answers with that unit's error; continue-on-error skips it, goes on with the rest the same way and answers with every
failing unit's error. Errors found while parsing the request (unknown element, a value its type refuses) reject the
whole request before anything is applied: they are errors in the request, not in applying it.
"""

from __future__ import annotations

import functools
import re
import xml.etree.ElementTree as ET

import libyang
import sysrepo
from _libyang import ffi as ly_ffi
from _libyang import lib as ly_lib

from singbox_agent.mgmt import config_change_size, datastore, notify
from singbox_agent.mgmt.errors import (
    MgmtError,
    MgmtException,
    applied_anyway,
    existing_creates,
    from_exception,
    invalid_value,
    locate_in_edit,
    with_path,
)
from singbox_agent.netconf.dispatch import OpContext
from singbox_agent.netconf.edit_units import chunk_tree, edit_units
from singbox_agent.netconf.ops.common import (
    check_not_locked_by_other,
    datastore_choice,
    has_opaque,
    insert_metadata,
    leaf,
    parse_config,
)

TARGETS = ("running", "candidate", "startup")


ERROR_OPTIONS = ("stop-on-error", "continue-on-error", "rollback-on-error")


def apply_edit(
    ctx: OpContext,
    ds: str,
    tree: libyang.DNode | None,
    default_operation: str,
    test_only: bool = False,
    *,
    error_option: str = "rollback-on-error",
    config: ET.Element | None = None,
) -> None:
    """Apply an edit tree to `ds` through this session's sysrepo session; nothing stays pending afterwards.

    `config` is the request's XML element holding the edit (document order for stop-/continue-on-error).
    :raises MgmtException: the errors of the failing unit(s), or of the whole edit for rollback-on-error.
    """
    sr = ctx.sr
    check_not_locked_by_other(ctx, ds)
    sr.switch_datastore(ds)
    if tree is None:
        if default_operation == "replace" and not test_only:
            try:
                datastore.replace_config(sr, lambda: None)  # RFC 6241: replace with empty config empties the datastore
            finally:
                sr.discard_changes()
        return
    if test_only:
        try:
            sr.edit_batch_ly(tree, default_operation)
            sr.validate()
        finally:
            sr.discard_changes()
        return
    whole = _try_apply(ctx, ds, tree, default_operation)
    if whole is None:
        return
    # default-operation replace makes the edit the whole new content of the datastore: there is nothing to cut.
    if (error_option == "rollback-on-error" or default_operation == "replace" or _not_per_unit(whole)
            or has_opaque(tree)):
        raise _located(ctx, whole, tree, default_operation)
    if not datastore.waiting_allowed():
        raise datastore.WouldWait()  # units commit piece by piece, possibly waiting: not on the event loop
    units = edit_units(tree, config, functools.cache(functools.partial(datastore.module_by_namespace, ctx.ly)))
    failures = _apply_units(ctx, ds, units, default_operation, whole,
                            continue_on_error=error_option == "continue-on-error")
    if failures:
        raise MgmtException(*failures)


def _located(ctx: OpContext, exc: Exception, tree: libyang.DNode, default_operation: str, *,
             subtree: bool = False) -> Exception:
    """sysrepo's data-exists / data-missing with the error-path of the edit node it refused (RFC 6241 Appendix A;
    sysrepo names the node by its name only): `mgmt.errors.locate_in_edit`, reading the datastore when several
    nodes of the edit could be the one."""
    if not isinstance(exc, sysrepo.SysrepoExistsError | sysrepo.SysrepoNotFoundError):
        return exc
    anchor = _INSERT_ANCHOR.search(str(getattr(exc, "msg", None) or exc))
    if anchor is not None:
        return _missing_instance(tree, anchor.group(1))

    def exists(path: str) -> bool:
        try:
            return bool(ctx.sr.get_data(path, max_depth=1))
        except (sysrepo.SysrepoError, libyang.LibyangError):
            return False

    return MgmtException(*locate_in_edit(from_exception(exc, ctx.ly), tree, default_operation, exists,
                                         subtree=subtree))


# sysrepo's words when an insert's key or value names no existing entry
_INSERT_ANCHOR = re.compile(r'Node "([^"]+)" instance to insert next to not found')


def _missing_instance(tree: libyang.DNode, name: str) -> MgmtException:
    """RFC 7950 15.7: "If the "insert" and "key" or "value" attributes are used in an <edit-config> for a list or
    leaf-list node and the "key" or "value" refers to an instance that does not exist", the error is bad-attribute
    with error-app-tag missing-instance (sysrepo's refusal was data-missing, naming the node by its name only)."""
    path, attribute = None, "key"
    for node, meta, value in insert_metadata(tree):
        if meta == b"insert" and value in ("before", "after") and ly_ffi.string(node.schema.name).decode() == name:
            path = libyang.DNode.new(tree.context, node).path()
            attribute = "value" if node.schema.nodetype == ly_lib.LYS_LEAFLIST else "key"
            break
    return MgmtException(MgmtError(
        "application", "bad-attribute", f'The {attribute} attribute of "{name}" names no existing instance to insert '
        "next to.", "missing-instance", path, info={"bad-attribute": attribute, "bad-element": name}))


def _not_per_unit(exc: Exception) -> bool:
    """Failures that no unit causes on its own (another client's lock, a timeout): retrying pieces cannot help."""
    if isinstance(exc, MgmtException):
        return exc.errors[0].error_tag == "in-use"  # the datastore stayed busy (datastore.retry_busy)
    return isinstance(exc, sysrepo.SysrepoLockedError | sysrepo.SysrepoTimeOutError)


def _try_apply(ctx: OpContext, ds: str, tree: libyang.DNode, default_operation: str) -> Exception | None:
    """Apply `tree` as one sysrepo change; the error instead of raising it. Nothing stays pending."""
    sr = ctx.sr
    # sysrepo would store the children of an existing node created; the walk only when the request can hold a
    # create (the word, or a character reference that could spell it): a bulk edit without one walks nothing
    may_create = b"create" in ctx.rpc.raw or b"&#" in ctx.rpc.raw
    refused = existing_creates(tree, sr) if may_create else []
    if refused:
        return MgmtException(*refused)
    applied = False
    try:
        if ds == "running" and datastore.is_bulk(tree) and not _holds_lock(ctx, ds):
            # not through our connection's cache of running: it would slow every later write (datastore.BULK_NODES)
            datastore.apply_bulk(sr, tree, default_operation, (ctx.session.user, ctx.session.id))
        else:
            if ds == "running":
                datastore.prepare_bulk()  # so that a large edit after this one does not open it in its own time
            sr.edit_batch_ly(tree, default_operation)
            # retried while other writers hold the datastore; the bound: room for its config-change without waiting
            datastore.apply_changes(sr, lambda: config_change_size.bound(tree, default_operation))
            applied = True
    except sysrepo.SysrepoOperationFailedError as exc:
        if not applied_anyway(exc):
            return exc
        notify.record_loss("netconf-config-change", str(exc), delivered=notify.file_full(exc))
    except (sysrepo.SysrepoError, libyang.LibyangError, MgmtException) as exc:
        return exc
    finally:
        # sr_apply_changes frees the session's edit when it succeeds (sysrepo.c: "free applied edit"), so after
        # a successful apply there is nothing to discard (~4 µs per edit, issue 17); any other way out discards
        if not applied:
            sr.discard_changes()
    if ds == "candidate":
        with ctx.session.server.state.lock:
            ctx.session.server.state.candidate_modified = True
    return None


def _holds_lock(ctx: OpContext, ds: str) -> bool:
    """Whether this session holds the <lock> of `ds` (a sysrepo lock of its own sysrepo session)."""
    state = ctx.session.server.state
    with state.lock:
        return state.locks.get(ds) == ctx.session.id


def _apply_units(
    ctx: OpContext,
    ds: str,
    units: list[libyang.DNode],
    default_operation: str,
    whole_error: Exception,
    *,
    continue_on_error: bool,
) -> list[MgmtError]:
    """Apply `units` in order knowing that all of them together failed with `whole_error`; the errors of the failing
    units (the first one only, unless `continue_on_error`)."""

    def apply_range(lo: int, hi: int) -> Exception | None:
        chunk = chunk_tree(units[lo:hi])
        try:
            return _try_apply(ctx, ds, chunk, default_operation)
        finally:
            chunk.free()

    def first_failure(lo: int, hi: int, error: Exception) -> tuple[int, Exception] | None:
        """units[lo:hi] together failed with `error`: apply the longest good prefix and return the unit that fails
        on top of it; None when the pieces all applied after all (the failure came from combining them)."""
        while hi - lo > 1:
            mid = (lo + hi) // 2
            left = apply_range(lo, mid)
            if left is not None:
                hi, error = mid, left
                continue
            right = apply_range(mid, hi)
            if right is None:
                return None
            lo, error = mid, right
        return lo, error

    failures: list[MgmtError] = []
    lo, error = 0, whole_error
    while lo < len(units):
        found = first_failure(lo, len(units), error)
        if found is None:
            break
        index, error = found
        path = units[index].path()
        located = _located(ctx, error, units[index], default_operation, subtree=True)
        failures.extend(with_path(e, path) for e in from_exception(located, ctx.ly))
        ctx.session.log.info("edit unit failed", unit=path, applied_before=index, datastore=ds)
        if not continue_on_error:
            break
        lo = index + 1
        if lo < len(units):
            rest = apply_range(lo, len(units))
            if rest is None:
                break
            error = rest
    return failures

"""<commit> (RFC 6241 8.3.4.1) with :confirmed-commit:1.1 (8.4), and <cancel-commit>.

The commit runs on the session's own sysrepo session (the one that may hold the candidate and running locks):
copy candidate → running, after which sysrepo makes the candidate mirror running again. A pending confirmed commit is kept on disk as well
(confirmed.py, confirmed_store.py) so that it outlives a server restart.
"""

from __future__ import annotations

import time

from singbox_agent.mgmt import datastore, notify
from singbox_agent.mgmt.errors import applied_anyway, invalid_value, operation_failed
from singbox_agent.netconf import confirmed
from singbox_agent.netconf.dispatch import OpContext, register
from singbox_agent.netconf.messages import BASE_NS
from singbox_agent.netconf.ops.common import check_not_locked_by_other, flag, leaf

DEFAULT_TIMEOUT_S = 600


def _check_persist_id(cc: confirmed.ConfirmedCommit, ctx: OpContext, given: str | None) -> None:
    """Whether this session may confirm, follow up or cancel the pending confirmed commit (RFC 6241 8.4.1): with
    `persist` from any session, naming it as persist-id; without, only from the issuing session and with no
    persist-id, since no persist-id can equal a persist that was never given (8.4.5.1, 8.4.4.1: 'invalid-value')."""
    if cc.persist is not None:
        if given is None:
            raise invalid_value("persist-id is required: the pending confirmed commit was given persist.")
        if given != cc.persist:
            raise invalid_value("persist-id does not match the pending confirmed commit.", app_tag=None)
    elif given is not None:
        raise invalid_value("persist-id does not match: the pending confirmed commit was given no persist.",
                            app_tag=None)
    elif cc.session_id != ctx.session.id:
        raise operation_failed("The pending confirmed commit belongs to another session.", error_type="protocol")


@register(BASE_NS, "commit")
def handle(ctx: OpContext) -> str:
    server = ctx.session.server
    state = server.state
    check_not_locked_by_other(ctx, "running")
    check_not_locked_by_other(ctx, "candidate")
    is_confirmed = flag(ctx, "confirmed")
    timeout_raw = leaf(ctx, "confirm-timeout")
    timeout = int(timeout_raw) if timeout_raw else DEFAULT_TIMEOUT_S
    persist = leaf(ctx, "persist")
    persist_id = leaf(ctx, "persist-id")
    with state.lock:
        pending = state.confirmed
    if pending is not None:
        # a confirming commit and a follow-up confirmed commit alike (RFC 6241 8.4.1)
        _check_persist_id(pending, ctx, persist_id)
    elif persist_id is not None:
        raise invalid_value("No confirmed commit is pending.")

    new_cc: confirmed.ConfirmedCommit | None = None
    if is_confirmed and pending is None:
        new_cc = confirmed.ConfirmedCommit(confirmed.snapshot_running(ctx.sr), None if persist else ctx.session.id,
                                           persist, deadline=time.time() + timeout)
        # on disk before running changes: a crash in between then restores what running already is
        confirmed.save(server, new_cc)
    sr = ctx.sr
    sr.switch_datastore("running")
    try:
        datastore.copy_config(sr, "candidate")
    except BaseException as exc:
        if applied_anyway(exc):  # committed; only its config-change notification was not stored
            notify.record_loss("netconf-config-change", str(exc), delivered=notify.file_full(exc))
        else:
            if new_cc is not None:
                confirmed.forget(server, new_cc)
            raise
    with state.lock:
        state.candidate_modified = False

    if is_confirmed:
        if new_cc is not None:
            cc = new_cc
            with state.lock:
                state.confirmed = cc
            server.events.confirmed_commit("start", ctx.session, timeout)
        else:
            assert pending is not None
            cc = pending
            if persist is not None:
                cc.persist, cc.session_id = persist, None
            server.events.confirmed_commit("extend", ctx.session, timeout)
        confirmed.arm(server, cc, timeout)
    elif pending is not None:
        confirmed.finish(server, pending)
        server.events.confirmed_commit("complete", ctx.session)
    return "<ok/>"


@register(BASE_NS, "cancel-commit")
def cancel(ctx: OpContext) -> str:
    server = ctx.session.server
    with server.state.lock:
        pending = server.state.confirmed
    if pending is None:
        raise operation_failed("No confirmed commit is pending.", error_type="protocol")
    _check_persist_id(pending, ctx, leaf(ctx, "persist-id"))
    confirmed.rollback(server, pending, "cancel-commit")
    server.events.confirmed_commit("cancel", ctx.session)
    return "<ok/>"

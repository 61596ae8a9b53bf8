"""<lock> (RFC 6241 7.5) and the lock bookkeeping shared with <unlock>, close and kill-session.

A lock is held twice: in the server table (to name the holder's NETCONF session-id in lock-denied and to enforce
the candidate rules) and in sysrepo through this session's sysrepo session (so that other sysrepo clients, such as
the RESTCONF server or the agent's own tools, are excluded too).
"""

from __future__ import annotations

import time

import sysrepo

from singbox_agent.mgmt.errors import lock_denied
from singbox_agent.netconf.dispatch import OpContext, register
from singbox_agent.netconf.messages import BASE_NS
from singbox_agent.netconf.ops.common import datastore_choice
from singbox_agent.netconf.session import NetconfSession

LOCKABLE = ("running", "candidate", "startup")


@register(BASE_NS, "lock")
def handle(ctx: OpContext) -> str:
    ds = datastore_choice(ctx, "target", LOCKABLE)
    session = ctx.session
    state = session.server.state
    with state.lock:
        holder = state.locks.get(ds)
        if holder is not None:
            raise lock_denied(holder)
        if ds == "candidate" and state.candidate_modified:
            raise lock_denied(0, "The candidate has changes that are not committed or discarded.")
        if ds == "running" and state.confirmed is not None and state.confirmed.session_id != session.id:
            raise lock_denied(state.confirmed.session_id or 0, "A confirmed commit is pending.")
        state.locks[ds] = session.id
        state.lock_times[ds] = time.time()
    try:
        ctx.sr.switch_datastore(ds)
        ctx.sr.lock()
    except sysrepo.SysrepoLockedError:
        _forget(session, ds)
        raise lock_denied(0, f'The {ds} datastore is locked by another sysrepo client.') from None
    except BaseException:
        _forget(session, ds)
        raise
    return "<ok/>"


def _forget(session: NetconfSession, ds: str) -> None:
    state = session.server.state
    with state.lock:
        if state.locks.get(ds) == session.id:
            del state.locks[ds]
            state.lock_times.pop(ds, None)


def release_lock(session: NetconfSession, ds: str) -> None:
    """Release `ds`; for the candidate, outstanding changes are discarded (RFC 6241 8.3.5.2)."""
    sr = session.sr
    if sr is None:
        _forget(session, ds)
        return
    try:
        if ds == "candidate":
            reset_candidate(session)
        sr.switch_datastore(ds)
        sr.unlock()
    finally:
        _forget(session, ds)


def reset_candidate(session: NetconfSession) -> None:
    sr = session.sr
    assert sr is not None
    sr.switch_datastore("candidate")
    sr.copy_config("running")  # sysrepo: the candidate mirrors running again
    with session.server.state.lock:
        session.server.state.candidate_modified = False


def release_all_locks(session: NetconfSession) -> None:
    state = session.server.state
    with state.lock:
        held = [ds for ds, sid in state.locks.items() if sid == session.id]
    for ds in held:
        try:
            release_lock(session, ds)
        except Exception as exc:  # noqa: BLE001 - release the rest
            session.log.warning("releasing lock failed", datastore=ds, error=str(exc))

"""<lock> (RFC 6241 7.5); the bookkeeping it shares with <unlock>, <discard-changes> and the end of a session is in
locking.py."""

from __future__ import annotations

import time

import sysrepo

from singbox_agent.mgmt.errors import lock_denied
from singbox_agent.netconf.dispatch import OpContext, register
from singbox_agent.netconf.messages import BASE_NS
from singbox_agent.netconf.ops.common import datastore_choice
from singbox_agent.netconf.ops.locking import LOCKABLE, forget


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
        forget(session, ds)
        raise lock_denied(0, f'The {ds} datastore is locked by another sysrepo client.') from None
    except BaseException:
        forget(session, ds)
        raise
    return "<ok/>"

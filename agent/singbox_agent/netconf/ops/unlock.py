"""<unlock> (RFC 6241 7.6): only the holder may unlock; unlocking the candidate discards its changes."""

from __future__ import annotations

from singbox_agent.mgmt.errors import operation_failed
from singbox_agent.netconf.dispatch import OpContext, register
from singbox_agent.netconf.messages import BASE_NS
from singbox_agent.netconf.ops.common import datastore_choice
from singbox_agent.netconf.ops.locking import LOCKABLE, release_lock


@register(BASE_NS, "unlock")
def handle(ctx: OpContext) -> str:
    ds = datastore_choice(ctx, "target", LOCKABLE)
    holder = ctx.session.server.state.holder(ds)
    if holder is None:
        raise operation_failed(f'The {ds} datastore is not locked.', error_type="protocol")
    if holder != ctx.session.id:
        exc = operation_failed(f'The {ds} datastore is locked by session {holder}, not by this one.', error_type="protocol")
        exc.errors[0].info["session-id"] = str(holder)
        raise exc
    release_lock(ctx.session, ds)
    return "<ok/>"

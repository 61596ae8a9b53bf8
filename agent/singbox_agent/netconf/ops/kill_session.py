"""<kill-session> (RFC 6241 7.9): end another session, releasing its locks before replying."""

from __future__ import annotations

from singbox_agent.mgmt.errors import invalid_value
from singbox_agent.netconf.dispatch import OpContext, register
from singbox_agent.netconf.messages import BASE_NS
from singbox_agent.netconf.ops.common import leaf


@register(BASE_NS, "kill-session")
def handle(ctx: OpContext) -> str:
    raw = leaf(ctx, "session-id")
    target = int(raw) if raw is not None else 0
    if target == ctx.session.id:
        raise invalid_value("A session cannot kill itself; use close-session.")
    with ctx.session.server.state.lock:
        victim = ctx.session.server.state.sessions.get(target)
    if victim is None:
        raise invalid_value(f"No session with id {target}.")
    ctx.session.log.info("killing session", victim=target)
    victim.end_reason = "killed"
    victim.killed_by = ctx.session.id
    victim.kill_from_other_thread()
    return "<ok/>"

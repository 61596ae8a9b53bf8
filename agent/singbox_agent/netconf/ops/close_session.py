"""<close-session> (RFC 6241 7.8): reply, then close; locks are released by the session cleanup."""

from __future__ import annotations

from singbox_agent.netconf.dispatch import OpContext, register
from singbox_agent.netconf.messages import BASE_NS


@register(BASE_NS, "close-session")
def handle(ctx: OpContext) -> str:
    ctx.close_after = True
    return "<ok/>"

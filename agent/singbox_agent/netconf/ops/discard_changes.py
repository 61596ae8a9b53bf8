"""<discard-changes> (RFC 6241 8.3.4.2): the candidate becomes running again."""

from __future__ import annotations

from singbox_agent.netconf.dispatch import OpContext, register
from singbox_agent.netconf.messages import BASE_NS
from singbox_agent.netconf.ops.common import check_not_locked_by_other
from singbox_agent.netconf.ops.locking import reset_candidate


@register(BASE_NS, "discard-changes")
def handle(ctx: OpContext) -> str:
    check_not_locked_by_other(ctx, "candidate")
    reset_candidate(ctx.session)
    return "<ok/>"

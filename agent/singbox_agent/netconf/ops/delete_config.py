"""<delete-config> (RFC 6241 7.4): only startup can be deleted; running never (operation-failed)."""

from __future__ import annotations

from singbox_agent.mgmt import datastore
from singbox_agent.mgmt.errors import operation_failed
from singbox_agent.netconf.dispatch import OpContext, register
from singbox_agent.netconf.messages import BASE_NS
from singbox_agent.netconf.ops.common import check_not_locked_by_other, datastore_choice


@register(BASE_NS, "delete-config")
def handle(ctx: OpContext) -> str:
    target = datastore_choice(ctx, "target", ("startup", "running", "candidate"))
    if target != "startup":
        raise operation_failed(f'The {target} datastore cannot be deleted.', error_type="protocol")
    check_not_locked_by_other(ctx, target)
    ctx.sr.switch_datastore("startup")
    datastore.replace_config(ctx.sr, lambda: None)  # an empty replace: startup emptied
    return "<ok/>"

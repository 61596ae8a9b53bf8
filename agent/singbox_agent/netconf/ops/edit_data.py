"""<edit-data> (RFC 8526 3.1.2) on running, candidate or startup."""

from __future__ import annotations

from singbox_agent.mgmt.errors import invalid_value, operation_not_supported
from singbox_agent.netconf.dispatch import OpContext, register
from singbox_agent.netconf.ops.common import NMDA_NS, flag, leaf, nmda_datastore, parse_config
from singbox_agent.netconf.ops.editing import apply_edit


@register(NMDA_NS, "edit-data")
def handle(ctx: OpContext) -> str:
    ds = nmda_datastore(ctx)
    if ds == "operational":
        raise invalid_value("The operational datastore cannot be edited.", error_type="application")
    if flag(ctx, "url"):
        raise operation_not_supported("The :url capability is not supported.")
    tree = parse_config(ctx, "config")
    try:
        apply_edit(ctx, ds, tree, leaf(ctx, "default-operation") or "merge")
    finally:
        if tree is not None:
            tree.free()
    return "<ok/>"

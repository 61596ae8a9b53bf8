"""<get-config> (RFC 6241 7.1) with subtree/XPath filters and with-defaults (RFC 6243)."""

from __future__ import annotations

from singbox_agent.mgmt.datastore import CONVENTIONAL
from singbox_agent.netconf.dispatch import OpContext, register
from singbox_agent.netconf.messages import BASE_NS
from singbox_agent.netconf.ops.common import datastore_choice, filter_xpath, read_xml, with_defaults


@register(BASE_NS, "get-config")
def handle(ctx: OpContext) -> str:
    ds = datastore_choice(ctx, "source", CONVENTIONAL)
    return "<data>" + read_xml(ctx, ds, filter_xpath(ctx), with_defaults(ctx)) + "</data>"

"""<get> (RFC 6241 7.7): running configuration and state, i.e. sysrepo's operational datastore."""

from __future__ import annotations

from singbox_agent.netconf.dispatch import OpContext, register
from singbox_agent.netconf.messages import BASE_NS
from singbox_agent.netconf.ops.common import filter_xpath, read_xml, with_defaults


@register(BASE_NS, "get")
def handle(ctx: OpContext) -> str:
    return "<data>" + read_xml(ctx, "operational", filter_xpath(ctx), with_defaults(ctx)) + "</data>"

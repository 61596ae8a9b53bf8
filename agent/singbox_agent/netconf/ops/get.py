"""<get> (RFC 6241 7.7): "running configuration and device state information" — sysrepo's operational datastore
with running's configuration merged in (`mgmt.combined`: operational holds a module's configuration only while
something subscribes to its changes, so a hostname set by edit-config was in <get-config> but not in <get>)."""

from __future__ import annotations

from singbox_agent.mgmt import combined, datastore, read_gate
from singbox_agent.netconf.dispatch import OpContext, register
from singbox_agent.netconf.messages import BASE_NS
from singbox_agent.netconf.ops.common import filter_xpath, with_defaults


@register(BASE_NS, "get")
def handle(ctx: OpContext) -> str:
    xpath, wd = filter_xpath(ctx), with_defaults(ctx)
    if xpath is None:  # a subtree filter selecting nothing
        return "<data></data>"
    # the same server-wide cap, filtered read (NACM, no hidden node deciding the selection) and printing as every
    # other read (`ops.common.read_xml`); running is read with the same XPath
    with (read_gate.gate(read_gate.NETCONF).admit(ctx.session.server.conn, xpath, 0),
          combined.read(ctx.sr, xpath) as tree):
        return "<data>" + (datastore.print_xml(tree, wd) if tree is not None else "") + "</data>"

"""Any RPC or action that is not a NETCONF operation: sent to sysrepo (`rpc_send`), whose subscriber answers.

sysrepo checks NACM for the session's user and returns the subscriber's error text (an agent's
SysrepoValidationFailedError or CallbackFailed message reaches the client unchanged).
"""

from __future__ import annotations

from singbox_agent.mgmt.datastore import rpc_output
from singbox_agent.netconf.dispatch import OpContext, register_fallback


@register_fallback
def handle_generic(ctx: OpContext) -> str:
    op_path = ctx.op.path()
    with rpc_output(ctx.sr, ctx.op.root()) as output:
        node = output.find_path(op_path, output=True) if output is not None else None
        children = list(node.children()) if node is not None else []
        if not children:
            return "<ok/>"
        return "".join(str(child.print_mem("xml", pretty=False)) for child in children)

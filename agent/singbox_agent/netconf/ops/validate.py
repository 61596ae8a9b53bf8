"""<validate> (RFC 6241 8.6, :validate:1.1): a datastore, or inline <config> as a complete configuration."""

from __future__ import annotations

from singbox_agent.netconf.dispatch import OpContext, register
from singbox_agent.netconf.messages import BASE_NS
from singbox_agent.netconf.ops.common import datastore_choice, parse_config


@register(BASE_NS, "validate")
def handle(ctx: OpContext) -> str:
    source = datastore_choice(ctx, "source", ("running", "candidate", "startup"), config_ok=True)
    if source == "config":
        tree = parse_config(ctx, "source/config")
        if tree is not None:
            try:
                tree.validate(no_state=True)
            finally:
                tree.free()
        return "<ok/>"
    ctx.sr.switch_datastore(source)
    ctx.sr.validate()
    return "<ok/>"

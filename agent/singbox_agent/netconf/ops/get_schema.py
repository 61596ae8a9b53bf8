"""<get-schema> (RFC 6022 3.1): the text of a module in the server's context, as YANG or YIN."""

from __future__ import annotations

from singbox_agent.mgmt.errors import clip, invalid_value
from singbox_agent.netconf.dispatch import OpContext, register
from singbox_agent.netconf.messages import escape
from singbox_agent.netconf.ops.common import leaf

NCM_NS = "urn:ietf:params:xml:ns:yang:ietf-netconf-monitoring"


@register(NCM_NS, "get-schema")
def handle(ctx: OpContext) -> str:
    identifier = leaf(ctx, "identifier") or ""
    version = leaf(ctx, "version")
    fmt = (leaf(ctx, "format") or "yang").split(":")[-1]
    if fmt not in ("yang", "yin"):
        raise invalid_value(f'Schema format "{clip(fmt)}" is not supported.', error_type="application")
    found = None
    for module in ctx.ly:
        if module.name() != identifier:
            continue
        revision = next(iter(module.revisions()), None)
        rev = str(revision.date()) if revision is not None else ""
        if version is None or version == rev:
            if found is not None and version is None and not module.implemented():
                continue
            found = module
            if module.implemented():
                break
    if found is None:
        raise invalid_value(f'No schema "{clip(identifier)}"{" revision " + clip(version) if version else ""} on this server.',
                            error_type="application")
    text = found.print_mem(fmt)
    return f'<data xmlns="{NCM_NS}">{escape(str(text))}</data>'

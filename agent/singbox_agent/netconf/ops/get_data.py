"""<get-data> (RFC 8526 3.1.1): any NMDA datastore, subtree or XPath filter, config-filter, max-depth, with-defaults."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from singbox_agent.mgmt.datastore import NMDA_IDENTITIES
from singbox_agent.mgmt.errors import invalid_value, operation_not_supported
from singbox_agent.netconf.dispatch import OpContext, register
from singbox_agent.netconf.ops.common import filter_from_element, leaf, read_xml, with_defaults_leaf

NMDA_NS = "urn:ietf:params:xml:ns:yang:ietf-netconf-nmda"


def nmda_datastore(ctx: OpContext) -> str:
    ident = leaf(ctx, "datastore") or ""
    ds = NMDA_IDENTITIES.get(ident)
    if ds is None:
        raise invalid_value(f'Datastore "{ident}" is not supported.', error_type="application")
    return ds


@register(NMDA_NS, "get-data")
def handle(ctx: OpContext) -> str:
    ds = nmda_datastore(ctx)
    subtree = ctx.rpc.op.find(f"{{{NMDA_NS}}}subtree-filter")
    xpath_filter = ctx.rpc.op.find(f"{{{NMDA_NS}}}xpath-filter")
    if subtree is not None:
        element = ET.Element("filter", {"type": "subtree"})
        element.extend(list(subtree))
        xpath = filter_from_element(ctx, element)
    elif xpath_filter is not None:
        element = ET.Element("filter", {"type": "xpath", "select": (xpath_filter.text or "").strip()})
        xpath = filter_from_element(ctx, element)
    else:
        xpath = "/*"
    config_filter = leaf(ctx, "config-filter")
    if leaf(ctx, "origin-filter") or leaf(ctx, "negated-origin-filter") or leaf(ctx, "with-origin") is not None \
            or ctx.op.find_path("with-origin") is not None:
        raise operation_not_supported("Origin filtering and reporting are not supported.")
    depth = int(leaf(ctx, "max-depth") or 0) if (leaf(ctx, "max-depth") or "unbounded") != "unbounded" else 0
    no_state = config_filter == "true"
    no_config = config_filter == "false"
    if ds != "operational" and no_config:
        xpath = None  # conventional datastores hold configuration only
    body = read_xml(ctx, ds, xpath, with_defaults_leaf(ctx, "with-defaults"), max_depth=depth,
                    no_state=no_state, no_config=no_config)
    return f'<data xmlns="{NMDA_NS}">{body}</data>'

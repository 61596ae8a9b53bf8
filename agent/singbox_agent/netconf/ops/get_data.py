"""<get-data> (RFC 8526 3.1.1): any NMDA datastore, subtree or XPath filter, config-filter, max-depth, with-defaults;
on operational also origin-filter / negated-origin-filter and with-origin (`mgmt/origin.py`)."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import libyang

from singbox_agent.mgmt import datastore, filtered_read, origin, yang_library
from singbox_agent.mgmt.errors import invalid_value
from singbox_agent.netconf.dispatch import OpContext, register
from singbox_agent.netconf.ops.common import (
    NMDA_NS,
    filter_from_element,
    leaf,
    nmda_datastore,
    read_xml,
    with_defaults_leaf,
)


def _leaf_list(ctx: OpContext, name: str) -> list[str]:
    return [str(n.value()) for n in ctx.op.find_all(name) if isinstance(n, libyang.DLeaf)]


@register(NMDA_NS, "get-data")
def handle(ctx: OpContext) -> str:
    # <intended> (listed in yang-library, mgmt/yang_library.py) is running here: read-only, so get-data only
    ds = "running" if leaf(ctx, "datastore") == yang_library.INTENDED else nmda_datastore(ctx)
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
    # a boolean leaf: libyang's value is a Python bool, so `leaf` gives "True"/"False" (compared with "true" and
    # "false", the filter was never applied)
    config_filter = (leaf(ctx, "config-filter") or "").lower() or None
    filters = _leaf_list(ctx, "origin-filter")
    negated = _leaf_list(ctx, "negated-origin-filter")
    with_origin = ctx.op.find_path("with-origin") is not None
    if ds != "operational" and (filters or negated or with_origin):
        raise invalid_value("Origin filters and with-origin apply to the operational datastore only.",
                            error_type="protocol")
    depth = int(leaf(ctx, "max-depth") or 0) if (leaf(ctx, "max-depth") or "unbounded") != "unbounded" else 0
    no_state = config_filter == "true"
    no_config = config_filter == "false"
    if ds != "operational" and no_config:
        xpath = None  # conventional datastores hold configuration only
    wd = with_defaults_leaf(ctx, "with-defaults")
    if ds == "operational" and (filters or negated or with_origin) and xpath is not None:
        origins: set[str] | None = None
        if filters or negated:
            origins = set().union(*(origin.derived_or_self(ctx.ly, i) for i in filters or negated))
        # origin annotations need sysrepo's own read: the filter is first resolved on NACM-pruned data
        xpath = filtered_read.selected_paths(ctx.sr, "operational", xpath, no_state=no_state, no_config=no_config)
        ctx.sr.switch_datastore("operational")
        body = "" if xpath is None else origin.read_operational(ctx.sr, xpath, print_tree=lambda t: datastore.print_xml(t, wd),
                                       origins=origins, negated=bool(negated), with_origin=with_origin,
                                       defaults_printed=wd in ("report-all", "report-all-tagged"),
                                       max_depth=depth, no_state=no_state, no_config=no_config)
    else:
        body = read_xml(ctx, ds, xpath, wd, max_depth=depth, no_state=no_state, no_config=no_config)
    return f'<data xmlns="{NMDA_NS}">{body}</data>'

"""Parameter handling shared by the operation modules: datastores, filters, with-defaults, reading data."""

from __future__ import annotations

import io
import re
import xml.etree.ElementTree as ET
from typing import Any

import libyang
from _libyang import ffi as ly_ffi
from _libyang import lib as ly_lib

from singbox_agent.mgmt import datastore, filtered_read
from singbox_agent.mgmt.errors import (
    bad_attribute,
    in_use,
    invalid_value,
    missing_attribute,
    missing_element,
    operation_not_supported,
)
from singbox_agent.netconf import limits
from singbox_agent.netconf.dispatch import OpContext
from singbox_agent.netconf.messages import BASE_NS, qname

WD_NS = "urn:ietf:params:xml:ns:yang:ietf-netconf-with-defaults"
ALL = "/*"


def leaf(ctx: OpContext, name: str) -> str | None:
    node = ctx.op.find_path(name)
    if node is None:
        return None
    value = node.value()
    return None if value is None else str(value)


def flag(ctx: OpContext, name: str) -> bool:
    return ctx.op.find_path(name) is not None


def datastore_choice(ctx: OpContext, param: str, allowed: tuple[str, ...], *, config_ok: bool = False) -> str:
    """The datastore named in `<param><running/></param>`; "config" for inline `<config>` when allowed."""
    node = ctx.op.find_path(param)
    if node is None:
        raise missing_element(param)
    kids = [c.name() for c in node.children()]
    if not kids:
        raise missing_element(param, message=f'"{param}" names no datastore.')
    name = str(kids[0])
    if name == "url":
        raise operation_not_supported("The :url capability is not supported.")
    if name == "config" and config_ok:
        return name
    if name not in allowed:
        raise invalid_value(f'Datastore "{name}" cannot be used as {param} of {ctx.rpc.op_name}.')
    return name


def check_not_locked_by_other(ctx: OpContext, ds: str) -> None:
    holder = ctx.session.server.state.holder(ds)
    if holder is not None and holder != ctx.session.id:
        exc = in_use(f'Datastore "{ds}" is locked by session {holder}.')
        exc.errors[0].info["session-id"] = str(holder)
        raise exc


def with_defaults(ctx: OpContext) -> str | None:
    return datastore.check_with_defaults(leaf(ctx, "ietf-netconf-with-defaults:with-defaults"))


def namespace_map(raw: bytes) -> dict[str, str]:
    """Every prefix declared anywhere in the message (XPath filters use them; last declaration wins)."""
    out: dict[str, str] = {}
    for _event, (prefix, uri) in ET.iterparse(io.BytesIO(raw), events=("start-ns",)):
        out[prefix] = uri
    return out


_PREFIX = re.compile(r"('[^']*'|\"[^\"]*\")|([A-Za-z_][\w.-]*):(?!:)")


def xpath_to_module_prefixes(ly: libyang.Context, select: str, nsmap: dict[str, str]) -> str:
    """Rewrite XML-namespace prefixes in an XPath to the module names sysrepo expects."""

    def repl(m: re.Match[str]) -> str:
        if m.group(1):
            return m.group(1)
        prefix = m.group(2)
        uri = nsmap.get(prefix)
        if uri is None:
            if ly.get_module(prefix) is not None:  # already a module name
                return m.group(0)
            raise invalid_value(f'Unknown prefix "{prefix}" in the XPath filter.', error_type="protocol")
        module = datastore.module_by_namespace(ly, uri)
        if module is None:
            raise invalid_value(f'No module with namespace "{uri}".', error_type="protocol")
        return f"{module}:"

    return _PREFIX.sub(repl, select)


def filter_from_element(ctx: OpContext, element: ET.Element | None, *, subtree_default: bool = True) -> str | None:
    """The XPath for a `<filter>`: "/*" when absent, None when it selects nothing."""
    if element is None:
        return ALL
    ftype = element.get("type", "subtree")
    if ftype == "subtree":
        xpaths = datastore.subtree_to_xpaths(ctx.ly, list(element))
        if not xpaths:
            return None
        xpath = " | ".join(xpaths)
        limits.check_xpath(xpath, ctx.session.server.limits, what="The XPath equivalent of the subtree filter")
        return xpath
    if ftype == "xpath":
        select = element.get("select")
        if select is None:
            raise missing_attribute("select", "filter", error_type="protocol")
        return xpath_to_module_prefixes(ctx.ly, select, namespace_map(ctx.rpc.raw))
    raise bad_attribute("type", "filter", f'Unknown filter type "{ftype}".')


def filter_xpath(ctx: OpContext) -> str | None:
    return filter_from_element(ctx, ctx.rpc.op.find(qname(BASE_NS, "filter")))


def read_xml(
    ctx: OpContext,
    ds: str,
    xpath: str | None,
    wd: str | None,
    *,
    max_depth: int = 0,
    no_state: bool = False,
    no_config: bool = False,
) -> str:
    """The data of `ds` selected by `xpath`, printed by libyang; NACM-filtered, and no hidden node influences what
    a filter selects (`mgmt.filtered_read`)."""
    if xpath is None:
        return ""
    with filtered_read.read(ctx.sr, ds, xpath, max_depth=max_depth, no_state=no_state, no_config=no_config) as tree:
        return datastore.print_xml(tree, wd) if tree is not None else ""


_ANY_TEXT_KINDS = (ly_lib.LYD_ANYDATA_STRING, ly_lib.LYD_ANYDATA_XML, ly_lib.LYD_ANYDATA_JSON)


def anyxml_text(node: libyang.DNode) -> str | None:
    """The content of an anyxml/anydata node as XML text; None when it has none.

    Not libyang-python's `value()`: it prints without LYD_PRINT_KEEPEMPTYCONT, so an edit made only of empty
    containers (`<client nc:operation="delete"/>`) came out as no content and was answered <ok/> having done
    nothing; and it never frees the string libyang printed (a leak per request).
    """
    anyn = ly_ffi.cast("struct lyd_node_any *", node.cdata)
    if anyn.value_type in _ANY_TEXT_KINDS:
        return None if anyn.value.str == ly_ffi.NULL else str(ly_ffi.string(anyn.value.str).decode())
    if anyn.value_type != ly_lib.LYD_ANYDATA_DATATREE or anyn.value.tree == ly_ffi.NULL:
        return None
    buf = ly_ffi.new("char **")
    flags = ly_lib.LYD_PRINT_WITHSIBLINGS | ly_lib.LYD_PRINT_KEEPEMPTYCONT | ly_lib.LYD_PRINT_SHRINK
    if ly_lib.lyd_print_mem(buf, anyn.value.tree, ly_lib.LYD_XML, flags) != ly_lib.LY_SUCCESS:
        raise node.context.error("cannot print the content")
    if buf[0] == ly_ffi.NULL:
        return None
    try:
        return str(ly_ffi.string(buf[0]).decode())
    finally:
        ly_lib.free(buf[0])


def parse_config(ctx: OpContext, node_path: str) -> libyang.DNode | None:
    """The YANG data of an anyxml/anydata parameter (edit content), parsed by libyang; caller frees."""
    node = ctx.op.find_path(node_path)
    if node is None:
        raise missing_element(node_path)
    text = anyxml_text(node)
    if not text or not str(text).strip():
        return None
    try:
        return ctx.ly.parse_data_mem(str(text), "xml", parse_only=True, strict=True, no_state=True)
    except libyang.LibyangError as exc:
        from singbox_agent.mgmt.errors import MgmtException, from_libyang
        from dataclasses import replace

        err = from_libyang(exc)
        if err.error_tag in ("unknown-element", "unknown-namespace", "invalid-value", "missing-element", "bad-attribute"):
            err = replace(err, error_type="application" if err.error_tag != "bad-attribute" else "protocol")
        raise MgmtException(err) from None


def with_defaults_leaf(ctx: OpContext, name: str) -> str | None:
    return datastore.check_with_defaults(leaf(ctx, name))

"""Helpers shared by the NETCONF tests: edit content, reading running directly, sending notifications."""

from __future__ import annotations

from typing import Any

import sysrepo
from ncclient.operations.rpc import RPCError

from tests.netconf.conftest import SBX_NS

NC = "urn:ietf:params:xml:ns:netconf:base:1.0"


def cfg(inner: str) -> str:
    return f'<config xmlns="{NC}"><singbox xmlns="{SBX_NS}" xmlns:nc="{NC}">{inner}</singbox></config>'


def endpoint(name: str, extra: str = "", op: str = "") -> str:
    attr = f' nc:operation="{op}"' if op else ""
    return f"<client><endpoint{attr}><name>{name}</name><address>198.18.0.1</address>{extra}</endpoint></client>"


def running(xpath: str = "/vpp-singbox:singbox") -> dict[str, Any]:
    with sysrepo.SysrepoConnection() as conn:
        sess = conn.start_session("running")
        try:
            return dict(sess.get_data(xpath))
        except sysrepo.SysrepoNotFoundError:
            return {}


def endpoints() -> list[str]:
    data = running()
    return sorted(e["name"] for e in data.get("singbox", {}).get("client", {}).get("endpoint", []))


def sbx_filter(inner: str = "") -> tuple[str, str]:
    return ("subtree", f'<singbox xmlns="{SBX_NS}">{inner}</singbox>')


def error_tag(exc: RPCError) -> str:
    return str(exc.tag)


def _send(sess: Any, name: str, endpoint_name: str) -> None:
    with sess.get_ly_ctx() as ctx:
        snode = next(n for n in ctx.get_module("vpp-singbox").notifications() if n.name() == name)
        leaves = {c.name(): c for c in snode.children()}
    values: dict[str, Any] = {}
    if "name" in leaves:
        values["name"] = endpoint_name
    elif "endpoint" in leaves:
        values["endpoint"] = endpoint_name
    for leaf_name, node in leaves.items():
        if leaf_name in values:
            continue
        if getattr(node, "mandatory", lambda: False)():
            values[leaf_name] = _sample_value(node)
    sess.notification_send(f"/vpp-singbox:{name}", values)


def _sample_value(node: Any) -> Any:
    base = node.type().basename()
    if base in ("string",):
        return "x"
    if base.startswith("uint") or base.startswith("int"):
        return 1
    if base == "boolean":
        return True
    if base == "enumeration":
        return next(iter(node.type().enums()))[0]
    return "x"

"""Resource limits of every request, checked before libyang or sysrepo see it (sans-IO).

The limits are configuration: `/vpp-singbox-netconf-server:netconf-server/limits` (module
`agent/singbox_agent/yang/vpp-singbox-netconf-server@*.yang`), defaults read from that schema. Why each exists:
libyang parses a filter's XPath when it validates the `<rpc>` and sysrepo evaluates it; 30,000 predicates made the
process grow to 3 GB and die with SIGSEGV, and a subtree filter of 3,000 sibling content matches became an XPath
union whose every member repeated every predicate (1.6 GB). So the message size is bounded by the framer, XML depth
and element count while the envelope is parsed (`messages.parse_xml`), and filters (`check_request`) before the
`<rpc>` goes to libyang; a request beyond a limit costs milliseconds and gets `too-big` (size) or `resource-denied`
with the limit's name.
"""

from __future__ import annotations

import dataclasses
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from typing import Any

from singbox_agent.mgmt.errors import MgmtException, resource_denied, too_big

MODULE = "vpp-singbox-netconf-server"
XPATH = f"/{MODULE}:netconf-server/limits"

_LITERAL = re.compile(r"'[^']*'|\"[^\"]*\"")
_FILTERS = frozenset({"filter", "subtree-filter"})


@dataclass(frozen=True)
class Limits:
    """One field per leaf of the `limits` container (leaf name with `_` for `-`). The values here are only what a
    server uses before it could read the schema; `from_schema` gives the YANG defaults."""

    max_message_size: int = 64 * 1024 * 1024
    max_xml_depth: int = 64
    max_elements: int = 1_000_000
    max_xpath_length: int = 262144
    max_xpath_predicates: int = 4096
    max_xpath_nesting: int = 64
    max_subtree_filter_nodes: int = 10000
    max_reply_size: int = 256 * 1024 * 1024

    @classmethod
    def from_schema(cls, ctx: Any) -> Limits:
        """The defaults of the YANG module (the built-in values when it is not installed)."""
        module = ctx.get_module(MODULE)
        if module is None:
            return cls()
        values: dict[str, int] = {}
        container = next(iter(ctx.find_path(XPATH)), None)
        for node in container.children() if container is not None else ():
            default = node.default() if hasattr(node, "default") else None
            if default is not None:
                values[node.name().replace("-", "_")] = int(default)
        return dataclasses.replace(cls(), **{k: v for k, v in values.items() if k in _FIELDS})

    def with_config(self, config: dict[str, Any]) -> Limits:
        """These limits overridden by the leaves set in `config` (the `limits` container as a dict)."""
        return dataclasses.replace(self, **{k.replace("-", "_"): int(v) for k, v in config.items()
                                            if k.replace("-", "_") in _FIELDS})


_FIELDS = frozenset(f.name for f in dataclasses.fields(Limits))


def _denied(limit: str, message: str) -> MgmtException:
    exc = resource_denied(f"{message} (limit {limit} in {XPATH}).", error_type="protocol")
    return exc


def message_too_big(size: int, limits: Limits) -> MgmtException:
    return too_big(f"The request of {size} bytes or more exceeds max-message-size, {limits.max_message_size} bytes "
                   f"({XPATH}).", error_type="rpc")


def reply_too_big(size: int, limits: Limits) -> MgmtException:
    return too_big(f"The reply of {size} bytes exceeds max-reply-size, {limits.max_reply_size} bytes ({XPATH}).",
                   error_type="application")


def depth_exceeded(limits: Limits) -> MgmtException:
    return _denied("max-xml-depth", f"The request nests elements deeper than {limits.max_xml_depth}")


def elements_exceeded(limits: Limits) -> MgmtException:
    return _denied("max-elements", f"The request has more than {limits.max_elements} elements")


def check_xpath(expression: str, limits: Limits, *, what: str = "The XPath filter", length: bool = True) -> None:
    """:raises MgmtException: resource-denied when `expression` is beyond a limit (`length`: its length too)."""
    if length and len(expression) > limits.max_xpath_length:
        raise _denied("max-xpath-length", f"{what} is {len(expression)} characters long, more than "
                                          f"{limits.max_xpath_length}")
    bare = _LITERAL.sub("''", expression)
    predicates = bare.count("[")
    if predicates > limits.max_xpath_predicates:
        raise _denied("max-xpath-predicates", f"{what} has {predicates} predicates, more than "
                                              f"{limits.max_xpath_predicates}")
    depth = deepest = 0
    for ch in bare:
        if ch in "[(":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in "])":
            depth -= 1
    if deepest > limits.max_xpath_nesting:
        raise _denied("max-xpath-nesting", f"{what} nests brackets and parentheses {deepest} deep, more than "
                                           f"{limits.max_xpath_nesting}")


def check_request(op: ET.Element, limits: Limits, raw: bytes = b"") -> None:
    """Every filter of an operation (`filter`, get-data's `subtree-filter` and `xpath-filter`, in any namespace)
    within the limits, and so every other value: libyang compiles any value of an XPath type (a NACM rule's `path`,
    a `must` in an edit of ietf-netconf-acm...) when it parses the request, so no text or attribute may carry more
    predicates or deeper nesting than a filter may. :raises MgmtException: resource-denied."""
    if raw.count(b"[") > limits.max_xpath_predicates or raw.count(b"[") + raw.count(b"(") > limits.max_xpath_nesting:
        _check_values(op, limits)  # rare: most requests have fewer brackets in all than one value may have
    if raw and b"filter" not in raw:
        return  # no element named *filter: an edit of 10,000 entries need not be walked in Python
    for el in op.iter():
        local = el.tag.rpartition("}")[2]
        if local in _FILTERS:
            nodes = sum(1 for _ in el.iter()) - 1
            if nodes > limits.max_subtree_filter_nodes:
                raise _denied("max-subtree-filter-nodes", f"The subtree filter has {nodes} elements, more than "
                                                          f"{limits.max_subtree_filter_nodes}")
            select = el.get("select")
            if select is not None:
                check_xpath(select, limits)
        elif local == "xpath-filter":
            check_xpath(el.text or "", limits)


def _check_values(op: ET.Element, limits: Limits) -> None:
    for el in op.iter():
        for value in (el.text, *el.attrib.values()):
            if value and ("[" in value or "(" in value):
                check_xpath(value, limits, what="A value in the request", length=False)

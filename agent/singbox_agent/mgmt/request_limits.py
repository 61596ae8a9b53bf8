"""Resource limits of a client's request, shared by the NETCONF and RESTCONF servers (sans-IO).

Each server configures them in its own settings module (`/vpp-singbox-netconf-server:netconf-server/limits`,
`/vpp-singbox-restconf-server:restconf-server/limits`), with the same leaf names and defaults where they mean the
same; defaults are read from the schema. Why they exist: libyang compiles an XPath when it validates a filter (or
parses any value of an XPath-based type) and sysrepo evaluates it; 30,000 predicates in one filter made a server
grow to 3 GB and die, and a subtree filter of 3,000 sibling content matches became an XPath union whose every
member repeated every predicate (1.6 GB). A data tree nested deep enough exhausts a recursive parser. So every
XPath, subtree filter and request tree a client hands over is measured here, in time linear in its size, before
libyang or sysrepo see it: beyond a limit the request gets `resource-denied` naming the limit and where it is
configured, and nothing happens.

What stays with each server is its framing: NETCONF's message size, XML envelope and reply size
(`netconf/limits.py`), RESTCONF's body and header sizes and the body trees (`restconf/limits.py`).
"""

from __future__ import annotations

import dataclasses
import re
import xml.parsers.expat
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, ClassVar, Self

from singbox_agent.mgmt.errors import MgmtException, resource_denied

_LITERAL = re.compile(r"'[^']*'|\"[^\"]*\"")


@dataclass(frozen=True)
class RequestLimits:
    """The XPath, subtree-filter, XML-attribute and subscription limits both servers have, one field per leaf of the `limits` container (leaf
    name with `_` for `-`). A server's own limits subclass this with its other leaves and `XPATH`, the container
    every refusal names. The values here are only what a server uses before it could read the schema;
    `from_schema` gives the YANG defaults."""

    XPATH: ClassVar[str] = ""

    max_xpath_length: int = 262144
    max_xpath_predicates: int = 4096
    max_xpath_nesting: int = 64
    max_subtree_filter_nodes: int = 10000
    max_xml_attributes: int = 1024
    max_subscriptions: int = 256

    @classmethod
    def from_schema(cls, ctx: Any) -> Self:
        """The defaults of the YANG module (the built-in values when it is not installed)."""
        if ctx.get_module(cls.XPATH.split(":", 1)[0].lstrip("/")) is None:
            return cls()
        values: dict[str, int] = {}
        container = next(iter(ctx.find_path(cls.XPATH)), None)
        for node in container.children() if container is not None else ():
            default = node.default() if hasattr(node, "default") else None
            if default is not None:
                values[node.name().replace("-", "_")] = int(default)
        return cls().with_config(values)

    def with_config(self, config: dict[str, Any]) -> Self:
        """These limits overridden by the leaves set in `config` (the `limits` container as a dict, leaf names
        with `-` or `_`); leaves that are not limits of this class are ignored."""
        fields = {f.name for f in dataclasses.fields(self)}
        return dataclasses.replace(self, **{k.replace("-", "_"): int(v) for k, v in config.items()
                                            if k.replace("-", "_") in fields})


def denied(limits: RequestLimits, limit: str, message: str) -> MgmtException:
    """resource-denied: `message` and the limit (a leaf name) beyond which the request went."""
    return resource_denied(f"{message} (limit {limit} in {limits.XPATH}).", error_type="protocol")


def check_subscriptions(running: int, limits: RequestLimits, what: str = "subscriptions") -> None:
    """One more subscription beside `running` ones within max-subscriptions: each holds a sysrepo session or
    subscription with threads of its own (one per module with notifications, ~390 KiB a RESTCONF stream), so an
    authenticated client could otherwise open them until memory or threads ran out.
    :raises MgmtException: resource-denied."""
    if running >= limits.max_subscriptions:
        raise denied(limits, "max-subscriptions", f"The server runs {running} {what}, its most")


def check_xpath(expression: str, limits: RequestLimits, *, what: str = "The XPath filter",
                length: bool = True) -> None:
    """An XPath `expression` within max-xpath-predicates and max-xpath-nesting (and max-xpath-length when
    `length`): brackets inside string literals do not count. :raises MgmtException: resource-denied."""
    if length and len(expression) > limits.max_xpath_length:
        raise denied(limits, "max-xpath-length", f"{what} is {len(expression)} characters long, more than "
                                                 f"{limits.max_xpath_length}")
    bare = _LITERAL.sub("''", expression)
    predicates = bare.count("[")
    if predicates > limits.max_xpath_predicates:
        raise denied(limits, "max-xpath-predicates", f"{what} has {predicates} predicates, more than "
                                                     f"{limits.max_xpath_predicates}")
    depth = deepest = 0
    for ch in bare:
        if ch in "[(":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in "])":
            depth -= 1
    if deepest > limits.max_xpath_nesting:
        raise denied(limits, "max-xpath-nesting", f"{what} nests brackets and parentheses {deepest} deep, more "
                                                  f"than {limits.max_xpath_nesting}")


def may_hold_xpath_beyond(text: str | bytes, limits: RequestLimits) -> bool:
    """Whether some value in `text` (a whole request) could exceed the XPath limits: only then need its values be
    checked one by one (`check_values`) — most requests have fewer brackets in all than one value may have."""
    brackets = text.count("[") if isinstance(text, str) else text.count(b"[")
    parens = text.count("(") if isinstance(text, str) else text.count(b"(")
    return brackets > limits.max_xpath_predicates or brackets + parens > limits.max_xpath_nesting


def check_values(values: Iterable[str | None], limits: RequestLimits) -> None:
    """Every value of a request (text, attribute) within the XPath predicate and nesting limits: libyang compiles
    any value of an XPath-based type (an instance-identifier, a `must` in an edit of ietf-netconf-acm...) when it
    parses the request, so no value may carry more than a filter may. :raises MgmtException: resource-denied."""
    for value in values:
        if value and ("[" in value or "(" in value):
            check_xpath(value, limits, what="A value in the request", length=False)


def xml_attributes_exceeded(count: int, limits: RequestLimits) -> MgmtException:
    return denied(limits, "max-xml-attributes", f"An element of the request has {count} attributes and namespace "
                                                f"declarations, more than {limits.max_xml_attributes}")


def check_xml_attributes(data: bytes, limits: RequestLimits) -> None:
    """No element of the XML document `data` with more attributes (namespace declarations included) than
    max-xml-attributes: libyang's XML parser takes time quadratic in them (20,000 declarations on one element:
    3.5 s; 150,000 held a server for minutes). A document is walked only when it could hold such an element: more
    `=` in all than the limit, and a run between `<` and `>` long enough for that many attributes (` a=""` each:
    a 10,000-entry edit is not walked); one that is not well-formed is left to the parser that reports it.
    :raises MgmtException: resource-denied."""
    if data.count(b"=") <= limits.max_xml_attributes or \
            re.search(rb"<[^<>]{%d}" % (5 * limits.max_xml_attributes), data) is None:
        return

    def start(_name: str, attrs: dict[str, str]) -> None:
        if len(attrs) > limits.max_xml_attributes:
            raise xml_attributes_exceeded(len(attrs), limits)

    parser = xml.parsers.expat.ParserCreate()
    parser.StartElementHandler = start
    try:
        parser.Parse(data, True)
    except xml.parsers.expat.ExpatError:
        return


def check_subtree_filter(nodes: int, limits: RequestLimits, what: str = "The subtree filter") -> None:
    """A subtree filter of `nodes` elements (its own element not counted) within max-subtree-filter-nodes."""
    if nodes > limits.max_subtree_filter_nodes:
        raise denied(limits, "max-subtree-filter-nodes", f"{what} has {nodes} elements, more than "
                                                         f"{limits.max_subtree_filter_nodes}")

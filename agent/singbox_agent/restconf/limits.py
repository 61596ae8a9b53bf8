"""The RESTCONF server's request limits (sans-IO): `/vpp-singbox-restconf-server:restconf-server/limits`.

The XPath and subtree-filter limits are the NETCONF server's, shared (`mgmt/request_limits.py`, which says why
they exist). RESTCONF takes an XPath or a tree from a client in these places, each checked here or with these
limits before libyang or sysrepo see it:
- a request body (JSON or XML: edits, YANG Patch, RPC input — RFC 8650's establish-/modify-subscription with their
  filters too): its depth (`max-body-depth`), its data nodes (`max-body-nodes`), an XML element's attributes
  (`max-xml-attributes`, shared), and, when the body holds
  brackets enough, every value against the XPath limits (`check_json`, `check_xml`);
- the event streams and dynamic subscriptions running at once (`max-subscriptions`, `check_subscriptions`);
- a subscription's XPath or subtree filter (`dynamic_subscriptions.py`), a stream's `filter` (RFC 8040 §4.8.4)
  and the selection `fields` becomes (§4.8.3: its parentheses against max-xpath-nesting, the XPath union it
  becomes against the XPath limits) (`uri.py`).
The HTTP layer's limits of the same container (body and head size, body timeout) are `http_limits.py`'s.
"""

from __future__ import annotations

import re
import xml.parsers.expat
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, ClassVar

from singbox_agent.mgmt.errors import MgmtError, MgmtException
from singbox_agent.mgmt.request_limits import (
    RequestLimits, check_values, denied, may_hold_xpath_beyond, xml_attributes_exceeded,
)

MODULE = "vpp-singbox-restconf-server"
XPATH = f"/{MODULE}:restconf-server/limits"

_XML_DECLARATION = re.compile(r"^\s*<\?xml[^>]*\?>")
_CONTAINERS = (dict, list)


@dataclass(frozen=True)
class RestconfLimits(RequestLimits):
    """The shared limits and the body-tree limits, one field per leaf of the `limits` container."""

    XPATH: ClassVar[str] = XPATH

    max_body_depth: int = 64
    max_body_nodes: int = 1_000_000


def _too_deep(limits: RestconfLimits) -> MgmtException:
    return denied(limits, "max-body-depth", f"The request body nests data nodes deeper than {limits.max_body_depth}")


def _too_many(limits: RestconfLimits) -> MgmtException:
    return denied(limits, "max-body-nodes", f"The request body has more than {limits.max_body_nodes} data nodes")


def check_json(doc: Any, text: str, limits: RestconfLimits) -> None:
    """A parsed JSON body (`doc`, from `text`) within the limits. Depth counts data nodes as RFC 7951 encodes them:
    an object member is one level below its object, and an array's members (list entries, leaf-list values) are
    at the level of the member that holds the array. Nodes: every member and array item. Iterative: a body
    libyang refuses as too deep must not exhaust this either. :raises MgmtException: resource-denied."""
    nodes = 0
    stack: list[tuple[Any, int]] = [(doc, 0)] if isinstance(doc, _CONTAINERS) else []
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict):
            if not value:
                continue
            depth += 1
            if depth > limits.max_body_depth:
                raise _too_deep(limits)
            items: Any = value.values()
        else:  # a list: its items at its own level
            items = value
        nodes += len(value)
        if nodes > limits.max_body_nodes:
            raise _too_many(limits)
        stack.extend((item, depth) for item in items if isinstance(item, _CONTAINERS))
    if may_hold_xpath_beyond(text, limits):
        check_values(_json_strings(doc), limits)


def _json_strings(doc: Any) -> Iterator[str]:
    """Every member name and string value of a parsed JSON document."""
    stack = [doc]
    while stack:
        value = stack.pop()
        if isinstance(value, dict):
            yield from value
            stack.extend(value.values())
        elif isinstance(value, list):
            stack.extend(value)
        elif isinstance(value, str):
            yield value


def _xml_events(text: str, limits: RestconfLimits, want_values: bool) -> Iterator[str]:
    """Walks an XML body with expat (no tree kept), counting as it goes; yields the text and attribute values
    when `want_values`. A body that is not well-formed is malformed-message here: libyang's parser is lenient
    where expat is not (it took an element with an attribute twice), and a walk that stopped early would let the
    rest of such a body past these limits."""
    max_depth, max_nodes, max_attributes = limits.max_body_depth, limits.max_body_nodes, limits.max_xml_attributes
    depth = -1  # the wrapper holding the body's top-level siblings is level 0
    nodes = 0
    found: list[str] = []

    def start(_name: str, attrs: dict[str, str]) -> None:
        nonlocal depth, nodes
        depth += 1
        nodes += 1
        if depth > max_depth:
            raise _too_deep(limits)
        if nodes > max_nodes:
            raise _too_many(limits)
        if len(attrs) > max_attributes:  # namespace declarations included (no namespace processing)
            raise xml_attributes_exceeded(len(attrs), limits)
        if want_values:
            found.extend(attrs.values())

    def end(_name: str) -> None:
        nonlocal depth
        depth -= 1

    parser = xml.parsers.expat.ParserCreate()
    parser.StartElementHandler = start
    parser.EndElementHandler = end
    if want_values:
        parser.CharacterDataHandler = found.append
        parser.buffer_text = True
    body = _XML_DECLARATION.sub("", text, count=1)
    try:
        parser.Parse("<_>", False)
        step = 1 << 16
        for at in range(0, len(body), step):
            parser.Parse(body[at:at + step], False)
            yield from found
            found.clear()
        parser.Parse("</_>", True)
    except xml.parsers.expat.ExpatError as exc:
        raise MgmtException(MgmtError("rpc", "malformed-message",
                                      f"The request body is not well-formed XML: {_expat_error(exc)}")) from None
    yield from found


def _expat_error(exc: xml.parsers.expat.ExpatError) -> str:
    """expat's words, its position in the body (the line of the wrapper's opening tag is the body's first)."""
    return f"{xml.parsers.expat.ErrorString(exc.code)} (line {exc.lineno})"


def check_xml(text: str, limits: RestconfLimits) -> None:
    """An XML body within the limits: depth counts elements (the body's top-level ones at 1), nodes every element;
    no element with more than max-xml-attributes attributes and namespace declarations (libyang parses them in
    quadratic time). :raises MgmtException: resource-denied."""
    want_values = may_hold_xpath_beyond(text, limits)
    values = _xml_events(text, limits, want_values)
    if want_values:
        check_values(values, limits)
    else:
        for _ in values:
            pass

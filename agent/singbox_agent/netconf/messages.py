"""The NETCONF envelope: parsing `<hello>` and `<rpc>`, building `<hello>`, `<rpc-reply>` and `<notification>`.

Only the envelope is handled here (xml.etree for reading, escaped text for writing); YANG data inside it is parsed and
printed by libyang in the operations. Document type declarations are refused outright: NETCONF never needs them and
they are the door to entity-expansion attacks.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from singbox_agent.mgmt.errors import YANG_NS, MgmtError, MgmtException, malformed_message, missing_attribute
from singbox_agent.netconf import limits
from singbox_agent.netconf.limits import Limits

BASE_NS = "urn:ietf:params:xml:ns:netconf:base:1.0"
BASE_1_0 = "urn:ietf:params:netconf:base:1.0"
BASE_1_1 = "urn:ietf:params:netconf:base:1.1"
NOTIF_NS = "urn:ietf:params:xml:ns:netconf:notification:1.0"

_DTD = re.compile(rb"<!(?:DOCTYPE|ENTITY)", re.IGNORECASE)


def escape(text: str) -> str:
    """`text` as XML character data (&, <, >). Not xml.sax.saxutils': importing it pulls in urllib.request,
    http.client and email, ~1 MB of the server's memory for three replacements."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def quoteattr(value: str) -> str:
    """`value` as a double-quoted XML attribute value (line ends and tabs kept as character references)."""
    escaped = escape(value).replace('"', "&quot;").replace("\n", "&#10;").replace("\r", "&#13;").replace("\t", "&#9;")
    return f'"{escaped}"'


def qname(ns: str, name: str) -> str:
    return f"{{{ns}}}{name}"


def split_qname(tag: str) -> tuple[str, str]:
    """`{ns}name` -> (ns, name); no namespace -> ("", name)."""
    if tag.startswith("{"):
        ns, _, name = tag[1:].partition("}")
        return ns, name
    return "", tag


class _LimitExceeded(Exception):
    def __init__(self, error: MgmtException, root_attributes: dict[str, str]) -> None:
        super().__init__(error.error.error_message)
        self.error = error
        self.root_attributes = root_attributes


class _LimitedBuilder(ET.TreeBuilder):
    """ElementTree's builder, stopping the parse as soon as the nesting or the element count passes its limit."""

    def __init__(self, limits: Limits) -> None:
        super().__init__()
        self._limits = limits
        self._depth = 0
        self._count = 0
        self._root_attributes: dict[str, str] | None = None

    def start(self, tag: str, attrs: dict[str, str]) -> ET.Element:
        self._depth += 1
        self._count += 1
        if self._root_attributes is None:
            self._root_attributes = dict(attrs)
        if self._depth > self._limits.max_xml_depth:
            raise _LimitExceeded(limits.depth_exceeded(self._limits), self._root_attributes)
        if self._count > self._limits.max_elements:
            raise _LimitExceeded(limits.elements_exceeded(self._limits), self._root_attributes)
        return super().start(tag, attrs)

    def end(self, tag: str) -> ET.Element:
        self._depth -= 1
        return super().end(tag)


def _check_depth(root: ET.Element, bounds: Limits) -> None:
    level, depth = [root], 1
    while level:
        if depth > bounds.max_xml_depth:
            raise _LimitExceeded(limits.depth_exceeded(bounds), dict(root.attrib))
        level = [child for element in level for child in element]
        depth += 1


def parse_xml(data: bytes, bounds: Limits | None = None) -> ET.Element:
    """Parse one well-formed XML document or raise malformed-message; with `bounds`, resource-denied as soon as its
    nesting or element count passes them (the reply's attributes then come from `_LimitExceeded`)."""
    if _DTD.search(data):
        raise malformed_message("Document type declarations are not allowed.")
    try:
        # Fewer tags than the element limit cannot break it: the C builder, and the depth checked on its tree level
        # by level (C loops; a Python callback per element cost a 10,000-entry edit 30 ms). The tree is no bigger
        # than one of that many flat elements, which the limit allows anyway. Beyond, the parse stops at the limit.
        if bounds is None or data.count(b"<") <= bounds.max_elements:
            root = ET.fromstring(data)
            if bounds is not None and data.count(b"<") > bounds.max_xml_depth:
                _check_depth(root, bounds)
            return root
        parser = ET.XMLParser(target=_LimitedBuilder(bounds))
        parser.feed(data)
        return parser.close()
    except ET.ParseError as exc:
        raise malformed_message(f"XML is not well-formed: {exc}.") from None
    except (LookupError, ValueError) as exc:  # e.g. an unknown encoding in the XML declaration
        raise malformed_message(f"XML cannot be read: {exc}.") from None


@dataclass
class Hello:
    capabilities: list[str]
    session_id: str | None = None


def parse_hello(data: bytes, bounds: Limits | None = None) -> Hello:
    root = parse_xml(data, bounds)
    if root.tag != qname(BASE_NS, "hello"):
        raise malformed_message("Expected <hello> in the base namespace.")
    caps_el = root.find(qname(BASE_NS, "capabilities"))
    if caps_el is None:
        raise malformed_message("<hello> without <capabilities>.")
    caps = [(c.text or "").strip() for c in caps_el.findall(qname(BASE_NS, "capability"))]
    sid = root.find(qname(BASE_NS, "session-id"))
    return Hello(caps, sid.text if sid is not None else None)


def build_hello(capabilities: list[str], session_id: int) -> bytes:
    caps = "".join(f"<capability>{escape(c)}</capability>" for c in capabilities)
    return (
        f'<?xml version="1.0" encoding="UTF-8"?><hello xmlns="{BASE_NS}"><capabilities>{caps}</capabilities>'
        f"<session-id>{session_id}</session-id></hello>"
    ).encode()


@dataclass
class Rpc:
    """One parsed `<rpc>`: its attributes (echoed in the reply), the operation element, and the raw message."""

    message_id: str
    attributes: dict[str, str]
    op: ET.Element
    raw: bytes
    namespaces: dict[str, str] = field(default_factory=dict)

    @property
    def op_ns(self) -> str:
        return split_qname(self.op.tag)[0]

    @property
    def op_name(self) -> str:
        return split_qname(self.op.tag)[1]


class RpcParseError(Exception):
    """A message that cannot be answered normally: the reply carries `attributes` (possibly none) and `errors`."""

    def __init__(self, attributes: dict[str, str], errors: tuple[MgmtError, ...]) -> None:
        super().__init__(errors[0].error_message)
        self.attributes = attributes
        self.errors = errors


def parse_rpc(data: bytes, bounds: Limits | None = None) -> Rpc:
    """:raises RpcParseError: malformed XML, beyond `bounds`, not an `<rpc>`, no message-id, not exactly one
    operation."""
    try:
        root = parse_xml(data, bounds)
    except MgmtException as exc:
        raise RpcParseError({}, exc.errors) from None
    except _LimitExceeded as exc:
        raise RpcParseError(exc.root_attributes, exc.error.errors) from None
    attributes = dict(root.attrib)
    if b"xmlns:" in data:
        attributes.update(_root_declarations(data))
    if root.tag != qname(BASE_NS, "rpc"):
        ns, name = split_qname(root.tag)
        if name == "rpc":
            err = MgmtError("rpc", "unknown-namespace", f'Unknown namespace "{ns}" of element "rpc".',
                            info={"bad-element": "rpc", "bad-namespace": ns})
        else:
            err = malformed_message(f'Expected <rpc> in the base namespace, got "{name}".').error
        raise RpcParseError(attributes, (err,))
    if "message-id" not in attributes:
        raise RpcParseError(attributes, missing_attribute("message-id", "rpc").errors)
    if (root.text or "").strip():
        raise RpcParseError(attributes, malformed_message("Text content directly in <rpc>.").errors)
    children = list(root)
    if len(children) != 1:
        what = "no operation" if not children else f"{len(children)} operations"
        raise RpcParseError(attributes, malformed_message(f"<rpc> must hold exactly one operation, it holds {what}.").errors)
    return Rpc(attributes["message-id"], attributes, children[0], data)


# The start tag of the document's root element, and the prefixed namespace declarations among its attributes.
_ROOT_START = re.compile(rb"""<(?:[A-Za-z_][\w.-]*:)?rpc((?:\s+[^\s=<>/]+\s*=\s*(?:"[^"<]*"|'[^'<]*'))*)\s*/?>""")
_DECLARATION = re.compile(rb"""xmlns:([^\s=]+)\s*=\s*(?:"([^"]*)"|'([^']*)')""")
# bound to the prefix xml by definition, which may not be declared (a0:lang with xmlns:a0 bound to it made the reply
# to <rpc xml:lang="en"> a document no XML parser accepts)
XML_NS = "http://www.w3.org/XML/1998/namespace"
_ENTITIES = (("&lt;", "<"), ("&gt;", ">"), ("&quot;", '"'), ("&apos;", "'"), ("&amp;", "&"))


def _root_declarations(data: bytes) -> dict[str, str]:
    """The `xmlns:prefix` declarations of the `<rpc>` start tag, as `{"xmlns:prefix": namespace}`: RFC 6241 4.1
    returns every attribute of `<rpc>` unmodified in the reply, "This includes any "xmlns" attributes" (its
    example's `xmlns:ex` and `ex:user-id`); xml.etree keeps none of them."""
    start = _ROOT_START.search(data, 0, 1 << 20)
    if start is None:
        return {}
    out: dict[str, str] = {}
    for m in _DECLARATION.finditer(start.group(1)):
        value = (m.group(2) if m.group(2) is not None else m.group(3)).decode(errors="replace")
        for entity, char in _ENTITIES:
            value = value.replace(entity, char)
        out["xmlns:" + m.group(1).decode(errors="replace")] = value
    return out


def _attributes_xml(attributes: dict[str, str]) -> str:
    """The rpc's attributes on the reply: its own `xmlns:p` declarations (`_root_declarations`) kept, and each
    namespaced attribute under the prefix the rpc gave its namespace (one of its own making otherwise)."""
    out: list[str] = []
    declared = {value: name[6:] for name, value in attributes.items() if name.startswith("xmlns:")}
    decls: dict[str, str] = {}
    for name, value in attributes.items():
        ns, local = split_qname(name)
        if ns:
            prefix = "xml" if ns == XML_NS else declared.get(ns) or decls.get(ns)
            if prefix is None:  # a name neither the rpc nor an earlier attribute uses
                n = len(decls)
                while f"xmlns:a{n}" in attributes or f"a{n}" in decls.values():
                    n += 1
                prefix = decls[ns] = f"a{n}"
            out.append(f" {prefix}:{local}={quoteattr(value)}")
        else:
            out.append(f" {local}={quoteattr(value)}")
    out.extend(f" xmlns:{p}={quoteattr(ns)}" for ns, p in decls.items())
    return "".join(out)


def reply(attributes: dict[str, str], body: str) -> bytes:
    """An `<rpc-reply>` echoing every attribute of the `<rpc>` (RFC 6241 section 4.2) around `body`."""
    return f'<rpc-reply xmlns="{BASE_NS}"{_attributes_xml(attributes)}>{body}</rpc-reply>'.encode()


def rpc_error_xml(error: MgmtError, namespaces: Mapping[str, str] | None = None,
                  path_namespaces: Callable[[str], Mapping[str, str]] | None = None) -> str:
    """One rpc-error; `namespaces` (prefix -> namespace) are declared on its error-path, whose prefixes are module
    names (RFC 6241 section 4.3: the path is read with the namespace declarations in scope). The error-info elements
    of RFC 7950 section 15 (`yang_info`) are in the YANG namespace, a data path among them with its prefixes
    declared (`path_namespaces(path)`)."""
    parts = [f"<error-type>{escape(error.error_type)}</error-type>", f"<error-tag>{escape(error.error_tag)}</error-tag>",
             f"<error-severity>{escape(error.error_severity)}</error-severity>"]
    if error.error_app_tag:
        parts.append(f"<error-app-tag>{escape(error.error_app_tag)}</error-app-tag>")
    if error.error_path:
        decls = "".join(f" xmlns:{p}={quoteattr(ns)}" for p, ns in (namespaces or {}).items())
        parts.append(f"<error-path{decls}>{escape(error.error_path)}</error-path>")
    if error.error_message:
        parts.append(f'<error-message xml:lang="en">{escape(error.error_message)}</error-message>')
    if error.info or error.yang_info:
        info = "".join(f"<{k}>{escape(v)}</{k}>" for k, v in error.info.items())
        for k, v in error.yang_info:
            decls = "".join(f" xmlns:{p}={quoteattr(ns)}" for p, ns in
                            (path_namespaces(v) if path_namespaces and v.startswith("/") else {}).items())
            info += f'<{k} xmlns="{YANG_NS}"{decls}>{escape(v)}</{k}>'
        parts.append(f"<error-info>{info}</error-info>")
    return "<rpc-error>" + "".join(parts) + "</rpc-error>"


def reply_errors(attributes: dict[str, str], errors: tuple[MgmtError, ...] | list[MgmtError],
                 namespaces: Callable[[str], Mapping[str, str]] | None = None) -> bytes:
    """`namespaces`: an error-path's prefix declarations (mgmt.errors.path_namespaces)."""
    return reply(attributes, "".join(
        rpc_error_xml(e, namespaces(e.error_path) if namespaces and e.error_path else None, namespaces)
        for e in errors))


def notification(event_time: str, content_xml: str) -> bytes:
    return (
        f'<notification xmlns="{NOTIF_NS}"><eventTime>{escape(event_time)}</eventTime>{content_xml}</notification>'
    ).encode()

"""Parameter handling shared by the operation modules: datastores, filters, with-defaults, reading data."""

from __future__ import annotations

import io
import re
from dataclasses import replace
import xml.etree.ElementTree as ET
from typing import Any

import libyang
from _libyang import ffi as ly_ffi
from _libyang import lib as ly_lib

from singbox_agent.mgmt import datastore, filtered_read, read_gate
from singbox_agent.mgmt.errors import (
    YANG_NS,
    MgmtError,
    MgmtException,
    bad_attribute,
    bad_element,
    from_libyang,
    in_use,
    invalid_value,
    missing_attribute,
    missing_element,
    operation_not_supported,
    restriction_app_tag,
)
from singbox_agent.netconf import limits
from singbox_agent.netconf.dispatch import OpContext
from singbox_agent.netconf.messages import BASE_NS, qname

WD_NS = "urn:ietf:params:xml:ns:yang:ietf-netconf-with-defaults"
ALL = "/*"


def parameter(ctx: OpContext, name: str) -> Any:
    """The operation's parameter `name` (a path for a nested or prefixed one). A plain name is looked up among the
    operation's children directly: `find_path` compiles an XPath each time, several times per edit-config. None
    when absent; else a libyang.DNode of the node's kind (DLeaf, DContainer, ...)."""
    if "/" in name or ":" in name:
        return ctx.op.find_path(name)
    child = parameters(ctx, (name,)).get(name)
    return None if child is None else libyang.DNode.new(ctx.ly, child)


def parameters(ctx: OpContext, names: tuple[str, ...]) -> dict[str, Any]:
    """The operation's parameters among the plain `names` (the operation's module's: an unprefixed name is, as in
    find_path), as libyang `struct lyd_node *`, the first instance of each; absent ones left out. One walk of the
    operation's children for all of them: an edit-config reads five (issue 17: a walk per name was ~6 µs each)."""
    wanted = {name.encode(): name for name in names}
    found: dict[str, Any] = {}
    module = ctx.op.cdata.schema.module
    child = ly_lib.lyd_child(ctx.op.cdata)
    while child != ly_ffi.NULL:
        schema = child.schema
        if schema != ly_ffi.NULL and schema.module == module:
            name = wanted.get(ly_ffi.string(schema.name))
            if name is not None and name not in found:
                found[name] = child
        child = child.next
    return found


def leaf_value(ctx: OpContext, node: Any) -> str | None:
    """The value of a leaf parameter `parameters` found (None when absent), as `leaf` gives it."""
    if node is None:
        return None
    leaf_node: Any = libyang.DNode.new(ctx.ly, node)  # a DLeaf
    value = leaf_node.value()
    return None if value is None else str(value)


def leaf(ctx: OpContext, name: str) -> str | None:
    node = parameter(ctx, name)
    if node is None:
        return None
    value = node.value()
    return None if value is None else str(value)


def flag(ctx: OpContext, name: str) -> bool:
    return parameter(ctx, name) is not None


def datastore_choice(ctx: OpContext, param: str, allowed: tuple[str, ...], *, config_ok: bool = False) -> str:
    """The datastore named in `<param><running/></param>`; "config" for inline `<config>` when allowed."""
    return datastore_in(ctx, param, parameters(ctx, (param,)).get(param), allowed, config_ok=config_ok)


def datastore_in(ctx: OpContext, param: str, node: Any, allowed: tuple[str, ...], *, config_ok: bool = False) -> str:
    """`datastore_choice` of the parameter node `node` (`struct lyd_node *` from `parameters`, None when absent).
    The choice's names are read through cffi, not as libyang.DNode children (~16 µs per edit, issue 17)."""
    if node is None:
        raise missing_element(param)
    kids: list[str] = []
    child = ly_lib.lyd_child(node)
    while child != ly_ffi.NULL:
        if child.schema != ly_ffi.NULL:  # an opaque node is no datastore (DNode.children() skipped it too)
            kids.append(ly_ffi.string(child.schema.name).decode())
        child = child.next
    if not kids:
        raise missing_element(param, message=f'"{param}" names no datastore.')
    if len(kids) > 1:
        # one choice, two of its cases (libyang's parse of an rpc does not validate it; the first one was used):
        # RFC 7950 8.3.1 wants 'bad-element'
        raise bad_element(kids[1], f'"{param}" names more than one datastore ({", ".join(kids)}).',
                          path=f"{libyang.DNode.new(ctx.ly, node).path()}/{kids[1]}")
    name = kids[0]
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
    with (read_gate.gate(read_gate.NETCONF).admit(ctx.session.server.conn, xpath, max_depth),  # a server-wide cap
          filtered_read.read(ctx.sr, ds, xpath, max_depth=max_depth, no_state=no_state, no_config=no_config) as tree):
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


# An element whose nc:operation deletes or removes it and that has no content: `<port nc:operation="delete"/>`.
_EMPTY_DELETE = re.compile(r"""operation\s*=\s*["'](?:delete|remove)["']\s*(?:/>|>\s*</)""")
_DELETES = frozenset({"delete", "remove"})


def parse_config(ctx: OpContext, node_path: str, found: Any = None) -> libyang.DNode | None:
    """The YANG data of an anyxml/anydata parameter (edit content) as a libyang tree; caller frees.

    Parsed once: libyang's parse of the whole `<rpc>` already turned the content into a data tree (leniently: an
    unknown element or a value its type refuses becomes an opaque node, an attribute of no known annotation is
    dropped). When that tree has no opaque or state node and every attribute became metadata, it is the edit: it is
    taken out of the operation's tree and handed on, as netopeer2 hands its parsed anydata to sysrepo. Otherwise the
    content is printed and parsed again strictly, for the precise error (`_strict_parse`).

    A leaf deleted or removed as an empty element (`<port nc:operation="delete"/>`, the usual way) has no value its
    type accepts; libyang keeps such a leaf as an opaque node when asked, and sysrepo's edit matches an opaque node
    to its schema for delete and remove. Any other opaque node (an unknown element, a bad value) gets the strict
    parse's error. Two instances of one node among siblings (two `<log-level>`, two list entries with one key) are
    refused: sysrepo would apply both, the last one winning.

    `found`: the parameter's `struct lyd_node *` when the caller has it from `parameters` (else it is looked up).
    """
    node = libyang.DNode.new(ctx.ly, found) if found is not None else parameter(ctx, node_path)
    if node is None:
        raise missing_element(node_path)
    element: ET.Element | None = ctx.rpc.op
    for name in node_path.split("/"):
        element = next((c for c in element if c.tag.rpartition("}")[2] == name), None) if element is not None else None
    if element is not None:
        _check_attributes(element)
        _check_default_tags(ctx, element)
    parsed = _parsed_content(ctx, node, element) if element is not None else None
    if parsed is None:
        text = anyxml_text(node)
        if not text or not str(text).strip():
            return None
        try:
            strict = _strict_parse(ctx, str(text))
        except MgmtException as exc:
            raise _name_unknown_namespace(exc, element) from None
        if strict is None:
            return None
        tree, twice = strict, _inspect(strict.cdata, lenient=False)[1]
    else:
        tree, twice = parsed
    if twice is not None:
        try:
            node, other_case = twice
            path = libyang.DNode.new(tree.context, node).path()
            name = ly_ffi.string(node.schema.name).decode()
            if other_case is not None:
                raise _two_cases(path, name, other_case)
            raise _twice(path, name)
        finally:
            tree.free()
    if _YANG_NS_BYTES in ctx.rpc.raw:  # insert, key and value are in the YANG namespace
        misplaced = _misplaced_insert(tree)
        if misplaced is not None:
            tree.free()
            raise misplaced
    return tree


_YANG_NS_BYTES = YANG_NS.encode()
_INSERT_ATTRIBUTES = frozenset({b"insert", b"key", b"value"})


def insert_metadata(tree: libyang.DNode) -> list[tuple[Any, bytes, str]]:
    """(node, attribute name, value) of every insert, key and value attribute (RFC 7950 7.8.6, 7.7.9) of an edit."""
    out: list[tuple[Any, bytes, str]] = []
    todo = [ly_lib.lyd_first_sibling(ly_ffi.cast("struct lyd_node *", tree.cdata))]
    while todo:
        node = todo.pop()
        while node != ly_ffi.NULL:
            meta = node.meta if node.schema != ly_ffi.NULL else ly_ffi.NULL
            while meta != ly_ffi.NULL:
                name = ly_ffi.string(meta.name)
                if (name in _INSERT_ATTRIBUTES and meta.annotation != ly_ffi.NULL
                        and ly_ffi.string(meta.annotation.module.name) == b"yang"):
                    out.append((node, name, _meta_value(meta)))
                meta = meta.next
            child = ly_lib.lyd_child(node)
            if child != ly_ffi.NULL:
                todo.append(child)
            node = node.next
    return out


def _misplaced_insert(tree: libyang.DNode) -> MgmtException | None:
    """RFC 7950 8.3.1: "If the attributes "before" and "after" appear in any element that is not a list whose
    "ordered-by" property is "user", the server MUST reply with an "unknown-attribute" <error-tag>" — so with any
    insert, key or value attribute on a node that is not a list or leaf-list ordered by the user (sysrepo ignored
    them: the edit was applied in the system's order and answered <ok/>)."""
    found = insert_metadata(tree)
    given = {(node, name) for node, name, _value in found}
    for node, name, value in found:
        schema = node.schema
        element = ly_ffi.string(schema.name).decode()
        path = libyang.DNode.new(tree.context, node).path()
        if not (schema.nodetype & (ly_lib.LYS_LIST | ly_lib.LYS_LEAFLIST) and schema.flags & ly_lib.LYS_ORDBY_USER):
            attribute = name.decode()
            return MgmtException(MgmtError(
                "application", "unknown-attribute",
                f'Attribute "{attribute}" (YANG namespace) of element "{element}": only a list or leaf-list ordered '
                "by the user takes insert, key and value (RFC 7950 7.7.9, 7.8.6).",
                error_path=path, info={"bad-attribute": attribute, "bad-element": element}))
        # RFC 7950 7.8.6 / 7.7.9: insert "before" or "after" needs the key (list) or value (leaf-list) attribute;
        # RFC 6241 Appendix A: missing-attribute (sysrepo's refusal was operation-failed)
        anchor = b"key" if schema.nodetype == ly_lib.LYS_LIST else b"value"
        if name == b"insert" and value in ("before", "after") and (node, anchor) not in given:
            return missing_attribute(anchor.decode(), element, error_type="application", path=path)
    return None


def _name_unknown_namespace(exc: MgmtException, element: ET.Element | None) -> MgmtException:
    """unknown-namespace with RFC 6241 Appendix A's bad-element: the element of the content in that namespace
    (libyang's message names the namespace only)."""
    err = exc.errors[0]
    namespace = err.info.get("bad-namespace")
    if err.error_tag != "unknown-namespace" or not namespace or element is None:
        return exc
    prefix = f"{{{namespace}}}"
    bad = next((el.tag[len(prefix):] for el in element.iter() if el.tag.startswith(prefix)), None)
    if bad is None:
        return exc
    return MgmtException(replace(err, info={**err.info, "bad-element": bad}), *exc.errors[1:])


# XML attributes of edit content that libyang turns into YANG metadata: RFC 6241's operation, RFC 7950's insert,
# value and key, RFC 6243's default (in its module's namespace, as libyang prints it).
_ANNOTATIONS = frozenset({
    qname(BASE_NS, "operation"),
    *(qname("urn:ietf:params:xml:ns:yang:1", name) for name in ("insert", "value", "key")),
    qname("urn:ietf:params:xml:ns:yang:ietf-netconf-with-defaults", "default"),
})
# RFC 6243's default in the namespace its section 6 gives: no YANG annotation, nothing for the edit to do (it marks
# a value as the default one), accepted and left out once its value was checked to be the default
# (`_check_default_tags`).
_IGNORED_ATTRIBUTES = frozenset({qname("urn:ietf:params:xml:ns:netconf:default:1.0", "default")})


def _check_attributes(element: ET.Element) -> None:
    """:raises MgmtException: unknown-attribute for an attribute of the content that is no YANG annotation.

    libyang's parse of the whole `<rpc>` drops such an attribute without a word (the content of an anyxml is parsed
    leniently), so `<endpoint operation="delete">` — the operation without its namespace — was merged and answered
    <ok/>, and printing that tree for a strict parse could not bring the attribute back."""
    # C loops: most edits have no attribute, or only nc:operation
    if not any(map(ET.Element.keys, element.iter())) or set().union(
            *map(ET.Element.keys, element.iter())) <= _ANNOTATIONS | _IGNORED_ATTRIBUTES:
        return
    for el in element.iter():
        if el is element:
            continue
        for key in el.keys():
            if key in _ANNOTATIONS or key in _IGNORED_ATTRIBUTES:
                continue
            ns, _, name = key[1:].partition("}") if key.startswith("{") else ("", "", key)
            elname = el.tag.rpartition("}")[2]
            where = f'namespace "{ns}"' if ns else "no namespace"
            raise MgmtException(MgmtError(
                "application", "unknown-attribute",
                f'Attribute "{name}" ({where}) of element "{elname}" is no YANG annotation this server knows; an edit '
                f'operation is the attribute "operation" in namespace "{BASE_NS}".',
                info={"bad-attribute": name, "bad-element": elname}))


_DEFAULT_TAGS = frozenset({qname("urn:ietf:params:xml:ns:netconf:default:1.0", "default"), qname(WD_NS, "default")})


def _check_default_tags(ctx: OpContext, element: ET.Element) -> None:
    """:raises MgmtException: invalid-value for a leaf tagged default="true" (RFC 6243 6: as report-all-tagged
    prints it, and a client may send back) whose value is not its schema default — RFC 6243 4.5.2 wants that
    error; it was stored as an explicit value."""
    if not any(key in _DEFAULT_TAGS for el in element.iter() for key in el.keys()):
        return
    modules: dict[str, str | None] = {}

    def walk(el: ET.Element, path: str, parent_module: str | None) -> None:
        for child in el:
            ns, _, name = child.tag[1:].partition("}") if child.tag.startswith("{") else ("", "", child.tag)
            if ns not in modules:
                modules[ns] = datastore.module_by_namespace(ctx.ly, ns) if ns else None
            module = modules[ns] or parent_module
            if module is None:
                continue  # not a module's data: the parse reports it
            step = f"{path}/{name}" if module == parent_module else f"{path}/{module}:{name}"
            tagged = next((child.get(key) for key in _DEFAULT_TAGS if child.get(key) is not None), None)
            if tagged is not None and tagged.strip() in ("true", "1"):
                _check_default_value(ctx, step, name, (child.text or "").strip())
            walk(child, step, module)

    walk(element, "", None)


def _check_default_value(ctx: OpContext, path: str, name: str, text: str) -> None:
    try:
        snode = next(ctx.ly.find_path(path), None)
    except libyang.LibyangError:
        return  # no such node: the parse reports it
    if not isinstance(snode, libyang.SLeaf):
        return
    default = snode.default()
    if isinstance(default, bool):
        same = text == ("true" if default else "false")
    elif isinstance(default, int):
        same = text.lstrip("+").isdigit() and int(text) == default or text == str(default)
    elif default is not None and snode.type().basename() == "identityref":
        same = text.rpartition(":")[2] == str(default).rpartition(":")[2]
    else:
        same = default is not None and text == str(default)
    if not same:
        wanted = "has no default" if default is None else f'has the default "{default}"'
        raise invalid_value(f'"{name}" is tagged as its default value but {wanted}, not "{text}" (RFC 6243 4.5.2).',
                            path=path, error_type="application")


def _parsed_content(ctx: OpContext, node: libyang.DNode, element: ET.Element) -> tuple[libyang.DNode, Any] | None:
    """The content as the rpc parse left it, detached from the operation (caller frees), and its first node given
    twice (`_inspect`), when it is exactly what the strict parse would give (no opaque or state node, every
    attribute a known annotation: `element` is the parameter's XML); None otherwise."""
    anyn = ly_ffi.cast("struct lyd_node_any *", node.cdata)
    if anyn.value_type != ly_lib.LYD_ANYDATA_DATATREE or anyn.value.tree == ly_ffi.NULL:
        return None
    lenient, twice = _inspect(anyn.value.tree, lenient=True)
    if lenient:
        return None
    first = anyn.value.tree
    anyn.value.tree = ly_ffi.NULL  # now ours: the operation's tree no longer frees it
    return libyang.DNode.new(ctx.ly, first), twice


def _strict_parse(ctx: OpContext, text: str) -> libyang.DNode | None:
    try:
        tree = ctx.ly.parse_data_mem(text, "xml", parse_only=True, strict=True, no_state=True)
    except libyang.LibyangError as exc:
        tree = _parse_with_empty_deletes(ctx, text) if _EMPTY_DELETE.search(text) else None
        if tree is None:
            raise _content_error(exc, ctx.ly) from None
    return tree


_DUPLICATE = re.compile(r'Duplicate instance of "([^"]+)"')


def _content_error(exc: libyang.LibyangError, ly: libyang.Context) -> MgmtException:
    err = restriction_app_tag(ly, from_libyang(exc))
    twice = _DUPLICATE.search(err.error_message)
    if twice:
        return _twice(err.error_path or "", twice.group(1))
    if err.error_tag in ("unknown-element", "unknown-namespace", "invalid-value", "missing-element", "bad-attribute"):
        err = replace(err, error_type="application" if err.error_tag != "bad-attribute" else "protocol")
    return MgmtException(err)


def _parse_with_empty_deletes(ctx: OpContext, text: str) -> libyang.DNode | None:
    """The edit parsed with opaque nodes allowed, when its only opaque nodes are empty leaves being deleted or
    removed; None otherwise (the caller reports the strict parse's error)."""
    try:
        tree = ctx.ly.parse_data_mem(text, "xml", parse_only=True, opaq=True, no_state=True)
    except libyang.LibyangError:
        return None
    if tree is None:
        return None
    if all(_is_empty_delete(n) and _is_leaf_of_schema(ctx.ly, n) for n in _opaque_nodes(tree.cdata)):
        return tree
    tree.free()
    return None


def has_opaque(tree: libyang.DNode) -> bool:
    """Whether the edit holds opaque nodes (empty leaves deleted): Python's node wrappers cannot walk those."""
    return bool(_opaque_nodes(tree.cdata))


def _opaque_nodes(first: Any) -> list[Any]:
    out: list[Any] = []
    todo = [ly_ffi.cast("struct lyd_node *", first)]
    while todo:
        node = todo.pop()
        while node != ly_ffi.NULL:
            if node.schema == ly_ffi.NULL:
                out.append(node)
            child = ly_lib.lyd_child(node)
            if child != ly_ffi.NULL:
                todo.append(child)
            node = node.next
    return out


def _is_empty_delete(node: Any) -> bool:
    opaq = ly_ffi.cast("struct lyd_node_opaq *", node)
    if opaq.child != ly_ffi.NULL or (opaq.value != ly_ffi.NULL and ly_ffi.string(opaq.value).strip()):
        return False
    attr = opaq.attr
    while attr != ly_ffi.NULL:
        if ly_ffi.string(attr.name.name) == b"operation" and attr.value != ly_ffi.NULL:
            return ly_ffi.string(attr.value).decode() in _DELETES
        attr = attr.next
    return False


def _is_leaf_of_schema(ly: libyang.Context, node: Any) -> bool:
    """Whether an opaque node names a leaf its parent's schema has (an unknown element stays an error)."""
    opaq = ly_ffi.cast("struct lyd_node_opaq *", node)
    name = ly_ffi.string(opaq.name.name).decode()
    ns = ly_ffi.string(opaq.name.module_ns).decode() if opaq.name.module_ns != ly_ffi.NULL else ""
    parent = ly_ffi.cast("struct lyd_node *", opaq.parent)
    if parent == ly_ffi.NULL or parent.schema == ly_ffi.NULL:
        return False  # a top-level leaf deleted this way: let the strict parse speak
    snode = libyang.DNode.new(ly, parent).schema()
    for child in snode.children():  # type: ignore[attr-defined]
        if (child.name() == name and isinstance(child, libyang.SLeaf)
                and (not ns or datastore.module_namespace(child.module()) == ns)):
            return True
    return False


def _inspect(first: Any, *, lenient: bool) -> tuple[bool, tuple[Any, str | None] | None]:
    """One walk of a parsed edit: (whether it holds an opaque or a state node — only looked for when `lenient`, the
    rpc parse's tree — and the first node that may not be there, or None: (node, None) for a second instance among
    its siblings, (node, name of the sibling it conflicts with) for a node of another case of a choice than a
    sibling's (RFC 7950 8.3.1: 'bad-element'; sysrepo kept the last case, or failed on a leafref of the other)).

    A container may be repeated (XML clients send `<client>` once per entry; the instances merge), so what is
    compared is each node's identity: the schema nodes and list keys from the top. A node deleted or removed may
    sit beside another case: that is how an edit switches cases.

    Every node of the edit passes here (30,000 for 10,000 NACM groups), so per node it reads as little through cffi
    as it can: what a schema node is, once per schema node; a list entry's or leaf-list value's identity by the
    hash libyang keeps in the node (module, name, keys or value), its key values compared only when two hashes
    meet (a second instance, or a collision); a parent's identity as a number. It took more than libyang's parse
    of the whole request (issue 17, the one-edit load)."""
    # (parent's number, schema node[, libyang's hash]) -> (this identity's number, the node that has it); and
    # (parent's number, schema node, *key values) for entries whose hash met another's with other keys
    ids: dict[tuple[Any, ...], tuple[int, Any]] = {}
    kinds: dict[Any, tuple[int, Any]] = {}  # schema node -> (_KIND_*, its case or None)
    twice: tuple[Any, str | None] | None = None
    # per sibling set (the parent's number): choice -> (case, the first node seen in it)
    cases: dict[int, dict[int, tuple[int, Any]]] = {}
    null = ly_ffi.NULL
    todo: list[tuple[Any, int]] = [(ly_ffi.cast("struct lyd_node *", first), 0)]
    while todo:
        node, parent = todo.pop()
        while node != null:
            schema = node.schema
            kind_case = kinds.get(schema)
            if kind_case is None:
                kind_case = kinds[schema] = _schema_kind(schema, lenient)
            kind, case = kind_case
            if kind == _KIND_SKIP:
                if lenient:
                    return True, None
                node = node.next
                continue
            if kind >= _KIND_LIST:  # an entry or a value: the same schema node many times among its siblings
                key: tuple[Any, ...] = (parent, schema, node.hash)
                hit = ids.get(key)
                if hit is not None and _entry_values(hit[1], kind) != _entry_values(node, kind):
                    key = (parent, schema, *_entry_values(node, kind))  # another entry whose hash is the same
                    hit = ids.get(key)
            else:
                key = (parent, schema)
                hit = ids.get(key)
            if hit is None:
                number = len(ids) + 1
                ids[key] = (number, node)
            else:
                number = hit[0]  # a container repeated: its instances merge
                if kind != _KIND_CONTAINER:
                    if not lenient:
                        return False, (node, None)
                    twice = twice if twice is not None else (node, None)
            if case is not None:
                other = _other_case(cases.setdefault(parent, {}), case, node)
                if other is not None:
                    if not lenient:
                        return False, (node, other)
                    twice = twice if twice is not None else (node, other)
            if kind != _KIND_LEAF and kind != _KIND_LEAFLIST:
                child = ly_lib.lyd_child_no_keys(node) if kind == _KIND_LIST else ly_lib.lyd_child(node)
                if child != null:
                    todo.append((child, number))
            node = node.next
    return False, twice


# what `_inspect` needs to know of a schema node
_KIND_SKIP = 0  # an opaque node (no schema), or a state node in the lenient walk
_KIND_CONTAINER = 1
_KIND_OTHER = 2  # may have children, never repeated (a choice's anydata, a notification...)
_KIND_LEAF = 3  # no children
_KIND_LIST = 4  # from here on: repeated among siblings, told apart by keys or value
_KIND_LEAFLIST = 5


def _schema_kind(schema: Any, lenient: bool) -> tuple[int, Any]:
    """(_KIND_* of `schema`, the schema case it sits in or None)."""
    if schema == ly_ffi.NULL or (lenient and schema.flags & ly_lib.LYS_CONFIG_R):
        return _KIND_SKIP, None
    nodetype = schema.nodetype
    if nodetype == ly_lib.LYS_LIST:
        kind = _KIND_LIST
    elif nodetype == ly_lib.LYS_LEAFLIST:
        kind = _KIND_LEAFLIST
    elif nodetype == ly_lib.LYS_CONTAINER:
        kind = _KIND_CONTAINER
    elif nodetype == ly_lib.LYS_LEAF:
        kind = _KIND_LEAF
    else:
        kind = _KIND_OTHER
    parent = schema.parent
    case = parent if parent != ly_ffi.NULL and parent.nodetype == ly_lib.LYS_CASE else None
    return kind, case


def _entry_values(node: Any, kind: int) -> list[bytes | None]:
    """What tells a list entry (its key values) or a leaf-list value apart from its siblings."""
    if kind == _KIND_LEAFLIST:
        return [ly_ffi.string(ly_lib.lyd_get_value(node))]
    return _key_values(node)


def _other_case(chosen: dict[int, tuple[int, Any]], case: Any, node: Any) -> str | None:
    """Record `node` (in schema case `case`) among its siblings' choices; the name of a sibling in another case of
    one of them (nested choices included), None when there is none or either one is deleted or removed."""
    while case != ly_ffi.NULL and case.nodetype == ly_lib.LYS_CASE:
        choice = case.parent
        key, this = int(ly_ffi.cast("uintptr_t", choice)), int(ly_ffi.cast("uintptr_t", case))
        first = chosen.setdefault(key, (this, node))
        if first[0] != this and not (_deleting(first[1]) or _deleting(node)):
            return str(ly_ffi.string(first[1].schema.name).decode())
        case = choice.parent  # a choice may itself sit in a case of an enclosing choice
    return None


def _deleting(node: Any) -> bool:
    meta = node.meta
    while meta != ly_ffi.NULL:
        if ly_ffi.string(meta.name) == b"operation" and _meta_value(meta) in _DELETES:
            return True
        meta = meta.next
    return False


def _meta_value(meta: Any) -> str:
    """The canonical value of a `struct lyd_meta` ("" when it has none). Through libyang's function: the cffi
    declaration of `struct lyd_value` has no `_canonical` (reading it raised, an Internal error)."""
    if meta.annotation == ly_ffi.NULL:
        return ""
    value = ly_lib.lyd_value_get_canonical(meta.annotation.module.ctx, ly_ffi.addressof(meta.value))
    return str(ly_ffi.string(value).decode()) if value != ly_ffi.NULL else ""


def _two_cases(path: str, name: str, other: str) -> MgmtException:
    return bad_element(name, f'"{name}" and "{other}" are in different cases of one choice at {path}; a choice '
                             "holds the data of one case only (RFC 7950 8.3.1).", error_type="application", path=path)


def _twice(path: str, name: str) -> MgmtException:
    return bad_element(name, f'"{name}" is given twice at {path}; a node may appear only once among its siblings '
                             "(a list entry once per key).", error_type="application", path=path)


def _key_values(node: Any) -> list[bytes | None]:
    out: list[bytes | None] = []
    child = ly_lib.lyd_child(node)
    while child != ly_ffi.NULL and child.schema != ly_ffi.NULL and child.schema.flags & ly_lib.LYS_KEY:
        out.append(ly_ffi.string(ly_lib.lyd_get_value(child)))
        child = child.next
    return out


NMDA_NS = "urn:ietf:params:xml:ns:yang:ietf-netconf-nmda"


def nmda_datastore(ctx: OpContext) -> str:
    """The sysrepo datastore an RFC 8526 `datastore` identity names (get-data, edit-data)."""
    ident = leaf(ctx, "datastore") or ""
    ds = datastore.NMDA_IDENTITIES.get(ident)
    if ds is None:
        raise invalid_value(f'Datastore "{ident}" is not supported.', error_type="application")
    return ds


def with_defaults_leaf(ctx: OpContext, name: str) -> str | None:
    return datastore.check_with_defaults(leaf(ctx, name))

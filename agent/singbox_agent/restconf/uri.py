"""RESTCONF request parser: (method, raw path, raw query) -> what the request means. No HTTP objects, no I/O.

Grammar rules are named after the RFC 8040 productions (section numbers in the comments); schema checks use only
a libyang context, so the parser is tested with tables against a bare context built from the YANG files.
Every rejection is a `RestconfError` carrying the RFC 8040 error-tag; the HTTP status follows from the tag.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import unquote_to_bytes

import libyang

from singbox_agent.mgmt import xpath
from singbox_agent.mgmt.errors import clip
from singbox_agent.mgmt.request_limits import check_xpath, denied

from singbox_agent.restconf.errors import RestconfError
from singbox_agent.restconf.limits import RestconfLimits

API_ROOT = "/restconf"
# RFC 6415 §2, §3: host-meta in XRD, and its JSON (JRD) form
HOST_META_PATHS = ("/.well-known/host-meta", "/.well-known/host-meta.json")

# RFC 8040 §3.5.3: identifier = (ALPHA / "_") *(ALPHA / DIGIT / "_" / "-" / ".")
_IDENTIFIER = r"[A-Za-z_][A-Za-z0-9_.\-]*"
# RFC 8040 §3.5.3: api-identifier = [module-name ":"] identifier
_API_IDENTIFIER_RE = re.compile(rf"^(?:(?P<module>{_IDENTIFIER}):)?(?P<name>{_IDENTIFIER})$")
_PCT_RE = re.compile(r"%(?![0-9A-Fa-f]{2})")

# RFC 8527 §3.1 datastores reachable under {+restconf}/ds/
DATASTORES = {
    "ietf-datastores:running": "running",
    "ietf-datastores:candidate": "candidate",
    "ietf-datastores:startup": "startup",
    "ietf-datastores:operational": "operational",
    # RFC 8342 §5.1.4: read-only; "identical to <running>" for a server without configuration transformations
    # (templates, inactive configuration), as sysrepo is: read from running
    "ietf-datastores:intended": "intended",
}
# datastores nothing can write: operational (state is not edited) and intended (derived from running)
READ_ONLY_DATASTORES = frozenset({"operational", "intended"})


class Kind(enum.Enum):
    """What a request asks for (rousette's RestconfRequest::Type)."""

    HOST_META = "host-meta"
    API_ROOT = "api-root"
    YANG_LIBRARY_VERSION = "yang-library-version"
    GET_DATA = "get-data"
    CREATE_CHILD = "create-child"  # POST on a data resource (§4.4.1)
    CREATE_OR_REPLACE = "create-or-replace"  # PUT (§4.5)
    PATCH = "patch"  # plain merge (§4.6.1) or YANG Patch (RFC 8072), told apart by Content-Type
    DELETE = "delete"  # §4.7
    LIST_OPERATIONS = "list-operations"  # GET {+restconf}/operations (§3.3.2)
    INVOKE = "invoke"  # POST of an RPC (§4.4.2) or an action
    STREAM = "stream"  # GET of an event stream (§6)
    YANG_SCHEMA = "yang-schema"  # GET of a module's or submodule's YANG text (§3.7, our {+restconf}/yang/...)
    OPTIONS = "options"


class Encoding(enum.Enum):
    JSON = "json"
    XML = "xml"


@dataclass(frozen=True)
class QueryParams:
    """RFC 8040 §4.8 query parameters, validated."""

    content: str | None = None  # all | config | nonconfig
    depth: int | None = None  # None = unbounded
    fields: tuple[str, ...] = ()  # relative data paths, one per selected subtree
    filter: str | None = None  # XPath, streams only
    insert: str | None = None  # first | last | before | after
    point: str | None = None  # data path of the insertion point
    start_time: str | None = None
    stop_time: str | None = None
    with_defaults: str | None = None  # report-all | trim | explicit | report-all-tagged
    with_origin: bool = False  # RFC 8527 §3.2.2: ietf-origin annotations (operational datastore only)


@dataclass(frozen=True)
class SchemaName:
    """`<name>[@<revision>]` of a schema resource (RFC 8040 §3.7), checked against the YANG grammar."""

    name: str
    revision: str | None


# RFC 7950 §7.1.9 revision-date
_REVISION_RE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")
_SCHEMA_IDENTIFIER_RE = re.compile(rf"^{_IDENTIFIER}$")


def parse_schema_name(segment: str) -> SchemaName | None:
    """`name[@revision][.yang]` (percent-decoded) -> SchemaName; None if it cannot name a YANG module. Without a
    revision a `.yang` suffix stays part of the name here (a module may be called `x.yang`); the lookup tries both."""
    name, at, revision = segment.partition("@")
    if at and revision.endswith(".yang"):
        revision = revision[: -len(".yang")]
    if not _SCHEMA_IDENTIFIER_RE.match(name) or (at and not _REVISION_RE.match(revision)):
        return None
    return SchemaName(name, revision if at else None)


@dataclass(frozen=True)
class RestconfRequest:
    """A parsed request. `path` is a libyang data path of the target (None: the datastore itself)."""

    kind: Kind
    method: str
    datastore: str | None = None  # None: the unified /data view (reads operational, writes running)
    path: str | None = None
    schema: libyang.SNode | None = None
    query: QueryParams = field(default_factory=QueryParams)
    stream: str | None = None
    stream_encoding: Encoding | None = None
    allowed: tuple[str, ...] = ()  # methods the resource supports (OPTIONS, 405)
    yang_schema: SchemaName | None = None  # Kind.YANG_SCHEMA: which module or submodule

    @property
    def parent_path(self) -> str | None:
        """Data path of the target's parent (None for a top-level node or the datastore)."""
        if self.path is None:
            return None
        cut = xpath.parent_path(self.path)
        return cut or None


def _bad(message: str, tag: str = "invalid-value", error_type: str = "protocol") -> RestconfError:
    return RestconfError(error_type, tag, message)


def percent_decode(raw: str, what: str) -> str:
    """RFC 3986 §2.1 percent-decoding into UTF-8; a stray "%" or invalid UTF-8 is a 400."""
    if _PCT_RE.search(raw):
        raise _bad(f"Invalid percent-encoding in {what}: {raw!r}")
    try:
        return unquote_to_bytes(raw).decode("utf-8")
    except UnicodeDecodeError:
        raise _bad(f"{what} is not valid UTF-8 after percent-decoding") from None


# ---------------------------------------------------------------------------------------------------------------
# RFC 8040 §3.5.3 api-path
# ---------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PathSegment:
    """One step of an api-path: api-identifier or list-instance (keys already percent-decoded)."""

    module: str | None
    name: str
    keys: tuple[str, ...] | None  # None: no "=" given


def parse_api_path_segments(raw: str) -> list[PathSegment]:
    """api-path = root *("/" (api-identifier / list-instance)) — `raw` is what follows the root, without "/"."""
    if raw == "":
        return []
    segments: list[PathSegment] = []
    for piece in raw.split("/"):
        if piece == "":
            raise _bad("Empty segment in the resource path (\"//\" or a trailing \"/\")")
        ident, eq, values = piece.partition("=")
        m = _API_IDENTIFIER_RE.match(ident)
        if m is None:
            raise _bad(f"Invalid api-identifier {percent_decode(ident, 'path')!r} (RFC 8040 §3.5.3)")
        # list-instance = api-identifier "=" key-value *("," key-value); key-value is percent-encoded
        keys = tuple(percent_decode(v, "key value") for v in values.split(",")) if eq else None
        segments.append(PathSegment(m["module"], m["name"], keys))
    return segments


def _quote_value(value: str) -> str:
    try:
        return xpath.quote(value, in_path=True)
    except ValueError:
        raise _bad("A key value cannot contain both single and double quotes") from None


def _child_schema(
    ctx: libyang.Context, parent: libyang.SNode | None, seg: PathSegment, module: str
) -> libyang.SNode | None:
    try:
        if parent is None:
            return ctx.find_jsonpath(f"/{module}:{seg.name}")
        return ctx.find_jsonpath(f"{module}:{seg.name}", root_node=parent)
    except libyang.LibyangError:
        return None
    finally:
        _clear_errors(ctx)


def _clear_errors(ctx: libyang.Context) -> None:
    from _libyang import ffi, lib  # noqa: PLC0415 - libyang-python's cffi module, untyped

    lib.ly_err_clean(ctx.cdata, ffi.NULL)


def _module_exists(ctx: libyang.Context, name: str) -> bool:
    try:
        mod = ctx.get_module(name)
    except libyang.LibyangError:
        _clear_errors(ctx)
        return False
    return bool(mod.implemented())


@dataclass(frozen=True)
class ResolvedPath:
    path: str
    schema: libyang.SNode
    keyed: bool  # a list or leaf-list target had its keys given


def resolve_api_path(ctx: libyang.Context, raw: str, *, allow_operations: bool = False) -> ResolvedPath | None:
    """api-path -> (libyang data path, schema node). None for the empty path (the datastore itself).

    The first node must name its module; later nodes only when the module changes (RFC 8040 §3.5.3).
    Lists need all their keys, in schema order; leaf-lists one value; keys are checked against their types
    by libyang (lyd_new_path on a scratch tree).
    """
    segments = parse_api_path_segments(raw)
    if not segments:
        return None
    parts: list[str] = []
    parent: libyang.SNode | None = None
    module: str | None = None
    keyed = False
    last_keyed = ""  # the path up to the last list-instance: what the key check builds
    for index, seg in enumerate(segments):
        if seg.module is None and module is None:
            raise _bad(f"The first node {seg.name!r} must be qualified with its module name (RFC 8040 §3.5.3)")
        if parent is not None and parent.nodetype() in (libyang.SNode.LEAF, libyang.SNode.LEAFLIST):
            raise _bad(f"{parent.name()!r} is a leaf: it has no child {seg.name!r}", "invalid-value")
        if parent is not None and parent.nodetype() == libyang.SNode.LIST and not keyed:
            raise _bad(f"List {parent.name()!r} needs its keys before a child node can be addressed")
        seg_module = seg.module or module
        assert seg_module is not None
        if seg.module is not None and not _module_exists(ctx, seg.module):
            raise _bad(f"Unknown module {seg.module!r}", "invalid-value", "application")
        snode = _child_schema(ctx, parent, seg, seg_module)
        if snode is None:
            raise _bad(f"No node {seg_module}:{seg.name} under {_describe(parent)}", "invalid-value", "application")
        nodetype = snode.nodetype()
        if nodetype in (libyang.SNode.RPC, libyang.SNode.ACTION):
            if not allow_operations:
                raise _bad(f"{snode.name()!r} is an operation; invoke it with POST", "operation-not-supported")
            if index != len(segments) - 1:
                raise _bad(f"Nothing can follow the operation {snode.name()!r} in the path")
        if nodetype == libyang.SNode.NOTIF:
            raise _bad(f"{snode.name()!r} is a notification, not a data resource")
        name = f"{seg_module}:{seg.name}" if seg_module != module else seg.name
        pred = ""
        keyed = False
        if seg.keys is not None:
            if nodetype == libyang.SNode.LIST:
                assert isinstance(snode, libyang.SList)
                key_nodes = list(snode.keys())
                if len(key_nodes) != len(seg.keys):
                    raise _bad(
                        f"List {seg.name!r} has {len(key_nodes)} key(s) "
                        f"({', '.join(k.name() for k in key_nodes)}); {len(seg.keys)} given"
                    )
                pred = "".join(f"[{k.name()}={_quote_value(v)}]" for k, v in zip(key_nodes, seg.keys, strict=True))
            elif nodetype == libyang.SNode.LEAFLIST:
                if len(seg.keys) != 1:
                    raise _bad(f"Leaf-list {seg.name!r} takes exactly one value")
                pred = f"[.={_quote_value(seg.keys[0])}]"
            else:
                raise _bad(f"{seg.name!r} is a {snode.keyword()}, not a list: it cannot take keys")
            keyed = True
        parts.append(f"/{name}{pred}")
        if pred:
            last_keyed = "".join(parts)
        parent = snode
        module = seg_module
    assert parent is not None
    path = "".join(parts)
    if last_keyed:
        _check_key_values(ctx, last_keyed)
    return ResolvedPath(path, parent, keyed)


def _describe(parent: libyang.SNode | None) -> str:
    return "the datastore root" if parent is None else repr(parent.schema_path())


def _check_key_values(ctx: libyang.Context, path: str) -> None:
    """Key and leaf-list values must be valid for their types: libyang builds the path on a scratch tree."""
    try:
        node = ctx.create_data_path(path)
    except libyang.LibyangError as exc:
        raise _bad(f"Invalid key value in {path!r}: {exc}") from None
    finally:
        _clear_errors(ctx)
    if node is not None:
        node.root().free()


# ---------------------------------------------------------------------------------------------------------------
# RFC 8040 §4.8 query parameters
# ---------------------------------------------------------------------------------------------------------------

_QUERY_NAMES = {"content", "depth", "fields", "filter", "insert", "point", "start-time", "stop-time", "with-defaults",
                "with-origin"}
# RFC 8527 §3.2.2: a parameter without a value ("?with-origin")
_VALUELESS = {"with-origin"}
_DATE_AND_TIME_RE = re.compile(
    r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$"
)


def parse_query_string(raw: str) -> dict[str, str]:
    """RFC 8040 §4.8: name=value pairs separated by "&"; a parameter at most once; unknown names rejected."""
    params: dict[str, str] = {}
    if raw == "":
        return params
    for pair in raw.split("&"):
        name, eq, value = pair.partition("=")
        name = percent_decode(name, "query parameter name")
        if name not in _QUERY_NAMES:
            raise _bad(f"Unknown query parameter {name!r}")
        if name in _VALUELESS:
            if value:
                raise _bad(f"Query parameter {name!r} takes no value")
        elif not eq:
            raise _bad(f"Query parameter {name!r} needs a value")
        if name in params:
            raise _bad(f"Query parameter {name!r} given more than once")
        params[name] = percent_decode(value, f"query parameter {name!r}")
    return params


# Where each parameter may appear (RFC 8040 §4.8 table): method/resource class -> allowed names.
_READ_PARAMS = {"content", "depth", "fields", "with-defaults"}
_STREAM_PARAMS = {"filter", "start-time", "stop-time"}
_INSERT_PARAMS = {"insert", "point"}


def fields_nesting(expr: str) -> int:
    """How deep the parentheses of a fields expression nest (unbalanced ones are the parser's to refuse)."""
    depth = deepest = 0
    for ch in expr:
        if ch == "(":
            depth += 1
            deepest = max(deepest, depth)
        elif ch == ")":
            depth -= 1
    return deepest


def parse_fields(expr: str, limits: RestconfLimits | None = None) -> list[str]:
    """RFC 8040 §4.8.3: fields-expr = path "(" fields-expr ")" / path ";" fields-expr / path,
    path = api-identifier ["/" path]. Returns the selected relative paths ("a/b", "a/c"). The parser recurses
    once per parenthesis: their nesting is checked against max-xpath-nesting first."""
    limits = limits or RestconfLimits()
    nesting = fields_nesting(expr)
    if nesting > limits.max_xpath_nesting:
        raise denied(limits, "max-xpath-nesting", f"The fields expression nests parentheses {nesting} deep, more "
                                                  f"than {limits.max_xpath_nesting}")
    pos = 0

    def parse_expr(prefix: str) -> list[str]:
        nonlocal pos
        out: list[str] = []
        while True:
            start = pos
            while pos < len(expr) and expr[pos] not in "();":
                pos += 1
            node = expr[start:pos]
            if node == "" or any(not _API_IDENTIFIER_RE.match(p) for p in node.split("/")):
                raise _bad(f"Invalid fields expression {expr!r} near position {start}")
            full = f"{prefix}/{node}" if prefix else node
            if pos < len(expr) and expr[pos] == "(":
                pos += 1
                out.extend(parse_expr(full))
                if pos >= len(expr) or expr[pos] != ")":
                    raise _bad(f"Unbalanced parentheses in fields expression {expr!r}")
                pos += 1
            else:
                out.append(full)
            if pos < len(expr) and expr[pos] == ";":
                pos += 1
                continue
            return out

    result = parse_expr("")
    if pos != len(expr):
        raise _bad(f"Unexpected {expr[pos]!r} in fields expression {expr!r}")
    return result


def _fields_to_paths(ctx: libyang.Context, target: libyang.SNode | None, expr: str,
                     limits: RestconfLimits) -> tuple[str, ...]:
    """Each fields path is checked against the schema below the target and turned into a relative data path."""
    paths: list[str] = []
    for rel in parse_fields(expr, limits):
        node = target
        module = target.module().name() if target is not None else None
        parts: list[str] = []
        for step in rel.split("/"):
            m = _API_IDENTIFIER_RE.match(step)
            assert m is not None
            step_module = m["module"] or module
            if step_module is None:
                raise _bad(f"fields: {step!r} must be qualified with its module name")
            if node is not None and node.nodetype() == libyang.SNode.LIST and node is target:
                pass
            child = _child_schema(ctx, node, PathSegment(step_module, m["name"], None), step_module)
            if child is None:
                raise _bad(f"fields: no node {step!r} under {_describe(node)}")
            parts.append(f"{step_module}:{m['name']}" if step_module != module else m["name"])
            node, module = child, step_module
        paths.append("/".join(parts))
    return tuple(paths)


def parse_query(
    ctx: libyang.Context, raw: str, *, method: str, kind: Kind, target: libyang.SNode | None,
    limits: RestconfLimits | None = None, target_path: str | None = None, datastore: str | None = None,
) -> QueryParams:
    """The query parameters, checked (RFC 8040 §4.8) — within `limits` the XPath `filter` and the selection that
    `fields` becomes below `target_path` (the target's data path)."""
    limits = limits or RestconfLimits()
    params = parse_query_string(raw)
    if kind == Kind.STREAM:
        allowed = _STREAM_PARAMS
    elif method in ("GET", "HEAD") and kind in (Kind.GET_DATA,):
        allowed = _READ_PARAMS | ({"with-origin"} if datastore == "operational" else set())
    elif method in ("POST", "PUT") and kind in (Kind.CREATE_CHILD, Kind.CREATE_OR_REPLACE):
        allowed = _INSERT_PARAMS
    else:
        allowed = set()
    for name in params:
        if name == "with-origin" and name not in allowed and method in ("GET", "HEAD") and kind == Kind.GET_DATA:
            raise _bad("with-origin applies to {+restconf}/ds/ietf-datastores:operational only (RFC 8527 §3.2.2)")
        if name not in allowed:
            raise _bad(f"Query parameter {name!r} is not allowed for {method} on this resource (RFC 8040 §4.8)")

    content = params.get("content")
    if content is not None and content not in ("all", "config", "nonconfig"):
        raise _bad(f"content must be all, config or nonconfig, not {content!r}")
    depth: int | None = None
    if "depth" in params:
        value = params["depth"]
        if value != "unbounded":
            if not value.isascii() or not value.isdigit() or len(value) > 5 or not 1 <= int(value) <= 65535:
                raise _bad(f"depth must be 1..65535 or unbounded, not {value!r}")
            depth = int(value)
    with_defaults = params.get("with-defaults")
    if with_defaults is not None and with_defaults not in ("report-all", "trim", "explicit", "report-all-tagged"):
        raise _bad(f"with-defaults must be report-all, trim, explicit or report-all-tagged, not {with_defaults!r}")
    fields: tuple[str, ...] = ()
    if "fields" in params:
        fields = _fields_to_paths(ctx, target, params["fields"], limits)
        # what the read selects (store.Datastore.get): one XPath, a union of the target's path and each field
        check_xpath(" | ".join(f"{target_path or ''}/{f}" for f in fields), limits,
                    what="The selection of the fields parameter")

    insert = params.get("insert")
    point = params.get("point")
    if insert is not None and insert not in ("first", "last", "before", "after"):
        raise _bad(f"insert must be first, last, before or after, not {insert!r}")
    if insert is not None or point is not None:
        if target is None or target.nodetype() not in (libyang.SNode.LIST, libyang.SNode.LEAFLIST) or not getattr(
            target, "ordered", lambda: False
        )():
            # POST names the parent: the inserted node is found in the body, checked by the handler.
            if kind != Kind.CREATE_CHILD:
                raise _bad("insert and point apply only to lists and leaf-lists ordered by user")
    if point is not None and insert not in ("before", "after"):
        raise _bad("point needs insert=before or insert=after (RFC 8040 §4.8.6)")
    if insert in ("before", "after") and point is None:
        raise _bad(f"insert={insert} needs a point (RFC 8040 §4.8.5)")
    point_path: str | None = None
    if point is not None:
        if not point.startswith("/"):
            raise _bad(f"point must be an api-path starting with '/', not {point!r}")
        resolved = resolve_api_path(ctx, point[1:])
        if resolved is None or not resolved.keyed:
            raise _bad(f"point {point!r} must name a list entry or leaf-list value")
        point_path = resolved.path

    filt = params.get("filter")
    if filt is not None:
        check_xpath(filt, limits, what="The filter")  # before anything compiles it
    start_time = params.get("start-time")
    stop_time = params.get("stop-time")
    for name, when in (("start-time", start_time), ("stop-time", stop_time)):
        if when is not None and not _DATE_AND_TIME_RE.match(when):
            raise _bad(f"{name} must be a date-and-time, not {when!r}")
    if stop_time is not None and start_time is None:
        raise _bad("stop-time needs start-time (RFC 8040 §4.8.8)")
    if filt is not None and filt.strip() == "":
        raise _bad("filter must be a non-empty XPath expression")
    return QueryParams(
        content=content,
        depth=depth,
        fields=fields,
        filter=filt,
        insert=insert,
        point=point_path,
        start_time=start_time,
        stop_time=stop_time,
        with_origin="with-origin" in params,
        with_defaults=with_defaults,
    )


# ---------------------------------------------------------------------------------------------------------------
# RFC 8040 §3 resources -> request
# ---------------------------------------------------------------------------------------------------------------

_DATA_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
_READ_METHODS = ("GET", "HEAD", "OPTIONS")
_TERM_METHODS = ("GET", "HEAD", "PUT", "PATCH", "DELETE", "OPTIONS")  # a leaf, a leaf-list value: no child to POST
# every method some resource of the server supports; any other is 501 wherever it is sent
IMPLEMENTED_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "POST", "PUT", "PATCH", "DELETE"})
_STREAM_ENCODINGS = {"json": Encoding.JSON, "xml": Encoding.XML}


def _method_not_allowed(method: str, allowed: tuple[str, ...], why: str | None = None) -> RestconfError:
    err = RestconfError("protocol", "operation-not-supported",
                        f"Method {method} is not allowed on this resource" + (f": {why}" if why else ""))
    err.allowed = allowed
    err.status = 405
    return err


def _data_methods(snode: libyang.SNode, writable: bool, keyed: bool
                  ) -> tuple[tuple[str, ...], Callable[[str], str] | None]:
    """The methods a data resource supports (RFC 9110 §10.2.1: what OPTIONS and a 405's Allow state), and why one
    of RFC 8040's data methods is not among them, when that is not simply read-only data: POST creates a child
    (§4.4.1), which a leaf, a leaf-list value or anydata cannot have, and a list or leaf-list without its key(s)
    names no instance for PUT, PATCH, DELETE or POST (§3.5.3). These were 400s that OPTIONS listed."""
    nodetype = snode.nodetype()
    if not writable or snode.config_false():
        return _READ_METHODS, None
    what = f"{snode.keyword()} {snode.name()!r}"
    if nodetype in (libyang.SNode.LIST, libyang.SNode.LEAFLIST) and not keyed:
        if nodetype == libyang.SNode.LIST:
            def why(method: str) -> str:
                if method == "POST":
                    return f"POST under {what} needs the entry's key(s); POST to its parent to create one"
                return f"{method} on {what} needs the instance's key(s)"
        else:
            def why(method: str) -> str:
                if method == "POST":
                    return f"POST creates children: {what} has none"
                return f"{method} on {what} needs the instance's value"
        return _READ_METHODS, why
    if nodetype in (libyang.SNode.LEAF, libyang.SNode.LEAFLIST, libyang.SNode.ANYDATA, libyang.SNode.ANYXML):
        return _TERM_METHODS, lambda method: f"POST creates children: {what} has none"
    return _DATA_METHODS, None


def _check_method(method: str, allowed: tuple[str, ...]) -> None:
    if method not in allowed:
        raise _method_not_allowed(method, allowed)


def _kind_for_data_method(method: str) -> Kind:
    return {
        "GET": Kind.GET_DATA,
        "HEAD": Kind.GET_DATA,
        "POST": Kind.CREATE_CHILD,
        "PUT": Kind.CREATE_OR_REPLACE,
        "PATCH": Kind.PATCH,
        "DELETE": Kind.DELETE,
        "OPTIONS": Kind.OPTIONS,
    }[method]


def parse_request(ctx: libyang.Context, method: str, raw_path: str, raw_query: str = "",
                  limits: RestconfLimits | None = None) -> RestconfRequest:
    """The one entry point: method, raw (still percent-encoded) path and query -> RestconfRequest; XPath
    expressions the query gives are checked against `limits` (the defaults when None).

    :raises RestconfError: a bad or misplaced path element or query parameter (400), a method the resource does
        not support (405), a method the server does not implement (501), an unknown resource (404).
    """
    method = method.upper()
    if method not in IMPLEMENTED_METHODS:
        # RFC 9110 §9.1: "An origin server that receives a request method that is unrecognized or not implemented
        # SHOULD respond with the 501 (Not Implemented) status code" (§15.6.2); 405 is for a method the server
        # knows that the target resource does not support (§15.5.6). RFC 8040 §7: operation-not-supported is 405
        # or 501. (Hypercorn hands methods on upper-cased.)
        raise RestconfError("protocol", "operation-not-supported",
                            f"Method {clip(method)!r} is not implemented by this server", status=501)
    if raw_path == "*":
        # RFC 9112 §3.2.4 asterisk-form, for OPTIONS only: "applies to the server in general rather than to a
        # specific resource" (RFC 9110 §9.3.7): the methods some resource of the server supports. It was 404.
        if method != "OPTIONS":
            raise _bad("The request-target '*' is for OPTIONS only (RFC 9112 §3.2.4)")
        return RestconfRequest(Kind.OPTIONS, method, allowed=_DATA_METHODS)
    if raw_path in HOST_META_PATHS:
        _check_method(method, ("GET", "HEAD", "OPTIONS"))
        if raw_query:
            raise _bad("host-meta takes no query parameters")
        return RestconfRequest(
            Kind.OPTIONS if method == "OPTIONS" else Kind.HOST_META, method, allowed=("GET", "HEAD", "OPTIONS")
        )
    if raw_path != API_ROOT and not raw_path.startswith(API_ROOT + "/"):
        raise RestconfError("protocol", "invalid-value", f"No resource at {raw_path!r}", status=404)
    rest = raw_path[len(API_ROOT) :]
    if rest in ("", "/"):
        # RFC 8040 §3.1 API root
        return _simple(ctx, method, raw_query, Kind.API_ROOT, _READ_METHODS)
    resource, _, sub = rest[1:].partition("/")
    if resource == "data":
        return _data_request(ctx, method, sub, raw_query, None, bool(_), limits)
    if resource == "ds":
        # RFC 8527 §3.1: {+restconf}/ds/<datastore identity>
        ds_raw, slash, sub = sub.partition("/")
        ds_name = percent_decode(ds_raw, "datastore")
        if ds_name not in DATASTORES:
            raise RestconfError("protocol", "invalid-value", f"Unknown datastore {ds_name!r}", status=404)
        return _data_request(ctx, method, sub, raw_query, DATASTORES[ds_name], bool(slash), limits)
    if resource == "operations":
        return _operations_request(ctx, method, sub, raw_query)
    if resource == "yang-library-version" and not _:
        return _simple(ctx, method, raw_query, Kind.YANG_LIBRARY_VERSION, _READ_METHODS)
    if resource == "streams":
        # Our stream locations (announced in ietf-restconf-monitoring): {+restconf}/streams/<name>/<json|xml>
        name, _, enc = sub.partition("/")
        if name != "NETCONF" or enc not in _STREAM_ENCODINGS:
            raise RestconfError("protocol", "invalid-value", f"No event stream at {raw_path!r}", status=404)
        _check_method(method, _READ_METHODS)
        if method == "OPTIONS":
            return RestconfRequest(Kind.OPTIONS, method, allowed=_READ_METHODS)
        query = parse_query(ctx, raw_query, method=method, kind=Kind.STREAM, target=None, limits=limits)
        return RestconfRequest(
            Kind.STREAM, method, query=query, stream=name, stream_encoding=_STREAM_ENCODINGS[enc], allowed=_READ_METHODS
        )
    if resource == "yang":
        return _schema_request(method, sub, raw_query, raw_path)
    raise RestconfError("protocol", "invalid-value", f"No resource at {raw_path!r}", status=404)


def _schema_request(method: str, sub: str, raw_query: str, raw_path: str) -> RestconfRequest:
    """RFC 8040 §3.7: the schema resource, {+restconf}/yang/<name>[@<revision>], one segment, read-only."""
    wanted = parse_schema_name(percent_decode(sub, "schema name")) if sub and "/" not in sub else None
    if wanted is None:
        raise RestconfError("protocol", "invalid-value", f"No YANG schema at {raw_path!r}", status=404)
    _check_method(method, _READ_METHODS)
    if method == "OPTIONS":
        return RestconfRequest(Kind.OPTIONS, method, allowed=_READ_METHODS)
    if raw_query:
        raise _bad("The schema resource takes no query parameters")
    return RestconfRequest(Kind.YANG_SCHEMA, method, allowed=_READ_METHODS, yang_schema=wanted)


def _simple(ctx: libyang.Context, method: str, raw_query: str, kind: Kind, allowed: tuple[str, ...]) -> RestconfRequest:
    _check_method(method, allowed)
    if method == "OPTIONS":
        return RestconfRequest(Kind.OPTIONS, method, allowed=allowed)
    if raw_query:
        parse_query(ctx, raw_query, method=method, kind=kind, target=None)
    return RestconfRequest(kind, method, allowed=allowed)


def _data_request(
    ctx: libyang.Context, method: str, sub: str, raw_query: str, datastore: str | None, had_slash: bool,
    limits: RestconfLimits | None,
) -> RestconfRequest:
    if had_slash and sub == "":
        raise _bad("Empty segment in the resource path (trailing \"/\")")
    resolved = resolve_api_path(ctx, sub, allow_operations=True)
    writable = datastore not in READ_ONLY_DATASTORES
    if resolved is None:
        # The datastore resource (RFC 8040 §3.4): read, create children, replace, merge; no DELETE.
        allowed: tuple[str, ...] = ("GET", "HEAD", "POST", "PUT", "PATCH", "OPTIONS") if writable else _READ_METHODS
        _check_method(method, allowed)
        kind = _kind_for_data_method(method)
        query = parse_query(ctx, raw_query, method=method, kind=kind, target=None, limits=limits, datastore=datastore)
        return RestconfRequest(kind, method, datastore, None, None, query, allowed=allowed)

    snode = resolved.schema
    nodetype = snode.nodetype()
    if nodetype in (libyang.SNode.RPC, libyang.SNode.ACTION):
        if nodetype == libyang.SNode.RPC:
            raise _bad(f"RPC {snode.name()!r} is invoked under {API_ROOT}/operations, not in a datastore")
        # RFC 8527 §3.1: actions are invoked through the operational datastore (or /data) only; elsewhere the
        # resource supports no invocation (405, not 400: Allow and OPTIONS say the same, RFC 9110 §15.5.6)
        allowed = ("POST", "OPTIONS") if datastore in (None, "operational") else ("OPTIONS",)
        if method not in allowed:
            raise _method_not_allowed(method, allowed, "actions are invoked through /data or the operational "
                                      "datastore" if method == "POST" else None)
        if method == "OPTIONS":
            return RestconfRequest(Kind.OPTIONS, method, datastore, resolved.path, snode, allowed=allowed)
        parse_query(ctx, raw_query, method=method, kind=Kind.INVOKE, target=snode)
        return RestconfRequest(Kind.INVOKE, method, datastore, resolved.path, snode, allowed=allowed)

    allowed, refusal = _data_methods(snode, writable, resolved.keyed)
    if method not in allowed:
        raise _method_not_allowed(method, allowed, refusal(method) if refusal is not None else None)
    kind = _kind_for_data_method(method)
    query = parse_query(ctx, raw_query, method=method, kind=kind, target=snode, limits=limits,
                        target_path=resolved.path, datastore=datastore)
    return RestconfRequest(kind, method, datastore, resolved.path, snode, query, allowed=allowed)


def _operations_request(ctx: libyang.Context, method: str, sub: str, raw_query: str) -> RestconfRequest:
    if sub == "":
        return _simple(ctx, method, raw_query, Kind.LIST_OPERATIONS, _READ_METHODS)
    segments = parse_api_path_segments(sub)
    if len(segments) != 1 or segments[0].module is None or segments[0].keys is not None:
        raise _bad("An operation resource is {+restconf}/operations/<module>:<rpc> (RFC 8040 §3.3.2)")
    resolved = resolve_api_path(ctx, sub, allow_operations=True)
    assert resolved is not None
    if resolved.schema.nodetype() != libyang.SNode.RPC:
        raise _bad(f"{sub!r} is not an RPC", "invalid-value", "application")
    allowed = ("POST", "OPTIONS")
    _check_method(method, allowed)
    if method == "OPTIONS":
        return RestconfRequest(Kind.OPTIONS, method, None, resolved.path, resolved.schema, allowed=allowed)
    parse_query(ctx, raw_query, method=method, kind=Kind.INVOKE, target=resolved.schema)
    return RestconfRequest(Kind.INVOKE, method, None, resolved.path, resolved.schema, allowed=allowed)

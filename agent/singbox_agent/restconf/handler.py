"""RESTCONF request handling without HTTP objects: `HttpRequest` in, `HttpResponse` out, blocking (worker thread).

The ASGI adapter (server.py) authenticates, reads the body and calls `Handler.handle`; every exception leaves through
`errors.to_failure`, the one mapping to status + error-tag.
"""

from __future__ import annotations

import datetime
import email.utils
import json
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Collection
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import quote
from xml.sax.saxutils import quoteattr

import libyang
import structlog
import sysrepo
from _libyang import ffi, lib

from singbox_agent.mgmt import read_gate, xpath
from singbox_agent.mgmt.errors import MgmtError, MgmtException, clip, for_reader, from_libyang, path_namespaces
from singbox_agent.mgmt.nacm import check_operation
from singbox_agent.mgmt.request_limits import denied
from singbox_agent.restconf import limits as request_limits
from singbox_agent.restconf import schema, twin
from singbox_agent.restconf.limits import RestconfLimits
from singbox_agent.restconf.store import Datastore, Reader, ReadResult, acquired_context, etag_of
from singbox_agent.restconf.dynamic_subscriptions import RPCS, DynamicSubscriptions
from singbox_agent.restconf.errors import (
    HttpFailure, RestconfError, bad_request, precondition_failed, to_failure, too_big,
)
from singbox_agent.restconf.media import (
    RESPONSE_TYPES,
    XRD_XML,
    YANG_PATCH_JSON,
    YANG_PATCH_XML,
    BodyKind,
    error_encoding,
    request_body_type,
    response_encoding,
)
from singbox_agent.restconf.uri import (
    API_ROOT,
    Encoding,
    Kind,
    ResolvedPath,
    RestconfRequest,
    parse_request,
    resolve_api_path,
)

log = structlog.get_logger("restconf")

MAX_BODY_BYTES = 4 * 1024 * 1024
_MAX_JSON_INT_DIGITS = 1000  # decimal64 and 64-bit integers are JSON strings, the others at most 20 digits
# RFC 9110 §7.2 Host: uri-host [":" port] -- a reg-name, IPv4 or bracketed IPv6 literal, at most 255 characters
_HOST_RE = re.compile(r"^(?:[A-Za-z0-9._~-]{1,253}|\[[0-9A-Fa-f:.]{2,45}\])(?::[0-9]{1,5})?$")
_PARSE_MEMO_SIZE = 1024
YANG_LIBRARY_REVISION = "2019-01-04"
ACCEPT_PATCH = f"application/yang-data+json, application/yang-data+xml, {YANG_PATCH_JSON}, {YANG_PATCH_XML}"


@dataclass(frozen=True)
class HttpRequest:
    method: str
    raw_path: str  # still percent-encoded
    raw_query: str
    headers: dict[str, str]  # lower-case names
    body: bytes
    user: str | None  # authenticated; None is the unrestricted recovery session (never from the network)


@dataclass
class HttpResponse:
    status: int
    body: bytes = b""
    headers: list[tuple[str, str]] = field(default_factory=list)
    content_type: str | None = None

    def __post_init__(self) -> None:
        # RFC 8040 §5.5: every response carries Cache-Control: no-cache — set here, where every response of the
        # server (replies, errors, 201/204, OPTIONS, 304) is made, so that no path can miss it.
        if not any(name.lower() == "cache-control" for name, _ in self.headers):
            self.headers.append(("Cache-Control", "no-cache"))


def http_date(ts: float) -> str:
    return email.utils.formatdate(ts, usegmt=True)


def _parse_http_date(value: str) -> float | None:
    """An HTTP-date (RFC 9110 §5.6.7: IMF-fixdate, RFC 850 or asctime form, all GMT), or None for anything else —
    also for a list of dates (two fields, or one holding two), which §13.1.3-4 make the recipient ignore (the first
    date was taken). asctime carries no zone: GMT, not the server's local time."""
    if value.count(",") > 1:
        return None
    try:
        parsed = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=datetime.timezone.utc)
    return parsed.timestamp()


def _etag_matches(header: str, etag: str | None, *, strong: bool = False) -> bool:
    """Whether an If-Match / If-None-Match list names `etag` (RFC 7232 §2.3.2): If-Match compares strongly (a
    W/ tag never matches), If-None-Match weakly. "*" matches any current representation, none when `etag` is None."""
    return _tags_match(header, (etag,) if etag is not None else None, strong=strong)


def _tags_match(header: str, etags: Collection[str] | None, *, strong: bool) -> bool:
    if etags is None:
        return False
    if header.strip() == "*":
        return True
    for tag in header.split(","):
        tag = tag.strip()
        if tag.startswith("W/"):
            if strong:
                continue
            tag = tag[2:]
        if tag in etags:
            return True
    return False


def _precondition(req: HttpRequest, etags: Callable[[], Collection[str] | None], last_modified: float,
                  *, read: bool) -> int | None:
    """RFC 7232 §6, in its order: If-Match (else If-Unmodified-Since), then If-None-Match (else, for GET/HEAD,
    If-Modified-Since). Returns the status to answer instead of performing the method (304 for a read whose
    If-None-Match / If-Modified-Since fails, 412 for every other failed condition), or None to go on. `etags`:
    the resource's current tags (None: it has no current representation), called at most once. An unparsable
    date is ignored (§3.3, §3.4 "MUST ignore")."""
    cached: list[Collection[str] | None] = []

    def current() -> Collection[str] | None:
        if not cached:
            cached.append(etags())
        return cached[0]

    headers = req.headers
    if_match = headers.get("if-match")
    if if_match is not None:
        if not _tags_match(if_match, current(), strong=True):
            return 412
    else:
        since = _parse_http_date(headers.get("if-unmodified-since") or "")
        if since is not None and int(last_modified) > int(since):
            return 412
    if_none_match = headers.get("if-none-match")
    if if_none_match is not None:
        if _tags_match(if_none_match, current(), strong=False):
            return 304 if read else 412
    elif read:
        since = _parse_http_date(headers.get("if-modified-since") or "")
        if since is not None and int(last_modified) <= int(since):
            return 304
    return None


def _wants_jrd(req: HttpRequest) -> bool:
    """host-meta in JRD rather than XRD (RFC 6415 §3): /.well-known/host-meta.json, or an Accept that names
    application/json and not application/xrd+xml."""
    if req.raw_path.endswith(".json"):
        return True
    accept = [item.split(";")[0].strip().lower() for item in (req.headers.get("accept") or "").split(",")]
    return "application/json" in accept and XRD_XML not in accept


def node_uri(path: str) -> str:
    """A data path from libyang (`/m:a/b[k='v']`) -> its RESTCONF URI (`/restconf/data/m:a/b=v`)."""
    segments: list[str] = []
    i = 0
    while i < len(path):
        assert path[i] == "/"
        j = i + 1
        while j < len(path) and path[j] not in "/[":
            j += 1
        name = path[i + 1 : j]
        values: list[str] = []
        while j < len(path) and path[j] == "[":
            eq = path.index("=", j)
            quote_char = path[eq + 1]
            end = path.index(quote_char, eq + 2)
            values.append(path[eq + 2 : end])
            j = end + 2
        seg = name
        if values:
            seg += "=" + ",".join(quote(v, safe="") for v in values)
        segments.append(seg)
        i = j
    return f"{API_ROOT}/data/" + "/".join(segments)


class Handler:
    """Dispatch of a parsed request to the datastore, conditional requests, and the response."""

    def __init__(self, datastore: Datastore) -> None:
        self.ds = datastore
        # RFC 8650 establish-/modify-/delete-/kill-subscription, served here rather than sent to sysrepo (set by
        # the server: the subscriptions live with its event streams)
        self.subscriptions: DynamicSubscriptions | None = None
        # restconf-server/limits (XPath, subtree filters, body trees): set by the server as configured
        self.limits = RestconfLimits()
        self._parsed: OrderedDict[tuple[str, str, str, RestconfLimits], RestconfRequest] = OrderedDict()
        self._parsed_ctx = 0
        self._parsed_lock = threading.Lock()

    def _parse(self, req: HttpRequest) -> RestconfRequest:
        """`parse_request`, memoised: monitoring polls the same few URIs. Entries hold schema nodes of one libyang
        context, so the memo is dropped whenever sysrepo hands out a different context (modules changed); a request
        parsed within other limits is parsed again."""
        limits = self.limits
        key = (req.method, req.raw_path, req.raw_query, limits)
        with acquired_context(self.ds.conn) as ctx:
            ctx_id = int(ffi.cast("uintptr_t", ctx.cdata))
            with self._parsed_lock:
                if ctx_id != self._parsed_ctx:
                    self._parsed.clear()
                    self._parsed_ctx = ctx_id
                hit = self._parsed.get(key)
                if hit is not None:
                    self._parsed.move_to_end(key)
                    return hit
            parsed = parse_request(ctx, req.method, req.raw_path, req.raw_query, limits)
        with self._parsed_lock:
            self._parsed[key] = parsed
            if len(self._parsed) > _PARSE_MEMO_SIZE:
                self._parsed.popitem(last=False)
        return parsed

    # ---- entry point ------------------------------------------------------------------------------------------

    def handle(self, req: HttpRequest) -> HttpResponse:
        enc_for_errors = error_encoding(req.headers.get("accept"))
        try:
            resp = self._handle(req)
        except Exception as exc:  # noqa: BLE001 - the one place every failure becomes a response
            return self.failure(exc, enc_for_errors, req)
        if (req.method in ("GET", "HEAD") and resp.status in (200, 304) and resp.content_type != schema.YANG_MEDIA_TYPE
                and not any(name.lower() == "vary" for name, _ in resp.headers)):
            # RFC 9110 §12.5.5: the representation was chosen by Accept (JSON or XML; host-meta's XRD or JRD)
            resp.headers.append(("Vary", "Accept"))
        return resp

    def _to_failure(self, exc: BaseException) -> HttpFailure:
        """`to_failure`, with the schema at hand for a validation failure (a `must`'s error-app-tag)."""
        if isinstance(exc, sysrepo.SysrepoValidationFailedError):
            with acquired_context(self.ds.conn) as ctx:
                return to_failure(exc, ctx)
        return to_failure(exc)

    def failure(self, exc: BaseException, encoding: Encoding, req: HttpRequest | None = None) -> HttpResponse:
        failure = self._visible(self._to_failure(exc), exc, req)
        if failure.status == 405 and req is not None:
            # RFC 9110 §15.5.6: every 405 names the methods the resource supports, as OPTIONS does (the resource
            # as OPTIONS parses it: the operations something can invoke now) — also one sysrepo's
            # operation-not-supported became, not only the parser's; never the method just refused (an RPC nothing
            # serves said "Allow: POST, OPTIONS")
            try:
                allowed = self._allowed(self._parse(replace(req, method="OPTIONS", raw_query="")))
            except Exception:  # noqa: BLE001 - a resource OPTIONS cannot parse: the parser's own Allow
                allowed = next((tuple(v.split(", ")) for k, v in failure.headers if k.lower() == "allow"), ())
            allowed = tuple(m for m in allowed if m != req.method)
            others = tuple((k, v) for k, v in failure.headers if k.lower() != "allow")
            failure = replace(failure, headers=(*others, ("Allow", ", ".join(allowed))) if allowed else others)
        if failure.status >= 500 and not isinstance(exc, RestconfError | sysrepo.SysrepoError):
            log.exception("request failed", method=req.method if req else None, path=req.raw_path if req else None)
        body = twin.render_errors(failure.errors, encoding, self._path_namespaces)
        resp = HttpResponse(failure.status, body, list(failure.headers), RESPONSE_TYPES[encoding])
        # a HEAD's error carries the length of the errors body the GET would have had, not 0 (RFC 9110 §8.6, §9.3.2)
        return self._read_response(req, resp) if req is not None else resp

    def _allowed(self, parsed: RestconfRequest) -> tuple[str, ...]:
        """The methods the resource supports now (RFC 9110 §10.2.1), for OPTIONS and every 405 alike: the parser's,
        without POST on an operation nothing can invoke now (sysrepo answers "no matching subscribers": 405)."""
        snode = parsed.schema
        if ("POST" not in parsed.allowed or parsed.path is None or snode is None
                or snode.nodetype() not in (libyang.SNode.RPC, libyang.SNode.ACTION)):
            return parsed.allowed
        if self.subscriptions is not None and parsed.path in RPCS:
            return parsed.allowed  # served in-process (RFC 8650)
        if _operation_key(parsed.path) in {_operation_key(p) for p in self.ds.invocable_rpcs()}:
            return parsed.allowed
        return tuple(m for m in parsed.allowed if m != "POST")

    def _visible(self, failure: HttpFailure, exc: BaseException, req: HttpRequest | None) -> HttpFailure:
        """`failure` with nothing a NACM-restricted user may not read (mgmt.errors.hide_unreadable): every error
        reply, YANG Patch's status included (a commit's `must` failure showed its condition there). Worker thread."""
        if req is not None and isinstance(exc, sysrepo.SysrepoError) and failure.errors:
            with self.ds.session(req.user, "running") as sess:
                failure = replace(failure, errors=tuple(for_reader(failure.errors, sess)))
        return failure

    def _path_namespaces(self, path: str) -> dict[str, str]:
        with acquired_context(self.ds.conn) as ctx:
            return path_namespaces(path, ctx)

    def _handle(self, req: HttpRequest) -> HttpResponse:
        if len(req.body) > MAX_BODY_BYTES:
            raise too_big(f"The request body exceeds {MAX_BODY_BYTES} bytes")
        parsed = self._parse(req)
        kind = parsed.kind
        if kind == Kind.OPTIONS:
            allowed = self._allowed(parsed)
            headers = [("Allow", ", ".join(allowed))]
            if "PATCH" in allowed:
                headers.append(("Accept-Patch", ACCEPT_PATCH))
            return HttpResponse(200, headers=headers)
        if kind == Kind.HOST_META:
            if _wants_jrd(req):
                # RFC 6415 §3: the JSON (JRD) form, at host-meta.json or asked for with Accept: application/json
                jrd = {"links": [{"rel": "restconf", "href": API_ROOT}]}
                return self._read_response(req, HttpResponse(200, (json.dumps(jrd, indent=2) + "\n").encode(),
                                                             content_type="application/json"))
            body = (
                b"<?xml version='1.0' encoding='UTF-8'?>\n"
                b"<XRD xmlns='http://docs.oasis-open.org/ns/xri/xrd-1.0'>\n"
                b"  <Link rel='restconf' href='" + API_ROOT.encode() + b"'/>\n</XRD>\n"
            )
            return self._read_response(req, HttpResponse(200, body, content_type=XRD_XML))
        if kind in (Kind.GET_DATA, Kind.API_ROOT, Kind.YANG_LIBRARY_VERSION, Kind.LIST_OPERATIONS):
            self._no_body(req)
            encoding = response_encoding(req.headers.get("accept"))
            if kind == Kind.API_ROOT:
                body = twin.render_api_root(YANG_LIBRARY_REVISION, encoding)
                return self._read_response(req, HttpResponse(200, body, content_type=RESPONSE_TYPES[encoding]))
            if kind == Kind.YANG_LIBRARY_VERSION:
                body = twin.render_yang_library_version(YANG_LIBRARY_REVISION, encoding)
                return self._read_response(req, HttpResponse(200, body, content_type=RESPONSE_TYPES[encoding]))
            if kind == Kind.LIST_OPERATIONS:
                return self._read_response(req, self._list_operations(encoding))
            return self._get(req, parsed, encoding)
        if kind == Kind.INVOKE:
            return self._invoke(req, parsed)
        if kind == Kind.STREAM and req.method == "HEAD":
            # RFC 8040 §4.2: HEAD on every resource that supports GET, the GET's headers without its body; the
            # server layer opens streams for GET only (this was a 405 whose Allow listed HEAD)
            self._no_body(req)
            return HttpResponse(200, content_type="text/event-stream")
        if kind == Kind.STREAM:
            raise RestconfError("protocol", "operation-not-supported", "Event streams are served by the HTTP layer")
        if kind == Kind.YANG_SCHEMA:
            self._no_body(req)
            return self._schema(req, parsed)
        return self._write(req, parsed)

    @staticmethod
    def _no_body(req: HttpRequest) -> None:
        if req.body:
            raise bad_request(f"{req.method} takes no request body")

    @staticmethod
    def _read_response(req: HttpRequest, resp: HttpResponse) -> HttpResponse:
        if req.method == "HEAD":
            resp.headers.append(("Content-Length", str(len(resp.body))))
            resp.body = b""
        return resp

    # ---- reads ------------------------------------------------------------------------------------------------

    def _get(self, req: HttpRequest, parsed: RestconfRequest, encoding: Encoding) -> HttpResponse:
        datastore = parsed.datastore or "operational"
        if datastore == "intended":
            datastore = "running"  # uri.DATASTORES: <intended> is <running> here (RFC 8342 §5.1.4)
        try:
            with read_gate.gate(read_gate.RESTCONF).admit(self.ds.conn, parsed.path or "/*", parsed.query.depth or 0):
                result: ReadResult = self.ds.get(
                    req.user, datastore, parsed.path, parsed.query, encoding, base_url=self._client_base_url(req),
                    unified=parsed.datastore is None,
                )
        except read_gate.TooManyReads as exc:
            # RFC 8040 7: resource-denied is 409 for a resource in use; a server too busy for the read is 503
            raise RestconfError("application", "resource-denied", exc.errors[0].error_message, status=503,
                                retry_after=read_gate.RETRY_AFTER_S) from None
        body = result.body
        last_modified = self.ds.last_modified["running" if datastore == "operational" else datastore]
        headers = [("ETag", result.etag), ("Last-Modified", http_date(last_modified))]
        # If-Match and If-Unmodified-Since hold for GET as for any method (RFC 7232 §3.1, §3.4): a client
        # reading only the version it knows gets 412, not another version
        status = _precondition(req, lambda: (result.etag,), last_modified, read=True)
        if status == 304:
            return HttpResponse(304, headers=headers)
        if status == 412:
            raise precondition_failed("The resource does not meet the request's preconditions (If-Match, "
                                      "If-Unmodified-Since)")
        return self._read_response(req, HttpResponse(200, body, headers, RESPONSE_TYPES[encoding]))

    def _schema(self, req: HttpRequest, parsed: RestconfRequest) -> HttpResponse:
        """RFC 8040 §3.7 schema resource: libyang prints the module or submodule; NACM as for its yang-library
        entry (a user who may not see the module gets the same 404 as for one that does not exist)."""
        assert parsed.yang_schema is not None
        with acquired_context(self.ds.conn) as ctx:
            found = schema.find_schema(ctx, parsed.yang_schema)
        shown = parsed.yang_schema.name + (f"@{parsed.yang_schema.revision}" if parsed.yang_schema.revision else "")
        if found is None or not self.ds.can_read(req.user, schema.nacm_probe_xpath(found)):
            raise RestconfError("protocol", "invalid-value", f"No YANG schema {shown!r}", status=404)
        etag = etag_of(found.text)
        headers = [("ETag", etag)]
        if_match = req.headers.get("if-match")
        if if_match is not None and not _tags_match(if_match, (etag,), strong=True):
            # RFC 9110 §13.1.1 holds for every resource: it was ignored here (200 for a version the client did
            # not ask for); the schema has no modification date, so If-(Un)Modified-Since are ignored (§13.1.3-4)
            raise precondition_failed("The schema does not match If-Match")
        inm = req.headers.get("if-none-match")
        if inm is not None and _etag_matches(inm, etag):
            return HttpResponse(304, headers=headers)
        return self._read_response(req, HttpResponse(200, found.text, headers, schema.YANG_MEDIA_TYPE))

    def _client_base_url(self, req: HttpRequest) -> str | None:
        """The base URL as the client addressed the server (its Host), so yang-library locations work from where
        the client stands (a server listening on 0.0.0.0, or reached through a forwarded port); None: the listen
        address. Only a plausible host[:port] is taken; anything else falls back."""
        host = req.headers.get("host")
        scheme, sep, _ = self.ds.base_url.partition("://")
        if not host or not sep or not _HOST_RE.match(host):
            return None
        return f"{scheme}://{host}"

    def _list_operations(self, encoding: Encoding) -> HttpResponse:
        """RFC 8040 §3.3.2: one empty leaf per RPC this server can invoke (`Datastore.invocable_rpcs`: sysrepo's own
        and those something serves now; NETCONF's protocol operations are the NETCONF server's, not listed). Not
        YANG data of any one module, so built here."""
        invocable = self.ds.invocable_rpcs() | (RPCS if self.subscriptions is not None else frozenset())
        rpcs: list[tuple[str, str, str]] = []
        with acquired_context(self.ds.conn) as ctx:
            for module in ctx:
                if not module.implemented():
                    continue
                for node in module.children(types=(libyang.SNode.RPC,)):
                    if f"/{module.name()}:{node.name()}" in invocable:
                        rpcs.append((module.name(), ffi.string(module.cdata.ns).decode(), node.name()))
        if encoding == Encoding.JSON:
            doc = {"ietf-restconf:operations": {f"{m}:{n}": [None] for m, _, n in rpcs}}
            return HttpResponse(200, (json.dumps(doc, indent=2) + "\n").encode(), content_type=RESPONSE_TYPES[encoding])
        inner = "".join(f"  <{n} xmlns={quoteattr(ns)}/>\n" for _, ns, n in rpcs)
        body = f'<operations xmlns="urn:ietf:params:xml:ns:yang:ietf-restconf">\n{inner}</operations>\n'
        return HttpResponse(200, body.encode(), content_type=RESPONSE_TYPES[encoding])

    # ---- writes -----------------------------------------------------------------------------------------------

    def _check_preconditions(self, req: HttpRequest, datastore: str, path: str | None) -> None:
        """RFC 7232 §6 for a write: If-Match with either encoding's tag, If-Unmodified-Since, and If-None-Match
        (a tag or "*": "create only if absent" — RFC 7232 §3.2, a PUT with `If-None-Match: *` on an existing
        resource is 412, nothing written)."""
        headers = req.headers
        if not any(h in headers for h in ("if-match", "if-unmodified-since", "if-none-match")):
            return

        def etags() -> Collection[str] | None:
            tags = self.ds.config_etags(req.user, datastore, path)
            return None if tags is None else tuple(tags.values())

        last_modified = self.ds.last_modified.get(datastore, time.time())
        if _precondition(req, etags, last_modified, read=False) is not None:
            raise precondition_failed("The resource does not meet the request's preconditions (If-Match, "
                                      "If-None-Match, If-Unmodified-Since)")

    def _write(self, req: HttpRequest, parsed: RestconfRequest) -> HttpResponse:
        datastore = parsed.datastore or "running"
        kind = parsed.kind
        self._check_preconditions(req, datastore, parsed.path)
        if kind == Kind.DELETE:
            self._no_body(req)
            assert parsed.path is not None
            self.ds.edit(req.user, datastore, lambda ctx, reader: (None, None), delete_path=parsed.path)
            return self._written(204, datastore)
        body_kind, encoding = request_body_type(req.headers.get("content-type"))
        if body_kind == BodyKind.YANG_PATCH:
            if kind != Kind.PATCH:
                raise RestconfError(
                    "application", "invalid-value", "YANG Patch media types are only for PATCH", status=415
                )
            return self._yang_patch(req, parsed, datastore, encoding)
        if not req.body.strip():
            # RFC 8040 §4.5/§4.6: the body is the resource; none at all is a missing value, not an unparsable one
            raise bad_request(f"{req.method} needs the target resource in its body")
        text = _body_text(req.body, encoding, self.limits)

        if kind == Kind.CREATE_OR_REPLACE and parsed.path is None:
            self.ds.edit(req.user, datastore, lambda ctx, reader: (_parse_datastore(ctx, text, encoding), None),
                         replace_all=True)
            return self._written(204, datastore)

        built: list[str | None] = []

        def build(ctx: libyang.Context, reader: Reader) -> tuple[libyang.DNode | None, str | None]:
            edit = _build_edit(ctx, parsed, text, encoding)
            built.append(edit[1])
            if (kind == Kind.CREATE_CHILD and edit[1] is not None and not _np_container(ctx, edit[1])
                    and reader.exists(edit[1])):
                # refused before sysrepo sees it: sysrepo 3.7 refuses the create but stores the body's children of
                # the existing node all the same
                if edit[0] is not None:
                    edit[0].root().first_sibling().free()
                raise _post_of_existing(edit[1])
            return edit

        try:
            result = self.ds.edit(
                req.user,
                datastore,
                build,
                must_exist=parsed.path if kind == Kind.PATCH else None,
                check_exists=parsed.path if kind == Kind.CREATE_OR_REPLACE else None,
                empty_ok=kind == Kind.PATCH and parsed.path is None,  # an empty `data` merges nothing
            )
        except sysrepo.SysrepoExistsError:
            if kind != Kind.CREATE_CHILD or not built or built[0] is None:
                raise
            raise _post_of_existing(built[0]) from None  # created by another client since `build` looked
        if kind == Kind.CREATE_CHILD:
            resp = self._written(201, datastore)
            if result.created_path:
                location = node_uri(result.created_path)
                if parsed.datastore is not None:
                    location = location.replace(f"{API_ROOT}/data/", f"{API_ROOT}/ds/ietf-datastores:{datastore}/", 1)
                resp.headers.append(("Location", location))
            return resp
        if kind == Kind.CREATE_OR_REPLACE:
            return self._written(204 if result.existed else 201, datastore)
        return self._written(204, datastore)

    def _written(self, status: int, datastore: str) -> HttpResponse:
        return HttpResponse(status, headers=[("Last-Modified", http_date(self.ds.last_modified.get(datastore, time.time())))])

    # ---- YANG Patch (RFC 8072) --------------------------------------------------------------------------------

    def _yang_patch(self, req: HttpRequest, parsed: RestconfRequest, datastore: str, encoding: Encoding) -> HttpResponse:
        """All edits become one edit tree applied in one transaction; an edit that cannot be built is reported
        against its edit-id and nothing is applied (RFC 8072 §2.3: the patch is all-or-nothing)."""
        tctx = twin.context()
        text = _body_text(req.body, encoding, self.limits)
        try:
            envelope = tctx.parse_data_mem(text, encoding.value, parse_only=True, strict=True)
        except (libyang.LibyangError, UnicodeDecodeError) as exc:
            raise bad_request(f"Invalid YANG Patch document: {exc}", tag="malformed-message") from None
        if envelope is None or envelope.schema().name() != "yang-patch":
            if envelope is not None:
                envelope.free()
            raise bad_request("The body must be one ietf-yang-patch:yang-patch", tag="malformed-message")
        try:
            patch_id_node = envelope.find_one("/ietf-yang-patch:yang-patch/patch-id")
            patch_id = _term_value(patch_id_node) if patch_id_node is not None else ""
            if not patch_id:
                raise bad_request("yang-patch needs a patch-id", tag="missing-element")
            edits = _patch_edits(envelope, encoding)
        finally:
            envelope.free()
        resp_enc = response_encoding(req.headers.get("accept"), default=encoding)

        def build(ctx: libyang.Context, reader: Reader) -> tuple[libyang.DNode | None, str | None]:
            combined: libyang.DNode | None = None
            absent = _absent_targets(ctx, reader, parsed, edits)
            _prefetch_removals(ctx, reader, parsed, edits)
            try:
                for edit in edits:
                    try:
                        piece = _patch_edit_tree(ctx, reader, parsed, edit, absent)
                    except Exception as exc:  # noqa: BLE001 - reported per edit (RFC 8072 §2.3)
                        raise _EditFailed(edit.edit_id, exc) from None
                    if piece is None:
                        continue
                    if combined is None:
                        combined = piece
                    else:
                        combined.merge(piece, destruct=True)
            except BaseException:
                if combined is not None:
                    combined.root().first_sibling().free()
                raise
            if combined is None:
                return None, None
            return combined.root().first_sibling(), None

        try:
            self.ds.edit(req.user, datastore, build, empty_ok=True)
        except _EditFailed as failed:
            failure = self._visible(self._to_failure(failed.cause), failed.cause, req)
            body = twin.render_patch_status(patch_id, {failed.edit_id: list(failure.errors)}, [], resp_enc,
                                            self._path_namespaces)
            return HttpResponse(failure.status, body, content_type=_patch_status_type(resp_enc))
        except Exception as exc:  # noqa: BLE001 - a commit failure is a global error
            failure = self._visible(self._to_failure(exc), exc, req)
            body = twin.render_patch_status(patch_id, {}, list(failure.errors), resp_enc, self._path_namespaces)
            return HttpResponse(failure.status, body, content_type=_patch_status_type(resp_enc))
        body = twin.render_patch_status(patch_id, {}, [], resp_enc)
        resp = HttpResponse(200, body, content_type=_patch_status_type(resp_enc))
        resp.headers.append(("Last-Modified", http_date(self.ds.last_modified[datastore])))
        return resp

    # ---- operations -------------------------------------------------------------------------------------------

    def _invoke(self, req: HttpRequest, parsed: RestconfRequest) -> HttpResponse:
        assert parsed.path is not None
        if "POST" not in self._allowed(parsed):
            # nothing serves it now: OPTIONS lists no POST, so its input is not looked at (an empty body was 400
            # where OPTIONS said the method is not supported); an action's node that does not exist is still 404
            # (RFC 7950 §7.15.2, below): no resource, whatever it supports
            parent = _parent_of(parsed.path)
            if parsed.schema is not None and parsed.schema.nodetype() == libyang.SNode.ACTION:
                with self.ds.session(req.user, "operational") as sess:
                    if not Reader(sess).exists(parent):
                        raise _action_node_missing(parent)
            raise RestconfError("protocol", "operation-not-supported",
                                f"Nothing serves {xpath.strip_predicates(parsed.path)} now", status=405)
        out_enc = response_encoding(req.headers.get("accept"))
        in_enc = out_enc
        text = ""
        if req.body.strip():
            _, in_enc = request_body_type(req.headers.get("content-type"))
            text = _body_text(req.body, in_enc, self.limits)
            out_enc = response_encoding(req.headers.get("accept"), default=in_enc)
        path = parsed.path
        if self.subscriptions is not None and path in RPCS:
            return self._subscription_rpc(req, path, text, in_enc, out_enc)

        def build(ctx: libyang.Context) -> libyang.DNode:
            return _build_operation(ctx, path, text, in_enc)

        try:
            output = self.ds.invoke(req.user, build, out_enc)
        except sysrepo.SysrepoError as exc:
            if "data parent does not exist" not in str(exc):
                raise
            # RFC 7950 §7.15.2: an action on a node that does not exist is data-missing — sysrepo's refusal
            # became operation-failed, a 500; 404 as for any request naming a missing resource (DELETE, PATCH)
            raise _action_node_missing(_parent_of(path)) from None
        if output is None:
            return HttpResponse(204)
        return HttpResponse(200, output, content_type=RESPONSE_TYPES[out_enc])


    def _subscription_rpc(self, req: HttpRequest, path: str, text: str, in_enc: Encoding,
                          out_enc: Encoding) -> HttpResponse:
        """RFC 8650: the input parsed and NACM's exec check as for any RPC, then `DynamicSubscriptions`."""
        assert self.subscriptions is not None
        base_url = self._client_base_url(req) or self.ds.base_url
        with self.ds.session(req.user, "running") as sess, acquired_context(self.ds.conn) as ctx:
            op = _build_operation(ctx, path, text, in_enc)
            try:
                if not check_operation(sess, op.cdata):
                    raise RestconfError("application", "access-denied", f"Access to {op.path()} denied", status=403)
                _check_mandatory_input(op)  # after NACM: a user without exec access learns nothing of the input
                # establish uses the request's encoding for its notifications unless `encoding` says otherwise
                output = self.subscriptions.invoke(req.user, op, out_enc, base_url, in_enc if text else out_enc,
                                                   self.limits)
            finally:
                op.root().free()
        if output is None:
            return HttpResponse(204)
        return HttpResponse(200, output, content_type=RESPONSE_TYPES[out_enc])


class _EditFailed(Exception):
    """One YANG Patch edit could not be built: reported against its edit-id, nothing applied."""

    def __init__(self, edit_id: str, cause: BaseException) -> None:
        super().__init__(edit_id)
        self.edit_id = edit_id
        self.cause = cause


def _patch_status_type(encoding: Encoding) -> str:
    return RESPONSE_TYPES[encoding]


def _term_value(node: libyang.DNode) -> str:
    """Canonical value of a leaf, as libyang holds it."""
    raw = lib.lyd_get_value(node.cdata)
    return ffi.string(raw).decode() if raw != ffi.NULL else ""


def _body_text(body: bytes, encoding: Encoding, limits: RestconfLimits) -> str:
    """The body as text, refused whole when it is not well-formed: libyang's JSON parser takes a trailing comma and
    lets the last of two equal members win (RFC 8259 §4 leaves both to the parser; RFC 7951 data has no use for
    either), so JSON is checked here first. A body that cannot be parsed is malformed-message (RFC 8040 §7,
    RFC 6241 Appendix A), whatever the encoding. Then its tree and values within `limits` (resource-denied):
    every body libyang parses passes here first."""
    if not _valid_utf8(body):
        raise bad_request("The request body is not valid UTF-8", tag="malformed-message")
    text = body.decode("utf-8")
    if encoding == Encoding.JSON:
        try:
            doc = _check_json(text)
        except RecursionError:  # deeper than Python's parser goes, so far deeper than max-body-depth may be
            raise denied(limits, "max-body-depth", "The request body nests data nodes deeper than "
                                                   f"{limits.max_body_depth}") from None
        request_limits.check_json(doc, text, limits)
    else:
        request_limits.check_xml(text, limits)
    return text


def _no_duplicate_members(pairs: list[tuple[str, object]]) -> dict[str, object]:
    seen: dict[str, object] = {}
    for key, value in pairs:
        if key in seen:
            raise bad_request(f"JSON object member {key!r} appears twice", tag="malformed-message")
        seen[key] = value
    return seen


def _json_int(digits: str) -> int:
    """A JSON integer, refused when longer than any YANG value can be (RFC 7951 writes 64-bit ones as strings):
    Python converts at most 4,300 digits and raised ValueError, a 500, beyond."""
    if len(digits) > _MAX_JSON_INT_DIGITS:
        raise bad_request(f"A JSON number of {len(digits)} digits: no YANG value has more than 20")
    return int(digits)


def _check_json(text: str) -> object:
    try:
        return json.loads(text, object_pairs_hook=_no_duplicate_members, parse_int=_json_int)
    except json.JSONDecodeError as exc:
        raise bad_request(f"The request body is not valid JSON: {exc}", tag="malformed-message") from None


def _refuse_duplicates(tree: libyang.DNode) -> None:
    """Two instances of one node among the same siblings (a leaf or container twice, two list entries with the same
    keys, a leaf-list value twice) are refused, not merged with the last one winning: parse_only keeps them all,
    and sysrepo would apply each in turn (RFC 7950 §7.8.2, §7.7: instances are unique).

    One walk over libyang's own nodes with one set: linear, and no Python object per node (a 40,000-value
    leaf-list took 0.3 s through DNode wrappers)."""
    seen: set[tuple[Any, Any, tuple[str, ...] | str]] = set()
    stack = [tree.root().first_sibling().cdata]
    while stack:
        node = stack.pop()
        while node != ffi.NULL:
            snode = node.schema
            if snode != ffi.NULL:
                kind = snode.nodetype
                ident: tuple[str, ...] | str = ()
                if kind & lib.LYS_LIST:
                    ident = _key_values(node)
                if kind & lib.LYS_LEAFLIST:
                    raw = lib.lyd_get_value(node)
                    ident = ffi.string(raw).decode() if raw != ffi.NULL else ""
                if ident or not kind & lib.LYS_LIST:  # keyless (state) lists may repeat
                    key = (node.parent, snode, ident)
                    if key in seen:
                        path = libyang.DNode.new(tree.context, node).path()
                        raise bad_request(f"{path} appears twice in the request body", path=path)
                    seen.add(key)
            child = lib.lyd_child(node)
            if child != ffi.NULL:
                stack.append(child)
            node = node.next


def _key_values(cnode: Any) -> tuple[str, ...]:
    values: list[str] = []
    child = lib.lyd_child(cnode)
    while child != ffi.NULL and child.schema != ffi.NULL and child.schema.flags & lib.LYS_KEY:
        raw = lib.lyd_get_value(child)
        values.append(ffi.string(raw).decode() if raw != ffi.NULL else "")
        child = child.next
    return tuple(values)


def _valid_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


# ---- building edit trees (under sysrepo's libyang context) ----------------------------------------------------


def _scratch_parent(ctx: libyang.Context, path: str) -> tuple[libyang.DNode, libyang.DNode]:
    """A scratch tree holding `path` (with its keys); returns (root, the node at path)."""
    first = ctx.create_data_path(path)
    assert first is not None
    root = first.root()
    node = root.find_one(path)
    if node is None:  # pragma: no cover - libyang just made it
        root.free()
        raise bad_request(f"Cannot address {path}")
    return root, node


def _is_key(node: libyang.DNode) -> bool:
    schema = node.schema()
    return isinstance(schema, libyang.SLeaf) and schema.is_key()


def _parse_under(
    ctx: libyang.Context, parent_path: str | None, text: str, encoding: Encoding, target: str | None = None
) -> tuple[libyang.DNode, list[libyang.DNode]]:
    """Parse a body as children of `parent_path` (or as top-level data). Returns (tree root, parsed nodes).
    `target`: the data path the body must be (PUT, PATCH, a YANG Patch edit), the error-path of a refusal libyang
    names no node for (RFC 8040 §7.1: a leaf's bad value came without one)."""
    if parent_path is None:
        try:
            tree = ctx.parse_data_mem(text, encoding.value, parse_only=True, strict=True, no_state=True)
        except libyang.LibyangError as exc:
            error = from_libyang(exc)
            if target is None or error.error_path:
                raise
            raise MgmtException(replace(error, error_path=target)) from None
        if tree is None:
            raise bad_request("The request body holds no data")
        root = tree.root().first_sibling()
        _refuse_duplicates(root)
        nodes = []
        node: libyang.DNode | None = root
        while node is not None:
            nodes.append(node)
            node = node.next()
        return root, nodes
    root, parent = _scratch_parent(ctx, parent_path)
    before = _child_pointers(parent)  # the keys of a scratch list entry: a few
    try:
        ctx.parse_data_mem(text, encoding.value, parent=parent, parse_only=True, strict=True, no_state=True)
    except libyang.LibyangError as exc:
        parent_module = parent.module().name()
        root.free()
        error = from_libyang(exc)
        if target is not None and not error.error_path:
            error = replace(error, error_path=target)
        raise _under_parent(error, parent_path, parent_module) from None
    except BaseException:
        root.free()
        raise
    nodes = [libyang.DNode.new(ctx, c) for c in _child_cdata(parent) if c not in before]
    _refuse_duplicates(root)
    return root, nodes


def _np_container(ctx: libyang.Context, path: str) -> bool:
    """A non-presence container, whose POST sysrepo takes as a merge (it exists with its children): left to it."""
    snode = next(ctx.find_path(xpath.strip_predicates(path)), None)
    return isinstance(snode, libyang.SContainer) and not snode.presence()


def _post_of_existing(path: str) -> RestconfError:
    """RFC 8040 §4.4.1: "If the data resource already exists, then the POST request MUST fail and a "409 Conflict"
    status-line MUST be returned. The error-tag value "resource-denied" is used in this case" (sysrepo's refusal
    is data-exists, naming the node by its name only); §7.1: error-path is the node's instance-identifier."""
    return RestconfError("application", "resource-denied", f"Data already exist at {path}", path=path, status=409)


def _under_parent(error: MgmtError, parent_path: str, parent_module: str) -> MgmtException:
    """A parse error of a body parsed below `parent_path`, its error-path made absolute (RFC 8040 §7.1: the node's
    instance-identifier): libyang names a node of a body parsed under a parent from the body's top
    ("/vpp-singbox:endpoint/name" for a POST to /vpp-singbox:singbox/client)."""
    path = error.error_path
    if path and path.startswith("/") and not path.startswith(parent_path + "/"):
        first, _, rest = path[1:].partition("/")
        module, colon, name = first.partition(":")
        if colon and module == parent_module:  # RFC 7951 §6.11: the prefix only where the module changes
            first = name
        path = f"{parent_path}/{first}" + (f"/{rest}" if rest else "")
        error = replace(error, error_path=path)
    return MgmtException(error)


def _build_edit(
    ctx: libyang.Context, parsed: RestconfRequest, text: str, encoding: Encoding
) -> tuple[libyang.DNode | None, str | None]:
    kind = parsed.kind
    if kind == Kind.CREATE_CHILD:
        root, nodes = _parse_under(ctx, parsed.path, text, encoding)
        try:
            if len(nodes) != 1:
                raise bad_request(f"POST needs exactly one child resource in the body, found {len(nodes)}")
            node = nodes[0]
            node.new_meta("ietf-netconf:operation", "create")
            _insert_meta(node, parsed)
            return root, node.path()
        except BaseException:
            root.free()
            raise
    if parsed.path is None:
        # PATCH on the datastore: merge whatever the body holds, given as the datastore — `ietf-restconf:data`, as
        # RFC 8040 §4.6.1's own example sends it (it was refused: no node "data") — or as its bare content
        return _parse_datastore(ctx, text, encoding), None
    root, nodes = _parse_under(ctx, parsed.parent_path, text, encoding, parsed.path)
    try:
        target = _matching_target(root, nodes, parsed)
        if kind == Kind.CREATE_OR_REPLACE:
            target.new_meta("ietf-netconf:operation", "replace")
            _insert_meta(target, parsed)
        return root, None
    except BaseException:
        root.free()
        raise


def _child_cdata(node: libyang.DNode) -> list[Any]:
    out: list[Any] = []
    child = lib.lyd_child(node.cdata)
    while child != ffi.NULL:
        out.append(child)
        child = child.next
    return out


def _child_pointers(node: libyang.DNode) -> set[Any]:
    return set(_child_cdata(node))


def _matching_target(root: libyang.DNode, nodes: list[libyang.DNode], parsed: RestconfRequest) -> libyang.DNode:
    """RFC 8040 §4.5/§4.6: the body is exactly the target resource (same node, same keys)."""
    assert parsed.path is not None and parsed.schema is not None
    if len(nodes) != 1:
        raise bad_request(f"The body must hold exactly the target resource, found {len(nodes)} nodes")
    node = nodes[0]
    if node.schema().cdata != parsed.schema.cdata:
        raise bad_request(
            f"The body holds {node.schema().name()!r}, the URI names {parsed.schema.name()!r}", tag="invalid-value"
        )
    if parsed.schema.nodetype() in (libyang.SNode.LIST, libyang.SNode.LEAFLIST):
        found = root.find_one(parsed.path)
        if found is None or found.cdata != node.cdata:
            raise bad_request("The key values in the body differ from those in the URI (RFC 8040 §4.5)")
    return node


def _insert_meta(node: libyang.DNode, parsed: RestconfRequest) -> None:
    """insert/point (RFC 8040 §4.8.5-6) as yang:insert / yang:key / yang:value metadata for sysrepo."""
    insert = parsed.query.insert
    if insert is None:
        return
    schema = node.schema()
    ordered = getattr(schema, "ordered", None)
    if schema.nodetype() not in (libyang.SNode.LIST, libyang.SNode.LEAFLIST) or ordered is None or not ordered():
        raise bad_request("insert applies only to lists and leaf-lists ordered by user")
    node.new_meta("yang:insert", insert)
    point = parsed.query.point
    if point is None:
        return
    if not _same_list(point, node.path()):
        # RFC 8040 §4.8.6: the point is an instance of the inserted node's own list (it was sysrepo's 409)
        raise bad_request("point must be an entry of the same list or leaf-list as the inserted node")
    pred = _last_predicates(point)
    if schema.nodetype() == libyang.SNode.LIST:
        node.new_meta("yang:key", pred)
    else:
        value = pred[len("[.=") + 1 : -2]
        node.new_meta("yang:value", value)


def _last_predicates(path: str) -> str:
    """The predicates of a data path's last node (`[k='v']...` or `[.='v']`), quotes honoured: a key holding "/"
    ("a/b") cut the path in its value, and a YANG Patch point naming it was a 500."""
    last = path[len(xpath.parent_path(path)) + 1 :]
    return last[last.index("[") :] if "[" in last else ""


def _same_list(point: str, path: str) -> bool:
    """Whether two data paths name entries of one list (or leaf-list) instance: same parent, same node."""
    def node_name(p: str) -> str:
        last = p[len(xpath.parent_path(p)) + 1 :]
        return last.split("[", 1)[0].rpartition(":")[2]

    return xpath.parent_path(point) == xpath.parent_path(path) and node_name(point) == node_name(path)


_XML_DATA_RE = re.compile(
    r"^\s*(?:<\?xml[^>]*\?>\s*)?<(?:(?P<prefix>[A-Za-z_][\w.-]*):)?data\s+xmlns(?::[A-Za-z_][\w.-]*)?\s*=\s*"
    r"(?P<q>[\"'])urn:ietf:params:xml:ns:yang:ietf-restconf(?P=q)\s*(?:/>|>(?P<inner>.*)</(?P=prefix)?:?data>)\s*$",
    re.DOTALL,
)


def _parse_datastore(ctx: libyang.Context, text: str, encoding: Encoding) -> libyang.DNode | None:
    """PUT or PATCH on a datastore: the body is the datastore, `ietf-restconf:data` (RFC 8040 §4.5, §4.6.1,
    Appendix B.2.4), as GET prints it; its bare content is taken as well."""
    if encoding == Encoding.JSON:
        doc = _check_json(text)
        if isinstance(doc, dict) and list(doc) == ["ietf-restconf:data"]:
            text = json.dumps(doc["ietf-restconf:data"])
    else:
        wrapped = _XML_DATA_RE.match(text)
        if wrapped is not None:
            text = wrapped.group("inner") or ""
    if not text.strip() or text.strip() == "{}":
        return None
    tree = ctx.parse_data_mem(text, encoding.value, parse_only=True, strict=True, no_state=True)
    if tree is not None:
        _refuse_duplicates(tree)
    return tree


def _build_operation(ctx: libyang.Context, path: str, text: str, encoding: Encoding) -> libyang.DNode:
    """RPC/action input: RFC 8040 §3.6.1 `<module>:input` parsed by libyang as a RESTCONF RPC."""
    root, op = _scratch_parent(ctx, path)
    if text:
        # lyd_parse_op with LYD_TYPE_RPC_RESTCONF wants the operation node as parent and no tree/op outputs, which
        # libyang-python's parse_op does not allow: call libyang directly.
        data = ffi.new("struct ly_in **")
        raw = text.encode()
        if lib.ly_in_new_memory(raw, data) != lib.LY_SUCCESS:
            root.free()
            raise bad_request("cannot read the request body")
        fmt = lib.LYD_JSON if encoding == Encoding.JSON else lib.LYD_XML
        try:
            tree = ffi.new("struct lyd_node **")
            ret = lib.lyd_parse_op(ctx.cdata, op.cdata, data[0], fmt, lib.LYD_TYPE_RPC_RESTCONF, tree, ffi.NULL)
        finally:
            lib.ly_in_free(data[0], 0)
        if ret != lib.LY_SUCCESS:
            err = ctx.error("invalid operation input")
            root.free()
            raise err
    return op


def _check_mandatory_input(op: libyang.DNode) -> None:
    """The mandatory leaves of an operation's input are there (RFC 7950 §7.14.2 input is validated as data;
    sysrepo does it for the RPCs it delivers, the server's own RFC 8650 RPCs skipped it: a delete-subscription
    without its `id` acted on subscription 0). Direct leaves only: choices are the RPC's own to check."""
    given: set[Any] = set()
    child = lib.lyd_child(op.cdata)
    while child != ffi.NULL:
        given.add(child.schema)
        child = child.next
    snode = lib.lys_getnext(ffi.NULL, op.cdata.schema, ffi.NULL, lib.LYS_GETNEXT_WITHCHOICE)
    while snode != ffi.NULL:
        if snode.nodetype == lib.LYS_LEAF and snode.flags & lib.LYS_MAND_TRUE and snode not in given:
            name = ffi.string(snode.name).decode()
            raise RestconfError("protocol", "missing-element", f"{op.path()} needs its input leaf {name!r}",
                                path=f"{op.path()}/{name}")
        snode = lib.lys_getnext(snode, op.cdata.schema, ffi.NULL, lib.LYS_GETNEXT_WITHCHOICE)


# ---- YANG Patch edits ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PatchEdit:
    edit_id: str
    operation: str
    target: str
    point: str | None
    where: str | None
    value: str | None  # printed in the patch's encoding
    value_encoding: Encoding


def _patch_edits(envelope: libyang.DNode, encoding: Encoding) -> list[PatchEdit]:
    """The edits of a YANG Patch; each value stays in the patch's own encoding (printed from the anydata as it was
    parsed: an XML value through JSON lost what makes a list entry a list entry)."""
    fmt = lib.LYD_JSON if encoding == Encoding.JSON else lib.LYD_XML
    edits: list[PatchEdit] = []
    seen: set[str] = set()
    for edit in envelope.find_all("/ietf-yang-patch:yang-patch/edit"):
        fields: dict[str, str] = {}
        value: str | None = None
        for child in schema.children(edit):
            name = child.schema().name()
            if name == "value":
                any_node = ffi.cast("struct lyd_node_any *", child.cdata)
                if any_node.value_type == lib.LYD_ANYDATA_DATATREE and any_node.value.tree != ffi.NULL:
                    buf = ffi.new("char **")
                    lib.lyd_print_mem(buf, any_node.value.tree, fmt, lib.LYD_PRINT_WITHSIBLINGS)
                    value = ffi.string(buf[0]).decode()
                    lib.free(buf[0])
                else:
                    buf = ffi.new("char **")
                    lib.lyd_any_value_str(child.cdata, buf)
                    value = ffi.string(buf[0]).decode() if buf[0] != ffi.NULL else ""
                    if buf[0] != ffi.NULL:
                        lib.free(buf[0])
            else:
                fields[name] = _term_value(child)
        if fields["edit-id"] in seen:
            # RFC 8072 §2.2: edit-id is the key of the edit list, so unique; a status naming it would be ambiguous
            raise bad_request(f"edit-id {clip(fields['edit-id'])!r} appears twice in the patch", tag="invalid-value")
        seen.add(fields["edit-id"])
        if "'" in fields["edit-id"] and '"' in fields["edit-id"]:
            raise bad_request(f"edit-id {fields['edit-id']!r} holds both quote kinds: its status could not name it")
        edits.append(
            PatchEdit(
                fields["edit-id"],
                fields["operation"],
                fields["target"],
                fields.get("point"),
                fields.get("where"),
                value,
                encoding,
            )
        )
    return edits


_PATCH_OPS = {"create": "create", "delete": "delete", "insert": "create", "merge": "merge", "replace": "replace", "remove": "remove", "move": "merge"}


# Create and insert targets whose absence one read checks (an XPath union of this many paths).
_ABSENCE_BATCH = 256


def _absent_targets(ctx: libyang.Context, reader: Reader, parsed: RestconfRequest, edits: list[PatchEdit]) -> set[str]:
    """The data paths of create/insert targets known not to exist, found with one read per `_ABSENCE_BATCH` of them
    (a union exists exactly when one of its paths does): a read per edit took 2,000 creates 7 s. A batch where
    something exists is left to the edits' own reads, which say which; an edit whose target does not resolve is
    left to its own error."""
    paths: list[str] = []
    for edit in edits:
        if edit.operation not in ("create", "insert"):
            continue
        try:
            resolved = _edit_target(ctx, parsed, edit)
        except Exception:  # noqa: BLE001 - reported by the edit itself (RFC 8072 §2.3)
            continue
        if resolved is not None:
            paths.append(resolved.path)
    absent: set[str] = set()
    for i in range(0, len(paths), _ABSENCE_BATCH):
        batch = paths[i : i + _ABSENCE_BATCH]
        if not reader.exists(" | ".join(batch)):
            absent.update(batch)
    return absent


def _prefetch_removals(ctx: libyang.Context, reader: Reader, parsed: RestconfRequest, edits: list[PatchEdit]) -> None:
    """The targets of delete, remove and move edits read with one sysrepo read per `Reader.PREFETCH_BATCH` of them
    (whether each exists, a leaf's value), which the edits then take from the reader instead of a read each. An
    edit whose target does not resolve is left to its own error."""
    paths: list[str] = []
    for edit in edits:
        if edit.operation not in ("delete", "remove", "move"):
            continue
        try:
            resolved = _edit_target(ctx, parsed, edit)
        except Exception:  # noqa: BLE001 - reported by the edit itself (RFC 8072 §2.3)
            continue
        if resolved is not None and not resolved.schema.config_false():
            paths.append(resolved.path)
    reader.prefetch(paths)


def _edit_target(ctx: libyang.Context, parsed: RestconfRequest, edit: PatchEdit) -> ResolvedPath | None:
    """An edit's target resolved against the request's (None: the datastore itself)."""
    if not edit.target.startswith("/"):
        raise bad_request(f"target {edit.target!r} must start with '/'")
    base_raw = _api_path_of(parsed) if parsed.path is not None else ""
    raw = (base_raw + edit.target).strip("/") if edit.target != "/" else base_raw.strip("/")
    return resolve_api_path(ctx, raw)


def _patch_edit_tree(
    ctx: libyang.Context, reader: Reader, parsed: RestconfRequest, edit: PatchEdit,
    absent: AbstractSet[str] = frozenset(),
) -> libyang.DNode | None:
    """One edit (RFC 8072 §2.5) as an edit tree with its nc:operation; `target` is relative to the request's target.
    `absent`: data paths known not to exist (`_absent_targets`), which a create or insert need not read again.

    sysrepo takes one edit tree per transaction, so the handler merges these pieces and applies them at once.
    """
    resolved = _edit_target(ctx, parsed, edit)
    base_raw = _api_path_of(parsed) if parsed.path is not None else ""
    op = edit.operation
    if resolved is None:
        if op in ("delete", "remove", "insert", "move"):
            raise bad_request(f"edit {edit.edit_id!r}: {op} needs a target below the datastore")
        if edit.value is None:
            raise bad_request(f"edit {edit.edit_id!r}: operation {op} needs a value", tag="missing-element")
        tree = ctx.parse_data_mem(edit.value, edit.value_encoding.value, parse_only=True, strict=True, no_state=True)
        if tree is None:
            return None
        _refuse_duplicates(tree)
        node: libyang.DNode | None = tree.root().first_sibling()
        while node is not None:
            node.new_meta("ietf-netconf:operation", _PATCH_OPS[op])
            node = node.next()
        return tree
    target_path = resolved.path
    if resolved.schema.config_false():
        raise bad_request(f"edit {edit.edit_id!r}: {target_path} is not configuration")
    if op in ("delete", "remove"):
        if edit.value is not None:
            raise bad_request(f"edit {edit.edit_id!r}: {op} takes no value")
        value = None
        if op == "delete" and not reader.exists(target_path):
            raise RestconfError("application", "data-missing", f"No data at {target_path}", path=target_path)
        if resolved.schema.nodetype() == libyang.SNode.LEAF:
            value = reader.leaf_value(target_path)
            if value is None:
                if op == "remove":
                    return None
                raise RestconfError("application", "data-missing", f"No data at {target_path}", path=target_path)
        first = ctx.create_data_path(target_path, value=value)
        assert first is not None
        root = first.root()
        found = root.find_one(target_path)
        assert found is not None
        found.new_meta("ietf-netconf:operation", op)
        return root
    if op in ("insert", "move") and not (
        resolved.schema.nodetype() in (libyang.SNode.LIST, libyang.SNode.LEAFLIST)
        and getattr(resolved.schema, "ordered", lambda: False)()
    ):
        # RFC 8072 §2.5: insert and move are for "user-ordered" entries (a system-ordered list has no position
        # to give; it was accepted and the position dropped) — as the insert query parameter (RFC 8040 §4.8.5)
        raise bad_request(f"edit {edit.edit_id!r}: {op} needs an entry of a list or leaf-list ordered by user")
    if op == "move" and edit.value is None:
        # RFC 8072 §2.5: move takes no value (the module's `value` is only "when" create, merge, replace or
        # insert) and "the target resource must exist": the entry itself, by its keys, is what moves
        if not resolved.keyed:
            raise bad_request(f"edit {edit.edit_id!r}: move needs a list entry or leaf-list value as its target")
        if not reader.exists(target_path):
            raise RestconfError("application", "data-missing", f"No data at {target_path}", path=target_path)
        first = ctx.create_data_path(target_path)
        assert first is not None
        root2 = first.root()
        found = root2.find_one(target_path)
        assert found is not None
        target = found
    else:
        if edit.value is None:
            raise bad_request(f"edit {edit.edit_id!r}: operation {op} needs a value", tag="missing-element")
        if op in ("create", "insert") and target_path not in absent and reader.exists(target_path):
            raise RestconfError("application", "data-exists", f"Data already exist at {target_path}",
                                path=target_path)
        fake = RestconfRequest(Kind.CREATE_OR_REPLACE, "PUT", parsed.datastore, target_path, resolved.schema)
        root2, nodes = _parse_under(ctx, _parent_of(target_path) or None, edit.value, edit.value_encoding,
                                    target_path)
        try:
            target = _matching_target(root2, nodes, fake)
        except BaseException:
            root2.free()
            raise
    try:
        target.new_meta("ietf-netconf:operation", _PATCH_OPS[op])
        if op in ("insert", "move"):
            where = edit.where or "last"
            target.new_meta("yang:insert", where)
            if where in ("before", "after"):
                if not edit.point:
                    raise bad_request(f"edit {edit.edit_id!r}: where={where} needs a point")
                point = resolve_api_path(ctx, (base_raw + edit.point).strip("/"))
                if point is None or not point.keyed:
                    raise bad_request(f"edit {edit.edit_id!r}: point must name a list entry or leaf-list value")
                if point.schema.cdata != resolved.schema.cdata or not _same_list(point.path, target_path):
                    # RFC 8072 §2.5: the point is an entry of the target's own list (it was sysrepo's global
                    # data-missing, 409, naming no edit)
                    raise bad_request(f"edit {edit.edit_id!r}: point must be an entry of the same list as the "
                                      "target")
                pred = _last_predicates(point.path)
                if resolved.schema.nodetype() == libyang.SNode.LIST:
                    target.new_meta("yang:key", pred)
                else:
                    target.new_meta("yang:value", pred[4:-2])
    except BaseException:
        root2.free()
        raise
    return root2


def _parent_of(path: str) -> str:
    return xpath.parent_path(path)


def _api_path_of(parsed: RestconfRequest) -> str:
    assert parsed.path is not None
    uri = node_uri(parsed.path)
    return "/" + uri.removeprefix(f"{API_ROOT}/data/")


def _operation_key(path: str) -> str:
    """An operation's schema path with each module prefix only where the module changes (`/m:a/b/act`), whatever
    the list keys and repeated prefixes of the data path or the path a subscriber gave sysrepo."""
    out: list[str] = []
    module = ""
    for step in xpath.strip_predicates(path).strip("/").split("/"):
        prefix, colon, name = step.rpartition(":")
        if colon and prefix != module:
            module = prefix
            out.append(f"{prefix}:{name}")
        else:
            out.append(name if colon else step)
    return "/" + "/".join(out)


def _action_node_missing(parent: str) -> RestconfError:
    return RestconfError("application", "data-missing", f"No data at {parent}: the action's node does not exist",
                         path=parent, status=404)

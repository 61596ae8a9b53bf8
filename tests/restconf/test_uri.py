"""Table tests of the pure RESTCONF request parser against a bare libyang context (no sysrepo, no HTTP)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import libyang
import pytest

from singbox_agent.restconf.errors import RestconfError, to_failure
from singbox_agent.restconf.uri import Kind, parse_fields, parse_request

TOP = Path(__file__).resolve().parents[2]
SEARCH = [TOP / "yang", TOP / "agent/singbox_agent/yang", Path("/usr/share/yang/modules/sysrepo"),
          Path("/usr/share/yang/modules/libyang")]
D = "/restconf/data"
SB = f"{D}/vpp-singbox:singbox"


@pytest.fixture(scope="module")
def ctx() -> Iterator[libyang.Context]:
    context = libyang.Context(":".join(str(p) for p in SEARCH if p.is_dir()))
    for name in ("vpp-singbox", "ietf-system", "ietf-netconf-acm", "ietf-restconf-monitoring"):
        context.load_module(name).feature_enable_all()
    yield context
    context.destroy()


GOOD = [
    # method, path, query, kind, datastore, libyang path
    ("GET", "/restconf", "", Kind.API_ROOT, None, None),
    ("GET", "/restconf/", "", Kind.API_ROOT, None, None),
    ("HEAD", "/restconf", "", Kind.API_ROOT, None, None),
    ("GET", "/.well-known/host-meta", "", Kind.HOST_META, None, None),
    ("GET", "/restconf/yang-library-version", "", Kind.YANG_LIBRARY_VERSION, None, None),
    ("GET", "/restconf/operations", "", Kind.LIST_OPERATIONS, None, None),
    ("GET", D, "", Kind.GET_DATA, None, None),
    ("PUT", D, "", Kind.CREATE_OR_REPLACE, None, None),
    ("POST", D, "", Kind.CREATE_CHILD, None, None),
    ("PATCH", D, "", Kind.PATCH, None, None),
    ("GET", SB, "", Kind.GET_DATA, None, "/vpp-singbox:singbox"),
    ("GET", f"{SB}/client/endpoint=e1", "", Kind.GET_DATA, None, "/vpp-singbox:singbox/client/endpoint[name='e1']"),
    ("GET", f"{SB}/client/endpoint", "", Kind.GET_DATA, None, "/vpp-singbox:singbox/client/endpoint"),
    ("GET", f"{SB}/client/endpoint=a.b-c_d/port", "", Kind.GET_DATA, None,
     "/vpp-singbox:singbox/client/endpoint[name='a.b-c_d']/port"),
    ("PUT", f"{SB}/client/endpoint=e1", "", Kind.CREATE_OR_REPLACE, None,
     "/vpp-singbox:singbox/client/endpoint[name='e1']"),
    ("PATCH", f"{SB}/client/endpoint=e1", "", Kind.PATCH, None, "/vpp-singbox:singbox/client/endpoint[name='e1']"),
    ("DELETE", f"{SB}/client/endpoint=e1", "", Kind.DELETE, None, "/vpp-singbox:singbox/client/endpoint[name='e1']"),
    ("POST", f"{SB}/client", "", Kind.CREATE_CHILD, None, "/vpp-singbox:singbox/client"),
    ("POST", f"{SB}/client/endpoint=e1", "", Kind.CREATE_CHILD, None,
     "/vpp-singbox:singbox/client/endpoint[name='e1']"),
    ("OPTIONS", f"{SB}/client", "", Kind.OPTIONS, None, "/vpp-singbox:singbox/client"),
    ("DELETE", f"{SB}/client/interface=eth0/bypass-prefix=10.0.0.0%2F8", "", Kind.DELETE, None,
     "/vpp-singbox:singbox/client/interface[name='eth0']/bypass-prefix[.='10.0.0.0/8']"),
    ("GET", f"{D}/ietf-system:system/authentication/user=a%27b", "", Kind.GET_DATA, None,
     "/ietf-system:system/authentication/user[name=\"a'b\"]"),
    ("GET", f"{D}/ietf-system:system/authentication/user=%C3%A9t%C3%A9", "", Kind.GET_DATA, None,
     "/ietf-system:system/authentication/user[name='été']"),
    ("GET", f"{D}/ietf-system:system/authentication/user=", "", Kind.GET_DATA, None,
     "/ietf-system:system/authentication/user[name='']"),
    ("GET", f"{SB}/sessions/session=42", "", Kind.GET_DATA, None, "/vpp-singbox:singbox/sessions/session[id='42']"),
    ("GET", f"{SB}/vpp-singbox:client", "", Kind.GET_DATA, None, "/vpp-singbox:singbox/client"),  # redundant prefix
    ("GET", "/restconf/ds/ietf-datastores:running/vpp-singbox:singbox", "", Kind.GET_DATA, "running",
     "/vpp-singbox:singbox"),
    ("GET", "/restconf/ds/ietf-datastores:operational", "", Kind.GET_DATA, "operational", None),
    ("PUT", "/restconf/ds/ietf-datastores:candidate/vpp-singbox:singbox/log-level", "", Kind.CREATE_OR_REPLACE,
     "candidate", "/vpp-singbox:singbox/log-level"),
    ("DELETE", "/restconf/ds/ietf-datastores:startup/vpp-singbox:singbox", "", Kind.DELETE, "startup",
     "/vpp-singbox:singbox"),
    ("GET", "/restconf/ds/ietf-datastores%3Arunning", "", Kind.GET_DATA, "running", None),
    ("POST", "/restconf/operations/vpp-singbox:test-endpoint", "", Kind.INVOKE, None, "/vpp-singbox:test-endpoint"),
    ("GET", "/restconf/streams/NETCONF/json", "", Kind.STREAM, None, None),
    ("GET", "/restconf/streams/NETCONF/xml", "filter=/vpp-singbox:endpoint-up", Kind.STREAM, None, None),
    ("GET", "/restconf/data/ietf-restconf-monitoring:restconf-state/streams", "", Kind.GET_DATA, None,
     "/ietf-restconf-monitoring:restconf-state/streams"),
]


@pytest.mark.parametrize(("method", "path", "query", "kind", "datastore", "lypath"), GOOD)
def test_good_requests(
    ctx: libyang.Context, method: str, path: str, query: str, kind: Kind, datastore: str | None, lypath: str | None
) -> None:
    req = parse_request(ctx, method, path, query)
    assert req.kind == kind
    assert req.datastore == datastore
    assert req.path == lypath


QUERY_GOOD = [
    ("depth=1", "depth", 1),
    ("depth=65535", "depth", 65535),
    ("depth=unbounded", "depth", None),
    ("content=config", "content", "config"),
    ("content=nonconfig", "content", "nonconfig"),
    ("content=all", "content", "all"),
    ("with-defaults=report-all-tagged", "with_defaults", "report-all-tagged"),
    ("with-defaults=trim", "with_defaults", "trim"),
    ("fields=log-level", "fields", ("log-level",)),
    ("fields=client(endpoint(name;port);default-endpoint)", "fields",
     ("client/endpoint/name", "client/endpoint/port", "client/default-endpoint")),
    ("fields=server/enabled;log-level", "fields", ("server/enabled", "log-level")),
    ("depth=2&content=config&with-defaults=explicit", "depth", 2),
]


@pytest.mark.parametrize(("query", "attr", "value"), QUERY_GOOD)
def test_good_query(ctx: libyang.Context, query: str, attr: str, value: object) -> None:
    req = parse_request(ctx, "GET", SB, query)
    assert getattr(req.query, attr) == value


def test_insert_point(ctx: libyang.Context) -> None:
    req = parse_request(ctx, "POST", f"{D}/ietf-netconf-acm:nacm", "insert=first")
    assert req.query.insert == "first"
    req = parse_request(
        ctx, "POST", f"{D}/ietf-netconf-acm:nacm", "insert=after&point=/ietf-netconf-acm:nacm/rule-list=admin-all"
    )
    assert req.query.point == "/ietf-netconf-acm:nacm/rule-list[name='admin-all']"


def test_stream_times(ctx: libyang.Context) -> None:
    req = parse_request(
        ctx, "GET", "/restconf/streams/NETCONF/json", "start-time=2026-01-01T00:00:00Z&stop-time=2026-01-02T00:00:00Z"
    )
    assert req.query.start_time == "2026-01-01T00:00:00Z"


BAD = [
    # method, path, query, status, message fragment
    ("GET", "/restconf/data/singbox", "", 400, "module name"),
    ("GET", "/restconf/data/nonexistent:x", "", 400, "Unknown module"),
    ("GET", f"{SB}/nope", "", 400, "No node"),
    ("GET", f"{SB}/client/endpoint=a,b", "", 400, "1 key"),
    ("GET", f"{SB}/client/endpoint=bad%20name", "", 400, "Invalid key value"),
    ("GET", f"{SB}/client/endpoint=%zz", "", 400, "percent-encoding"),
    ("GET", f"{SB}/client/endpoint=%4", "", 400, "percent-encoding"),
    ("GET", f"{SB}/client/endpoint=%FF", "", 400, "UTF-8"),
    ("GET", f"{SB}/sessions/session=abc", "", 400, "Invalid key value"),
    ("GET", f"{SB}/sessions/session=-1", "", 400, "Invalid key value"),
    ("GET", f"{SB}/sessions/session=18446744073709551616", "", 400, "Invalid key value"),
    ("GET", f"{SB}/client/endpoint/port", "", 400, "needs its keys"),
    ("GET", f"{SB}/log-level/x", "", 400, "leaf"),
    ("GET", f"{SB}/client=x", "", 400, "not a list"),
    ("GET", f"{SB}//client", "", 400, "Empty segment"),
    ("GET", f"{SB}/", "", 400, "Empty segment"),
    ("GET", f"{SB}/client/1abc", "", 400, "api-identifier"),
    ("GET", f"{SB}/client/a b", "", 400, "api-identifier"),
    ("GET", f"{SB}/client/endpoint=e1/vpp-singbox:", "", 400, "api-identifier"),
    ("GET", f"{SB}/client/interface=eth0/bypass-prefix=1,2", "", 400, "exactly one value"),
    ("GET", f"{SB}/client/interface=eth0/bypass-prefix=notaprefix", "", 400, "Invalid key value"),
    ("GET", "/restconf/data/vpp-singbox:endpoint-up", "", 400, "notification"),
    ("POST", "/restconf/data/vpp-singbox:test-endpoint", "", 400, "operations"),
    ("GET", "/restconf/operations/vpp-singbox:test-endpoint", "", 405, "not allowed"),
    ("POST", "/restconf/operations/vpp-singbox:singbox", "", 400, "not an RPC"),
    ("POST", "/restconf/operations/test-endpoint", "", 400, "operations/<module>"),
    ("POST", "/restconf/operations/vpp-singbox:nope", "", 400, "No node"),
    ("DELETE", D, "", 405, "not allowed"),
    ("PUT", f"{SB}/dataplane", "", 405, "not allowed"),
    ("PUT", f"{SB}/client/endpoint", "", 405, "key"),
    ("DELETE", f"{SB}/client/endpoint", "", 405, "key"),
    ("POST", f"{SB}/log-level", "", 405, "children"),
    ("PUT", "/restconf/ds/ietf-datastores:operational/vpp-singbox:singbox", "", 405, "not allowed"),
    ("GET", "/restconf/ds/ietf-datastores:nope", "", 404, "Unknown datastore"),
    ("GET", "/restconf/ds/running", "", 404, "Unknown datastore"),
    ("GET", "/restconf/nothing", "", 404, "No resource"),
    ("GET", "/other", "", 404, "No resource"),
    ("GET", "/restconfdata", "", 404, "No resource"),
    ("PUT", "/restconf", "", 405, "not allowed"),
    ("POST", "/restconf/yang-library-version", "", 405, "not allowed"),
    ("GET", "/restconf/streams/OTHER/json", "", 404, "event stream"),
    ("GET", "/restconf/streams/NETCONF/yaml", "", 404, "event stream"),
    ("TRACE", SB, "", 501, "not implemented"),  # RFC 9110 §15.6.2: a method the server implements nowhere
    # query parameters
    ("GET", SB, "depth=0", 400, "depth"),
    ("GET", SB, "depth=65536", 400, "depth"),
    ("GET", SB, "depth=-1", 400, "depth"),
    ("GET", SB, "depth=abc", 400, "depth"),
    ("GET", SB, "depth=", 400, "depth"),
    ("GET", SB, "depth", 400, "needs a value"),
    ("GET", SB, "depth=1&depth=2", 400, "more than once"),
    ("GET", SB, "content=everything", 400, "content"),
    ("GET", SB, "with-defaults=all", 400, "with-defaults"),
    ("GET", SB, "fields=", 400, "fields"),
    ("GET", SB, "fields=client(", 400, "fields"),
    ("GET", SB, "fields=client)", 400, "fields"),
    ("GET", SB, "fields=nope", 400, "no node"),
    ("GET", SB, "fields=client(nope)", 400, "no node"),
    ("GET", SB, "fields=;", 400, "fields"),
    ("GET", SB, "unknown=1", 400, "Unknown query parameter"),
    ("GET", SB, "filter=/x", 400, "not allowed"),
    ("GET", SB, "insert=first", 400, "not allowed"),
    ("GET", SB, "start-time=2026-01-01T00:00:00Z", 400, "not allowed"),
    ("PUT", f"{SB}/log-level", "depth=1", 400, "not allowed"),
    ("DELETE", f"{SB}/log-level", "content=config", 400, "not allowed"),
    ("POST", "/restconf/operations/vpp-singbox:test-endpoint", "depth=1", 400, "not allowed"),
    ("PUT", f"{SB}/client/endpoint=e1", "insert=first", 400, "ordered by user"),
    ("POST", f"{D}/ietf-netconf-acm:nacm", "insert=middle", 400, "insert must be"),
    ("POST", f"{D}/ietf-netconf-acm:nacm", "insert=before", 400, "needs a point"),
    ("POST", f"{D}/ietf-netconf-acm:nacm", "point=/ietf-netconf-acm:nacm/rule-list=x", 400, "point needs insert"),
    ("POST", f"{D}/ietf-netconf-acm:nacm", "insert=after&point=ietf-netconf-acm:nacm", 400, "start"),
    ("POST", f"{D}/ietf-netconf-acm:nacm", "insert=after&point=/ietf-netconf-acm:nacm", 400, "list entry"),
    ("GET", "/restconf/streams/NETCONF/json", "start-time=yesterday", 400, "date-and-time"),
    ("GET", "/restconf/streams/NETCONF/json", "stop-time=2026-01-01T00:00:00Z", 400, "needs start-time"),
    ("GET", "/restconf/streams/NETCONF/json", "filter=", 400, "filter"),
    ("GET", "/restconf/streams/NETCONF/json", "depth=1", 400, "not allowed"),
    ("GET", SB, "depth=%zz", 400, "percent-encoding"),
    ("GET", "/.well-known/host-meta", "depth=1", 400, "no query"),
    ("GET", "/restconf", "depth=1", 400, "not allowed"),
]


@pytest.mark.parametrize(("method", "path", "query", "status", "fragment"), BAD)
def test_bad_requests(ctx: libyang.Context, method: str, path: str, query: str, status: int, fragment: str) -> None:
    with pytest.raises(RestconfError) as info:
        parse_request(ctx, method, path, query)
    failure = to_failure(info.value)
    assert failure.status == status, failure
    assert fragment.lower() in info.value.error.error_message.lower()
    if status == 405:
        assert any(name == "Allow" for name, _ in failure.headers)
    if status == 400:
        assert info.value.error.error_tag in ("invalid-value", "operation-not-supported", "malformed-message")


@pytest.mark.parametrize(
    ("expr", "paths"),
    [
        ("a", ["a"]),
        ("a/b", ["a/b"]),
        ("a(b;c)", ["a/b", "a/c"]),
        ("a(b(c;d);e)", ["a/b/c", "a/b/d", "a/e"]),
        ("a;b/c", ["a", "b/c"]),
        ("m:a(m:b)", ["m:a/m:b"]),
    ],
)
def test_fields_grammar(expr: str, paths: list[str]) -> None:
    assert parse_fields(expr) == paths


@pytest.mark.parametrize("expr", ["", "a(", "a)", "(a)", "a;;b", "a()", "a(b))", "1a", "a//b", "a(b;)"])
def test_fields_grammar_rejects(expr: str) -> None:
    with pytest.raises(RestconfError):
        parse_fields(expr)


def test_parser_is_byte_exact_about_encoding(ctx: libyang.Context) -> None:
    """A "%2F" inside a key is data, not a path separator; "%2C" is a literal comma in a key."""
    req = parse_request(ctx, "GET", f"{D}/ietf-system:system/authentication/user=a%2Fb%2Cc", "")
    assert req.path == "/ietf-system:system/authentication/user[name='a/b,c']"


def test_parent_path(ctx: libyang.Context) -> None:
    req = parse_request(ctx, "PUT", f"{D}/ietf-system:system/authentication/user=a%2Fb/password", "")
    assert req.parent_path == "/ietf-system:system/authentication/user[name='a/b']"


@pytest.mark.parametrize(
    ("path", "name", "revision"),
    [
        ("/restconf/yang/ietf-system@2014-08-06", "ietf-system", "2014-08-06"),
        ("/restconf/yang/ietf-system@2014-08-06.yang", "ietf-system", "2014-08-06"),
        ("/restconf/yang/norev", "norev", None),
        ("/restconf/yang/norev.yang", "norev.yang", None),  # the lookup also tries "norev"
        ("/restconf/yang/a%2Eb", "a.b", None),
    ],
)
def test_schema_resource(ctx: libyang.Context, path: str, name: str, revision: str | None) -> None:
    req = parse_request(ctx, "GET", path, "")
    assert req.kind == Kind.YANG_SCHEMA and req.yang_schema is not None
    assert (req.yang_schema.name, req.yang_schema.revision) == (name, revision)
    assert parse_request(ctx, "OPTIONS", path, "").allowed == ("GET", "HEAD", "OPTIONS")


@pytest.mark.parametrize(
    ("method", "path", "query", "status"),
    [
        ("GET", "/restconf/yang", "", 404),
        ("GET", "/restconf/yang/", "", 404),
        ("GET", "/restconf/yang/a/b", "", 404),
        ("GET", "/restconf/yang/1a", "", 404),
        ("GET", "/restconf/yang/a@2020-1-1", "", 404),
        ("GET", "/restconf/yang/a@", "", 404),
        ("GET", "/restconf/yang/a%40", "", 404),
        ("GET", "/restconf/yang/a%zz", "", 400),
        ("GET", "/restconf/yang/a", "depth=1", 400),
        ("PUT", "/restconf/yang/a", "", 405),
        ("DELETE", "/restconf/yang/a", "", 405),
    ],
)
def test_schema_resource_rejects(ctx: libyang.Context, method: str, path: str, query: str, status: int) -> None:
    with pytest.raises(RestconfError) as info:
        parse_request(ctx, method, path, query)
    assert to_failure(info.value).status == status

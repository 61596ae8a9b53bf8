"""A corpus of bad requests against the running server: each gets its status and an ietf-restconf:errors body,
the server keeps serving, and the running datastore is byte-for-byte what it was before."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field

import httpx
from helpers import JSON, XML, running_config, stand_in_agent
from rcserver import RestconfServer

SB = "/restconf/data/vpp-singbox:singbox"
EP = f"{SB}/client/endpoint"
NACM = "/restconf/data/ietf-netconf-acm:nacm"
YP = "application/yang-patch+json"
MAX_BODY = 4 * 1024 * 1024

BAD_REQUEST_TAGS = {"invalid-value", "malformed-message", "unknown-element", "bad-element", "missing-element",
                    "unknown-namespace", "bad-attribute", "operation-not-supported"}


@dataclass(frozen=True)
class Case:
    method: str
    path: str
    status: int
    query: str = ""
    body: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)
    tags: frozenset[str] = frozenset()  # allowed error-tags; empty: any of BAD_REQUEST_TAGS for 400

    def describe(self) -> str:
        body = (self.body or b"")[:60]
        return f"{self.method} {self.path}?{self.query} {self.headers} {body!r}"


def c(method: str, path: str, status: int, query: str = "", body: bytes | str | None = None,
      ctype: str | None = None, accept: str | None = None, tags: tuple[str, ...] = (), **headers: str) -> Case:
    h = dict(headers)
    if ctype:
        h["content-type"] = ctype
    if accept:
        h["accept"] = accept
    raw = body.encode() if isinstance(body, str) else body
    return Case(method, path, status, query, raw, h, frozenset(tags))


def ep(name: str, **extra: object) -> str:
    return json.dumps({"vpp-singbox:endpoint": [{"name": name, "address": "127.0.0.1", **extra}]})


CORPUS: list[Case] = []

# --- bad paths ---------------------------------------------------------------------------------------------------
for method in ("GET", "PUT", "DELETE", "PATCH", "POST"):
    body = ep("x") if method in ("PUT", "PATCH", "POST") else None
    ct = JSON if body else None
    CORPUS += [
        c(method, "/restconf/data/singbox", 400, body=body, ctype=ct),
        c(method, "/restconf/data/nomodule:singbox", 400, body=body, ctype=ct),
        c(method, f"{SB}/nonode", 400, body=body, ctype=ct),
        c(method, f"{SB}//client", 400, body=body, ctype=ct),
        c(method, f"{SB}/client/", 400, body=body, ctype=ct),
        c(method, f"{SB}/client/endpoint/port", 400, body=body, ctype=ct),
        c(method, f"{SB}/log-level/deeper", 400, body=body, ctype=ct),
        c(method, f"{SB}/client=1", 400, body=body, ctype=ct),
        c(method, f"{SB}/1client", 400, body=body, ctype=ct),
        c(method, f"{SB}/cli%20ent", 400, body=body, ctype=ct),
        c(method, "/restconf/data/vpp-singbox:endpoint-up", 400, body=body, ctype=ct),
        c(method, "/restconf/nothing", 404, body=body, ctype=ct),
        c(method, "/restconf/ds/ietf-datastores:nope", 404, body=body, ctype=ct),
        c(method, "/restconf/ds/running", 404, body=body, ctype=ct),
        c(method, "/restconfX", 404, body=body, ctype=ct),
        c(method, "/", 404, body=body, ctype=ct),
    ]

# --- bad keys ----------------------------------------------------------------------------------------------------
for key in ("a,b", "bad%20name", "-lead", "x%2Fy", "%C3%A9", "a%27b%22c", "", "." * 70, "a" * 300):
    CORPUS.append(c("GET", f"{EP}={key}", 400))
for key in ("abc", "-1", "1.5", "18446744073709551616", "0x10", "1,2", "%20"):
    CORPUS.append(c("GET", f"{SB}/sessions/session={key}", 400))
for key in ("not-a-prefix", "10.0.0.0%2F33", "10.0.0.0/8", "1,2"):
    CORPUS.append(c("DELETE", f"{SB}/client/interface=eth0/bypass-prefix={key}", 400))
CORPUS += [
    c("GET", f"{SB}/client/interface", 200),  # control: a whole list is readable (even empty: 404 below)
]
CORPUS.pop()  # (keep the corpus to failures only)

# --- percent-encoding --------------------------------------------------------------------------------------------
for raw in ("%zz", "%", "%4", "%G0", "%FF", "%C3", "%C3%28", "%ED%A0%80", "%E2%82", "a%"):
    CORPUS.append(c("GET", f"{EP}={raw}", 400))
for raw in ("%zz", "%FF", "%"):
    CORPUS.append(c("GET", SB, 400, query=f"depth={raw}"))
    CORPUS.append(c("GET", f"/restconf/ds/ietf-datastores{raw}running", 400))

# --- methods -----------------------------------------------------------------------------------------------------
for method, path in (
    ("DELETE", "/restconf/data"), ("PUT", "/restconf"), ("POST", "/restconf"), ("DELETE", "/restconf"),
    ("PATCH", "/restconf/yang-library-version"), ("PUT", "/restconf/operations"),
    ("GET", "/restconf/operations/vpp-singbox:test-endpoint"), ("PUT", "/restconf/operations/vpp-singbox:test-endpoint"),
    ("DELETE", "/restconf/operations/vpp-singbox:test-endpoint"), ("PUT", f"{SB}/dataplane"),
    ("DELETE", f"{SB}/sessions"), ("POST", f"{SB}/server/statistics"),
    ("PUT", "/restconf/ds/ietf-datastores:operational/vpp-singbox:singbox/log-level"),
    ("DELETE", "/restconf/ds/ietf-datastores:operational/vpp-singbox:singbox"),
    ("POST", "/.well-known/host-meta"), ("DELETE", "/restconf/streams/NETCONF/json"),
):
    CORPUS.append(c(method, path, 405, body=b"{}" if method in ("PUT", "POST", "PATCH") else None, ctype=JSON
                    if method in ("PUT", "POST", "PATCH") else None, tags=("operation-not-supported",)))
# methods the server implements nowhere: 501 (RFC 9110 §15.6.2), not 405 (which names a method the resource lacks)
for method, path in (("TRACE", SB), ("FOO", SB), ("PROPFIND", SB)):
    CORPUS.append(c(method, path, 501, tags=("operation-not-supported",)))

# --- media types -------------------------------------------------------------------------------------------------
for accept in ("text/html", "application/yang-data+yaml", "image/png", "application/yang-data+json;q=0",
               "text/*", "application/yang-patch+json"):
    CORPUS.append(c("GET", SB, 406, accept=accept))
    CORPUS.append(c("GET", "/restconf", 406, accept=accept))
for ctype in ("application/json", "text/plain", "application/xml", "application/octet-stream", "multipart/form-data",
              "application/yang-data+yaml", "application/x-www-form-urlencoded"):
    CORPUS.append(c("PUT", f"{EP}=m", 415, body=ep("m"), ctype=ctype))
    CORPUS.append(c("POST", f"{SB}/client", 415, body=ep("m"), ctype=ctype))
CORPUS += [
    c("PUT", f"{EP}=m", 415, body=ep("m")),  # no Content-Type
    c("PATCH", f"{EP}=m", 415, body=ep("m")),
    c("PUT", f"{EP}=m", 415, body=ep("m"), ctype=YP),  # YANG Patch type is for PATCH only
    c("POST", "/restconf/operations/vpp-singbox:clear-statistics", 415, body="{}", ctype="text/plain"),
]

# --- invalid bodies ----------------------------------------------------------------------------------------------
invalid_json = [
    "", " ", "{", "}", "[]", "null", "42", '"s"', "{'single': 1}", '{"vpp-singbox:endpoint": [{"name": "m",}]}',
    '{"vpp-singbox:endpoint": [{"name": "m", "address": }]}', '{"vpp-singbox:endpoint": {"name": "m"}}',
    '{"nomod:endpoint": [{"name": "m", "address": "1.1.1.1"}]}',
    '{"vpp-singbox:endpoint": [{"name": "m", "address": "1.1.1.1", "nope": 1}]}',
    '{"vpp-singbox:endpoint": [{"name": "m", "address": "1.1.1.1", "port": 70000}]}',
    '{"vpp-singbox:endpoint": [{"name": "m", "address": "1.1.1.1", "port": "abc"}]}',
    '{"vpp-singbox:endpoint": [{"name": "m", "address": "1.1.1.1", "port": -1}]}',
    '{"vpp-singbox:endpoint": [{"name": "m", "address": "1.1.1.1", "protocol": "nosuch"}]}',
    '{"vpp-singbox:endpoint": [{"name": "m", "address": "1.1.1.1", "oper-status": "up"}]}',
    '{"vpp-singbox:endpoint": [{"name": "other", "address": "1.1.1.1"}]}',
    '{"vpp-singbox:endpoint": [{"name": "m", "address": "1.1.1.1"}, {"name": "n", "address": "1.1.1.1"}]}',
    '{"vpp-singbox:interface": [{"name": "m"}]}',
    '{"vpp-singbox:endpoint": [{"name": "m", "address": "1.1.1.1", "health-check": {"interval": 99999999}}]}',
    '{"vpp-singbox:endpoint": [{"name": "m", "address": "1.1.1.1", "nope": [[[1]]]}]}',
    # more digits than Python converts (4,300): a 500 before
    '{"vpp-singbox:endpoint": [{"name": "m", "address": "1.1.1.1", "port": ' + "1" * 5000 + "}]}",
    '{"vpp-singbox:endpoint": [{"name": "m", "address": "1.1.1.1", "port": -' + "9" * 100000 + "}]}",
]
for body in invalid_json:
    CORPUS.append(c("PUT", f"{EP}=m", 400, body=body, ctype=JSON))
CORPUS.append(c("POST", "/restconf/operations/vpp-singbox:test-endpoint", 400, ctype=JSON,
                body='{"vpp-singbox:input": {"endpoint": ' + "1" * 5000 + "}}"))
# nested beyond max-body-depth (restconf-server/limits): refused before anything parses it further, well-formed or not
for body in ("[" * 100000, '{"a":' * 5000 + "1" + "}" * 5000, "<a>" * 5000 + "</a>" * 5000):
    CORPUS.append(c("PUT", f"{EP}=m", 409, body=body, ctype=JSON if body[0] in "[{" else XML,
                    tags=("resource-denied",)))
invalid_xml = [
    "<endpoint>", "<endpoint xmlns='urn:vpp-singbox:yang:vpp-singbox'><name>m</name>",
    "<endpoint><name>m</name><address>1.1.1.1</address></endpoint>",
    "<endpoint xmlns='urn:nope'><name>m</name></endpoint>",
    "<endpoint xmlns='urn:vpp-singbox:yang:vpp-singbox'><name>m</name><port>x</port></endpoint>",
    "<endpoint xmlns='urn:vpp-singbox:yang:vpp-singbox'><name>other</name><address>1.1.1.1</address></endpoint>",
    "<!DOCTYPE lolz [<!ENTITY lol 'lol'><!ENTITY lol2 '&lol;&lol;&lol;'>]><endpoint xmlns='urn:vpp-singbox:yang:"
    "vpp-singbox'><name>&lol2;</name></endpoint>",
    "<?xml version='1.0'?><a:b xmlns:a='urn:x'/>", "not xml at all", "<endpoint xmlns='urn:vpp-singbox:yang:vpp-"
    "singbox'><name>m</name><bogus/></endpoint>",
]
for body in invalid_xml:
    CORPUS.append(c("PUT", f"{EP}=m", 400, body=body, ctype=XML))
CORPUS += [
    c("PUT", f"{EP}=m", 400, body=b"\xff\xfe{}", ctype=JSON),
    c("POST", f"{SB}/client", 400, body=b"\x80\x81", ctype=JSON),
    c("POST", f"{SB}/client", 400, body="{}", ctype=JSON),
    c("POST", f"{SB}/client", 400, body=ep("a")[:-2] + ', {"name": "b", "address": "::1"}]}', ctype=JSON),
    c("POST", f"{SB}/client", 400, body='{"vpp-singbox:log-level": "debug"}', ctype=JSON),  # not a child of client
    c("PATCH", f"{EP}=m", 400, body="", ctype=JSON),
    c("GET", SB, 400, body="{}", ctype=JSON),
    c("DELETE", f"{EP}=m", 400, body="{}", ctype=JSON),
    c("PUT", f"{SB}/log-level", 400, body='{"vpp-singbox:log-level": "loud"}', ctype=JSON),
    c("PUT", f"{SB}/log-level", 400, body='{"vpp-singbox:log-level": ["debug"]}', ctype=JSON),
    c("PUT", f"{SB}/client/interface=eth0/bypass-prefix=10.0.0.0%2F8", 400,
      body='{"vpp-singbox:bypass-prefix": ["11.0.0.0/8"]}', ctype=JSON),
    c("PUT", "/restconf/data", 400, body="{", ctype=JSON),
    c("PATCH", "/restconf/data", 400, body='{"nomod:x": 1}', ctype=JSON),
    c("POST", "/restconf/operations/vpp-singbox:test-endpoint", 400, body='{"vpp-singbox:input": {"bogus": 1}}',
      ctype=JSON),
    c("POST", "/restconf/operations/vpp-singbox:test-endpoint", 400, body="{", ctype=JSON),
    c("POST", "/restconf/operations/vpp-singbox:test-endpoint", 400,
      body='{"vpp-singbox:output": {"result": "success"}}', ctype=JSON),
    c("POST", "/restconf/operations/vpp-singbox:test-endpoint", 400, body="<input/>", ctype=XML),
]

# --- YANG Patch envelopes ----------------------------------------------------------------------------------------
def yp(*edits: dict[str, object], patch_id: str = "p") -> str:
    return json.dumps({"ietf-yang-patch:yang-patch": {"patch-id": patch_id, "edit": list(edits)}})


for body in (
    "{", "{}", '{"ietf-yang-patch:yang-patch": {}}', '{"ietf-yang-patch:yang-patch": {"edit": []}}',
    yp({"edit-id": "1", "operation": "zap", "target": "/log-level"}),
    yp({"edit-id": "1", "operation": "merge", "target": "log-level", "value": {"vpp-singbox:log-level": "debug"}}),
    yp({"edit-id": "1", "operation": "merge", "target": "/nonode", "value": {"vpp-singbox:x": 1}}),
    yp({"edit-id": "1", "operation": "merge", "target": "/log-level"}),
    yp({"edit-id": "1", "operation": "delete", "target": "/log-level", "value": {"vpp-singbox:log-level": "debug"}}),
    yp({"edit-id": "1", "operation": "merge", "target": "/log-level", "value": {"vpp-singbox:log-level": "loud"}}),
    yp({"edit-id": "1", "operation": "merge", "target": "/dataplane", "value": {"vpp-singbox:dataplane": {}}}),
    yp({"edit-id": "1", "operation": "create", "target": "/client/endpoint=a",
        "value": {"vpp-singbox:endpoint": [{"name": "b", "address": "::1"}]}}),
    yp({"edit-id": "1", "operation": "insert", "target": "/client/endpoint=a", "where": "before",
        "value": {"vpp-singbox:endpoint": [{"name": "a", "address": "::1"}]}}),
):
    CORPUS.append(c("PATCH", SB, 400, body=body, ctype=YP))
CORPUS.append(c("PATCH", SB, 409, body=yp({"edit-id": "1", "operation": "delete", "target": "/client/endpoint=zz"}),
                ctype=YP, tags=("data-missing",)))

# --- oversized ---------------------------------------------------------------------------------------------------
big = '{"vpp-singbox:endpoint": [{"name": "m", "address": "1.1.1.1", "username": "' + "a" * MAX_BODY + '"}]}'
CORPUS += [
    c("PUT", f"{EP}=m", 413, body=big, ctype=JSON, tags=("too-big",)),
    c("POST", f"{SB}/client", 413, body=big, ctype=JSON, tags=("too-big",)),
    c("PATCH", SB, 413, body=big, ctype=YP, tags=("too-big",)),
    c("POST", "/restconf/operations/vpp-singbox:clear-statistics", 413, body=big, ctype=JSON, tags=("too-big",)),
]

# --- query parameters --------------------------------------------------------------------------------------------
for q in ("depth=0", "depth=65536", "depth=-1", "depth=1.5", "depth=", "depth", "depth=1&depth=1", "content=",
          "content=ALL", "content=state", "with-defaults=", "with-defaults=report-none", "fields=", "fields=(",
          "fields=client(", "fields=a;;b", "fields=nonode", "fields=client(nonode)", "fields=client/", "filter=/x",
          "insert=first", "point=/x", "start-time=2026-01-01T00:00:00Z", "stop-time=2026-01-01T00:00:00Z",
          "unknown=1", "DEPTH=1", "depth=1&", "&", "=1", "depth=1;content=all"):
    CORPUS.append(c("GET", SB, 400, query=q))
for q in ("depth=1", "content=config", "fields=name", "with-defaults=trim", "insert=middle", "insert=before",
          "insert=after&point=x", "point=/ietf-netconf-acm:nacm/rule-list=admin-all", "filter=/a"):
    CORPUS.append(c("PUT", f"{EP}=m", 400, query=q, body=ep("m"), ctype=JSON))
for q in ("insert=first", "insert=after&point=/vpp-singbox:singbox/client/endpoint=zz",
          "insert=after&point=/ietf-netconf-acm:nacm"):
    CORPUS.append(c("POST", f"{SB}/client", 400, query=q, body=ep("m"), ctype=JSON))
for q in ("start-time=soon", "stop-time=2026-01-01T00:00:00Z", "filter=", "depth=1", "content=all",
          "start-time=2026-13-01T00:00:00Z&stop-time=x", "filter=/nomodule:notif"):
    CORPUS.append(c("GET", "/restconf/streams/NETCONF/json", 400, query=q))
for q in ("depth=1", "content=all", "insert=first"):
    CORPUS.append(c("DELETE", f"{EP}=m", 400, query=q))
    CORPUS.append(c("POST", "/restconf/operations/vpp-singbox:clear-statistics", 400, query=q))

# --- state the request conflicts with -----------------------------------------------------------------------------
CORPUS += [
    c("DELETE", f"{EP}=absent", 404, tags=("data-missing",)),
    c("PATCH", f"{EP}=absent", 404, body=ep("absent"), ctype=JSON),
    c("GET", f"{EP}=absent", 404),
    c("GET", f"{EP}=absent/port", 404),
    c("POST", f"{SB}/client", 409, body=ep("keep"), ctype=JSON, tags=("resource-denied",)),  # RFC 8040 §4.4.1
    c("PUT", f"{EP}=keep", 412, body=ep("keep", port=1), ctype=JSON, **{"if-match": '"nope"'}),
    c("DELETE", f"{EP}=keep", 412, **{"if-unmodified-since": "Thu, 01 Jan 1970 00:00:00 GMT"}),
    c("DELETE", f"{EP}=keep", 412, **{"if-match": '"nope"'}),
    # RFC 7232 §3.4 ignores an unparsable If-Unmodified-Since; §3.2: If-None-Match * on an existing target fails
    c("PUT", f"{EP}=keep", 412, body=ep("keep"), ctype=JSON, **{"if-none-match": "*"}),
    c("PUT", f"{SB}/client/default-endpoint", 409, body='{"vpp-singbox:default-endpoint": "absent"}', ctype=JSON,
      tags=("data-missing",)),
    c("POST", "/restconf/operations/vpp-singbox:test-endpoint", 409,
      body='{"vpp-singbox:input": {"endpoint": "absent"}}', ctype=JSON, tags=("data-missing",)),
    c("PUT", f"{EP}=reject-me", 500, body=ep("reject-me"), ctype=JSON, tags=("operation-failed",)),
]

# --- authentication ----------------------------------------------------------------------------------------------
for auth in ("Basic", "Basic  x", "Basic ====", "Basic YWRtaW4=", "Bearer x", "basic YWRtaW46d3Jvbmc=", "Negotiate x"):
    CORPUS.append(c("GET", SB, 401, tags=("access-denied",), authorization=auth))


def _send(client: httpx.Client, case: Case) -> httpx.Response:
    """Send the path byte-exact (no client-side normalisation of percent-encoding)."""
    raw_target = case.path + (f"?{case.query}" if case.query else "")
    url = httpx.URL(client.base_url).copy_with(raw_path=raw_target.encode("latin-1"))
    headers = dict(case.headers)
    if "authorization" in headers:
        return client.request(case.method, url, content=case.body, headers=headers, auth=None)
    return client.request(case.method, url, content=case.body, headers=headers)


def _check(case: Case, resp: httpx.Response) -> str | None:
    if resp.status_code != case.status:
        return f"status {resp.status_code} != {case.status}: {resp.text[:300]}"
    if case.method == "HEAD":
        return None
    ctype = resp.headers.get("content-type", "")
    try:
        if ctype == XML:
            err = ET.fromstring(resp.content).find("{urn:ietf:params:xml:ns:yang:ietf-restconf}error")
            assert err is not None
            tag = err.findtext("{urn:ietf:params:xml:ns:yang:ietf-restconf}error-tag") or ""
            etype = err.findtext("{urn:ietf:params:xml:ns:yang:ietf-restconf}error-type") or ""
        else:
            body = resp.json()
            if "ietf-yang-patch:yang-patch-status" in body:
                status = body["ietf-yang-patch:yang-patch-status"]
                errors = status.get("errors") or status["edit-status"]["edit"][0]["errors"]
                first = errors["error"][0]
            else:
                first = body["ietf-restconf:errors"]["error"][0]
            tag, etype = first["error-tag"], first["error-type"]
            if not first.get("error-message"):
                return "no error-message"
    except (ValueError, KeyError, AssertionError, ET.ParseError, IndexError) as exc:
        return f"no ietf-restconf:errors body ({exc!r}): {resp.text[:200]}"
    if etype not in ("transport", "rpc", "protocol", "application"):
        return f"bad error-type {etype}"
    allowed = case.tags or (BAD_REQUEST_TAGS if case.status == 400 else frozenset())
    if allowed and tag not in allowed:
        return f"error-tag {tag} not in {sorted(allowed)}"
    return None


def test_bad_request_corpus(restconf: RestconfServer) -> None:
    assert len(CORPUS) >= 200, len(CORPUS)
    env = restconf.instance.env
    with stand_in_agent(), restconf.client() as client, restconf.client(http2=True) as client2:
        assert client.put(f"{EP}=keep", content=ep("keep").encode(), headers={"content-type": JSON}).status_code == 201
        before = running_config(env), running_config(env, "ietf-netconf-acm"), running_config(env, "ietf-system")
        failures: list[str] = []
        for index, case in enumerate(CORPUS):
            cl = client2 if index % 2 else client  # half over HTTP/2
            try:
                resp = _send(cl, case)
            except httpx.HTTPError as exc:
                failures.append(f"{case.describe()}: transport error {exc!r}")
                continue
            problem = _check(case, resp)
            if problem:
                failures.append(f"{case.describe()}: {problem}")
        # the server still serves, and nothing changed
        assert client.get("/restconf/yang-library-version").status_code == 200
        assert client2.get(f"{EP}=keep").status_code == 200
        after = running_config(env), running_config(env, "ietf-netconf-acm"), running_config(env, "ietf-system")
    assert not failures, f"{len(failures)} of {len(CORPUS)} cases wrong:\n" + "\n".join(failures)
    assert after == before
    assert restconf.process.poll() is None

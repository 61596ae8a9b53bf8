"""What the RESTCONF letter audit (session 10) left open, each test failing on the code before its fix: RFC 9112
§3.2's Host rules, and Allow stating exactly the methods a resource supports (RFC 9110 §10.2.1, §15.5.6)."""

from __future__ import annotations

from typing import Any

import rawhttp
import sysrepo
from helpers import stand_in_agent
from rcserver import RestconfServer

DATA = "/restconf/data/ietf-system:system"


def _raw(lines: list[str]) -> bytes:
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def test_host_rules_of_rfc_9112(restconf: RestconfServer) -> None:
    """RFC 9112 §3.2: "A server MUST respond with a 400 (Bad Request) status code to any HTTP/1.1 request message
    that lacks a Host header field and to any request message that contains more than one Host header field line
    or a Host header field with an invalid field value." HTTP/1.0 needs none; an empty one is valid (an authority
    the target lacks), and so is any uri-host [":" port] (RFC 9110 §7.2, RFC 3986 §3.2.2)."""
    auth = f"Authorization: {rawhttp.ADMIN_AUTH}"
    cases: list[tuple[list[str], int]] = [
        ([f"GET {DATA} HTTP/1.1", auth], 400),  # no Host
        ([f"GET {DATA} HTTP/1.1", "Host: localhost", "Host: localhost", auth], 400),  # two lines
        ([f"GET {DATA} HTTP/1.1", "Host: localhost", auth, "Host: other"], 400),
        ([f"GET https://localhost{DATA} HTTP/1.1", auth], 400),  # absolute-form: Host still required
        ([f"GET {DATA} HTTP/1.0", auth], 200),  # HTTP/1.0: Host is not required
        ([f"GET {DATA} HTTP/1.1", "Host: ", auth], 200),
        ([f"GET https://localhost{DATA} HTTP/1.1", "Host: ignored.example", auth], 200),
    ]
    for bad in ("a b", "evil.example/x", "x@y", "h:port", "[::1", "[2001:db8::1", "::1", "h:1:2", "a\\b",
                "host:65536x", "%zz", "[v1.x"):
        cases.append(([f"GET {DATA} HTTP/1.1", f"Host: {bad}", auth], 400))
    for good in ("localhost:8443", "198.18.0.1", "[2001:db8::1]:443", "[::1]", "rc.example:", "x!y$&'()*+,;=",
                 "%41b", "[v1.x:y]", "EXAMPLE.net"):
        cases.append(([f"GET {DATA} HTTP/1.1", f"Host: {good}", auth], 200))
    got = [(lines, rawhttp.exchange(restconf, _raw(lines)).status) for lines, _ in cases]
    wrong = [([line for line in lines if line != auth], status, want)
             for (lines, status), (_, want) in zip(got, cases) if status != want]
    assert not wrong, "\n".join(map(str, wrong))


SB = "/restconf/data/vpp-singbox:singbox"
READ = ("GET", "HEAD", "OPTIONS")
TERM = ("GET", "HEAD", "PUT", "PATCH", "DELETE", "OPTIONS")
ALL = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
KEY = "/restconf/data/ietf-keystore:keystore/asymmetric-keys/asymmetric-key=k1"
SN = "ietf-subscribed-notifications"


def _allow(headers: object) -> tuple[str, ...]:
    return tuple(m.strip() for m in str(headers.get("allow", "")).split(",") if m.strip())  # type: ignore[attr-defined]


def test_allow_states_exactly_what_each_resource_supports(restconf: RestconfServer) -> None:
    """RFC 9110 §10.2.1 (Allow "lists the set of methods advertised as supported by the target resource") and
    §15.5.6 (405: "the method received ... is not supported by the target resource"; Allow names the supported
    ones): OPTIONS and every 405 state the same set, and a method outside it is 405. OPTIONS on a leaf or leaf-list
    listed POST, which answered 400; an RPC nothing serves answered 405 with "Allow: POST, OPTIONS"; a list or
    leaf-list without its keys listed PUT, PATCH, DELETE and POST (400s); HEAD and OPTIONS on a subscription's URI
    were 404s."""
    resources: list[tuple[str, str, tuple[str, ...]]] = [
        ("API root", "/restconf", READ),
        ("datastore", "/restconf/data", ("GET", "HEAD", "POST", "PUT", "PATCH", "OPTIONS")),
        ("read-only datastore", "/restconf/ds/ietf-datastores:operational", READ),
        ("container", SB, ALL),
        ("list", f"{SB}/client/endpoint", READ),
        ("list entry", f"{SB}/client/endpoint=nope", ALL),
        ("leaf", f"{SB}/log-level", TERM),
        ("leaf-list", f"{SB}/client/interface=nope/bypass-prefix", READ),
        ("leaf-list entry", f"{SB}/client/interface=nope/bypass-prefix=10.1.0.0%2F16", TERM),
        ("state data", f"{SB}/dataplane", READ),
        ("served rpc", "/restconf/operations/ietf-factory-default:factory-reset", ("POST", "OPTIONS")),
        ("rpc served in-process", f"/restconf/operations/{SN}:establish-subscription", ("POST", "OPTIONS")),
        ("rpc nothing serves", "/restconf/operations/vpp-singbox:test-endpoint", ("OPTIONS",)),
        ("action nothing serves", f"{KEY}/generate-csr", ("OPTIONS",)),
        ("action in running", f"/restconf/ds/ietf-datastores:running/{KEY[len('/restconf/data/'):]}/generate-csr",
         ("OPTIONS",)),
        ("operations", "/restconf/operations", READ),
        ("yang-library-version", "/restconf/yang-library-version", READ),
        ("schema", "/restconf/yang/ietf-system@2014-08-06", READ),
        ("stream", "/restconf/streams/NETCONF/json", READ),
        ("host-meta", "/.well-known/host-meta", READ),
    ]
    with restconf.client() as c, sysrepo.SysrepoConnection() as conn:
        # the keystore applied (its configuration is in operational, where an action's node is looked for)
        conn.start_session("running").subscribe_module_change("ietf-keystore", None, _applied)
        r = c.put(KEY, content=b'{"ietf-keystore:asymmetric-key": [{"name": "k1", "hidden-private-key": [null]}]}',
                  headers={"content-type": "application/yang-data+json"})
        assert r.status_code == 201, r.text  # an action on a node that does not exist is 404 whatever it supports
        r = c.post(f"/restconf/operations/{SN}:establish-subscription",
                   content=f'{{"{SN}:input": {{"stream": "NETCONF"}}}}'.encode(),
                   headers={"content-type": "application/yang-data+json"})
        assert r.status_code == 200, r.text
        uri = r.json()[f"{SN}:output"]["ietf-restconf-subscribed-notifications:uri"]
        sub = "/restconf/subscriptions/" + uri.rsplit("/", 1)[1]
        resources.append(("subscription", sub, READ))
        wrong: list[object] = []
        for what, path, want in resources:
            opts = c.options(path)
            if opts.status_code != 200 or _allow(opts.headers) != want:
                wrong.append((what, "OPTIONS", opts.status_code, _allow(opts.headers), want))
            for method in ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"):
                if method in want and (method in ("POST", "DELETE") or (method == "GET" and what in (
                        "stream", "subscription"))):
                    continue  # not run: it would reset the device, delete, or open a stream
                r = c.request(method, path, content=b"", headers={"content-type": "application/yang-data+json"})
                if (r.status_code == 405) == (method in want) or (
                        r.status_code == 405 and _allow(r.headers) != want):
                    wrong.append((what, method, r.status_code, _allow(r.headers), want))
            if what == "subscription" and c.head(path).status_code != 200:  # HEAD leaves it unopened
                wrong.append((what, "HEAD after HEAD", c.head(path).status_code))
        assert c.options("/restconf/subscriptions/999999").status_code == 404
    assert not wrong, "\n".join(map(str, wrong))


def _applied(event: str, req_id: int, changes: object, private_data: object) -> None:
    """A change subscriber accepting everything."""


def _csr(xpath: str, input_params: dict[str, Any], event: str, private_data: Any) -> dict[str, Any]:
    return {}


def test_an_operation_served_lists_post(restconf: RestconfServer) -> None:
    """What `test_allow_states_exactly_what_each_resource_supports` refuses to operations nothing serves is there
    once something serves them: an RPC, and an action (sysrepo-monitoring names it by its schema path)."""
    rpc = "/restconf/operations/vpp-singbox:test-endpoint"
    action = f"{KEY}/generate-csr"
    with restconf.client() as c:
        assert _allow(c.options(rpc).headers) == ("OPTIONS",)
        assert _allow(c.options(action).headers) == ("OPTIONS",)
        with stand_in_agent(), sysrepo.SysrepoConnection() as conn:
            sess = conn.start_session("running")
            sess.subscribe_rpc_call("/ietf-keystore:keystore/asymmetric-keys/asymmetric-key/generate-csr", _csr)
            assert _allow(c.options(rpc).headers) == ("POST", "OPTIONS")
            assert _allow(c.options(action).headers) == ("POST", "OPTIONS")
            h = {"content-type": "application/yang-data+json"}
            r = c.post(rpc, content=b'{"vpp-singbox:input": {"endpoint": "e1"}}', headers=h)
            assert r.status_code == 409, r.text  # invoked: its input names no endpoint (a leafref)
            r = c.post(action, content=b'{"ietf-keystore:input": {}}', headers=h)
            assert r.status_code in (400, 404), r.text  # k1 does not exist, no input: not 405
            r = c.get(action)
            assert r.status_code == 405 and _allow(r.headers) == ("POST", "OPTIONS"), r.headers

"""Request limits of the RESTCONF server (`/vpp-singbox-restconf-server:restconf-server/limits`), with httpx over
real TLS against the real server: every XPath and every tree a client hands over — RFC 8650 subscription filters
(establish and modify), a stream's `filter`, `fields`, request bodies in JSON and XML (edits, YANG Patch, RPC input)
— is checked before libyang or sysrepo see it. Beyond a limit: `resource-denied` (409, RFC 8040 §7) naming the
limit, nothing changed, no subscription left behind, the server serving on."""

from __future__ import annotations

import json
import time
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from helpers import EP, JSON, SB, XML, YANG_PATCH_JSON, error_of, running_json, stand_in_agent
from rcserver import RestconfServer

LIMITS = "/restconf/data/vpp-singbox-restconf-server:restconf-server/limits"
OPS = "/restconf/operations/ietf-subscribed-notifications:"
SN = "ietf-subscribed-notifications"
SN_NS = "urn:ietf:params:xml:ns:yang:ietf-subscribed-notifications"
YP_NS = "urn:ietf:params:xml:ns:yang:ietf-yang-push"
NACM_NS = "urn:ietf:params:xml:ns:yang:ietf-netconf-acm"
NCN = "/ietf-netconf-notifications:netconf-config-change"
STREAM = "/restconf/streams/NETCONF/json"


def denied(resp: httpx.Response, limit: str) -> None:
    """resource-denied (RFC 8040 §7: 409) naming `limit` and where it is configured."""
    assert resp.status_code == 409, (resp.status_code, resp.text[:2000])
    err = error_of(resp)
    assert err["error-tag"] == "resource-denied", err
    assert limit in err["error-message"] and "restconf-server/limits" in err["error-message"], err


def set_limits(c: httpx.Client, **values: int) -> None:
    body = {"vpp-singbox-restconf-server:limits": {k.replace("_", "-"): v for k, v in values.items()}}
    resp = c.patch(LIMITS, json=body, headers={"Content-Type": JSON})
    assert resp.status_code == 204, resp.text


def listed(c: httpx.Client) -> list[Any]:
    resp = c.get("/restconf/data/ietf-subscribed-notifications:subscriptions", headers={"Accept": JSON})
    assert resp.status_code in (200, 404), resp.text
    return [] if resp.status_code == 404 else resp.json().get(f"{SN}:subscriptions", {}).get("subscription", [])


def establish(c: httpx.Client, body: dict[str, Any]) -> httpx.Response:
    return c.post(OPS + "establish-subscription", json={f"{SN}:input": body},
                  headers={"Content-Type": JSON, "Accept": JSON}, timeout=60)


def alive(c: httpx.Client) -> None:
    assert c.get(LIMITS, headers={"Accept": JSON}).status_code == 200


def test_subscription_xpath_filters(restconf: RestconfServer) -> None:
    """The report: 30,000 predicates in an RFC 8650 stream-xpath-filter were accepted (over NETCONF they once grew
    the process to 3 GB). Establish and modify, stream and datastore filters, XPath and subtree, JSON and XML."""
    with restconf.client() as c:
        start = time.monotonic()
        denied(establish(c, {"stream": "NETCONF", "stream-xpath-filter": NCN + "[1]" * 30000}),
               "max-xpath-predicates")
        refused_in = time.monotonic() - start
        denied(establish(c, {"stream": "NETCONF", "stream-xpath-filter": NCN + "[" + "(" * 100 + "1" + ")" * 100
                             + "]"}), "max-xpath-nesting")
        denied(establish(c, {"stream": "NETCONF", "stream-xpath-filter": NCN + " or 1" * 60000}), "max-xpath-length")
        denied(establish(c, {"ietf-yang-push:datastore": "ietf-datastores:running",
                             "ietf-yang-push:datastore-xpath-filter": "/ietf-netconf-acm:nacm" + "[1]" * 30000,
                             "ietf-yang-push:on-change": {}}), "max-xpath-predicates")
        subtree = {"ietf-netconf-acm:nacm": {"groups": {"group": [{"name": f"g{i}"} for i in range(30000)]}}}
        denied(establish(c, {"ietf-yang-push:datastore": "ietf-datastores:running",
                             "ietf-yang-push:datastore-subtree-filter": subtree,
                             "ietf-yang-push:on-change": {}}), "max-subtree-filter-nodes")
        xml = (f'<input xmlns="{SN_NS}"><datastore xmlns="{YP_NS}" xmlns:ds="urn:ietf:params:xml:ns:yang:'
               f'ietf-datastores">ds:running</datastore><datastore-xpath-filter xmlns="{YP_NS}" xmlns:a="{NACM_NS}">'
               f'/a:nacm{"[1]" * 30000}</datastore-xpath-filter><on-change xmlns="{YP_NS}"/></input>')
        denied(c.post(OPS + "establish-subscription", content=xml, headers={"Content-Type": XML, "Accept": JSON}),
               "max-xpath-predicates")
        assert listed(c) == []

        made = establish(c, {"ietf-yang-push:datastore": "ietf-datastores:running",
                             "ietf-yang-push:datastore-xpath-filter": "/ietf-netconf-acm:nacm",
                             "ietf-yang-push:periodic": {"period": 500}})
        assert made.status_code == 200, made.text
        sub_id = int(made.json()[f"{SN}:output"]["id"])
        for extra, limit in (({"ietf-yang-push:datastore-xpath-filter": "/ietf-netconf-acm:nacm" + "[1]" * 30000},
                              "max-xpath-predicates"),
                             ({"ietf-yang-push:datastore-subtree-filter": subtree}, "max-subtree-filter-nodes")):
            resp = c.post(OPS + "modify-subscription", headers={"Content-Type": JSON, "Accept": JSON},
                          json={f"{SN}:input": {"id": sub_id, "ietf-yang-push:datastore": "ietf-datastores:running",
                                                **extra}})
            denied(resp, limit)
        (mine,) = listed(c)
        assert mine["ietf-yang-push:datastore-xpath-filter"] == "/ietf-netconf-acm:nacm"
        assert c.post(OPS + "delete-subscription", json={f"{SN}:input": {"id": sub_id}},
                      headers={"Content-Type": JSON}).status_code == 204
        alive(c)
    print(f"30,000-predicate establish-subscription refused in {refused_in * 1000:.0f} ms")


def test_stream_filter(restconf: RestconfServer) -> None:
    """RFC 8040 §4.8.4 `filter` on an event stream: refused before a subscription is made."""
    with restconf.client() as c:
        resp = c.get(f"{STREAM}?filter={quote(NCN + '[' + '(' * 100 + '1' + ')' * 100 + ']')}")
        denied(resp, "max-xpath-nesting")
        set_limits(c, max_xpath_predicates=10, max_xpath_length=200)
        denied(c.get(f"{STREAM}?filter={quote(NCN + '[1]' * 11)}"), "max-xpath-predicates")
        denied(c.get(f"{STREAM}?filter={quote(NCN + ' or 1' * 40)}"), "max-xpath-length")
        with c.stream("GET", f"{STREAM}?filter={quote(NCN + '[1]' * 10)}") as ok:
            assert ok.status_code == 200


def test_fields(restconf: RestconfServer) -> None:
    """RFC 8040 §4.8.3 `fields`: its nesting and the length of the selection it becomes. A 3,000-deep expression
    was a 500 (the parser's recursion)."""
    with restconf.client() as c:
        deep = "x(" * 3000 + "x" + ")" * 3000
        denied(c.get(f"{SB}?fields={quote(deep, safe='()')}"), "max-xpath-nesting")
        assert c.get(f"{SB}?fields={quote('client(endpoint(name;address))')}").status_code in (200, 404)
        set_limits(c, max_xpath_length=200)
        many = ";".join(["client/endpoint/name"] * 20)
        denied(c.get(f"{SB}?fields={quote(many)}"), "max-xpath-length")
        alive(c)


def nested_json(depth: int) -> bytes:
    inner: Any = "x"
    for _ in range(depth):
        inner = {"vpp-singbox:a": inner}
    return json.dumps({"vpp-singbox:singbox": inner}).encode()


def test_body_depth_and_nodes(restconf: RestconfServer) -> None:
    """Edits, YANG Patch and RPC input in JSON and XML: depth and node count checked before libyang parses the
    body; nothing changes."""
    with stand_in_agent(), restconf.client() as c:
        before = running_json(restconf.instance.env)
        for body, ctype in ((nested_json(100), JSON),
                            (b"".join([b"<singbox xmlns='urn:vpp-singbox:yang:vpp-singbox'>", b"<a>" * 100,
                                       b"</a>" * 100, b"</singbox>"]), XML)):
            for method in ("PUT", "PATCH", "POST"):
                url = SB if method != "POST" else "/restconf/data"
                denied(c.request(method, url, content=body, headers={"Content-Type": ctype}), "max-body-depth")
        patch = {"ietf-yang-patch:yang-patch": {"patch-id": "p", "edit": [
            {"edit-id": "e", "operation": "merge", "target": "/", "value": json.loads(nested_json(100))}]}}
        denied(c.patch(SB, json=patch, headers={"Content-Type": YANG_PATCH_JSON}), "max-body-depth")
        rpc = {"vpp-singbox:input": json.loads(nested_json(100))}
        denied(c.post("/restconf/operations/vpp-singbox:test-endpoint", json=rpc,
                      headers={"Content-Type": JSON}), "max-body-depth")
        set_limits(c, max_body_nodes=500)
        entries = [{"name": f"e{i}", "address": "198.18.0.1"} for i in range(300)]
        body = json.dumps({"vpp-singbox:client": {"endpoint": entries}}).encode()
        denied(c.put(f"{SB}/client", content=body, headers={"Content-Type": JSON}), "max-body-nodes")
        xml = ("<client xmlns='urn:vpp-singbox:yang:vpp-singbox'>" + "".join(
            f"<endpoint><name>e{i}</name><address>198.18.0.1</address></endpoint>" for i in range(300))
            + "</client>").encode()
        denied(c.put(f"{SB}/client", content=xml, headers={"Content-Type": XML}), "max-body-nodes")
        assert running_json(restconf.instance.env) == before
        # within the limits the same kind of edit works
        ok = c.put(f"{SB}/client", content=json.dumps({"vpp-singbox:client": {"endpoint": entries[:100]}}),
                   headers={"Content-Type": JSON})
        assert ok.status_code in (201, 204), ok.text
        assert c.get(f"{EP}=e99/address", headers={"Accept": JSON}).status_code == 200


@pytest.mark.parametrize("encoding", [JSON, XML])
def test_xpath_values_in_bodies(restconf: RestconfServer, encoding: str) -> None:
    """libyang compiles every value of an XPath-based type it parses (instance-identifier, a NACM rule's path is
    checked on commit): no value of a body may hold more predicates or deeper nesting than a filter may."""
    with restconf.client() as c:
        value = "/ietf-netconf-acm:nacm" + "[1]" * 5000
        if encoding == JSON:
            body = json.dumps({"ietf-netconf-acm:rule-list": [{"name": "r", "group": ["*"], "rule": [
                {"name": "x", "path": value, "action": "permit"}]}]}).encode()
        else:
            body = (f"<rule-list xmlns='{NACM_NS}'><name>r</name><group>*</group><rule><name>x</name>"
                    f"<path>{value}</path><action>permit</action></rule></rule-list>").encode()
        denied(c.post("/restconf/data/ietf-netconf-acm:nacm", content=body, headers={"Content-Type": encoding}),
               "max-xpath-predicates")
        assert c.get("/restconf/data/ietf-netconf-acm:nacm/rule-list=r").status_code == 404


def test_query_and_subscription_numbers_beyond_their_types(restconf: RestconfServer) -> None:
    """Numbers the grammar or YANG allows but the server cannot hold are precise 4xx errors, not 500s: a depth of
    5,000 digits (Python refuses to convert it), a period or dampening-period past what sysrepo's timers hold (2^31-1
    ms: beyond 2^32 the C call's conversion failed, just below it delete-subscription and shutdown hung)."""
    with restconf.client() as c:
        resp = c.get(f"{SB}?depth={'9' * 5000}")
        assert resp.status_code == 400 and "depth" in error_of(resp)["error-message"], resp.text[:500]
        for trigger, leaf in (({"ietf-yang-push:periodic": {"period": 4294967295}}, "period"),
                              ({"ietf-yang-push:on-change": {"dampening-period": 4294967295}}, "dampening-period")):
            resp = establish(c, {"ietf-yang-push:datastore": "ietf-datastores:running", **trigger})
            assert resp.status_code == 400, resp.text
            err = error_of(resp)
            assert err["error-tag"] == "invalid-value" and err["error-path"].endswith(leaf), err
        assert listed(c) == []
        made = establish(c, {"ietf-yang-push:datastore": "ietf-datastores:running",
                             "ietf-yang-push:periodic": {"period": 214748364}})
        assert made.status_code == 200, made.text
        sub_id = int(made.json()[f"{SN}:output"]["id"])
        resp = c.post(OPS + "modify-subscription", headers={"Content-Type": JSON, "Accept": JSON},
                      json={f"{SN}:input": {"id": sub_id, "ietf-yang-push:datastore": "ietf-datastores:running",
                                            "ietf-yang-push:periodic": {"period": 429496728}}})
        assert resp.status_code == 400 and error_of(resp)["error-app-tag"] == "ietf-yang-push:period-unsupported"
        (mine,) = listed(c)
        assert mine["ietf-yang-push:periodic"]["period"] == 214748364
        assert c.post(OPS + "delete-subscription", json={f"{SN}:input": {"id": sub_id}},
                      headers={"Content-Type": JSON}).status_code == 204


def test_xml_attributes_per_element(restconf: RestconfServer) -> None:
    """libyang parses an element's attributes and namespace declarations in quadratic time (20,000 on one element:
    3.5 s; 150,000 held a worker for minutes, past the server's shutdown): more than max-xml-attributes on one
    element are refused before it parses; as many spread over elements are not."""
    with stand_in_agent(), restconf.client() as c:
        before = running_json(restconf.instance.env)
        decls = " ".join(f'xmlns:p{i}="urn:example:{i}"' for i in range(2000))
        body = (f"<endpoint xmlns='urn:vpp-singbox:yang:vpp-singbox' {decls}><name>m</name>"
                "<address>198.18.0.1</address></endpoint>")
        denied(c.put(f"{EP}=m", content=body, headers={"Content-Type": XML}), "max-xml-attributes")
        assert running_json(restconf.instance.env) == before
        set_limits(c, max_xml_attributes=3000)
        ok = c.put(f"{EP}=m", content=body, headers={"Content-Type": XML})
        assert ok.status_code == 201, ok.text


def test_subscriptions_running_at_once(restconf: RestconfServer) -> None:
    """Each event stream and dynamic subscription holds a sysrepo session with its threads: past max-subscriptions
    (both kinds together, whoever opened them) one more is resource-denied; one ending makes room."""
    with restconf.client() as c, restconf.client() as c2:
        set_limits(c, max_subscriptions=2)
        made = establish(c, {"stream": "NETCONF"})
        assert made.status_code == 200, made.text
        sub_id = int(made.json()[f"{SN}:output"]["id"])
        with c2.stream("GET", STREAM) as first:
            assert first.status_code == 200
            denied(c.get(STREAM), "max-subscriptions")
            denied(establish(c, {"stream": "NETCONF"}), "max-subscriptions")
            assert len(listed(c)) == 1
        assert c.post(OPS + "delete-subscription", json={f"{SN}:input": {"id": sub_id}},
                      headers={"Content-Type": JSON}).status_code == 204
        with c.stream("GET", STREAM) as second:  # both ended: room for two again (the server sees a stream's
            assert second.status_code == 200  # client go a moment after it went)
            deadline = time.monotonic() + 30
            while (again := establish(c, {"stream": "NETCONF"})).status_code == 409:
                assert time.monotonic() < deadline, "a closed stream still counts"
                time.sleep(0.2)
            assert again.status_code == 200, again.text


def test_xml_body_not_well_formed_is_refused_whole(restconf: RestconfServer) -> None:
    """The tree limits walk an XML body with expat; libyang's own parser is more lenient (it took an element with
    an attribute twice), so a body expat finds not well-formed is malformed-message before libyang parses it —
    else the rest of it, however deep, would pass unmeasured."""
    with stand_in_agent(), restconf.client() as c:
        before = running_json(restconf.instance.env)
        twice = "xmlns='urn:vpp-singbox:yang:vpp-singbox' xmlns='urn:vpp-singbox:yang:vpp-singbox'"
        for inner in ("<log-level>info</log-level>", "<a>" * 100 + "</a>" * 100):
            resp = c.put(SB, content=f"<singbox {twice}>{inner}</singbox>", headers={"Content-Type": XML})
            assert resp.status_code == 400, resp.text
            err = error_of(resp)
            assert err["error-tag"] == "malformed-message" and "duplicate attribute" in err["error-message"], err
        assert running_json(restconf.instance.env) == before

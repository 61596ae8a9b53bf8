"""Conformance audit (session 9): RFC clauses the earlier tests left open, each against the real server.

RFC 7232 conditional requests on every method, RFC 7231 §6.5.5 Allow on every 405, RFC 8072 §2.5 move, YANG Patch
delete/remove targets read in batches, RFC 8527 §3.1 / RFC 8342 §5.1.4 <intended>, and error-paths bounded as
error-messages are."""

from __future__ import annotations

import json
from typing import Any

import sysrepo
from helpers import JSON, XML, YANG_PATCH_JSON, error_of, yang_patch
from rcserver import RestconfServer

from singbox_agent.repository import SysrepoInstance

NACM = "/restconf/data/ietf-netconf-acm:nacm"
RULE_LIST = f"{NACM}/rule-list"
H = {"content-type": JSON}


def rule_list(name: str, *groups: str) -> bytes:
    return json.dumps({"ietf-netconf-acm:rule-list": [{"name": name, "group": list(groups) or ["*"]}]}).encode()


def rule_list_names(c: Any) -> list[str]:
    doc = c.get(NACM, params={"fields": "rule-list/name"}).json()
    return [e["name"] for e in doc["ietf-netconf-acm:nacm"]["rule-list"]]


# ---- RFC 7232 conditional requests ------------------------------------------------------------------------------


def test_if_none_match_guards_writes(restconf: RestconfServer) -> None:
    """RFC 7232 §3.2: `If-None-Match: *` is false when the target has a current representation, and a listed tag
    that matches is false too; a failed condition on a method other than GET/HEAD is 412 and the method is not
    performed. The "create only if absent" PUT (RFC 8040 §4.5 with RFC 7232) replaced existing data (204)."""
    with restconf.client() as c:
        assert c.post(NACM, content=rule_list("inm"), headers=H).status_code == 201
        r = c.put(f"{RULE_LIST}=inm", content=rule_list("inm", "changed"), headers={**H, "if-none-match": "*"})
        assert r.status_code == 412, r.text
        assert error_of(r)["error-tag"] == "operation-failed"
        assert c.get(f"{RULE_LIST}=inm/group").json() == {"ietf-netconf-acm:group": ["*"]}
        # absent: the PUT creates it
        r = c.put(f"{RULE_LIST}=inm2", content=rule_list("inm2"), headers={**H, "if-none-match": "*"})
        assert r.status_code == 201, r.text
        # the current tag (either encoding's) in If-None-Match: 412 for PUT and DELETE alike
        tag_json = c.get(f"{RULE_LIST}=inm").headers["etag"]
        tag_xml = c.get(f"{RULE_LIST}=inm", headers={"accept": XML}).headers["etag"]
        for tag in (tag_json, tag_xml, f'"other", {tag_json}'):
            r = c.put(f"{RULE_LIST}=inm", content=rule_list("inm", "x"), headers={**H, "if-none-match": tag})
            assert r.status_code == 412, (tag, r.text)
            assert c.delete(f"{RULE_LIST}=inm", headers={"if-none-match": tag}).status_code == 412
        assert c.get(f"{RULE_LIST}=inm/group").json() == {"ietf-netconf-acm:group": ["*"]}
        # another tag: the condition holds
        assert c.delete(f"{RULE_LIST}=inm", headers={"if-none-match": '"other"'}).status_code == 204
        assert c.get(f"{RULE_LIST}=inm").status_code == 404
        # POST: its target is the parent, which exists
        r = c.post(NACM, content=rule_list("inm3"), headers={**H, "if-none-match": "*"})
        assert r.status_code == 412, r.text
        assert c.get(f"{RULE_LIST}=inm3").status_code == 404


def test_if_match_and_if_unmodified_since_hold_for_reads(restconf: RestconfServer) -> None:
    """RFC 7232 §3.1 and §3.4: an origin server evaluates If-Match and If-Unmodified-Since for every method — a GET
    whose condition fails is 412, not the current representation (it was 200 whatever the tag)."""
    with restconf.client() as c:
        assert c.post(NACM, content=rule_list("im"), headers=H).status_code == 201
        first = c.get(f"{RULE_LIST}=im")
        tag, modified = first.headers["etag"], first.headers["last-modified"]
        assert c.get(f"{RULE_LIST}=im", headers={"if-match": tag}).status_code == 200
        assert c.get(f"{RULE_LIST}=im", headers={"if-match": "*"}).status_code == 200
        r = c.get(f"{RULE_LIST}=im", headers={"if-match": '"stale"'})
        assert r.status_code == 412, r.text
        assert c.head(f"{RULE_LIST}=im", headers={"if-match": '"stale"'}).status_code == 412
        assert c.get("/restconf/data", headers={"if-match": '"stale"'}).status_code == 412
        past = "Thu, 01 Jan 1970 00:00:00 GMT"
        assert c.get(f"{RULE_LIST}=im", headers={"if-unmodified-since": past}).status_code == 412
        assert c.get(f"{RULE_LIST}=im", headers={"if-unmodified-since": modified}).status_code == 200
        # If-Match present: If-Unmodified-Since is not evaluated (§3.4)
        assert c.get(f"{RULE_LIST}=im", headers={"if-match": tag, "if-unmodified-since": past}).status_code == 200
        # a precondition failure is answered in the Accept encoding like any error
        r = c.get(f"{RULE_LIST}=im", headers={"if-match": '"stale"', "accept": XML})
        assert r.status_code == 412 and r.headers["content-type"].startswith(XML)


def test_if_match_compares_strongly(restconf: RestconfServer) -> None:
    """RFC 7232 §3.1: If-Match uses the strong comparison (§2.3.2): a weak tag never matches, even with the same
    opaque value; If-None-Match compares weakly (§3.2)."""
    with restconf.client() as c:
        assert c.post(NACM, content=rule_list("strong"), headers=H).status_code == 201
        tag = c.get(f"{RULE_LIST}=strong").headers["etag"]
        assert not tag.startswith("W/")
        r = c.put(f"{RULE_LIST}=strong", content=rule_list("strong", "g"), headers={**H, "if-match": f"W/{tag}"})
        assert r.status_code == 412, r.text
        assert c.get(f"{RULE_LIST}=strong", headers={"if-match": f"W/{tag}"}).status_code == 412
        assert c.get(f"{RULE_LIST}=strong", headers={"if-none-match": f"W/{tag}"}).status_code == 304
        r = c.put(f"{RULE_LIST}=strong", content=rule_list("strong", "g"), headers={**H, "if-match": tag})
        assert r.status_code == 204, r.text


def test_unparsable_if_unmodified_since_is_ignored(restconf: RestconfServer) -> None:
    """RFC 7232 §3.4: "A recipient MUST ignore the If-Unmodified-Since header field if the received field-value is
    not a valid HTTP-date" (it was a 400 on writes)."""
    with restconf.client() as c:
        r = c.post(NACM, content=rule_list("ius"), headers={**H, "if-unmodified-since": "yesterday"})
        assert r.status_code == 201, r.text
        assert c.get(f"{RULE_LIST}=ius", headers={"if-unmodified-since": "yesterday"}).status_code == 200
        assert c.delete(f"{RULE_LIST}=ius", headers={"if-unmodified-since": "not a date"}).status_code == 204


# ---- RFC 7231 §6.5.5 ------------------------------------------------------------------------------------------------


def test_every_405_names_the_allowed_methods(restconf: RestconfServer) -> None:
    """RFC 7231 §6.5.5: "The origin server MUST generate an Allow header field in a 405 response". An RPC nothing
    serves (sysrepo's operation-not-supported, RFC 8040 §7's 405) had none."""
    with restconf.client() as c:
        r = c.post("/restconf/operations/vpp-singbox:clear-statistics", headers=H)
        assert r.status_code == 405, r.text
        assert error_of(r)["error-tag"] == "operation-not-supported"
        # RFC 9110 §15.5.6: Allow names what the resource supports, never the method just refused
        assert r.headers.get("allow") == "OPTIONS"
        r = c.get("/restconf/operations/vpp-singbox:clear-statistics")
        assert r.status_code == 405 and r.headers.get("allow") == "OPTIONS"


# ---- error-path ----------------------------------------------------------------------------------------------------


def test_error_path_is_bounded(restconf: RestconfServer) -> None:
    """An error never echoes a client's input unbounded (mgmt/errors.py): error-message was clipped, but the
    error-path of an edit naming a 200,000-character key came back whole, in JSON and XML and in a YANG Patch
    status. RFC 8040 §7.1 error-path is the node's instance-identifier; past 2,048 characters it is clipped as
    error-message is."""
    huge = "k" * 200_000
    with restconf.client() as c:
        patch = yang_patch("p", {"edit-id": "e", "operation": "delete", "target": f"/groups/group={huge}"})
        for accept in (JSON, XML):
            r = c.patch(NACM, content=patch, headers={"content-type": YANG_PATCH_JSON, "accept": accept})
            assert r.status_code == 409, r.text[:500]
            assert "data-missing" in r.text
            assert len(r.content) < 10_000, len(r.content)
            assert f"{'k' * 100}" in r.text  # the start of the path is still there
        r = c.request("DELETE", f"{NACM}/groups/group={'q' * 5000}")
        assert r.status_code == 404
        path = error_of(r)["error-path"]
        assert path.startswith("/ietf-netconf-acm:nacm/groups/group[name='qqq") and len(path) < 2200, len(path)


# ---- RFC 8072 §2.5 move ----------------------------------------------------------------------------------------


def test_yang_patch_move_takes_no_value(restconf: RestconfServer) -> None:
    """RFC 8072 §2.5: "move" reorders an existing entry of a user-ordered list; the module's `value` is only
    "when" the operation is create, merge, replace or insert, so a move has none — it was refused
    ("operation move needs a value"). A move of a missing entry is data-missing on its edit."""
    ph = {"content-type": YANG_PATCH_JSON}
    with restconf.client() as c:
        for name in ("m1", "m2", "m3"):
            assert c.post(NACM, content=rule_list(name), headers=H).status_code == 201
        r = c.patch(NACM, headers=ph, content=yang_patch(
            "mv", {"edit-id": "first", "operation": "move", "target": "/rule-list=m3", "where": "first"},
            {"edit-id": "after", "operation": "move", "target": "/rule-list=m1", "where": "after",
             "point": "/rule-list=m2"}))
        assert r.status_code == 200, r.text
        assert r.json() == {"ietf-yang-patch:yang-patch-status": {"patch-id": "mv", "ok": [None]}}
        names = rule_list_names(c)
        assert names[0] == "m3" and names.index("m2") + 1 == names.index("m1"), names
        # the target must exist: nothing is created, nothing else applied
        before = rule_list_names(c)
        r = c.patch(NACM, headers=ph, content=yang_patch(
            "bad", {"edit-id": "ok", "operation": "move", "target": "/rule-list=m1", "where": "first"},
            {"edit-id": "missing", "operation": "move", "target": "/rule-list=nope", "where": "first"}))
        assert r.status_code == 409, r.text
        edit = r.json()["ietf-yang-patch:yang-patch-status"]["edit-status"]["edit"][0]
        assert edit["edit-id"] == "missing" and edit["errors"]["error"][0]["error-tag"] == "data-missing"
        assert rule_list_names(c) == before


# ---- YANG Patch delete/remove read in batches --------------------------------------------------------------


def test_reader_prefetch_reads_once_per_batch(sysrepo_instance: SysrepoInstance) -> None:
    """YANG Patch's delete and remove read sysrepo once per edit (2,000 deletes: 7 s on the loaded box);
    `Reader.prefetch` reads 600 targets with ceil(600 / 256) = 3 reads, and existence and leaf values are then
    answered from that: the same answers as the per-path reads."""
    from singbox_agent.restconf.store import Reader

    with sysrepo.SysrepoConnection() as conn:
        sess = conn.start_session("running")
        groups = [{"name": f"g{i}", "user-name": [f"u{i}"]} for i in range(0, 600, 2)]
        sess.replace_config({"nacm": {"groups": {"group": groups}, "read-default": "deny"}}, "ietf-netconf-acm")
        paths = [f"/ietf-netconf-acm:nacm/groups/group[name='g{i}']" for i in range(600)]
        leaves = ["/ietf-netconf-acm:nacm/read-default", "/ietf-netconf-acm:nacm/write-default"]
        expected = {p: Reader(sess).exists(p) for p in paths + leaves}
        expected_values = {p: Reader(sess).leaf_value(p) for p in leaves}
        reads: list[str] = []

        class Counting:
            """The session, counting its reads (a SysrepoSession's methods cannot be replaced)."""

            def get_data_ly(self, xpath: str, *args: Any, **kw: Any) -> Any:
                reads.append(xpath)
                return sess.get_data_ly(xpath, *args, **kw)

        reader = Reader(Counting())  # type: ignore[arg-type]
        reader.prefetch(paths[:300] + leaves + paths[300:])
        assert len(reads) == 3, len(reads)
        assert {p: reader.exists(p) for p in paths + leaves} == expected
        assert {p: reader.leaf_value(p) for p in leaves} == expected_values
        assert expected_values == {leaves[0]: "deny", leaves[1]: None}  # write-default: its schema default only
        assert len(reads) == 3
        sess.stop()


def test_yang_patch_many_deletes(restconf: RestconfServer) -> None:
    """600 deletes in one YANG Patch (RFC 8072 §2.5), their targets read in batches: one missing is data-missing on
    its own edit-id and nothing is applied (§2.3 all-or-nothing); without it all are deleted, removes of missing
    targets being no-ops."""
    ph = {"content-type": YANG_PATCH_JSON}
    with restconf.client() as c:
        groups = [{"name": f"d{i}", "user-name": ["u"]} for i in range(600)]
        body = json.dumps({"ietf-netconf-acm:nacm": {"groups": {"group": groups}}}).encode()
        assert c.patch(NACM, content=body, headers=H).status_code == 204
        edits = [{"edit-id": f"e{i}", "operation": "delete", "target": f"/groups/group=d{i}"} for i in range(600)]
        edits[450] = {"edit-id": "e450", "operation": "delete", "target": "/groups/group=absent"}
        r = c.patch(NACM, content=yang_patch("p", *edits), headers=ph)
        assert r.status_code == 409, r.text[:500]
        status = r.json()["ietf-yang-patch:yang-patch-status"]["edit-status"]["edit"]
        assert [e["edit-id"] for e in status] == ["e450"]
        assert len(c.get(f"{NACM}/groups").json()["ietf-netconf-acm:groups"]["group"]) >= 600
        edits[450] = {"edit-id": "e450", "operation": "remove", "target": "/groups/group=absent"}
        edits.append({"edit-id": "leaf", "operation": "remove", "target": "/read-default"})
        r = c.patch(NACM, content=yang_patch("p2", *edits), headers=ph)
        assert r.status_code == 200, r.text[:500]
        left = c.get(f"{NACM}/groups").json()["ietf-netconf-acm:groups"].get("group", [])
        assert not [g for g in left if g["name"].startswith("d") and g["name"] != "d450"], left[:3]
        assert any(g["name"] == "d450" for g in left)


# ---- RFC 8527 §3.1 <intended> -----------------------------------------------------------------------------------


def test_intended_datastore(restconf: RestconfServer) -> None:
    """RFC 8527 §3.1: {+restconf}/ds/ietf-datastores:intended is one of the NMDA datastores; RFC 8342 §5.1.4: it is
    read-only and, without configuration transformations (none here), identical to <running>. It was 404."""
    ds = "/restconf/ds/ietf-datastores"
    with restconf.client() as c:
        assert c.post(NACM, content=rule_list("int"), headers=H).status_code == 201
        running = c.get(f"{ds}:running/ietf-netconf-acm:nacm")
        intended = c.get(f"{ds}:intended/ietf-netconf-acm:nacm")
        assert intended.status_code == 200, intended.text
        assert intended.json() == running.json()
        assert intended.headers["etag"] == running.headers["etag"]
        whole = c.get(f"{ds}:intended")
        assert whole.status_code == 200 and list(whole.json()) == ["ietf-restconf:data"]
        assert "ietf-netconf-acm:nacm" in whole.json()["ietf-restconf:data"]
        assert c.get(f"{ds}:intended/ietf-netconf-acm:nacm/rule-list=int", headers={"accept": XML}).status_code == 200
        assert c.get(f"{ds}:intended/ietf-netconf-acm:nacm/rule-list=nope").status_code == 404
        for method in ("PUT", "PATCH", "DELETE", "POST"):
            r = c.request(method, f"{ds}:intended/ietf-netconf-acm:nacm/rule-list=int", content=rule_list("int", "w"),
                          headers=H)
            assert r.status_code == 405, (method, r.text)
            assert r.headers["allow"] == "GET, HEAD, OPTIONS"
        assert c.put(f"{ds}:intended", content=b'{"ietf-restconf:data":{}}', headers=H).status_code == 405
        assert c.options(f"{ds}:intended").headers["allow"] == "GET, HEAD, OPTIONS"
        assert c.get(f"{RULE_LIST}=int/group").json() == {"ietf-netconf-acm:group": ["*"]}


# ---- RFC 8527 §3.2.2 with-origin ------------------------------------------------------------------------------


def test_with_origin(restconf: RestconfServer) -> None:
    """RFC 8527 §3.2.2: `?with-origin` (no value) on the operational datastore returns ietf-origin annotations
    (RFC 8342 §5.3.4; configuration from <intended> is or:intended), advertised by the with-origin capability; on
    any other datastore, on /data, on a write, or with a value it is 400 invalid-value; without it nothing is
    annotated. It was refused as an unknown parameter everywhere."""
    op = "/restconf/ds/ietf-datastores:operational"
    with restconf.client() as c:
        assert c.post(NACM, content=rule_list("orig"), headers=H).status_code == 201
        r = c.get(f"{op}/ietf-netconf-acm:nacm/rule-list=orig", params="with-origin")
        assert r.status_code == 200, r.text
        entry = r.json()["ietf-netconf-acm:rule-list"][0]
        assert entry["@"] == {"ietf-origin:origin": "ietf-origin:intended"}, entry
        assert entry["name"] == "orig" and entry["group"] == ["*"]
        x = c.get(f"{op}/ietf-netconf-acm:nacm/rule-list=orig", params="with-origin", headers={"accept": XML})
        assert x.status_code == 200 and 'urn:ietf:params:xml:ns:yang:ietf-origin' in x.text, x.text
        assert ':intended"' in x.text, x.text  # origin="<prefix>:intended" on the entry
        whole = c.get(op, params="with-origin&content=config&depth=2")
        assert whole.status_code == 200 and "ietf-origin:origin" in whole.text
        # the basic mode still hides default-only leaves, annotated or not
        assert "write-default" not in c.get(f"{op}/ietf-netconf-acm:nacm", params="with-origin").text
        assert "ietf-origin" not in c.get(f"{op}/ietf-netconf-acm:nacm/rule-list=orig").text
        for uri, params in ((f"/restconf/ds/ietf-datastores:running/ietf-netconf-acm:nacm", "with-origin"),
                            (NACM, "with-origin"),
                            (f"{op}/ietf-netconf-acm:nacm", "with-origin=true")):
            r = c.get(uri, params=params)
            assert r.status_code == 400, (uri, params, r.text)
            assert error_of(r)["error-tag"] == "invalid-value"
        r = c.put(f"{RULE_LIST}=orig?with-origin", content=rule_list("orig"), headers=H)
        assert r.status_code == 400
        caps = c.get("/restconf/data/ietf-restconf-monitoring:restconf-state/capabilities").json()
        assert "urn:ietf:params:restconf:capability:with-origin:1.0" in caps[
            "ietf-restconf-monitoring:capabilities"]["capability"]


# ---- RFC 8040 §4.2 HEAD on an event stream -----------------------------------------------------------------------


def test_head_on_an_event_stream(restconf: RestconfServer) -> None:
    """RFC 8040 §4.2: "The server MUST support the HEAD method" wherever GET is; OPTIONS on a stream says GET, HEAD,
    OPTIONS, yet HEAD was 405 (the stream itself is opened for GET only). Now the GET's status and media type, no
    body, and the stream's query parameters checked as for GET."""
    with restconf.client() as c:
        uri = "/restconf/streams/NETCONF/json"
        assert c.options(uri).headers["allow"] == "GET, HEAD, OPTIONS"
        r = c.head(uri)
        assert r.status_code == 200, r.headers
        assert r.headers["content-type"].startswith("text/event-stream") and r.content == b""
        assert c.head(uri, params={"start-time": "yesterday"}).status_code == 400
        assert c.head("/restconf/streams/NETCONF/xml").status_code == 200
        assert c.head("/restconf/streams/OTHER/json").status_code == 404


def test_yang_patch_edit_ids_are_unique(restconf: RestconfServer) -> None:
    """RFC 8072 §2.2: `edit-id` is the key of the `edit` list, so two edits cannot share one (the status of either
    would be ambiguous); a patch with a repeated edit-id was applied whole. Now 400, nothing applied, in either
    encoding."""
    ph = {"content-type": YANG_PATCH_JSON}
    with restconf.client() as c:
        before = c.get(NACM).json()
        r = c.patch(NACM, headers=ph, content=yang_patch(
            "dup", {"edit-id": "1", "operation": "merge", "target": "/read-default",
                    "value": {"ietf-netconf-acm:read-default": "deny"}},
            {"edit-id": "1", "operation": "create", "target": "/rule-list=dup",
             "value": {"ietf-netconf-acm:rule-list": [{"name": "dup", "group": ["*"]}]}}))
        assert r.status_code == 400, r.text
        assert "appears twice" in r.text
        xml_patch = (
            '<yang-patch xmlns="urn:ietf:params:xml:ns:yang:ietf-yang-patch"><patch-id>x</patch-id>'
            '<edit><edit-id>a</edit-id><operation>remove</operation><target>/rule-list=nope</target></edit>'
            '<edit><edit-id>a</edit-id><operation>remove</operation><target>/rule-list=nope2</target></edit>'
            '</yang-patch>')
        r = c.patch(NACM, headers={"content-type": "application/yang-patch+xml"}, content=xml_patch.encode())
        assert r.status_code == 400, r.text
        assert c.get(NACM).json() == before


def test_subscription_rpcs_need_their_mandatory_input(restconf: RestconfServer) -> None:
    """RFC 8040 §4.4.2 with RFC 7950 §7.14.2: an RPC's input is validated as data, so a missing mandatory leaf is
    400 missing-element. The server's own RFC 8639/8650 RPCs (served in-process, not through sysrepo, which
    validates the others) took a delete-subscription without `id` as a delete of subscription 0 (404)."""
    ops = "/restconf/operations"
    with restconf.client() as c:
        made = c.post(f"{ops}/ietf-subscribed-notifications:establish-subscription", headers=H,
                      content=b'{"ietf-subscribed-notifications:input":{"stream":"NETCONF"}}')
        assert made.status_code == 200, made.text
        for rpc in ("delete-subscription", "kill-subscription", "modify-subscription"):
            for body in (b"", b'{"ietf-subscribed-notifications:input":{}}'):
                r = c.post(f"{ops}/ietf-subscribed-notifications:{rpc}", content=body, headers=H)
                assert r.status_code == 400, (rpc, body, r.text)
                err = error_of(r)
                assert err["error-tag"] == "missing-element" and err["error-path"].endswith("/id"), err
        r = c.post(f"{ops}/ietf-yang-push:resync-subscription", headers=H)
        assert r.status_code == 400 and error_of(r)["error-tag"] == "missing-element", r.text
        sub_id = made.json()["ietf-subscribed-notifications:output"]["id"]
        r = c.post(f"{ops}/ietf-subscribed-notifications:delete-subscription", headers=H,
                   content=json.dumps({"ietf-subscribed-notifications:input": {"id": sub_id}}).encode())
        assert r.status_code == 204, r.text


def test_a_request_target_too_long_is_414(restconf: RestconfServer) -> None:
    """RFC 9112 §3 (RFC 7230 §3.1.1): "A server that receives a request-target longer than any URI it wishes to
    parse MUST respond with a 414 (URI Too Long)"; it was 431, as for header fields, and over HTTP/1.1 a head split
    over TLS records got h11's 431 without an errors body. Header fields beyond the limit stay 431."""
    key = "k" * 40_000
    for http2 in (False, True):
        with restconf.client(http2=http2) as c:
            for uri in (f"{NACM}/groups/group={key}", f"{NACM}?depth=1&x={key}"):
                r = c.get(uri)
                assert r.status_code == 414, (http2, r.status_code, r.text[:200])
                assert error_of(r)["error-tag"] == "too-big"
            r = c.get(NACM, headers={"x-big": "a" * 20_000})
            assert r.status_code == 431, (http2, r.status_code)
            assert c.get(f"{NACM}/enable-nacm").status_code == 200


def test_error_path_of_a_body_below_its_target_is_absolute(restconf: RestconfServer) -> None:
    """RFC 8040 §7.1: error-path is the instance-identifier of the node the error concerns. A body parsed below
    its target (POST to a container, YANG Patch values) had libyang's path from the body's top,
    "/ietf-netconf-acm:rule-list/name", which names nothing; now it is the full path."""
    with restconf.client() as c:
        bad = json.dumps({"ietf-netconf-acm:group": [{"name": "g", "user-name": ["u"], "bogus": 1}]}).encode()
        bad_value = json.dumps({"ietf-netconf-acm:rule-list": [{"name": "r", "rule": [
            {"name": "x", "access-operations": "nope", "action": "permit"}]}]}).encode()
        r = c.post(NACM, content=bad_value, headers=H)
        assert r.status_code == 400, r.text
        path = error_of(r)["error-path"]
        assert path.startswith("/ietf-netconf-acm:nacm/rule-list"), path
        assert path.endswith("access-operations"), path
        r = c.post(f"{NACM}/groups", content=bad, headers=H)
        assert r.status_code == 400, r.text
        assert error_of(r).get("error-path", "/ietf-netconf-acm:nacm/groups").startswith(
            "/ietf-netconf-acm:nacm/groups"), r.text


def test_plain_patch_of_the_datastore_takes_its_data_wrapper(restconf: RestconfServer) -> None:
    """RFC 8040 §4.6.1's own example patches {+restconf}/data with `<data xmlns="...ietf-restconf">` around the
    content — the datastore as GET returns it and PUT takes it (§3.4, Appendix B.3.1); it was 400 (no node
    "data"). The bare content stays accepted."""
    with restconf.client() as c:
        wrapped = {"ietf-restconf:data": {"ietf-netconf-acm:nacm": {"rule-list": [{"name": "pw1", "group": ["*"]}]}}}
        r = c.patch("/restconf/data", content=json.dumps(wrapped).encode(), headers=H)
        assert r.status_code == 204, r.text
        xml = ('<data xmlns="urn:ietf:params:xml:ns:yang:ietf-restconf"><nacm xmlns="urn:ietf:params:xml:ns:yang:'
               'ietf-netconf-acm"><rule-list><name>pw2</name><group>*</group></rule-list></nacm></data>')
        r = c.patch("/restconf/ds/ietf-datastores:running", content=xml.encode(), headers={"content-type": XML})
        assert r.status_code == 204, r.text
        bare = {"ietf-netconf-acm:nacm": {"rule-list": [{"name": "pw3", "group": ["*"]}]}}
        assert c.patch("/restconf/data", content=json.dumps(bare).encode(), headers=H).status_code == 204
        assert {"pw1", "pw2", "pw3"} <= set(rule_list_names(c))
        assert c.patch("/restconf/data", content=b'{"ietf-restconf:data":{}}', headers=H).status_code == 204
        r = c.patch("/restconf/data", content=b'{"ietf-restconf:data":{"nope:x":1}}', headers=H)
        assert r.status_code == 400, r.text


def test_root_discovery_needs_no_credentials(restconf: RestconfServer) -> None:
    """RFC 8040 §3.1: a client finds the API root through /.well-known/host-meta (RFC 6415) before anything else;
    the document names only the root, no protected resource (§2.5), so it is served without credentials (it was
    401). Everything it points to still needs them."""
    with restconf.client(auth=None) as c:
        r = c.get("/.well-known/host-meta")
        assert r.status_code == 200, r.text
        assert "<Link rel='restconf' href='/restconf'/>" in r.text
        assert r.headers["content-type"].startswith("application/xrd+xml")
        assert c.head("/.well-known/host-meta").status_code == 200
        assert c.get("/restconf").status_code == 401
        assert c.get("/restconf/data").status_code == 401
        assert c.get("/.well-known/other").status_code == 401



def test_action_on_a_missing_node_is_data_missing(restconf: RestconfServer) -> None:
    """RFC 7950 §7.15.2: an action invoked on a data node that does not exist gets error-tag data-missing. It was
    a 500 operation-failed (sysrepo's "data parent does not exist"); now 404, as for any request naming a missing
    resource, with the node's path."""
    action = "/restconf/data/ietf-keystore:keystore/asymmetric-keys/asymmetric-key=nokey/generate-csr"
    body = b'{"ietf-keystore:input":{"csr-format":"ietf-crypto-types:p10-csr-format","csr-info":"AAAA"}}'
    with restconf.client() as c:
        for accept in (JSON, XML):
            r = c.post(action, content=body, headers={**H, "accept": accept})
            assert r.status_code == 404, r.text
            assert "data-missing" in r.text and "asymmetric-key[name='nokey']" in r.text, r.text


def test_yang_patch_insert_and_move_need_a_user_ordered_target(restconf: RestconfServer) -> None:
    """RFC 8072 §2.5: insert and move place "user-ordered" entries, relative to a point of the same list. An insert
    into a system-ordered list was accepted and its position dropped; a point in another list was sysrepo's
    global 409 naming no edit. Both are now 400 on their edit, nothing applied."""
    ph = {"content-type": YANG_PATCH_JSON}
    with restconf.client() as c:
        assert c.post(NACM, content=rule_list("u1"), headers=H).status_code == 201
        before = c.get(NACM).json()
        cases = [
            {"edit-id": "sys", "operation": "insert", "target": "/groups/group=zz", "where": "first",
             "value": {"ietf-netconf-acm:group": [{"name": "zz"}]}},
            {"edit-id": "sys-move", "operation": "move", "target": "/groups/group=zz", "where": "first"},
            {"edit-id": "other-list", "operation": "insert", "target": "/rule-list=q1", "where": "after",
             "point": "/groups/group=g", "value": {"ietf-netconf-acm:rule-list": [{"name": "q1"}]}},
            {"edit-id": "other-parent", "operation": "insert", "target": "/rule-list=u1/rule=x", "where": "before",
             "point": "/rule-list=admin-all/rule=permit-all",
             "value": {"ietf-netconf-acm:rule": [{"name": "x", "access-operations": "*", "action": "permit"}]}},
        ]
        for edit in cases:
            r = c.patch(NACM, headers=ph, content=yang_patch("o", edit))
            assert r.status_code == 400, (edit["edit-id"], r.text)
            status = r.json()["ietf-yang-patch:yang-patch-status"]["edit-status"]["edit"][0]
            assert status["edit-id"] == edit["edit-id"], status
            assert status["errors"]["error"][0]["error-tag"] == "invalid-value"
        assert c.get(NACM).json() == before
        # a user-ordered list with a point of its own
        r = c.patch(NACM, headers=ph, content=yang_patch("ok", {
            "edit-id": "1", "operation": "insert", "target": "/rule-list=u0", "where": "before",
            "point": "/rule-list=u1", "value": {"ietf-netconf-acm:rule-list": [{"name": "u0", "group": ["*"]}]}}))
        assert r.status_code == 200, r.text
        names = rule_list_names(c)
        assert names.index("u0") + 1 == names.index("u1"), names


def test_insertion_points_with_a_slash_in_their_key(restconf: RestconfServer) -> None:
    """RFC 8040 §4.8.6 / RFC 8072 §2.5: `point` is an api-path, its key values percent-encoded (§3.5.3). A key
    holding "/" (a NACM rule-list named "a/b") cut the data path inside the key: a YANG Patch naming it as its
    point was a 500, and the query parameter (an api-path inside a query value: "%252F") the same. A point in
    another list was sysrepo's 409; now 400."""
    ph = {"content-type": YANG_PATCH_JSON}
    with restconf.client() as c:
        assert c.post(NACM, content=rule_list("a/b"), headers=H).status_code == 201
        r = c.patch(NACM, headers=ph, content=yang_patch("s", {
            "edit-id": "1", "operation": "insert", "target": "/rule-list=before-ab", "where": "before",
            "point": "/rule-list=a%2Fb", "value": {"ietf-netconf-acm:rule-list": [{"name": "before-ab"}]}}))
        assert r.status_code == 200, r.text
        r = c.post(f"{NACM}?insert=after&point=%2Fietf-netconf-acm%3Anacm%2Frule-list%3Da%252Fb",
                   content=rule_list("after-ab"), headers=H)
        assert r.status_code == 201, r.text
        names = rule_list_names(c)
        i = names.index("a/b")
        assert names[i - 1] == "before-ab" and names[i + 1] == "after-ab", names
        c.post(f"{NACM}/groups", content=b'{"ietf-netconf-acm:group":[{"name":"g"}]}', headers=H)
        r = c.post(f"{NACM}?insert=after&point=/ietf-netconf-acm:nacm/groups/group=g", content=rule_list("pt"),
                   headers=H)
        assert r.status_code == 400, r.text
        assert "pt" not in rule_list_names(c)


def test_xml_error_path_declares_its_prefixes(restconf: RestconfServer) -> None:
    """RFC 8040 §7.1: error-path is an instance-identifier, and in XML its prefixes are read with the namespaces in
    scope (RFC 7950 §9.13.2). The server writes module names as the prefixes; they were declared nowhere."""
    from lxml import etree

    bad_value = json.dumps({"ietf-netconf-acm:rule-list": [{"name": "r", "rule": [
        {"name": "x", "access-operations": "nope", "action": "permit"}]}]}).encode()
    with restconf.client() as c:
        r = c.post(NACM, content=bad_value, headers={**H, "accept": XML})
    assert r.status_code == 400, r.text
    errors = etree.fromstring(r.content)
    paths = errors.findall(".//{urn:ietf:params:xml:ns:yang:ietf-restconf}error-path")
    assert paths and paths[0].text.startswith("/ietf-netconf-acm:nacm/rule-list"), r.text
    assert paths[0].nsmap.get("ietf-netconf-acm") == "urn:ietf:params:xml:ns:yang:ietf-netconf-acm", r.text


# ---- RFC 8040 §4.4.1 / §7.1, RFC 9110 §15.6.2 ----------------------------------------------------------------------


def test_post_of_an_existing_resource_is_resource_denied_naming_it(restconf: RestconfServer) -> None:
    """RFC 8040 §4.4.1: "If the data resource already exists, then the POST request MUST fail and a "409 Conflict"
    status-line MUST be returned. The error-tag value "resource-denied" is used in this case"; §7.1: error-path is
    the instance-identifier of the node. It was sysrepo's data-exists without error-path."""
    with restconf.client() as c:
        assert c.post(NACM, content=rule_list("dup"), headers=H).status_code == 201
        for accept in (JSON, XML):
            r = c.post(NACM, content=rule_list("dup", "other"), headers={**H, "accept": accept})
            assert r.status_code == 409, r.text
            if accept == JSON:
                err = error_of(r)
                assert (err["error-tag"], err["error-type"]) == ("resource-denied", "application"), err
                assert err["error-path"] == "/ietf-netconf-acm:nacm/rule-list[name='dup']", err
            else:
                assert b"<error-tag>resource-denied</error-tag>" in r.content, r.text
                assert b"/ietf-netconf-acm:nacm/rule-list[name='dup']</error-path>" in r.content, r.text
        assert c.get(f"{RULE_LIST}=dup/group").json() == {"ietf-netconf-acm:group": ["*"]}


def test_a_method_the_server_does_not_implement_is_501(restconf: RestconfServer) -> None:
    """RFC 9110 §9.1: "An origin server that receives a request method that is unrecognized or not implemented SHOULD
    respond with the 501 (Not Implemented) status code"; §15.5.6: 405 is for a method "known by the origin server but
    not supported by the target resource" (with Allow, which stays there). Unknown methods were 405."""
    with restconf.client() as c:
        for method, target in (("BREW", NACM), ("TRACE", NACM), ("PROPFIND", "/restconf/data"),
                               ("BREW", "/restconf/operations"), ("CONNECT", "/restconf")):
            r = c.request(method, target)
            assert r.status_code == 501, (method, target, r.status_code, r.text)
            assert error_of(r)["error-tag"] == "operation-not-supported"
            assert "allow" not in r.headers
        r = c.put("/restconf/operations", content=b"{}", headers=H)  # a known method the resource lacks
        assert r.status_code == 405 and r.headers["allow"] == "GET, HEAD, OPTIONS", r.text


def test_post_of_an_existing_resource_changes_nothing(restconf: RestconfServer) -> None:
    """RFC 8040 §4.4.1: the POST of an existing resource "MUST fail"; a failed edit changes nothing (§4.4: the
    request is one edit). sysrepo refused the create but stored the body's children of the existing node: the
    rule-list gained the POSTed group."""
    with restconf.client() as c:
        assert c.post(NACM, content=rule_list("keep"), headers=H).status_code == 201
        assert c.post(NACM, content=rule_list("keep", "added"), headers=H).status_code == 409
        assert c.get(f"{RULE_LIST}=keep/group").json() == {"ietf-netconf-acm:group": ["*"]}
        # a non-presence container exists through its children: its POST stays sysrepo's merge (201)
        assert c.post("/restconf/data", content=b'{"ietf-netconf-acm:nacm": {}}', headers=H).status_code == 201


# ---- RFC 8040 §4.8.9 with RFC 6243 §2.2 (trim) ---------------------------------------------------------------------


def test_trim_reports_no_leaf_holding_its_default(restconf: RestconfServer) -> None:
    """RFC 6243 2.2 (trim): "Data nodes set to the YANG default MUST NOT be reported", whether the value was set
    explicitly or not (RFC 8040 §4.8.9 takes the modes over). A GET of exactly such a leaf with trim finds nothing to
    report: 404 as for a leaf holding only its default in the basic mode (it was 200 with `{}` in JSON and an empty,
    not well-formed, body in XML). A container whose children trim all leaves out is the container, empty (it
    printed as nothing)."""
    running = "/restconf/ds/ietf-datastores:running/vpp-singbox:singbox/client/endpoint"
    body = json.dumps({"vpp-singbox:endpoint": [{"name": "t", "address": "198.18.0.1", "port": 1080}]}).encode()
    with restconf.client() as c:
        assert c.put(f"{running}=t", content=body, headers=H).status_code == 201
        for accept in (JSON, XML):
            r = c.get(f"{running}=t/port?with-defaults=trim", headers={"accept": accept})
            assert r.status_code == 404, r.text
            r = c.get(f"{running}=t/port?with-defaults=explicit", headers={"accept": accept})  # set: reported
            assert r.status_code == 200 and "1080" in r.text, r.text
        assert c.get(f"{running}=t/port?with-defaults=report-all").json() == {"vpp-singbox:port": 1080}
        r = c.get(f"{running}=t/health-check?with-defaults=trim")
        assert r.status_code == 200 and r.json() == {"vpp-singbox:health-check": {}}, r.text
        r = c.get(f"{running}=t/health-check?with-defaults=trim", headers={"accept": XML})
        assert r.status_code == 200, r.text
        assert r.text.strip() == '<health-check xmlns="urn:vpp-singbox:yang:vpp-singbox"/>', r.text
        whole = c.get(f"{running}=t?with-defaults=trim").json()["vpp-singbox:endpoint"][0]
        assert "port" not in whole and whole["address"] == "198.18.0.1", whole


def test_yang_library_lists_the_datastores_served(restconf: RestconfServer) -> None:
    """RFC 8525 /yang-library/datastore: each "datastore supported by this server". {+restconf}/ds/
    ietf-datastores:intended is served (RFC 8527 §3.1) but sysrepo's list left it out; every listed datastore is
    reachable under /ds/, and no other."""
    with restconf.client() as c:
        r = c.get("/restconf/data/ietf-yang-library:yang-library/datastore")
        assert r.status_code == 200, r.text
        listed = sorted(d["name"] for d in r.json()["ietf-yang-library:datastore"])
        assert listed == [f"ietf-datastores:{n}" for n in ("candidate", "intended", "operational", "running",
                                                            "startup")], listed
        for name in listed:
            assert c.get(f"/restconf/ds/{name}/ietf-netconf-acm:nacm").status_code == 200, name
        assert c.get("/restconf/ds/ietf-datastores:factory-default").status_code == 404


def test_subscription_errors_carry_their_rfc_8639_identities(restconf: RestconfServer) -> None:
    """RFC 8639 2.4.2 with RFC 8650: establish-subscription to a stream the server does not have is refused with the
    identity "stream-unavailable" as error-app-tag (it had none); RFC 8641 4.4.4: resync-subscription of no
    subscription of the user is "no-such-subscription-resync" (it was no-such-subscription)."""
    ops = "/restconf/operations"
    with restconf.client() as c:
        r = c.post(f"{ops}/ietf-subscribed-notifications:establish-subscription", headers=H,
                   content=json.dumps({"ietf-subscribed-notifications:input": {"stream": "no-such"}}).encode())
        assert r.status_code == 400, r.text
        assert error_of(r)["error-app-tag"] == "ietf-subscribed-notifications:stream-unavailable", r.text
        r = c.post(f"{ops}/ietf-yang-push:resync-subscription", headers=H,
                   content=json.dumps({"ietf-yang-push:input": {"id": 4242}}).encode())
        assert r.status_code == 404, r.text
        assert error_of(r)["error-app-tag"] == "ietf-yang-push:no-such-subscription-resync", r.text
        r = c.post(f"{ops}/ietf-subscribed-notifications:delete-subscription", headers=H,
                   content=json.dumps({"ietf-subscribed-notifications:input": {"id": 4242}}).encode())
        assert error_of(r)["error-app-tag"] == "ietf-subscribed-notifications:no-such-subscription", r.text


def test_replay_capability_is_advertised_with_replay(restconf: RestconfServer) -> None:
    """RFC 8040 §4.8.7: start-time is supported when "the server supports replay, as indicated by the
    "urn:ietf:params:restconf:capability:replay:1.0" capability URI" (§9.1.1 lists it). The NETCONF stream has
    replay-support true and takes start-time, but the capability was missing."""
    with restconf.client() as c:
        state = c.get("/restconf/data/ietf-restconf-monitoring:restconf-state").json()[
            "ietf-restconf-monitoring:restconf-state"]
        assert state["streams"]["stream"][0]["replay-support"] is True
        assert "urn:ietf:params:restconf:capability:replay:1.0" in state["capabilities"]["capability"], state

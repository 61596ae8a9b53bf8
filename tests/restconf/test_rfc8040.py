"""RFC 8040 / RFC 8072 to the letter (issue 16): each test names the section it checks and failed on the old server."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

from helpers import (
    EP, JSON, RC_NS, SB, XML, YANG_PATCH_XML, endpoint_json, error_of, running_json, stand_in_agent,
    startup_json,
)
from rcserver import RestconfServer

NACM = "/restconf/data/ietf-netconf-acm:nacm"


def test_datastore_is_one_data_member_in_json(restconf: RestconfServer) -> None:
    """§3.4 and Appendix B.3.1: `{+restconf}/data` in JSON is `{"ietf-restconf:data": {...}}`, as XML is one <data>;
    PUT takes that form back."""
    with restconf.client() as c:
        for uri in ("/restconf/data", "/restconf/ds/ietf-datastores:running", "/restconf/ds/ietf-datastores:startup"):
            doc = c.get(uri).json()
            assert list(doc) == ["ietf-restconf:data"], (uri, list(doc)[:3])
            assert "ietf-netconf-acm:nacm" in doc["ietf-restconf:data"]
        empty = c.get("/restconf/ds/ietf-datastores:running", params={"content": "nonconfig"})
        assert empty.json() == {"ietf-restconf:data": {}}
        root = ET.fromstring(c.get("/restconf/data", headers={"accept": XML}).content)
        assert root.tag == f"{RC_NS}data"


def test_put_without_body_is_invalid_value(restconf: RestconfServer) -> None:
    """§4.5: PUT's body is the target resource; none at all is invalid-value (the message itself is fine)."""
    with restconf.client() as c:
        r = c.put(f"{SB}/log-level", headers={"content-type": JSON})
        assert r.status_code == 400 and error_of(r)["error-tag"] == "invalid-value", r.text


def test_truncated_bodies_are_malformed_in_both_encodings(restconf: RestconfServer) -> None:
    """RFC 6241 Appendix A (RFC 8040 §7): a body that cannot be parsed is malformed-message, JSON as XML; trailing
    commas and members given twice are JSON libyang would accept with the last value winning (issue 15 item 8)."""
    env = restconf.instance.env
    with stand_in_agent(), restconf.client() as c:
        before = running_json(env)
        bodies = [
            (JSON, b'{"vpp-singbox:log-level": "deb'),
            (XML, b'<log-level xmlns="urn:vpp-singbox:yang:vpp-singbox">debug</log'),
            (JSON, b'{"vpp-singbox:log-level": "debug",}'),
            (JSON, b'{"vpp-singbox:log-level": "debug", "vpp-singbox:log-level": "error"}'),
        ]
        for ctype, body in bodies:
            for method in ("PUT", "PATCH"):
                r = c.request(method, f"{SB}/log-level", content=body, headers={"content-type": ctype})
                assert r.status_code == 400 and error_of(r)["error-tag"] == "malformed-message", (body, r.text)
        r = c.post(SB, content=b'{"vpp-singbox:log-level": "debug",}', headers={"content-type": JSON})
        assert r.status_code == 400 and error_of(r)["error-tag"] == "malformed-message", r.text
        assert running_json(env) == before


def test_two_instances_of_one_node_are_refused(restconf: RestconfServer) -> None:
    """Issue 15 item 8: two list entries with one key, a leaf twice (XML), a leaf-list value twice: a precise 400
    naming the node, nothing applied (the last one used to win)."""
    env = restconf.instance.env
    with stand_in_agent(), restconf.client() as c:
        before = running_json(env)
        twice = {"vpp-singbox:client": {"endpoint": [{"name": "d", "address": "192.0.2.1"},
                                                     {"name": "d", "address": "192.0.2.2"}]}}
        r = c.patch(f"{SB}/client", content=json.dumps(twice), headers={"content-type": JSON})
        assert r.status_code == 400 and error_of(r)["error-tag"] == "invalid-value", r.text
        assert "endpoint[name='d']" in error_of(r)["error-path"]
        xml = (b'<singbox xmlns="urn:vpp-singbox:yang:vpp-singbox"><log-level>debug</log-level>'
               b"<log-level>error</log-level></singbox>")
        r = c.put(SB, content=xml, headers={"content-type": XML})
        assert r.status_code == 400 and error_of(r)["error-tag"] == "invalid-value", r.text
        assert running_json(env) == before


def test_keyless_list_in_xml_is_one_element_or_an_error(restconf: RestconfServer) -> None:
    """§4.3: "More than one element MUST NOT be returned for XML encoding": a list named without keys is JSON only."""
    with restconf.client() as c:
        group = {"ietf-netconf-acm:rule-list": [{"name": "extra", "group": ["g"]}]}
        assert c.post(NACM, content=json.dumps(group), headers={"content-type": JSON}).status_code == 201
        r = c.get(f"{NACM}/rule-list", headers={"accept": XML})
        assert r.status_code == 400, r.text
        assert ET.fromstring(r.content).find(f"{RC_NS}error/{RC_NS}error-tag").text == "invalid-value"
        assert len(c.get(f"{NACM}/rule-list").json()["ietf-netconf-acm:rule-list"]) >= 2
        one = ET.fromstring(c.get(f"{NACM}/rule-list=extra", headers={"accept": XML}).content)
        assert one.tag == "{urn:ietf:params:xml:ns:yang:ietf-netconf-acm}rule-list"


def test_datastore_etag_follows_configuration_only(restconf: RestconfServer) -> None:
    """§3.4.1.2: the datastore's entity tag "MUST NOT be updated for changes to non-configuration data" — opening an
    event stream (restconf-state, sysrepo's session data change) leaves it; a commit moves it. Each encoding has its
    own strong tag (RFC 7232 §2.1), and If-Match takes either."""
    with stand_in_agent(), restconf.client() as c, restconf.client() as other:
        tag = c.get("/restconf/data").headers["etag"]
        xml_tag = c.get("/restconf/data", headers={"accept": XML}).headers["etag"]
        assert tag != xml_tag
        with other.stream("GET", "/restconf/streams/NETCONF/json") as stream:
            assert stream.status_code == 200
            assert c.get("/restconf/data").headers["etag"] == tag
            assert c.get("/restconf/data", headers={"if-none-match": tag}).status_code == 304
        assert c.put(f"{EP}=e1", content=endpoint_json("e1"), headers={"content-type": JSON}).status_code == 201
        moved = c.get("/restconf/data").headers["etag"]
        assert moved != tag
        ep_xml_tag = c.get(f"{EP}=e1", headers={"accept": XML}).headers["etag"]
        r = c.put(f"{EP}=e1", content=endpoint_json("e1", port=7),
                  headers={"content-type": JSON, "if-match": ep_xml_tag})
        assert r.status_code == 204, r.text


def test_cache_control_on_every_response(restconf: RestconfServer) -> None:
    """§5.5: "Cache-Control: no-cache" on every response: fixed resources, 201/204 of writes, OPTIONS, errors."""
    with stand_in_agent(), restconf.client() as c:
        h = {"content-type": JSON}
        replies = [
            c.get("/restconf"), c.get("/restconf/yang-library-version"), c.get("/restconf/operations"),
            c.get("/.well-known/host-meta"), c.options(SB),
            c.put(f"{EP}=cc", content=endpoint_json("cc"), headers=h),
            c.put(f"{EP}=cc", content=endpoint_json("cc"), headers=h),
            c.post(f"{SB}/client", content=endpoint_json("cc2"), headers=h),
            c.delete(f"{EP}=cc2"),
            c.get(f"{EP}=nothing"), c.get("/restconf/data/no-module:x"), c.request("TRACE", SB),
            c.get(SB, auth=("admin", "wrong")),
            c.put(SB, content=b"{", headers=h),
        ]
        statuses = [r.status_code for r in replies]
        assert statuses == [200, 200, 200, 200, 200, 201, 204, 201, 204, 404, 400, 405, 401, 400], statuses
        for r in replies:
            assert r.headers.get("cache-control") == "no-cache", (r.request.method, r.request.url, r.status_code)


def test_operations_lists_what_can_be_invoked(restconf: RestconfServer) -> None:
    """§3.3.2: `/operations` lists the RPCs of this server. NETCONF's own operations (ietf-netconf, get-data,
    get-schema, create-subscription) have no handler behind RESTCONF and answered 405: they are not listed; an RPC
    is listed while something serves it."""
    with restconf.client() as c:
        listed = set(c.get("/restconf/operations").json()["ietf-restconf:operations"])
        assert not {op for op in listed if op.startswith(("ietf-netconf:", "ietf-netconf-nmda:", "notifications:"))}
        assert "ietf-netconf-monitoring:get-schema" not in listed
        assert "vpp-singbox:test-endpoint" not in listed  # nothing serves it yet
        with stand_in_agent():
            listed = set(c.get("/restconf/operations").json()["ietf-restconf:operations"])
            assert "vpp-singbox:test-endpoint" in listed
            for op in sorted(listed - {"ietf-factory-default:factory-reset"}):
                r = c.post(f"/restconf/operations/{op}", headers={"content-type": JSON})
                assert r.status_code != 405, (op, r.text)
        root = ET.fromstring(c.get("/restconf/operations", headers={"accept": XML}).content)
        assert all(child.tag.split("}")[1] != "get-config" for child in root)


def test_edits_update_startup(restconf: RestconfServer) -> None:
    """§1.4: with no :startup capability the server copies running to startup after every successful edit of
    running, before the client is answered — an edit survives a reboot. A refused edit leaves both alone."""
    env = restconf.instance.env
    with stand_in_agent(), restconf.client() as c:
        h = {"content-type": JSON}
        assert c.put(f"{EP}=s1", content=endpoint_json("s1"), headers=h).status_code == 201
        assert startup_json(env) == running_json(env)
        assert c.patch(SB, content=b'{"vpp-singbox:singbox": {"log-level": "debug"}}', headers=h).status_code == 204
        assert startup_json(env)["vpp-singbox:singbox"]["log-level"] == "debug"
        patch = ('<yang-patch xmlns="urn:ietf:params:xml:ns:yang:ietf-yang-patch"><patch-id>s</patch-id><edit>'
                 "<edit-id>1</edit-id><operation>remove</operation><target>/log-level</target></edit></yang-patch>")
        r = c.patch(SB, content=patch, headers={"content-type": YANG_PATCH_XML})
        assert r.status_code == 200, r.text
        assert c.delete(f"{EP}=s1").status_code == 204
        assert startup_json(env) == running_json(env)
        refused = c.put(f"{EP}=reject-me", content=endpoint_json("reject-me"), headers=h)
        assert refused.status_code >= 400
        assert startup_json(env) == running_json(env)


def test_xml_yang_patch_values_hold_list_entries_and_containers(restconf: RestconfServer) -> None:
    """RFC 8072 §2.5 in XML: a value holding a list entry or a container (it went through JSON and was refused:
    "list "rule" is represented in input data as name/object"); a bad value's error names the full path."""
    with restconf.client() as c:
        c.post(NACM, content=json.dumps({"ietf-netconf-acm:rule-list": [{"name": "Y1"}]}),
               headers={"content-type": JSON})
        patch = (
            '<yang-patch xmlns="urn:ietf:params:xml:ns:yang:ietf-yang-patch"><patch-id>x1</patch-id>'
            "<edit><edit-id>1</edit-id><operation>merge</operation><target>/rule-list=Y1/rule=r1</target><value>"
            '<rule xmlns="urn:ietf:params:xml:ns:yang:ietf-netconf-acm"><name>r1</name><module-name>*</module-name>'
            "<access-operations>read</access-operations><action>permit</action></rule></value></edit>"
            "<edit><edit-id>2</edit-id><operation>merge</operation><target>/groups</target><value>"
            '<groups xmlns="urn:ietf:params:xml:ns:yang:ietf-netconf-acm"><group><name>g1</name>'
            "<user-name>bob</user-name></group></groups></value></edit></yang-patch>"
        )
        r = c.patch(NACM, content=patch, headers={"content-type": YANG_PATCH_XML, "accept": XML})
        assert r.status_code == 200, r.text
        rule = c.get(f"{NACM}/rule-list=Y1/rule=r1").json()["ietf-netconf-acm:rule"][0]
        assert rule["action"] == "permit" and rule["module-name"] == "*"
        assert c.get(f"{NACM}/groups/group=g1").json()["ietf-netconf-acm:group"][0]["user-name"] == ["bob"]
        bad = patch.replace("<user-name>bob</user-name>", "<user-name>bob</user-name><colour>red</colour>")
        r = c.patch(NACM, content=bad.replace("x1", "x2"), headers={"content-type": YANG_PATCH_XML, "accept": JSON})
        assert r.status_code == 400, r.text
        error = r.json()["ietf-yang-patch:yang-patch-status"]["edit-status"]["edit"][0]
        assert error["edit-id"] == "2"


def test_yang_patch_create_and_delete_see_default_only_leaves_as_put_does(restconf: RestconfServer) -> None:
    """One meaning of "exists" (issue 21): a leaf holding only its schema default does not exist in RESTCONF's basic
    mode (explicit) — DELETE answers 404 and PUT 201 there, so YANG Patch's delete is data-missing and its create
    succeeds, as they did not before."""
    env = restconf.instance.env
    with stand_in_agent(), restconf.client() as c:
        h = {"content-type": JSON}
        assert c.put(f"{EP}=dd", content=endpoint_json("dd"), headers=h).status_code == 201
        assert c.delete(f"{EP}=dd/port").status_code == 404  # port exists only as its default, 1080
        ph = {"content-type": "application/yang-patch+json"}
        delete = {"ietf-yang-patch:yang-patch": {"patch-id": "d", "edit": [
            {"edit-id": "1", "operation": "delete", "target": "/port"}]}}
        r = c.patch(f"{EP}=dd", content=json.dumps(delete), headers=ph)
        assert r.status_code == 409, r.text
        edit = r.json()["ietf-yang-patch:yang-patch-status"]["edit-status"]["edit"][0]
        assert edit["errors"]["error"][0]["error-tag"] == "data-missing"
        create = {"ietf-yang-patch:yang-patch": {"patch-id": "c", "edit": [
            {"edit-id": "1", "operation": "create", "target": "/port", "value": {"vpp-singbox:port": 1080}}]}}
        r = c.patch(f"{EP}=dd", content=json.dumps(create), headers=ph)
        assert r.status_code == 200, r.text
        assert c.get(f"{EP}=dd/port").json() == {"vpp-singbox:port": 1080}
        assert running_json(env)["vpp-singbox:singbox"]["client"]["endpoint"][0]["port"] == 1080


def test_must_violation_keeps_its_app_tag_and_is_a_client_error(restconf: RestconfServer) -> None:
    """Issue 15 item 7, RFC 7950 §7.5.4.2: a `must` failure is operation-failed with the statement's error-app-tag
    and error-message — a 400 (the client's data), not a 500."""
    with stand_in_agent(), restconf.client() as c:
        body = {"vpp-singbox:endpoint": [{"name": "m", "address": "192.0.2.1", "username": "u"}]}
        r = c.put(f"{EP}=m", content=json.dumps(body), headers={"content-type": JSON})
        assert r.status_code == 400, r.text
        error = error_of(r)
        assert error["error-tag"] == "operation-failed"
        assert error["error-app-tag"] == "password-missing"
        assert error["error-message"] == "username configured without password"
        assert error["error-path"] == "/vpp-singbox:singbox/client/endpoint[name='m']/username"


def test_fields_never_see_what_nacm_hides(restconf: RestconfServer) -> None:
    """Issue 15 (NACM on every path): `fields` naming a hidden leaf answers the same whether the leaf holds a value
    or not — the selection runs on NACM-pruned data."""
    with stand_in_agent(), restconf.client() as admin, restconf.client(auth=("bob", "bob-secret-2")) as bob:
        h = {"content-type": JSON}
        with_pw = {"vpp-singbox:endpoint": [{"name": "p", "address": "192.0.2.1", "username": "u",
                                             "password": "hunter2"}]}
        assert admin.put(f"{EP}=p", content=json.dumps(with_pw), headers=h).status_code == 201
        assert admin.put(f"{EP}=q", content=endpoint_json("q"), headers=h).status_code == 201
        hidden = bob.get(f"{EP}=p", params={"fields": "password"})
        absent = bob.get(f"{EP}=q", params={"fields": "password"})
        assert hidden.status_code == absent.status_code, (hidden.text, absent.text)
        assert "hunter2" not in hidden.text
        whole = bob.get(SB, params={"fields": "client/endpoint/password"})
        assert "hunter2" not in whole.text and "endpoint" not in whole.text, whole.text



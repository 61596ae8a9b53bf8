"""RFC 8072 YANG Patch in JSON and XML."""

from __future__ import annotations

import json

from helpers import (
    EP, JSON, REJECTION_MESSAGE, SB, XML, YANG_PATCH_JSON, YANG_PATCH_XML, endpoint_json, error_of, running_json,
    stand_in_agent, yang_patch,
)
from rcserver import RestconfServer


NACM = "/restconf/data/ietf-netconf-acm:nacm"


def test_yang_patch(restconf: RestconfServer) -> None:
    env = restconf.instance.env
    ph = {"content-type": "application/yang-patch+json"}
    with stand_in_agent(), restconf.client(http2=True) as c:
        ok = yang_patch(
            "p1",
            {"edit-id": "1", "operation": "create", "target": "/client/endpoint=y1",
             "value": {"vpp-singbox:endpoint": [{"name": "y1", "address": "1.2.3.4"}]}},
            {"edit-id": "2", "operation": "merge", "target": "/log-level", "value": {"vpp-singbox:log-level": "debug"}},
            {"edit-id": "3", "operation": "replace", "target": "/client/endpoint=y2",
             "value": {"vpp-singbox:endpoint": [{"name": "y2", "address": "::1", "port": 3}]}},
        )
        r = c.patch(SB, content=ok, headers=ph)
        assert r.status_code == 200, r.text
        assert r.json() == {"ietf-yang-patch:yang-patch-status": {"patch-id": "p1", "ok": [None]}}
        before = running_json(env)
        assert before["vpp-singbox:singbox"]["log-level"] == "debug"
        bad = yang_patch(
            "p2",
            {"edit-id": "a", "operation": "delete", "target": "/client/endpoint=y2"},
            {"edit-id": "b", "operation": "create", "target": "/client/endpoint=y1",
             "value": {"vpp-singbox:endpoint": [{"name": "y1", "address": "1.2.3.4"}]}},
        )
        r = c.patch(SB, content=bad, headers=ph)
        assert r.status_code == 409, r.text
        status = r.json()["ietf-yang-patch:yang-patch-status"]
        edit = status["edit-status"]["edit"][0]
        assert edit["edit-id"] == "b" and edit["errors"]["error"][0]["error-tag"] == "data-exists"
        assert running_json(env) == before  # the delete of y2 (edit a) was not applied either
        # an edit the agent refuses: a global error with the agent's words, nothing applied
        refused = yang_patch("p3", {"edit-id": "1", "operation": "create", "target": "/client/endpoint=reject-me",
                                    "value": {"vpp-singbox:endpoint": [{"name": "reject-me", "address": "9.9.9.9"}]}},
                             {"edit-id": "2", "operation": "remove", "target": "/log-level"})
        r = c.patch(SB, content=refused, headers=ph)
        assert r.status_code >= 400
        assert REJECTION_MESSAGE in r.text
        assert running_json(env) == before
        # XML YANG Patch
        xml_patch = (
            '<yang-patch xmlns="urn:ietf:params:xml:ns:yang:ietf-yang-patch"><patch-id>x</patch-id>'
            "<edit><edit-id>1</edit-id><operation>delete</operation><target>/client/endpoint=y2</target></edit>"
            "</yang-patch>"
        ).encode()
        r = c.patch(SB, content=xml_patch, headers={"content-type": "application/yang-patch+xml", "accept": XML})
        assert r.status_code == 200 and r.headers["content-type"] == XML, r.text
        names = [e["name"] for e in running_json(env)["vpp-singbox:singbox"]["client"]["endpoint"]]
        assert names == ["y1"]
        # malformed envelopes
        for body in (b"{}", b'{"ietf-yang-patch:yang-patch": {"edit": []}}', b"not json",
                     b'{"ietf-yang-patch:yang-patch": {"patch-id": "q", "edit": [{"edit-id": "1", "operation": "zap",'
                     b' "target": "/log-level"}]}}'):
            r = c.patch(SB, content=body, headers=ph)
            assert r.status_code == 400, (body, r.text)
        r = c.put(SB, content=ok, headers=ph)
        assert r.status_code == 415


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


def test_yang_patch_json_with_a_member_twice_is_malformed(restconf: RestconfServer) -> None:
    """Issue 15 item 8: a YANG Patch whose JSON names a member twice (here the value) is malformed-message and
    changes nothing, instead of the last value winning."""
    env = restconf.instance.env
    with stand_in_agent(), restconf.client() as c:
        before = running_json(env)
        body = (b'{"ietf-yang-patch:yang-patch": {"patch-id": "t", "edit": [{"edit-id": "1", "operation": "merge",'
                b' "target": "/log-level", "value": {"vpp-singbox:log-level": "debug"},'
                b' "value": {"vpp-singbox:log-level": "error"}}]}}')
        r = c.patch(SB, content=body, headers={"content-type": YANG_PATCH_JSON})
        assert r.status_code == 400 and error_of(r)["error-tag"] == "malformed-message", r.text
        assert running_json(env) == before


def test_edit_ids_with_both_quote_kinds(restconf: RestconfServer) -> None:
    """The one XPath quoting (mgmt/xpath.py) in the patch status too: an edit-id with one kind of quote is reported
    under its name; one holding both cannot be named in the status and is refused up front, saying why (before, libyang
    failed on the status path it was given)."""
    with restconf.client() as c:
        for edit_id, status in (("it's", 409), ("say \"hi\"", 409), ("it's \"x\"", 400)):
            body = yang_patch("q", {"edit-id": edit_id, "operation": "delete", "target": "/log-level"})
            r = c.patch(SB, content=body, headers={"content-type": YANG_PATCH_JSON})
            assert r.status_code == status, (edit_id, r.text)
            if status == 409:
                edit = r.json()["ietf-yang-patch:yang-patch-status"]["edit-status"]["edit"][0]
                assert edit["edit-id"] == edit_id

"""POST, PUT, PATCH and DELETE of data: bodies, statuses, atomicity, startup."""

from __future__ import annotations

import json
import threading
import time
import xml.etree.ElementTree as ET
from typing import Any

import httpx
import pytest
import sysrepo
from helpers import (
    EP, JSON, RC_NS, REJECTION_MESSAGE, SB, SB_NS, XML, YANG_PATCH_XML, endpoint_json, endpoint_xml, error_of,
    running_json, stand_in_agent, startup_json,
)
from rcserver import ADMIN, RestconfServer, start_service, stop_process


NACM = "/restconf/data/ietf-netconf-acm:nacm"


@pytest.mark.parametrize("http2", [False, True])
def test_crud_json(restconf: RestconfServer, http2: bool) -> None:
    env = restconf.instance.env
    with stand_in_agent(), restconf.client(http2=http2) as c:
        h = {"content-type": JSON}
        r = c.put(f"{EP}=e1", content=endpoint_json("e1", port=1080), headers=h)
        assert r.status_code == 201, r.text
        assert "last-modified" in r.headers
        r = c.put(f"{EP}=e1", content=endpoint_json("e1", port=1081), headers=h)
        assert r.status_code == 204, r.text
        assert running_json(env)["vpp-singbox:singbox"]["client"]["endpoint"][0]["port"] == 1081
        got = c.get(f"{EP}=e1")
        assert got.status_code == 200 and got.headers["content-type"] == JSON
        assert got.json()["vpp-singbox:endpoint"][0]["port"] == 1081
        assert c.get(f"{EP}=e1/port").json() == {"vpp-singbox:port": 1081}
        # PUT of a leaf
        assert c.put(f"{EP}=e1/port", content=b'{"vpp-singbox:port": 2000}', headers=h).status_code == 204
        assert c.get(f"{EP}=e1/port").json() == {"vpp-singbox:port": 2000}
        # POST creates a child and says where
        r = c.post(f"{SB}/client", content=endpoint_json("e2"), headers=h)
        assert r.status_code == 201, r.text
        assert r.headers["location"] == f"{EP}=e2"
        assert c.get(r.headers["location"]).status_code == 200
        r = c.post(f"{SB}/client", content=endpoint_json("e2"), headers=h)
        assert r.status_code == 409 and error_of(r)["error-tag"] == "resource-denied"  # RFC 8040 §4.4.1
        # PATCH merges, and never creates its target
        r = c.patch(f"{EP}=e2", content=json.dumps({"vpp-singbox:endpoint": [{"name": "e2", "port": 9}]}), headers=h)
        assert r.status_code == 204, r.text
        ep2 = c.get(f"{EP}=e2").json()["vpp-singbox:endpoint"][0]
        assert ep2["port"] == 9 and ep2["address"] == "127.0.0.1"
        r = c.patch(f"{EP}=e9", content=endpoint_json("e9"), headers=h)
        assert r.status_code == 404
        # PATCH of the datastore resource merges top-level data
        r = c.patch("/restconf/data", content=b'{"vpp-singbox:singbox": {"log-level": "debug"}}', headers=h)
        assert r.status_code == 204, r.text
        assert c.get(f"{SB}/log-level").json() == {"vpp-singbox:log-level": "debug"}
        # DELETE
        assert c.delete(f"{EP}=e2").status_code == 204
        r = c.delete(f"{EP}=e2")
        assert r.status_code == 404 and error_of(r)["error-tag"] == "data-missing"
        assert c.get(f"{EP}=e2").status_code == 404
        names = [e["name"] for e in running_json(env)["vpp-singbox:singbox"]["client"]["endpoint"]]
        assert names == ["e1"]


def test_crud_xml(restconf: RestconfServer) -> None:
    env = restconf.instance.env
    with stand_in_agent(), restconf.client(http2=True) as c:
        h = {"content-type": XML, "accept": XML}
        assert c.put(f"{EP}=x1", content=endpoint_xml("x1", 7000), headers=h).status_code == 201
        r = c.get(f"{EP}=x1", headers={"accept": XML})
        assert r.headers["content-type"] == XML
        root = ET.fromstring(r.content)
        assert root.tag == f"{SB_NS}endpoint" and root.findtext(f"{SB_NS}port") == "7000"
        r = c.post(f"{SB}/client", content=endpoint_xml("x2"), headers=h)
        assert r.status_code == 201 and r.headers["location"].endswith("endpoint=x2")
        patch = b'<endpoint xmlns="urn:vpp-singbox:yang:vpp-singbox"><name>x2</name><port>99</port></endpoint>'
        assert c.patch(f"{EP}=x2", content=patch, headers=h).status_code == 204
        assert ET.fromstring(c.get(f"{EP}=x2/port", headers={"accept": XML}).content).text == "99"
        # XML errors
        r = c.post(f"{SB}/client", content=endpoint_xml("x2"), headers=h)
        assert r.status_code == 409 and r.headers["content-type"] == XML
        err = ET.fromstring(r.content).find(f"{RC_NS}error")
        assert err is not None and err.findtext(f"{RC_NS}error-tag") == "resource-denied"
        assert c.delete(f"{EP}=x1").status_code == 204
        # the whole datastore resource in XML is one <data> document
        whole = ET.fromstring(c.get("/restconf/ds/ietf-datastores:running", headers={"accept": XML}).content)
        assert whole.tag == f"{RC_NS}data"
    names = [e["name"] for e in running_json(env)["vpp-singbox:singbox"]["client"]["endpoint"]]
    assert names == ["x2"]


def test_put_datastore_replaces_everything_atomically(restconf: RestconfServer) -> None:
    env = restconf.instance.env
    with stand_in_agent(), restconf.client() as c:
        h = {"content-type": JSON}
        assert c.put(f"{EP}=old", content=endpoint_json("old"), headers=h).status_code == 201
        current = c.get("/restconf/ds/ietf-datastores:running").json()
        # RFC 8040 §3.4, §4.5: the datastore in JSON is one ietf-restconf:data member, read and written alike
        assert list(current) == ["ietf-restconf:data"]
        current["ietf-restconf:data"]["vpp-singbox:singbox"] = {"client": {"endpoint": [{"name": "new",
                                                                                      "address": "::1"}]}}
        r = c.put("/restconf/ds/ietf-datastores:running", content=json.dumps(current), headers=h)
        assert r.status_code == 204, r.text
        names = [e["name"] for e in running_json(env)["vpp-singbox:singbox"]["client"]["endpoint"]]
        assert names == ["new"]
        # the admin still exists (the replace carried ietf-system) and can still log in
        assert c.get("/restconf").status_code == 200


def test_agent_rejection_reaches_client_and_changes_nothing(restconf: RestconfServer) -> None:
    env = restconf.instance.env
    with stand_in_agent(), restconf.client() as c:
        h = {"content-type": JSON}
        assert c.put(f"{EP}=ok", content=endpoint_json("ok"), headers=h).status_code == 201
        before = running_json(env)
        # One request creating two endpoints, one of which the agent refuses: nothing of it stays.
        body = {"vpp-singbox:client": {"endpoint": [{"name": "fine", "address": "1.1.1.1"},
                                                   {"name": "reject-me", "address": "2.2.2.2"}]}}
        r = c.patch(f"{SB}/client", content=json.dumps(body), headers=h)
        assert r.status_code == 500 or r.status_code == 400, r.text
        assert error_of(r)["error-message"] == REJECTION_MESSAGE
        assert running_json(env) == before


def test_put_status_follows_what_the_commit_did(restconf: RestconfServer) -> None:
    """201 only when the PUT created its target, 204 when it replaced it: told by the commit's own done event on
    running (no read before the edit), by a read on candidate. Writers in parallel (other PUTs of this server,
    direct sysrepo commits from another connection) must not lend their creations to a PUT that replaced."""
    with stand_in_agent(), restconf.client() as c:
        h = {"content-type": JSON}
        assert c.put(f"{EP}=s1", content=endpoint_json("s1", port=1), headers=h).status_code == 201
        assert c.put(f"{EP}=s1", content=endpoint_json("s1", port=1), headers=h).status_code == 204  # no change
        assert c.put(f"{EP}=s1", content=endpoint_json("s1", port=2), headers=h).status_code == 204
        # a leaf without a schema default: created, then replaced
        assert c.put(f"{EP}=s1/address", content=b'{"vpp-singbox:address":"10.1.1.1"}', headers=h).status_code == 204
        assert c.put(f"{SB}/client/default-endpoint", content=b'{"vpp-singbox:default-endpoint":"s1"}',
                     headers=h).status_code == 201
        assert c.put(f"{SB}/client/default-endpoint", content=b'{"vpp-singbox:default-endpoint":"s1"}',
                     headers=h).status_code == 204
        assert c.delete(f"{SB}/client/default-endpoint").status_code == 204
        assert c.put(f"{SB}/client/default-endpoint", content=b'{"vpp-singbox:default-endpoint":"s1"}',
                     headers=h).status_code == 201
        # a leaf with a schema default: default-only counts as absent (the explicit mode shows it so)
        assert c.put(f"{EP}=s2", content=endpoint_json("s2"), headers=h).status_code == 201
        port = b'{"vpp-singbox:port": 1081}'
        assert c.put(f"{EP}=s2/port", content=port, headers=h).status_code == 201  # default -> explicit 1081
        assert c.put(f"{EP}=s2/port", content=port, headers=h).status_code == 204
        assert c.put(f"{EP}=s2/port", content=b'{"vpp-singbox:port": 1080}', headers=h).status_code == 204
        assert c.delete(f"{EP}=s2/port").status_code == 204
        assert c.put(f"{EP}=s2/port", content=b'{"vpp-singbox:port": 1080}', headers=h).status_code == 201
        # whether sysrepo keeps that default explicit decides the next answer; it must agree with what GET shows
        shown = c.get(f"{EP}=s2/port").status_code
        again = c.put(f"{EP}=s2/port", content=b'{"vpp-singbox:port": 1080}', headers=h).status_code
        assert (shown, again) in ((200, 204), (404, 201)), (shown, again)
        cand = "/restconf/ds/ietf-datastores:candidate/vpp-singbox:singbox/client/endpoint"
        assert c.put(f"{cand}=k1", content=endpoint_json("k1"), headers=h).status_code == 201
        assert c.put(f"{cand}=k1", content=endpoint_json("k1", port=9), headers=h).status_code == 204

    statuses: dict[str, list[int]] = {}
    errors: list[str] = []

    def ours(k: int) -> None:
        with restconf.client() as c:
            for i in range(8):
                name = f"p{k}-{i}"
                for port in (1, 2):  # created, then replaced
                    r = c.put(f"{EP}={name}", content=endpoint_json(name, port=port), headers={"content-type": JSON})
                    statuses.setdefault(name, []).append(r.status_code)

    def theirs() -> None:
        conn = sysrepo.SysrepoConnection()
        try:
            sess = conn.start_session("running")
            for i in range(30):
                sess.set_item(f"/vpp-singbox:singbox/client/endpoint[name='x{i}']/address", "127.0.0.2")
                sess.apply_changes()
            sess.stop()
        except Exception as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(repr(exc))
        finally:
            conn.disconnect()

    with stand_in_agent():
        threads = [threading.Thread(target=ours, args=(k,)) for k in range(3)] + [threading.Thread(target=theirs)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
    assert not errors
    assert len(statuses) == 24
    assert all(codes == [201, 204] for codes in statuses.values()), statuses


def test_insert_into_user_ordered_list(restconf: RestconfServer) -> None:
    """NACM rule-lists are ordered by user: insert=first/after with point move entries where asked."""
    nacm = "/restconf/data/ietf-netconf-acm:nacm"
    with restconf.client() as c:
        h = {"content-type": JSON}

        def rl(name: str) -> bytes:
            return json.dumps({"ietf-netconf-acm:rule-list": [{"name": name, "group": ["g"]}]}).encode()

        def names() -> list[str]:
            data = c.get(f"{nacm}/rule-list", params={"fields": "name"}).json()
            return [x["name"] for x in data["ietf-netconf-acm:rule-list"]]

        assert c.post(nacm, content=rl("z-first"), headers=h, params={"insert": "first"}).status_code == 201
        assert names()[0] == "z-first"
        r = c.post(nacm, content=rl("after-admin"), headers=h,
                   params={"insert": "after", "point": "/ietf-netconf-acm:nacm/rule-list=admin-all"})
        assert r.status_code == 201, r.text
        order = names()
        assert order.index("after-admin") == order.index("admin-all") + 1
        r = c.put(f"{nacm}/rule-list=moved", content=rl("moved"), headers=h, params={"insert": "first"})
        assert r.status_code == 201 and names()[0] == "moved"


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


def test_edit_right_after_a_huge_change_is_not_reported_as_failed(restconf: RestconfServer) -> None:
    """sysrepo names replay files by the second and refused the next config-change notification in the second of
    one that filled its 1 MiB file (it still applied the change). A write now waits for the next second
    (`mgmt.datastore.wait_for_replay_room`): the PUT right after a huge config-change gets 201 and its own
    config-change is stored after the huge one, nothing refused or logged. Before, this test needed the PUT to land
    in the huge event's second and checked that the refusal was logged but not reported as a failure."""
    import libyang
    from test_replay import STREAM, iso, read_events

    ncn = "urn:ietf:params:xml:ns:yang:ietf-netconf-notifications"
    edits = "<edit><operation>merge</operation></edit>" * 80000  # several MB: fills its second's file
    h = {"content-type": JSON}
    with restconf.client() as c, sysrepo.SysrepoConnection() as conn:
        sender = conn.start_session("running")
        try:
            with conn.get_ly_ctx() as ly:
                huge = ly.parse_op_mem("xml", f'<netconf-config-change xmlns="{ncn}"><changed-by><username>x'
                                              f"</username><session-id>1</session-id></changed-by>{edits}"
                                              "</netconf-config-change>", libyang.DataType.NOTIF_YANG)
            time.sleep(1.01 - time.time() % 1)
            since = time.time() - 1
            try:
                sender.notification_send_ly(huge)
            finally:
                huge.free()
            one = {"vpp-singbox:endpoint": [{"name": "right-after", "address": "198.18.0.2"}]}
            r = c.put(f"{EP}=right-after", headers=h, content=json.dumps(one))
            assert r.status_code == 201, r.text
        finally:
            sender.stop()
        time.sleep(1.1)
        events, ended = read_events(c, STREAM + "/xml", {"start-time": iso(since), "stop-time": iso(time.time())},
                                    until=None, limit=100)
    assert ended
    changes = []
    for event in events:
        for change in ET.fromstring(event).iter(f"{{{ncn}}}netconf-config-change"):
            if change.findtext(f"{{{ncn}}}datastore", "running") == "running":
                changes.append(len(change.findall(f"{{{ncn}}}edit")))
    assert changes[-2:] == [80000, 13], changes  # the huge one, then the PUT's (13 nodes an endpoint)
    assert "not stored for replay" not in restconf.log()


SLOW_S = 0.4  # per change: 16 commits queued behind it outlast sysrepo's lock timeout


def test_concurrent_editors_are_not_refused(restconf: RestconfServer) -> None:
    """Issue 15 item 10: many clients editing at once behind a slow subscriber (SLOW_S per change) — sysrepo's lock
    timeouts ('Locking a rwlock failed ... held by running process 6 (CID 5)') are waited out, not answered; every
    valid create succeeds and no error text carries process internals."""
    import asyncio

    conn = sysrepo.SysrepoConnection()
    sess = conn.start_session("running")

    def slow(event: str, req_id: int, changes: Any, private_data: Any) -> None:
        if event == "change":
            time.sleep(SLOW_S)

    sess.subscribe_module_change("vpp-singbox", "/vpp-singbox:singbox", slow)
    clients = 40

    async def run() -> list[httpx.Response]:
        kw: dict[str, Any] = {"base_url": restconf.base_url, "verify": restconf.ca or False, "auth": ADMIN,
                              "timeout": httpx.Timeout(120.0), "limits": httpx.Limits(max_connections=clients)}
        async with httpx.AsyncClient(**kw) as c:
            return await asyncio.gather(*(
                c.put(f"{EP}=c{i}", content=endpoint_json(f"c{i}"), headers={"content-type": JSON})
                for i in range(clients)))

    try:
        replies = asyncio.run(run())
    finally:
        sess.stop()
        conn.disconnect()
    refused = [(r.status_code, r.text) for r in replies if r.status_code != 201]
    assert not refused, f"{len(refused)} of {clients} refused: {refused[:3]}"
    names = {e["name"] for e in running_json(restconf.instance.env)["vpp-singbox:singbox"]["client"]["endpoint"]}
    assert names == {f"c{i}" for i in range(clients)}


def test_must_violation_reads_the_same_on_netconf(restconf: RestconfServer) -> None:
    """The mapping is shared (mgmt/errors.py): NETCONF's rpc-error for the same `must` failure carries the same
    error-app-tag and error-message (issue 15 item 7, both servers)."""
    from ncclient import manager
    from ncclient.operations import RPCError

    proc, info = start_service(restconf.instance, "singbox_agent.netconf", restconf.state_dir / "nc",
                               restconf.state_dir / "netconf-ready.json", restconf.state_dir / "netconf.log")
    edit = ('<config xmlns="urn:ietf:params:xml:ns:netconf:base:1.0"><singbox xmlns="urn:vpp-singbox:yang:vpp-singbox">'
            "<client><endpoint><name>m</name><address>192.0.2.1</address><username>u</username></endpoint></client>"
            "</singbox></config>")
    try:
        with stand_in_agent(), manager.connect(host=info["host"], port=info["port"], username=ADMIN[0],
                                               password=ADMIN[1], hostkey_verify=False, look_for_keys=False,
                                               allow_agent=False, timeout=60) as nc:
            with pytest.raises(RPCError) as refused:
                nc.edit_config(target="running", config=edit)
        error = refused.value
        assert error.tag == "operation-failed"
        assert error.to_dict()["app_tag"] == "password-missing"
        assert error.message.strip() == "username configured without password"
    finally:
        assert stop_process(proc) == 0

"""The running RESTCONF server through real clients (httpx over HTTP/1.1 and HTTP/2, curl), real sysrepo behind it."""

from __future__ import annotations

import json
import ssl
import threading
import time
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import httpx
import pytest
import sysrepo
from helpers import JSON, REJECTION_MESSAGE, XML, running_json, stand_in_agent
from rcserver import ADMIN, BOB, RestconfServer, bootstrap_users, start_server, stop_server

SB = "/restconf/data/vpp-singbox:singbox"
EP = f"{SB}/client/endpoint"
RC_NS = "{urn:ietf:params:xml:ns:yang:ietf-restconf}"
SB_NS = "{urn:vpp-singbox:yang:vpp-singbox}"


def endpoint_json(name: str, **extra: Any) -> bytes:
    return json.dumps({"vpp-singbox:endpoint": [{"name": name, "address": "127.0.0.1", **extra}]}).encode()


def endpoint_xml(name: str, port: int | None = None) -> bytes:
    port_xml = f"<port>{port}</port>" if port is not None else ""
    return (
        f'<endpoint xmlns="urn:vpp-singbox:yang:vpp-singbox"><name>{name}</name><address>10.0.0.1</address>'
        f"{port_xml}</endpoint>"
    ).encode()


def error_of(resp: httpx.Response) -> dict[str, Any]:
    body = resp.json()
    errors: list[dict[str, Any]] = body["ietf-restconf:errors"]["error"]
    assert errors, body
    return errors[0]


# ---- transport and the fixed resources -------------------------------------------------------------------------


def test_tls_http1_http2_and_fixed_resources(restconf: RestconfServer) -> None:
    assert restconf.base_url.startswith("https://") and restconf.ca
    with restconf.client() as c1, restconf.client(http2=True) as c2:
        r1 = c1.get("/restconf")
        r2 = c2.get("/restconf")
        assert (r1.http_version, r2.http_version) == ("HTTP/1.1", "HTTP/2")
        for r in (r1, r2):
            assert r.status_code == 200
            assert r.headers["content-type"] == JSON
            assert r.json()["ietf-restconf:restconf"]["yang-library-version"] == "2019-01-04"
        xml_root = c2.get("/restconf", headers={"accept": XML})
        assert ET.fromstring(xml_root.content).tag == f"{RC_NS}restconf"
        meta = c1.get("/.well-known/host-meta")
        assert meta.status_code == 200 and meta.headers["content-type"] == "application/xrd+xml"
        link = ET.fromstring(meta.content).find("{http://docs.oasis-open.org/ns/xri/xrd-1.0}Link")
        assert link is not None and link.get("rel") == "restconf" and link.get("href") == "/restconf"
        v = c2.get("/restconf/yang-library-version")
        assert v.json() == {"ietf-restconf:yang-library-version": "2019-01-04"}
        with stand_in_agent():  # listed while something serves them
            ops = c2.get("/restconf/operations").json()["ietf-restconf:operations"]
        assert "vpp-singbox:test-endpoint" in ops and "vpp-singbox:clear-statistics" in ops
    # The CA in the ready file is what verifies the server: a client without it must fail.
    with pytest.raises(httpx.ConnectError), httpx.Client(verify=ssl.create_default_context()) as strict:
        strict.get(restconf.base_url + "/restconf")
    # curl, both protocol versions, verifying with the generated CA
    for flag, proto in (("--http1.1", "HTTP/1.1"), ("--http2", "HTTP/2")):
        out = restconf.curl("-i", flag, restconf.base_url + "/restconf/yang-library-version")
        assert out.returncode == 0, out.stderr
        assert out.stdout.startswith(proto), out.stdout[:80]
        assert "2019-01-04" in out.stdout
    # plain HTTP to the TLS port does not reach the application
    with pytest.raises(httpx.HTTPError):
        httpx.get(restconf.base_url.replace("https://", "http://") + "/restconf", timeout=5)


def test_authentication(restconf: RestconfServer) -> None:
    with restconf.client(auth=None) as c:
        r = c.get(SB)
        assert r.status_code == 401
        assert r.headers["www-authenticate"].startswith("Basic")
        assert error_of(r)["error-tag"] == "access-denied"
        for bad in (("admin", "wrong"), ("nobody", "x"), ("", "")):
            r = c.get(SB, auth=bad)
            assert r.status_code == 401, bad
        for header in ("Bearer abc", "Basic !!!notbase64", "Basic " + "YWRtaW4=", "Digest x"):
            r = c.get(SB, headers={"authorization": header})
            assert r.status_code == 401, header
        assert c.get(SB, auth=ADMIN).status_code in (200, 404)
        assert c.get("/restconf", auth=BOB).status_code == 200
    out = restconf.curl("-o", "/dev/null", "-w", "%{http_code}", restconf.base_url + SB, user=("admin", "nope"))
    assert out.stdout == "401"


# ---- writes and reads ------------------------------------------------------------------------------------------


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
        assert r.status_code == 409 and error_of(r)["error-tag"] == "data-exists"
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
        assert err is not None and err.findtext(f"{RC_NS}error-tag") == "data-exists"
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


def test_candidate_and_startup(restconf: RestconfServer) -> None:
    with stand_in_agent(), restconf.client() as c:
        h = {"content-type": JSON}
        cand = "/restconf/ds/ietf-datastores:candidate/vpp-singbox:singbox"
        assert c.put(f"{cand}/log-level", content=b'{"vpp-singbox:log-level":"warning"}', headers=h).status_code in (
            201, 204)
        assert c.get(f"{cand}/log-level").json() == {"vpp-singbox:log-level": "warning"}
        assert c.get(f"{SB}/log-level").status_code == 404  # candidate is not running
        start = "/restconf/ds/ietf-datastores:startup/vpp-singbox:singbox"
        assert c.put(f"{start}/log-level", content=b'{"vpp-singbox:log-level":"error"}', headers=h).status_code in (
            201, 204)
        assert c.get(f"{start}/log-level").json() == {"vpp-singbox:log-level": "error"}
        op = c.get("/restconf/ds/ietf-datastores:operational/ietf-restconf-monitoring:restconf-state")
        assert op.status_code == 200
        r = c.put("/restconf/ds/ietf-datastores:operational/vpp-singbox:singbox/log-level",
                  content=b'{"vpp-singbox:log-level":"error"}', headers=h)
        assert r.status_code == 405 and "GET" in r.headers["allow"]


# ---- encodings -------------------------------------------------------------------------------------------------


def test_media_types(restconf: RestconfServer) -> None:
    with stand_in_agent(), restconf.client(http2=True) as c:
        assert c.put(f"{EP}=m1", content=endpoint_json("m1"), headers={"content-type": JSON}).status_code == 201
        for accept, ctype in (
            (JSON, JSON), (XML, XML), ("*/*", JSON), ("application/*", JSON), ("application/json", JSON),
            ("application/xml", XML), (f"{XML};q=0.9, {JSON};q=0.1", XML), (f"text/html, {XML}", XML),
        ):
            r = c.get(f"{EP}=m1", headers={"accept": accept})
            assert r.status_code == 200 and r.headers["content-type"] == ctype, accept
        r = c.get(f"{EP}=m1", headers={"accept": "text/html"})
        assert r.status_code == 406 and r.headers["content-type"] == JSON
        r = c.put(f"{EP}=m1", content=endpoint_json("m1"), headers={"content-type": "application/json"})
        assert r.status_code == 415
        r = c.put(f"{EP}=m1", content=endpoint_json("m1"), headers={"content-type": "text/plain"})
        assert r.status_code == 415
        r = c.put(f"{EP}=m1", content=endpoint_json("m1"), headers={"content-type": f"{JSON}; charset=utf-8"})
        assert r.status_code == 204


# ---- query parameters ------------------------------------------------------------------------------------------


def test_query_parameters(restconf: RestconfServer) -> None:
    with stand_in_agent(), restconf.client() as c:
        h = {"content-type": JSON}
        assert c.put(f"{EP}=q1", content=endpoint_json("q1", port=1234), headers=h).status_code == 201
        shallow = c.get(SB, params={"depth": "1"}).json()
        assert shallow == {"vpp-singbox:singbox": {}}
        two = c.get(SB, params={"depth": "3"}).json()["vpp-singbox:singbox"]["client"]
        assert two["endpoint"] == [{"name": "q1"}] or all(set(e) <= {"name"} for e in two["endpoint"])
        fields = c.get(SB, params={"fields": "client(endpoint(name;port))"}).json()
        assert fields == {"vpp-singbox:singbox": {"client": {"endpoint": [{"name": "q1", "port": 1234}]}}}
        config = c.get(f"{SB}/server", params={"content": "config"}).json()
        assert "statistics" not in json.dumps(config)
        nonconfig = c.get(f"{EP}=q1", params={"content": "nonconfig"})
        assert nonconfig.status_code in (200, 404)
        if nonconfig.status_code == 200:
            assert "address" not in nonconfig.text
        explicit = c.get(f"{EP}=q1").json()["vpp-singbox:endpoint"][0]
        assert "protocol" not in explicit  # a default not set explicitly
        report_all = c.get(f"{EP}=q1", params={"with-defaults": "report-all"}).json()["vpp-singbox:endpoint"][0]
        assert report_all["protocol"] == "socks5"
        tagged = c.get(f"{EP}=q1", params={"with-defaults": "report-all-tagged"}).json()["vpp-singbox:endpoint"][0]
        assert tagged["@protocol"] == {"ietf-netconf-with-defaults:default": True}
        assert c.put(f"{EP}=q1/protocol", content=b'{"vpp-singbox:protocol":"socks5"}', headers=h).status_code == 201
        trimmed = c.get(f"{EP}=q1", params={"with-defaults": "trim"}).json()["vpp-singbox:endpoint"][0]
        assert "protocol" not in trimmed
        # misplaced and bad parameters
        for params in ({"depth": "0"}, {"content": "x"}, {"insert": "first"}, {"filter": "/a"}, {"bogus": "1"}):
            r = c.get(SB, params=params)
            assert r.status_code == 400 and error_of(r)["error-tag"] == "invalid-value", params
        r = c.delete(f"{EP}=q1", params={"depth": "1"})
        assert r.status_code == 400


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


# ---- conditional requests --------------------------------------------------------------------------------------


def test_etag_and_last_modified(restconf: RestconfServer) -> None:
    with stand_in_agent(), restconf.client() as c:
        h = {"content-type": JSON}
        assert c.put(f"{EP}=c1", content=endpoint_json("c1"), headers=h).status_code == 201
        first = c.get(f"{EP}=c1")
        etag, modified = first.headers["etag"], first.headers["last-modified"]
        assert etag.startswith('"') and modified.endswith("GMT")
        xml_etag = c.get(f"{EP}=c1", headers={"accept": XML}).headers["etag"]
        assert xml_etag != etag and xml_etag.startswith('"')  # RFC 7232 §2.1: a strong tag per representation
        assert c.get("/restconf/ds/ietf-datastores:running").headers.get("etag")
        assert c.get(f"{EP}=c1", headers={"if-none-match": etag}).status_code == 304
        assert c.get(f"{EP}=c1", headers={"if-none-match": '"other"'}).status_code == 200
        assert c.head(f"{EP}=c1", headers={"if-none-match": etag}).status_code == 304
        assert c.get(f"{EP}=c1", headers={"if-modified-since": modified}).status_code == 304
        assert c.get(f"{EP}=c1", headers={"if-modified-since": "Thu, 01 Jan 1970 00:00:00 GMT"}).status_code == 200
        # If-Match guards writes: a stale tag changes nothing
        r = c.put(f"{EP}=c1", content=endpoint_json("c1", port=5), headers={**h, "if-match": '"stale"'})
        assert r.status_code == 412
        assert "port" not in c.get(f"{EP}=c1").json()["vpp-singbox:endpoint"][0]
        r = c.put(f"{EP}=c1", content=endpoint_json("c1", port=5), headers={**h, "if-match": etag})
        assert r.status_code == 204, r.text
        second = c.get(f"{EP}=c1")
        assert second.headers["etag"] != etag
        r = c.delete(f"{EP}=c1", headers={"if-match": etag})
        assert r.status_code == 412
        r = c.delete(f"{EP}=c1", headers={"if-unmodified-since": "Thu, 01 Jan 1970 00:00:00 GMT"})
        assert r.status_code == 412
        time.sleep(1.1)
        later = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(time.time() + 5))
        r = c.delete(f"{EP}=c1", headers={"if-match": second.headers["etag"], "if-unmodified-since": later})
        assert r.status_code == 204, r.text


# ---- YANG Patch ------------------------------------------------------------------------------------------------


def yang_patch(patch_id: str, *edits: dict[str, Any]) -> bytes:
    return json.dumps({"ietf-yang-patch:yang-patch": {"patch-id": patch_id, "edit": list(edits)}}).encode()


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


# ---- operations ------------------------------------------------------------------------------------------------


def test_rpcs(restconf: RestconfServer) -> None:
    with stand_in_agent(), restconf.client(http2=True) as c:
        for name in ("e1", "down"):
            assert c.put(f"{EP}={name}", content=endpoint_json(name), headers={"content-type": JSON}).status_code == 201
        rpc = "/restconf/operations/vpp-singbox:test-endpoint"
        r = c.post(rpc, content=b'{"vpp-singbox:input": {"endpoint": "e1"}}', headers={"content-type": JSON})
        assert r.status_code == 200, r.text
        assert r.json() == {"vpp-singbox:output": {"result": "success", "round-trip-time": 42}}
        r = c.post(rpc, content=b'<input xmlns="urn:vpp-singbox:yang:vpp-singbox"><endpoint>down</endpoint></input>',
                   headers={"content-type": XML, "accept": XML})
        assert r.status_code == 200 and r.headers["content-type"] == XML
        out = ET.fromstring(r.content)
        assert out.tag == f"{SB_NS}output" and out.findtext(f"{SB_NS}result") == "connect-failed"
        assert c.post("/restconf/operations/vpp-singbox:clear-statistics").status_code == 204
        r = c.post(rpc, content=b'{"vpp-singbox:input": {"endpoint": "e1", "bogus": 1}}', headers={"content-type": JSON})
        assert r.status_code == 400, r.text
        r = c.post(rpc, content=b'{"vpp-singbox:input": {"endpoint": "nope"}}', headers={"content-type": JSON})
        assert r.status_code == 409 and error_of(r)["error-app-tag"] == "instance-required", r.text
        r = c.post(rpc, content=b'{"vpp-singbox:input": {}}', headers={"content-type": JSON})
        assert r.status_code == 400, r.text  # mandatory input missing
        assert c.get(rpc).status_code == 405
        r = c.options(rpc)
        assert r.status_code == 200 and r.headers["allow"] == "POST, OPTIONS"


def test_options_and_head(restconf: RestconfServer) -> None:
    with stand_in_agent(), restconf.client() as c:
        r = c.options(SB)
        assert r.status_code == 200
        assert set(r.headers["allow"].split(", ")) == {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}
        assert "application/yang-patch+json" in r.headers["accept-patch"]
        r = c.options(f"{SB}/dataplane")
        assert r.headers["allow"] == "GET, HEAD, OPTIONS" and "accept-patch" not in r.headers
        get = c.get("/restconf/data/ietf-restconf-monitoring:restconf-state")
        head = c.head("/restconf/data/ietf-restconf-monitoring:restconf-state")
        assert head.status_code == 200 and head.content == b""
        assert head.headers["etag"] == get.headers["etag"]
        assert int(head.headers["content-length"]) == len(get.content)


# ---- NACM ------------------------------------------------------------------------------------------------------


def test_nacm_on_reads_writes_and_rpcs(restconf: RestconfServer) -> None:
    env = restconf.instance.env
    with stand_in_agent(), restconf.client() as admin, restconf.client(auth=BOB) as bob:
        h = {"content-type": JSON}
        assert admin.put(f"{EP}=n1", content=endpoint_json("n1"), headers=h).status_code == 201
        # default-deny-all: NACM's own configuration is invisible to bob, visible to admin
        assert admin.get("/restconf/data/ietf-netconf-acm:nacm").status_code == 200
        r = bob.get("/restconf/data/ietf-netconf-acm:nacm")
        assert r.status_code == 404
        assert "ietf-netconf-acm:nacm" not in bob.get("/restconf/data").json()
        # read-default permit: bob reads the product's config
        assert bob.get(f"{EP}=n1").status_code == 200
        # write-default deny: every write of bob is refused and changes nothing
        before = running_json(env)
        for method, path, body in (
            ("PUT", f"{EP}=n2", endpoint_json("n2")),
            ("POST", f"{SB}/client", endpoint_json("n3")),
            ("PATCH", f"{EP}=n1", endpoint_json("n1", port=7)),
            ("DELETE", f"{EP}=n1", None),
        ):
            r = bob.request(method, path, content=body, headers=h if body else {})
            assert r.status_code == 403, (method, r.text)
            assert error_of(r)["error-tag"] == "access-denied"
        r = bob.patch(SB, content=yang_patch("b", {"edit-id": "1", "operation": "remove", "target": "/log-level"},
                                              {"edit-id": "2", "operation": "merge", "target": "/log-level",
                                               "value": {"vpp-singbox:log-level": "error"}}),
                      headers={"content-type": "application/yang-patch+json"})
        assert r.status_code == 403, r.text
        assert running_json(env) == before
        # exec: deny test-endpoint to bob with a rule, then he gets 403 while admin still may
        rule = {"ietf-netconf-acm:rule-list": [{"name": "deny-bob", "group": ["users"], "rule": [
            {"name": "no-probe", "module-name": "vpp-singbox", "rpc-name": "test-endpoint",
             "access-operations": "exec", "action": "deny"}]}]}
        r = admin.post("/restconf/data/ietf-netconf-acm:nacm/groups",
                       content=json.dumps({"ietf-netconf-acm:group": [{"name": "users", "user-name": ["bob"]}]}),
                       headers=h)
        assert r.status_code == 201, r.text
        assert admin.post("/restconf/data/ietf-netconf-acm:nacm", content=json.dumps(rule), headers=h,
                          params={"insert": "first"}).status_code == 201
        rpc = "/restconf/operations/vpp-singbox:test-endpoint"
        body = b'{"vpp-singbox:input": {"endpoint": "n1"}}'
        r = bob.post(rpc, content=body, headers=h)
        assert r.status_code == 403 and error_of(r)["error-tag"] == "access-denied", r.text
        assert admin.post(rpc, content=body, headers=h).status_code == 200
        # bob is in a group now, so bootstrap's protect-user-secrets rule-list (group "*") hides the hashes
        users = bob.get("/restconf/ds/ietf-datastores:running/ietf-system:system/authentication").json()
        assert all("password" not in u for u in users["ietf-system:authentication"]["user"])
        admin_users = admin.get("/restconf/ds/ietf-datastores:running/ietf-system:system/authentication").json()
        assert all("password" in u for u in admin_users["ietf-system:authentication"]["user"])


# ---- event streams ---------------------------------------------------------------------------------------------


def _read_events(client: httpx.Client, url: str, count: int, got: list[str], ready: threading.Event) -> None:
    with client.stream("GET", url, timeout=20) as resp:
        assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/event-stream")
        ready.set()
        data: list[str] = []
        for line in resp.iter_lines():
            if line.startswith("data:"):
                data.append(line[5:].lstrip())
            elif line == "" and data:
                got.append("\n".join(data))
                data = []
                if len(got) >= count:
                    return


@pytest.mark.parametrize("encoding", ["json", "xml"])
def test_event_stream(restconf: RestconfServer, encoding: str) -> None:
    import sysrepo

    with restconf.client(http2=encoding == "json") as c:
        mon = c.get("/restconf/data/ietf-restconf-monitoring:restconf-state/streams").json()
        stream = mon["ietf-restconf-monitoring:streams"]["stream"][0]
        assert stream["name"] == "NETCONF"
        location = next(a["location"] for a in stream["access"] if a["encoding"] == encoding)
        assert location.startswith(restconf.base_url)
        got: list[str] = []
        ready = threading.Event()
        url = location + "?filter=" + "/vpp-singbox:endpoint-up"
        reader = threading.Thread(target=_read_events, args=(c, url, 1, got, ready), daemon=True)
        reader.start()
        assert ready.wait(15)
        time.sleep(0.5)  # the subscription is made before the response starts; leave sysrepo a moment
        with sysrepo.SysrepoConnection() as conn:
            sess = conn.start_session("running")
            sess.notification_send("/vpp-singbox:endpoint-down", {"endpoint": "e0"})  # filtered out
            sess.notification_send("/vpp-singbox:endpoint-up", {"endpoint": "e1", "round-trip-time": 7})
            reader.join(15)
            sess.stop()
    assert got, "no event arrived"
    if encoding == "json":
        event = json.loads(got[0])["ietf-restconf:notification"]
        assert event["vpp-singbox:endpoint-up"] == {"endpoint": "e1", "round-trip-time": 7}
        assert event["eventTime"].endswith("Z")
    else:
        root = ET.fromstring(got[0])
        assert root.tag == "{urn:ietf:params:xml:ns:netconf:notification:1.0}notification"
        assert root.find(f"{SB_NS}endpoint-up") is not None


def test_stream_errors(restconf: RestconfServer) -> None:
    with restconf.client() as c:
        assert c.get("/restconf/streams/NETCONF/json", params={"filter": "/nomodule:x"}).status_code == 400
        assert c.get("/restconf/streams/NETCONF/json", params={"depth": "1"}).status_code == 400
        assert c.get("/restconf/streams/OTHER/json").status_code == 404
        assert c.get("/restconf/streams/NETCONF/json", auth=("bob", "bad")).status_code == 401


def test_monitoring_capabilities(restconf: RestconfServer) -> None:
    with restconf.client() as c:
        caps = c.get("/restconf/data/ietf-restconf-monitoring:restconf-state/capabilities").json()
        names = caps["ietf-restconf-monitoring:capabilities"]["capability"]
        for cap in ("depth", "fields", "filter", "with-defaults", "yang-patch"):
            assert any(f":{cap}:1.0" in n for n in names), cap
        assert any("basic-mode=explicit" in n for n in names)


def test_same_user_denied_by_nacm_on_netconf_and_restconf(restconf: RestconfServer) -> None:
    """One user database, one access-control model: bob is refused the same write on both protocols."""
    import importlib.util
    import os
    import subprocess
    import sys

    if importlib.util.find_spec("singbox_agent.netconf.__main__") is None:
        pytest.skip("the NETCONF server (singbox_agent.netconf) is not in this checkout")
    from ncclient import manager
    from ncclient.operations import RPCError

    env = {**os.environ, **restconf.instance.env}
    ready = restconf.state_dir / "netconf-ready.json"
    log = open(restconf.state_dir / "netconf.log", "wb")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        [sys.executable, "-m", "singbox_agent.netconf", "--listen", "127.0.0.1:0", "--state-dir",
         str(restconf.state_dir / "nc"), "--ready-file", str(ready)], env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while not ready.exists():
            assert proc.poll() is None and time.monotonic() < deadline, "netconf server did not start"
            time.sleep(0.05)
        info = json.loads(ready.read_text())
        edit = ('<config xmlns="urn:ietf:params:xml:ns:netconf:base:1.0"><singbox xmlns="urn:vpp-singbox:yang:vpp-singbox"><log-level>error</log-level></singbox>'
                "</config>")
        with stand_in_agent(), restconf.client(auth=BOB) as bob_rc, restconf.client() as admin_rc:
            before = running_json(restconf.instance.env)
            r = bob_rc.put(f"{SB}/log-level", content=b'{"vpp-singbox:log-level":"error"}',
                           headers={"content-type": JSON})
            assert r.status_code == 403 and error_of(r)["error-tag"] == "access-denied"
            with manager.connect(host=info["host"], port=info["port"], username=BOB[0], password=BOB[1],
                                 hostkey_verify=False, look_for_keys=False, allow_agent=False, timeout=60) as nc:
                with pytest.raises(RPCError) as denied:
                    nc.edit_config(target="running", config=edit)
                assert denied.value.tag == "access-denied"
                # the same read rules too: NACM's own config is hidden from bob on NETCONF as on RESTCONF
                reply = nc.get_config(source="running", filter=("subtree", '<nacm xmlns="urn:ietf:params:xml:ns:'
                                                                          'yang:ietf-netconf-acm"/>'))
                assert "enable-nacm" not in reply.xml
            assert bob_rc.get("/restconf/data/ietf-netconf-acm:nacm").status_code == 404
            assert running_json(restconf.instance.env) == before
            # the admin passes on both
            with manager.connect(host=info["host"], port=info["port"], username=ADMIN[0], password=ADMIN[1],
                                 hostkey_verify=False, look_for_keys=False, allow_agent=False, timeout=60) as nc:
                nc.edit_config(target="running", config=edit)
            assert admin_rc.get(f"{SB}/log-level").json() == {"vpp-singbox:log-level": "error"}
    finally:
        proc.terminate()
        proc.wait(timeout=15)
        log.close()


def test_last_modified_follows_commits_from_elsewhere(restconf: RestconfServer) -> None:
    """A commit made outside this server (here: sysrepo directly, as NETCONF or the agent would) moves
    Last-Modified, so If-Unmodified-Since cannot pass on stale knowledge."""
    import sysrepo

    with stand_in_agent(), restconf.client() as c:
        h = {"content-type": JSON}
        assert c.put(f"{EP}=lm", content=endpoint_json("lm"), headers=h).status_code == 201
        seen = c.get(f"{EP}=lm").headers["last-modified"]
        time.sleep(1.1)
        with sysrepo.SysrepoConnection() as conn:
            sess = conn.start_session("running")
            sess.set_item("/vpp-singbox:singbox/client/endpoint[name='lm']/port", 4242)
            sess.apply_changes()
            sess.stop()
        after = c.get(f"{EP}=lm")
        assert after.headers["last-modified"] != seen
        r = c.delete(f"{EP}=lm", headers={"if-unmodified-since": seen})
        assert r.status_code == 412
        assert c.get(f"{EP}=lm", headers={"if-modified-since": seen}).status_code == 200


def test_http2_connection_carries_many_concurrent_requests(restconf: RestconfServer) -> None:
    """More than Hypercorn's default 1,000 requests per connection, 32 streams at a time, all answered."""
    import asyncio

    async def run() -> dict[int, int]:
        codes: dict[int, int] = {}
        async with httpx.AsyncClient(base_url=restconf.base_url, verify=restconf.ca or False, http2=True,
                                     auth=ADMIN, timeout=30) as client:
            gate = asyncio.Semaphore(32)

            async def one() -> None:
                async with gate:
                    r = await client.get("/restconf/yang-library-version")
                    assert r.http_version == "HTTP/2"
                    codes[r.status_code] = codes.get(r.status_code, 0) + 1

            await asyncio.gather(*(one() for _ in range(1500)))
        return codes

    assert asyncio.run(run()) == {200: 1500}


def test_nacm_filters_event_streams(restconf: RestconfServer) -> None:
    """A notification NACM denies to a user never reaches that user's stream; others still do."""
    import sysrepo

    h = {"content-type": JSON}
    with restconf.client() as admin:
        r = admin.post("/restconf/data/ietf-netconf-acm:nacm/groups",
                       content=json.dumps({"ietf-netconf-acm:group": [{"name": "users", "user-name": ["bob"]}]}),
                       headers=h)
        assert r.status_code == 201, r.text
        rule = {"ietf-netconf-acm:rule-list": [{"name": "quiet-bob", "group": ["users"], "rule": [
            {"name": "no-up", "module-name": "vpp-singbox", "notification-name": "endpoint-up",
             "access-operations": "read", "action": "deny"}]}]}
        r = admin.post("/restconf/data/ietf-netconf-acm:nacm", content=json.dumps(rule), headers=h,
                       params={"insert": "first"})
        assert r.status_code == 201, r.text
    got: list[str] = []
    ready = threading.Event()
    with restconf.client(auth=BOB) as bob:
        reader = threading.Thread(target=_read_events, daemon=True,
                                  args=(bob, restconf.base_url + "/restconf/streams/NETCONF/json", 1, got, ready))
        reader.start()
        assert ready.wait(15)
        time.sleep(0.5)
        with sysrepo.SysrepoConnection() as conn:
            sess = conn.start_session("running")
            sess.notification_send("/vpp-singbox:endpoint-up", {"endpoint": "e1"})  # denied to bob
            sess.notification_send("/vpp-singbox:endpoint-down", {"endpoint": "e1", "reason": "timeout"})
            reader.join(15)
            sess.stop()
    assert len(got) == 1, got
    assert "vpp-singbox:endpoint-down" in json.loads(got[0])["ietf-restconf:notification"]


def test_server_stops_cleanly_under_attached_streams(sysrepo_instance: Any, tmp_path: Path) -> None:
    """SIGTERM while stream clients are attached (and one has just left) ends within the grace time with status 0:
    the streams end (endless responses held the HTTP server's graceful shutdown open until SIGKILL), and every
    stream's sysrepo session is closed before the connection goes, not torn down under its listener threads."""
    state = tmp_path / "state"
    state.mkdir()
    bootstrap_users(sysrepo_instance, state)
    server = start_server(sysrepo_instance, state)
    clients = [server.client() for _ in range(3)]
    try:
        readers = []
        for client in clients:
            ready = threading.Event()
            reader = threading.Thread(target=_read_events, daemon=True,
                                      args=(client, server.base_url + "/restconf/streams/NETCONF/json", 10**6, [],
                                            ready))
            reader.start()
            assert ready.wait(15)
            readers.append(reader)
        clients[0].close()  # one stream ends from the client side while the server stops
        rc = stop_server(server)  # SIGKILLed (-9) when still running after 15 s
        assert rc == 0, f"server exit status {rc}:\n{server.log()[-4000:]}"
    finally:
        for client in clients:
            client.close()
        if server.process.poll() is None:
            stop_server(server)


def test_server_stops_promptly_under_idle_tls_clients(sysrepo_instance: Any, tmp_path: Path) -> None:
    """Idle keep-alive TLS connections whose clients never answer the server's close_notify (a pooled connection
    nobody reads: the usual case, e.g. a stream client whose response just ended) are cut once the grace time is
    over: SIGTERM ends the process with status 0 within it. They held asyncio.run()'s final task cancellation open
    for asyncio's 30 s TLS shutdown timeout, past the test's 15 s SIGKILL (and systemd's patience)."""
    state = tmp_path / "state"
    state.mkdir()
    bootstrap_users(sysrepo_instance, state)
    server = start_server(sysrepo_instance, state)
    clients = [server.client(), server.client(), server.client(http2=True)]
    try:
        for client in clients:
            assert client.get("/restconf/yang-library-version").status_code == 200
        ready = threading.Event()
        reader = threading.Thread(target=_read_events, daemon=True,
                                  args=(clients[1], server.base_url + "/restconf/streams/NETCONF/json", 10**6, [],
                                        ready))
        reader.start()
        assert ready.wait(15)
        started = time.monotonic()
        rc = stop_server(server)
        elapsed = time.monotonic() - started
        assert rc == 0, f"server exit status {rc}:\n{server.log()[-4000:]}"
        assert elapsed < 10, f"stopping took {elapsed:.1f} s:\n{server.log()[-4000:]}"
    finally:
        for client in clients:
            client.close()
        if server.process.poll() is None:
            stop_server(server)


def test_edit_right_after_a_huge_change_is_not_reported_as_failed(restconf: RestconfServer) -> None:
    """sysrepo names replay files by the second and cannot store the next config-change notification right after one
    above its 1 MiB file limit; it still applies that change. The client must get success (the edit happened), not
    an error that makes it retry an applied change."""
    h = {"content-type": JSON}
    with restconf.client() as c:
        for attempt in range(5):  # the two edits must fall in the same second; retry a few times if they did not
            entries = [{"name": f"h{attempt}-{i:05d}", "address": "198.18.0.1", "port": 1081, "connect-timeout": 11}
                       for i in range(1500)]
            r = c.patch("/restconf/data/vpp-singbox:singbox/client", headers=h,
                        content=json.dumps({"vpp-singbox:client": {"endpoint": entries}}))
            assert r.status_code == 204, r.text
            one = {"vpp-singbox:endpoint": [{"name": f"right-after-{attempt}", "address": "198.18.0.2", "port": 1080}]}
            r = c.put(f"/restconf/data/vpp-singbox:singbox/client/endpoint=right-after-{attempt}", headers=h,
                      content=json.dumps(one))
            assert r.status_code == 201, r.text
            if "config-change notification not stored" in restconf.log():
                break
    assert "config-change notification not stored" in restconf.log()  # else this test proved nothing

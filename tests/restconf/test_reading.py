"""GET: datastores, query parameters, entity tags and Last-Modified."""

from __future__ import annotations

import json
import time
import xml.etree.ElementTree as ET

import sysrepo
from helpers import EP, JSON, RC_NS, SB, XML, endpoint_json, error_of, stand_in_agent
from rcserver import RestconfServer

from tests.sysrepo_state import sysrepo_state


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


def test_candidate_and_startup(restconf: RestconfServer) -> None:
    with stand_in_agent(), restconf.client() as c:
        h = {"content-type": JSON}
        cand = "/restconf/ds/ietf-datastores:candidate/vpp-singbox:singbox"
        assert c.put(f"{cand}/log-level", content=b'{"vpp-singbox:log-level":"warning"}', headers=h).status_code in (
            201, 204)
        assert c.get(f"{cand}/log-level").json() == {"vpp-singbox:log-level": "warning"}
        # candidate is not running: running's log-level is still its default, which a GET returns (RFC 8040 §3.5.4)
        assert c.get(f"{SB}/log-level").json() == {"vpp-singbox:log-level": "info"}
        start = "/restconf/ds/ietf-datastores:startup/vpp-singbox:singbox"
        assert c.put(f"{start}/log-level", content=b'{"vpp-singbox:log-level":"error"}', headers=h).status_code in (
            201, 204)
        assert c.get(f"{start}/log-level").json() == {"vpp-singbox:log-level": "error"}
        op = c.get("/restconf/ds/ietf-datastores:operational/ietf-restconf-monitoring:restconf-state")
        assert op.status_code == 200
        r = c.put("/restconf/ds/ietf-datastores:operational/vpp-singbox:singbox/log-level",
                  content=b'{"vpp-singbox:log-level":"error"}', headers=h)
        assert r.status_code == 405 and "GET" in r.headers["allow"]


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


def test_commits_do_not_wait_for_last_modified(restconf: RestconfServer) -> None:
    """Following commits for Last-Modified makes no commit wait for this server: it holds no change subscription
    on a module it only follows (sysrepo waits for every done subscriber, passive ones too, so each commit of
    anyone paid a round trip to the RESTCONF process), and Last-Modified still moves with another client's commit
    and with its own, and PUT still tells a created target (201) from a replaced one (204)."""
    with stand_in_agent(), restconf.client() as c:
        found = sysrepo_state()
        ours = {conn_["cid"] for conn_ in found["connection"] if conn_["pid"] == restconf.process.pid}
        assert ours
        watched = {m["name"] for m in found["module"]
                   for sub in m.get("subscriptions", {}).get("change-sub", [])
                   if sub.get("cid") in ours and sub.get("datastore") == "ietf-datastores:running"}
        assert "vpp-singbox" not in watched and "ietf-interfaces" not in watched, sorted(watched)
        seen = c.get(SB).headers["last-modified"]
        time.sleep(1.1)
        with sysrepo.SysrepoConnection() as conn:
            sess = conn.start_session("running")
            sess.set_item("/vpp-singbox:singbox/client/endpoint[name='nw']/address", "198.18.0.9")
            sess.apply_changes()
            sess.stop()
        moved = c.get(SB).headers["last-modified"]
        assert moved != seen
        assert c.get(SB, headers={"if-modified-since": seen}).status_code == 200
        h = {"content-type": JSON}
        assert c.put(f"{EP}=nw2", content=endpoint_json("nw2"), headers=h).status_code == 201
        assert c.put(f"{EP}=nw2", content=endpoint_json("nw2", port=9), headers=h).status_code == 204
        assert c.put(f"{EP}=nw", content=endpoint_json("nw", port=9), headers=h).status_code == 204

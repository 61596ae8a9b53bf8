"""RFC 8040 / RFC 9110 to the letter: what a sweep of the running server found wrong (one test per finding)."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import rawhttp
from helpers import JSON, XML, YANG_PATCH_JSON, stand_in_agent, yang_patch
from rcserver import BOB, RestconfServer

HOSTNAME = "/restconf/data/ietf-system:system/hostname"
MAX_BODY = "/restconf/data/vpp-singbox-restconf-server:restconf-server/limits/max-body-size"


def test_data_shows_running_config_of_modules_nobody_subscribes_to(restconf: RestconfServer) -> None:
    """RFC 8040 §3.3.1: {+restconf}/data is "the combined configuration and state data" (RFC 8527 §1 leaves it so).
    sysrepo's operational datastore holds a module's configuration only while something subscribes to its changes:
    a hostname PUT to /data read back from /data was 404, and a default of such a module was missing from
    with-defaults=report-all."""
    with restconf.client() as c:
        r = c.put(HOSTNAME, content=b'{"ietf-system:hostname": "box1"}', headers={"content-type": JSON})
        assert r.status_code == 201, r.text
        got = c.get(HOSTNAME)
        assert got.status_code == 200, got.text
        assert got.json() == {"ietf-system:hostname": "box1"}
        assert c.get("/restconf/data/ietf-system:system").json()["ietf-system:system"]["hostname"] == "box1"
        whole = c.get("/restconf/data", params={"depth": "2"}).json()["ietf-restconf:data"]
        assert whole["ietf-system:system"]["hostname"] == "box1"
        assert c.get(HOSTNAME, params={"content": "config"}).status_code == 200
        assert c.get(HOSTNAME, params={"content": "nonconfig"}).status_code == 404
        # a default of a module with no subscriber (the server follows its settings passively)
        r = c.get(MAX_BODY, params={"with-defaults": "report-all"})
        assert r.status_code == 200, r.text
        assert "vpp-singbox-restconf-server:max-body-size" in r.json()


def test_content_length_only_where_rfc_9110_allows_it(restconf: RestconfServer) -> None:
    """RFC 9110 §8.6: no Content-Length in a 204; in a 304 or a reply to HEAD only the length the 200 / GET would
    carry. 204 and 304 said 0, and a HEAD that failed said 0 where its GET had an errors body."""
    with restconf.client() as c:  # HTTP/1.1, where the header frames the message
        h = {"content-type": JSON}
        assert c.put(HOSTNAME, content=b'{"ietf-system:hostname": "a"}', headers=h).status_code == 201
        r = c.put(HOSTNAME, content=b'{"ietf-system:hostname": "b"}', headers=h)
        assert r.status_code == 204 and "content-length" not in r.headers, r.headers
        etag = c.get(HOSTNAME).headers["etag"]
        r = c.get(HOSTNAME, headers={"if-none-match": etag})
        assert r.status_code == 304 and "content-length" not in r.headers, r.headers
        missing = "/restconf/data/ietf-system:system/location"
        got, head = c.get(missing), c.head(missing)
        assert got.status_code == head.status_code == 404
        assert head.headers["content-length"] == str(len(got.content)) != "0"
        got, head = c.get(HOSTNAME), c.head(HOSTNAME)
        assert head.status_code == 200 and head.headers["content-length"] == str(len(got.content))
        # the connection still frames what follows correctly
        assert c.get(HOSTNAME).json() == {"ietf-system:hostname": "b"}


def test_absolute_form_request_target(restconf: RestconfServer) -> None:
    """RFC 9112 §3.2.2: "a server MUST accept the absolute-form in requests"; its authority stands for Host. It was
    404 "No resource at 'https://...'"."""
    with restconf.client() as c:
        assert c.put(HOSTNAME, content=b'{"ietf-system:hostname": "abs"}', headers={"content-type": JSON}
                     ).status_code == 201
    target = "https://example.net:8443/restconf/data/ietf-system:system/hostname"
    r = rawhttp.exchange(restconf, rawhttp.head("GET", target, {"Authorization": rawhttp.ADMIN_AUTH}))
    assert r.status == 200, r
    assert json.loads(r.body) == {"ietf-system:hostname": "abs"}
    # the query stays a query; the authority is the host the yang-library locations name
    location = ("HTTPS://example.net:8443/restconf/data/ietf-yang-library:yang-library/module-set=complete/"
                "module=ietf-system/location?depth=1")
    r = rawhttp.exchange(restconf, rawhttp.head("GET", location, {"Authorization": rawhttp.ADMIN_AUTH}))
    assert r.status == 200, r
    assert json.loads(r.body) == {
        "ietf-yang-library:location": ["https://example.net:8443/restconf/yang/ietf-system@2014-08-06"]}


def test_a_location_read_alone_names_its_revision(restconf: RestconfServer) -> None:
    """RFC 8525 `location`: the schema's URL. Read alone (`.../module=m/location`, fields=location) the entry's
    revision was not in the tree and the URL left it out (`/restconf/yang/ietf-system`, a 404)."""
    entry = "/restconf/data/ietf-yang-library:yang-library/module-set=complete/module=ietf-system"
    with restconf.client() as c:
        whole = c.get(entry).json()["ietf-yang-library:module"][0]["location"]
        alone = c.get(f"{entry}/location").json()["ietf-yang-library:location"]
        fields = c.get(entry, params={"fields": "location"}).json()["ietf-yang-library:module"][0]["location"]
        assert alone == fields == whole and whole[0].endswith("/restconf/yang/ietf-system@2014-08-06"), whole
        assert c.get(alone[0]).status_code == 200


def test_fields_selecting_nothing_leaves_the_existing_target(restconf: RestconfServer) -> None:
    """RFC 8040 §4.8.3: fields picks data nodes within the target resource; when none of them is set the resource
    is still there (it was 404 'No data at' an existing list entry); a missing target stays 404."""
    bob = "/restconf/data/ietf-system:system/authentication/user=bob"
    with restconf.client() as c:
        r = c.get(bob, params={"fields": "authorized-key"})
        assert r.status_code == 200, r.text
        assert r.json() == {"ietf-system:user": [{"name": "bob"}]}
        r = c.get(bob, params={"fields": "authorized-key"}, headers={"accept": "application/yang-data+xml"})
        assert r.status_code == 200 and b"<name>bob</name>" in r.content, r.text
        assert c.get(bob, params={"fields": "name"}).json() == {"ietf-system:user": [{"name": "bob"}]}
        assert c.get(bob.replace("=bob", "=nobody"), params={"fields": "authorized-key"}).status_code == 404


def test_yang_patch_status_declares_paths_and_hides_what_nacm_hides(restconf: RestconfServer) -> None:
    """RFC 8072 §2.3's yang-patch-status carries RFC 8040 errors: in XML an error-path's prefixes are declared
    (RFC 7950 §9.13.2), as in ietf-restconf:errors (they were not), and a commit's failure tells a NACM-restricted
    user nothing NACM hides from him (RFC 8341 §3.4.5; plain edits already did, YANG Patch showed the hidden
    listener's key)."""
    hidden = "secret-listener-9b1c"
    rules = {"ietf-netconf-acm:rule-list": [{"name": "bob-listeners", "group": ["ungrouped"], "rule": [
        {"name": "no-read", "path": "/vpp-singbox:singbox/server", "access-operations": "read", "action": "deny"},
        {"name": "write", "path": "/vpp-singbox:singbox/server", "access-operations": "create update",
         "action": "permit"}]}]}
    h = {"content-type": JSON}
    server = "/restconf/data/vpp-singbox:singbox/server"
    with stand_in_agent(), restconf.client() as admin, restconf.client(auth=BOB) as bob:
        assert admin.post("/restconf/data/ietf-netconf-acm:nacm", content=json.dumps(rules), headers=h
                          ).status_code == 201
        listener = {"vpp-singbox:listen": [{"name": hidden, "address": "198.18.9.9", "port": 4444}]}
        assert admin.post(server, content=json.dumps(listener), headers=h).status_code == 201
        mine = {"vpp-singbox:listen": [{"name": "bobs", "address": "198.18.9.9", "port": 4444}]}
        patch = yang_patch("p", {"edit-id": "e1", "operation": "create", "target": "/listen=bobs", "value": mine})
        r = bob.patch(server, content=patch, headers={"content-type": YANG_PATCH_JSON})
        assert r.status_code == 400, r.text
        assert "unique" in r.text.lower() and hidden not in r.text, r.text
        r = admin.patch(server, content=patch, headers={"content-type": YANG_PATCH_JSON})
        assert r.status_code == 400 and hidden in r.text, r.text  # the admin may read it: the full text
        again = yang_patch("p", {"edit-id": "e1", "operation": "create", "target": f"/listen={hidden}",
                                 "value": listener})
        r = admin.patch(server, content=again, headers={"content-type": YANG_PATCH_JSON, "accept": XML})
        assert r.status_code == 409, r.text
        assert b'<error-path xmlns:vpp-singbox="urn:vpp-singbox:yang:vpp-singbox">/vpp-singbox:' in r.content, r.text


def test_report_all_tagged_xml_uses_rfc_6243_attribute(restconf: RestconfServer) -> None:
    """RFC 8040 §4.8.9 with RFC 6243 §6: in XML a default is tagged with the `default` attribute of
    urn:ietf:params:xml:ns:netconf:default:1.0 (the NETCONF server's too); libyang's was in the module namespace of
    ietf-netconf-with-defaults. JSON keeps RFC 8040 B.3.9's "ietf-netconf-with-defaults:default"."""
    limits = "/restconf/data/vpp-singbox-restconf-server:restconf-server/limits"
    with restconf.client() as c:
        for url in (f"{limits}/max-body-size", limits, "/restconf/ds/ietf-datastores:running"):
            r = c.get(url, params={"with-defaults": "report-all-tagged"}, headers={"accept": XML})
            assert r.status_code == 200, r.text
            tagged = [e for e in ET.fromstring(r.content).iter()
                      if e.get("{urn:ietf:params:xml:ns:netconf:default:1.0}default") == "true"]
            assert tagged and not any(e.get("{urn:ietf:params:xml:ns:yang:ietf-netconf-with-defaults}default")
                                      for e in ET.fromstring(r.content).iter()), r.text
        r = c.get(f"{limits}/max-body-size", params={"with-defaults": "report-all-tagged"})
        assert r.json()["@vpp-singbox-restconf-server:max-body-size"] == {"ietf-netconf-with-defaults:default": True}


def test_get_of_a_leaf_not_set_returns_its_default(restconf: RestconfServer) -> None:
    """RFC 8040 §3.5.4: "If the target of a GET method is a data node that represents a leaf or leaf-list that has a
    default value and the leaf or leaf-list has not been instantiated yet, the server MUST return the default value
    ... the server MUST ignore its basic-mode". It was 404. A mode the client asks for still applies; DELETE and PUT
    keep RESTCONF's one meaning of exists (a default-only leaf is absent: 404, 201)."""
    h = {"content-type": JSON}
    with restconf.client() as c:
        r = c.get(MAX_BODY)
        assert r.status_code == 200, r.text
        default = r.json()["vpp-singbox-restconf-server:max-body-size"]
        assert c.head(MAX_BODY).status_code == 200
        xml = c.get(MAX_BODY, headers={"accept": XML})
        assert xml.status_code == 200 and ET.fromstring(xml.content).text == str(default), xml.text
        for mode in ("explicit", "trim"):
            assert c.get(MAX_BODY, params={"with-defaults": mode}).status_code == 404, mode
        assert c.get(MAX_BODY.replace("/data/", "/ds/ietf-datastores:running/")).status_code == 200
        assert c.delete(MAX_BODY).status_code == 404
        body = json.dumps({"vpp-singbox-restconf-server:max-body-size": default}).encode()
        assert c.put(MAX_BODY, content=body, headers=h).status_code == 201
        assert c.get(MAX_BODY).json() == {"vpp-singbox-restconf-server:max-body-size": default}
        # a container's children keep the basic mode
        limits = c.get(MAX_BODY.rsplit("/", 1)[0]).json()["vpp-singbox-restconf-server:limits"]
        assert list(limits) == ["max-body-size"], limits


def test_options_asterisk_form(restconf: RestconfServer) -> None:
    """RFC 9112 §3.2.4 / RFC 9110 §9.3.7: "OPTIONS * HTTP/1.1" asks about the server in general (it was 404); the
    asterisk-form is for OPTIONS only."""
    auth = {"Authorization": rawhttp.ADMIN_AUTH}
    r = rawhttp.exchange(restconf, rawhttp.head("OPTIONS", "*", auth))
    assert r.status == 200, r
    assert {m.strip() for m in r.headers["allow"].split(",")} >= {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE",
                                                                  "OPTIONS"}
    r = rawhttp.exchange(restconf, rawhttp.head("GET", "*", auth))
    assert r.status == 400, r


def test_host_meta_in_jrd_too(restconf: RestconfServer) -> None:
    """RFC 6415 §3: host-meta also in JSON (JRD), at /.well-known/host-meta.json or asked for with Accept:
    application/json (both were XRD or 404); without credentials, as the XRD (RFC 8040 §3.1 root discovery)."""
    with restconf.client(auth=None) as c:
        xrd = c.get("/.well-known/host-meta")
        assert xrd.status_code == 200 and xrd.headers["content-type"] == "application/xrd+xml"
        for r in (c.get("/.well-known/host-meta.json"),
                  c.get("/.well-known/host-meta", headers={"accept": "application/json"})):
            assert r.status_code == 200 and r.headers["content-type"] == "application/json", r.text
            assert r.json() == {"links": [{"rel": "restconf", "href": "/restconf"}]}
        assert c.get("/.well-known/host-meta", headers={"accept": "application/xrd+xml, application/json"}
                     ).headers["content-type"] == "application/xrd+xml"


def test_stream_locations_follow_the_host_the_client_used(restconf: RestconfServer) -> None:
    """RFC 8040 §9.3: a stream's `location` is the URL a client opens; it was built on the listen address (on an
    appliance listening on 0.0.0.0: https://0.0.0.0:443/...), while yang-library locations and RFC 8650's
    subscription URIs follow the request's Host."""
    state = "/restconf/data/ietf-restconf-monitoring:restconf-state/streams"
    with restconf.client() as c:
        plain = c.get(state).json()["ietf-restconf-monitoring:streams"]["stream"][0]["access"]
        assert {a["location"] for a in plain} == {f"{restconf.base_url}/restconf/streams/NETCONF/{e}"
                                                  for e in ("json", "xml")}
        moved = c.get(state, headers={"host": "rc.example.net:1830"}).json()
        locations = {a["location"] for a in moved["ietf-restconf-monitoring:streams"]["stream"][0]["access"]}
        assert locations == {f"https://rc.example.net:1830/restconf/streams/NETCONF/{e}" for e in ("json", "xml")}


def test_replies_chosen_by_accept_say_vary(restconf: RestconfServer) -> None:
    """RFC 9110 §12.5.5: a reply whose representation Accept chose (JSON or XML) carries Vary: Accept, its 304 too."""
    with restconf.client() as c:
        for url in ("/restconf/data/ietf-system:system", "/restconf", "/restconf/yang-library-version",
                    "/restconf/operations"):
            r = c.get(url)
            assert r.status_code == 200 and "accept" in r.headers.get("vary", "").lower(), (url, r.headers)
        r = c.get("/restconf/data/ietf-system:system")
        again = c.get("/restconf/data/ietf-system:system", headers={"if-none-match": r.headers["etag"]})
        assert again.status_code == 304 and "accept" in again.headers.get("vary", "").lower(), again.headers


def test_if_match_on_a_schema_resource(restconf: RestconfServer) -> None:
    """RFC 9110 §13.1.1 on the schema resource (RFC 8040 §3.7): a stale If-Match is 412 (it was ignored: 200)."""
    url = "/restconf/yang/ietf-system@2014-08-06"
    with restconf.client() as c:
        etag = c.get(url).headers["etag"]
        assert c.get(url, headers={"if-match": etag}).status_code == 200
        assert c.get(url, headers={"if-match": "*"}).status_code == 200
        assert c.get(url, headers={"if-match": '"stale"'}).status_code == 412
        assert c.get(url, headers={"if-none-match": etag}).status_code == 304


def test_a_list_of_dates_is_no_precondition(restconf: RestconfServer) -> None:
    """RFC 9110 §13.1.4 (and §13.1.3): "A recipient MUST ignore the If-Unmodified-Since header field if the received
    field value is not a valid HTTP-date (including when the field value appears to be a list of dates)"; the first
    date was taken (412, 304). One date still counts, in each of the three HTTP-date forms."""
    old = "Sun, 06 Nov 1994 08:49:37 GMT"
    with restconf.client() as c:
        assert c.get(HOSTNAME.rsplit("/", 1)[0]).status_code == 200
        url = "/restconf/data/ietf-system:system"
        assert c.get(url, headers={"if-unmodified-since": f"{old}, {old}"}).status_code == 200
        for one in (old, "Sunday, 06-Nov-94 08:49:37 GMT", "Sun Nov  6 08:49:37 1994"):
            assert c.get(url, headers={"if-unmodified-since": one}).status_code == 412, one
        future = "Fri, 01 Jan 2100 00:00:00 GMT"
        assert c.get(url, headers={"if-modified-since": future}).status_code == 304
        assert c.get(url, headers={"if-modified-since": f"{future}, {future}"}).status_code == 200


def test_a_bad_leaf_value_names_the_leaf(restconf: RestconfServer) -> None:
    """RFC 8040 §7.1 error-path: a PUT of a leaf with a value its type refuses named no node (libyang gives none for
    a body's own top node), unlike the same value one level down; now the target, in YANG Patch's edit too."""
    h = {"content-type": JSON}
    with restconf.client() as c:
        r = c.put(MAX_BODY, content=b'{"vpp-singbox-restconf-server:max-body-size": "lots"}', headers=h)
        assert r.status_code == 400, r.text
        error = r.json()["ietf-restconf:errors"]["error"][0]
        assert error["error-path"] == "/vpp-singbox-restconf-server:restconf-server/limits/max-body-size", error
        patch = yang_patch("p", {"edit-id": "e1", "operation": "merge", "target": "/max-body-size",
                                 "value": {"vpp-singbox-restconf-server:max-body-size": "lots"}})
        r = c.patch(MAX_BODY.rsplit("/", 1)[0], content=patch, headers={"content-type": YANG_PATCH_JSON})
        assert r.status_code == 400, r.text
        edit = r.json()["ietf-yang-patch:yang-patch-status"]["edit-status"]["edit"][0]
        assert edit["errors"]["error"][0]["error-path"].endswith("/limits/max-body-size"), edit


def test_the_tag_of_a_default_is_one_if_match_accepts(restconf: RestconfServer) -> None:
    """The GET of an unset leaf returns its default (RFC 8040 §3.5.4) with an ETag; If-Match with that tag holds for a
    write (RFC 9110 §13.1.1: it names the selected representation) and If-None-Match: * does not (§13.1.2)."""
    body = b'{"vpp-singbox-restconf-server:max-body-size": 1048576}'
    h = {"content-type": JSON}
    with restconf.client() as c:
        tag = c.get(MAX_BODY).headers["etag"]
        assert c.put(MAX_BODY, content=body, headers={**h, "if-none-match": "*"}).status_code == 412
        assert c.put(MAX_BODY, content=body, headers={**h, "if-match": tag}).status_code == 201
        assert c.get(MAX_BODY).json() == {"vpp-singbox-restconf-server:max-body-size": 1048576}

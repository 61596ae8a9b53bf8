"""NACM (RFC 8341) on every path that can observe or change data."""

from __future__ import annotations

import json
import os
import threading
import time

import pytest
import sysrepo
from helpers import EP, JSON, SB, endpoint_json, error_of, read_events, running_json, stand_in_agent, yang_patch
from rcserver import ADMIN, BOB, RestconfServer, start_service, stop_process


NACM = "/restconf/data/ietf-netconf-acm:nacm"


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


def test_same_user_denied_by_nacm_on_netconf_and_restconf(restconf: RestconfServer) -> None:
    """One user database, one access-control model: bob is refused the same write on both protocols."""
    import importlib.util

    if importlib.util.find_spec("singbox_agent.netconf.__main__") is None:
        pytest.skip("the NETCONF server (singbox_agent.netconf) is not in this checkout")
    from ncclient import manager
    from ncclient.operations import RPCError

    proc, info = start_service(restconf.instance, "singbox_agent.netconf", restconf.state_dir / "nc",
                               restconf.state_dir / "netconf-ready.json", restconf.state_dir / "netconf.log")
    try:
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
        assert stop_process(proc) == 0


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
        reader = threading.Thread(target=read_events, daemon=True,
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


def test_validation_errors_never_name_what_nacm_hides(restconf: RestconfServer) -> None:
    """RFC 8341 3.4.5: bob may create listeners but not read them; his listener clashes with a hidden one on
    `unique "address port"`. Neither protocol's error names the hidden listener (its path, its key) — the message,
    the error-path and the error-info; the admin still gets the full text."""
    from ncclient import manager
    from ncclient.operations import RPCError

    hidden = "secret-listener-7f3a"
    rules = {"ietf-netconf-acm:rule-list": [{"name": "bob-listeners", "group": ["ungrouped"], "rule": [
        {"name": "no-read", "path": "/vpp-singbox:singbox/server", "access-operations": "read", "action": "deny"},
        {"name": "write", "path": "/vpp-singbox:singbox/server", "access-operations": "create update",
         "action": "permit"}]}]}
    listener = {"vpp-singbox:listen": [{"name": hidden, "address": "198.18.9.9", "port": 4444}]}
    h = {"content-type": JSON}
    proc, info = start_service(restconf.instance, "singbox_agent.netconf", restconf.state_dir / "nc",
                               restconf.state_dir / "netconf-ready.json", restconf.state_dir / "netconf.log")
    try:
        with stand_in_agent(), restconf.client() as admin, restconf.client(auth=BOB) as bob:
            r = admin.post(NACM, content=json.dumps(rules), headers=h)
            assert r.status_code == 201, r.text
            r = admin.post(f"{SB}/server", content=json.dumps(listener), headers=h)
            assert r.status_code == 201, r.text
            mine = {"vpp-singbox:listen": [{"name": "bobs", "address": "198.18.9.9", "port": 4444}]}
            r = bob.post(f"{SB}/server", content=json.dumps(mine), headers=h)
            assert r.status_code == 400, r.text
            assert hidden not in r.text, r.text
            assert "unique" in r.text.lower(), r.text  # still says what failed
            r = admin.post(f"{SB}/server", content=json.dumps(mine), headers=h)
            assert r.status_code == 400 and hidden in r.text, r.text  # the admin may read it: the full text
            edit = ('<config xmlns="urn:ietf:params:xml:ns:netconf:base:1.0"><singbox xmlns="urn:vpp-singbox:yang:'
                    'vpp-singbox"><server><listen><name>bobs</name><address>198.18.9.9</address><port>4444</port>'
                    "</listen></server></singbox></config>")
            with manager.connect(host=info["host"], port=info["port"], username=BOB[0], password=BOB[1],
                                 hostkey_verify=False, look_for_keys=False, allow_agent=False, timeout=60) as nc:
                with pytest.raises(RPCError) as refused:
                    nc.edit_config(target="running", config=edit)
                text = str(refused.value.info) + str(refused.value.message) + str(refused.value.path)
                assert "unique" in text.lower(), text
                assert hidden not in text, text
    finally:
        assert stop_process(proc) == 0

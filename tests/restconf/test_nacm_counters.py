"""RFC 8341's denial counters (/nacm/denied-operations, denied-data-writes, denied-notifications: config false,
mandatory) for the appliance: the denials of both servers summed, served by whichever server runs."""

from __future__ import annotations

import re

import pytest
from helpers import EP, JSON, endpoint_json, error_of, stand_in_agent
from ncclient import manager
from ncclient.operations.rpc import RPCError
from rcserver import BOB, RestconfServer, start_service, stop_process

NACM = "/restconf/data/ietf-netconf-acm:nacm"
LEAVES = ("denied-operations", "denied-data-writes", "denied-notifications")
NC_EDIT = ('<config xmlns="urn:ietf:params:xml:ns:netconf:base:1.0"><singbox xmlns="urn:vpp-singbox:yang:vpp-singbox">'
           "<log-level>error</log-level></singbox></config>")


def _counters(admin: object) -> dict[str, int]:
    r = admin.get(NACM, headers={"accept": "application/yang-data+json"})  # type: ignore[attr-defined]
    assert r.status_code == 200, r.text
    nacm = r.json()["ietf-netconf-acm:nacm"]
    assert all(leaf in nacm for leaf in LEAVES), nacm
    return {leaf: int(nacm[leaf]) for leaf in LEAVES}


def _netconf_counters(nc: object) -> dict[str, int]:
    data = nc.get(filter=("subtree", '<nacm xmlns="urn:ietf:params:xml:ns:yang:ietf-netconf-acm"/>')).data_xml  # type: ignore[attr-defined]
    return {leaf: int(m.group(1)) for leaf in LEAVES if (m := re.search(rf"<{leaf}>(\d+)</{leaf}>", data))}


def test_denials_are_counted_across_both_servers(restconf: RestconfServer) -> None:
    """RFC 8341 3.2 / ietf-netconf-acm: "Number of times since the server last restarted that a protocol operation
    request to alter a configuration datastore was denied" (and of operations, notifications). The leaves were
    missing from every read; each server's denials now count, read from either server, and RESTCONF serves them
    without a NETCONF server."""
    h = {"content-type": JSON}
    with stand_in_agent(), restconf.client() as admin, restconf.client(auth=BOB) as bob:
        start = _counters(admin)
        assert start == {leaf: 0 for leaf in LEAVES}
        assert bob.put(f"{EP}=n1", content=endpoint_json("n1"), headers=h).status_code == 403
        after_rc = _counters(admin)
        assert after_rc["denied-data-writes"] == 1, after_rc
        nc_dir = restconf.state_dir / "nc"
        proc, info = start_service(restconf.instance, "singbox_agent.netconf", nc_dir,
                                   restconf.state_dir / "netconf-ready.json", restconf.state_dir / "netconf.log")
        try:
            connect = {"host": info["host"], "port": info["port"], "hostkey_verify": False, "look_for_keys": False,
                       "allow_agent": False, "timeout": 60}
            with manager.connect(username=BOB[0], password=BOB[1], **connect) as nc:
                with pytest.raises(RPCError) as denied:
                    nc.edit_config(target="running", config=NC_EDIT)
                assert denied.value.tag == "access-denied"
                with pytest.raises(RPCError) as denied:
                    nc.kill_session("999")  # default-deny-all in ietf-netconf
                assert denied.value.tag == "access-denied"
            both = _counters(admin)
            assert both["denied-data-writes"] == 2 and both["denied-operations"] == after_rc["denied-operations"] + 1
            with manager.connect(username="admin", password="admin-secret-1", **connect) as nc:
                assert _netconf_counters(nc) == both
        finally:
            assert stop_process(proc) == 0
        # NETCONF gone: RESTCONF still serves the leaves (with its own share)
        assert _counters(admin) == after_rc


def test_a_refused_write_names_the_node_it_may_read(restconf: RestconfServer) -> None:
    """RFC 8341 3.4.5 / RFC 8040 7.1: a write NACM refuses is access-denied (403) with error-type protocol and the
    refused node as error-path (it was application with none) — unless the user may not read that node."""
    h = {"content-type": JSON}
    with stand_in_agent(), restconf.client() as admin, restconf.client(auth=BOB) as bob:
        assert admin.put(f"{EP}=e1", content=endpoint_json("e1"), headers=h).status_code == 201
        r = bob.put(f"{EP}=n2", content=endpoint_json("n2"), headers=h)
        assert r.status_code == 403, r.text
        assert (error_of(r)["error-type"], error_of(r).get("error-path")) == (
            "protocol", "/vpp-singbox:singbox/client/endpoint[name='n2']"), r.text
        r = bob.patch(f"{EP}=e1", content=endpoint_json("e1", port=7), headers=h)
        assert r.status_code == 403, r.text
        assert error_of(r).get("error-path", "").startswith("/vpp-singbox:singbox/client/endpoint[name='e1']"), r.text
        r = bob.put("/restconf/data/ietf-system:system/authentication/user=admin",
                    content=b'{"ietf-system:user": [{"name": "admin", "password": "$0$x"}]}', headers=h)
        assert r.status_code == 403, r.text
        assert "error-path" not in error_of(r) and "password" not in r.text, r.text

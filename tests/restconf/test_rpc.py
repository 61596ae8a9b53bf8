"""RPCs and actions (RFC 8040 §3.6, §4.4.2) and the operations resource."""

from __future__ import annotations

import time
import xml.etree.ElementTree as ET

from helpers import EP, JSON, SB_NS, XML, endpoint_json, error_of, stand_in_agent
from rcserver import RestconfServer


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


def test_rpc_input_that_is_not_json_is_malformed(restconf: RestconfServer) -> None:
    """Issue 15 item 8 for operations: a trailing comma or a member twice in RPC input is malformed-message, and
    the RPC is not sent (libyang's parser took both, the last member winning)."""
    with stand_in_agent(), restconf.client() as c:
        rpc = "/restconf/operations/vpp-singbox:test-endpoint"
        for body in (b'{"vpp-singbox:input": {"endpoint": "n1",}}',
                     b'{"vpp-singbox:input": {"endpoint": "down", "endpoint": "n1"}}'):
            r = c.post(rpc, content=body, headers={"content-type": JSON})
            assert r.status_code == 400 and error_of(r)["error-tag"] == "malformed-message", (body, r.text)

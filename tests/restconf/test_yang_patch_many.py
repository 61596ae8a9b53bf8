"""A YANG Patch of many creates checks their targets' absence in batches (one read for up to 256 of them, not one
each: 2,000 creates took 7 s): the result must be what one read per edit gave — an existing target anywhere in
a batch is data-exists against its own edit-id and nothing is applied."""

from __future__ import annotations

from helpers import SB, running_json, stand_in_agent, yang_patch
from rcserver import RestconfServer

PH = {"content-type": "application/yang-patch+json"}


def _create(i: int) -> dict[str, object]:
    return {"edit-id": f"c{i}", "operation": "create", "target": f"/client/endpoint=m{i}",
            "value": {"vpp-singbox:endpoint": [{"name": f"m{i}", "address": "198.18.0.1"}]}}


def _endpoints(env: dict[str, str]) -> set[str]:
    tree = running_json(env).get("vpp-singbox:singbox", {})
    return {e["name"] for e in tree.get("client", {}).get("endpoint", [])}


def test_many_creates_checked_in_batches(restconf: RestconfServer) -> None:
    env = restconf.instance.env
    with stand_in_agent(), restconf.client() as c:
        r = c.patch(SB, content=yang_patch("one", _create(400)), headers=PH)
        assert r.status_code == 200, r.text
        # m400 exists: the second batch of creates holds it, edit c400 is data-exists, nothing else is applied
        r = c.patch(SB, content=yang_patch("many", *(_create(i) for i in range(600))), headers=PH, timeout=120)
        status = r.json()["ietf-yang-patch:yang-patch-status"]
        edits = status["edit-status"]["edit"]
        assert r.status_code == 409 and len(edits) == 1, r.text[:500]
        assert edits[0]["edit-id"] == "c400" and edits[0]["errors"]["error"][0]["error-tag"] == "data-exists"
        assert _endpoints(env) == {"m400"}
        r = c.patch(SB, content=yang_patch("rest", *(_create(i) for i in range(600) if i != 400)), headers=PH,
                    timeout=120)
        assert r.status_code == 200, r.text[:500]
        assert _endpoints(env) == {f"m{i}" for i in range(600)}

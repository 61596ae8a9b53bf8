"""RFC 8040 / RFC 9110 to the letter: what a sweep of the running server found wrong (one test per finding)."""

from __future__ import annotations

from helpers import JSON
from rcserver import RestconfServer

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

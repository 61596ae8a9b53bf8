"""Plain HTTP only when asked for (--plain-http): then the ready file says so and TLS is not offered."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
from rcserver import ADMIN, bootstrap_users, start_server, stop_server

from singbox_agent.repository import SysrepoInstance


def test_plain_http_when_explicitly_configured(sysrepo_instance: SysrepoInstance, tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    bootstrap_users(sysrepo_instance, state)
    server = start_server(sysrepo_instance, state, "--plain-http")
    try:
        ready = json.loads((state / "ready.json").read_text())
        assert ready["scheme"] == "http" and "ca_certificate" not in ready
        assert server.base_url.startswith("http://")
        with httpx.Client(base_url=server.base_url, auth=ADMIN) as c:
            assert c.get("/restconf/yang-library-version").status_code == 200
            assert c.get("/restconf").status_code == 200
        assert not (state / "restconf" / "ca.pem").exists()  # no certificate made for a plain server
    finally:
        assert stop_server(server) == 0, server.log()[-3000:]

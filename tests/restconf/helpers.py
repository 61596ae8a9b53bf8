"""Test-side sysrepo helpers: a stand-in agent (change subscriber), RPC provider, direct reads of the datastore."""

from __future__ import annotations

import json
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import sysrepo

JSON = "application/yang-data+json"
XML = "application/yang-data+xml"
REJECTED_ENDPOINT = "reject-me"
REJECTION_MESSAGE = "endpoint reject-me: VPP refused it (singbox_set_endpoint retval -7, no such table)"


@contextmanager
def stand_in_agent() -> Iterator[sysrepo.SysrepoSession]:
    """Subscribes like the real agent does, so running config shows in operational and an agent can say no.

    Rejects any endpoint named `reject-me` with a message the client must see; answers test-endpoint.
    """
    conn = sysrepo.SysrepoConnection()
    sess = conn.start_session("running")

    def on_change(event: str, req_id: int, changes: list[Any], private_data: Any) -> None:
        if event != "change":
            return
        for change in changes:
            if f"[name='{REJECTED_ENDPOINT}']" in getattr(change, "xpath", ""):
                raise sysrepo.SysrepoValidationFailedError(REJECTION_MESSAGE)

    def on_rpc(xpath: str, input_params: dict[str, Any], event: str, private_data: Any) -> dict[str, Any]:
        if input_params.get("endpoint") == "down":
            return {"result": "connect-failed", "message": "connection refused"}
        return {"result": "success", "round-trip-time": 42}

    def on_clear(xpath: str, input_params: dict[str, Any], event: str, private_data: Any) -> None:
        return None

    sess.subscribe_module_change("vpp-singbox", "/vpp-singbox:singbox", on_change)
    def ignore(event: str, req_id: int, changes: list[Any], private_data: Any) -> None:
        return None

    sess.subscribe_module_change("ietf-system", "/ietf-system:system", ignore, passive=True, done_only=True)
    sess.subscribe_rpc_call("/vpp-singbox:test-endpoint", on_rpc)
    sess.subscribe_rpc_call("/vpp-singbox:clear-statistics", on_clear)
    try:
        yield sess
    finally:
        sess.stop()
        conn.disconnect()


def running_config(env: dict[str, str], module: str = "vpp-singbox") -> str:
    """The running datastore of a module as sysrepocfg exports it (what the server changed, independently)."""
    out = subprocess.run(
        ["sysrepocfg", "-X", "-d", "running", "-f", "json", "-m", module], env=env, capture_output=True, text=True,
        check=True, timeout=30,
    )
    return out.stdout


def running_json(env: dict[str, str], module: str = "vpp-singbox") -> dict[str, Any]:
    text = running_config(env, module)
    return json.loads(text) if text.strip() else {}


# ---- shared by the server tests (one file per verb, as rousette's) ------------------------------------------------

SB = "/restconf/data/vpp-singbox:singbox"
EP = f"{SB}/client/endpoint"
RC_NS = "{urn:ietf:params:xml:ns:yang:ietf-restconf}"
SB_NS = "{urn:vpp-singbox:yang:vpp-singbox}"
YANG_PATCH_JSON = "application/yang-patch+json"
YANG_PATCH_XML = "application/yang-patch+xml"


def endpoint_json(name: str, **extra: Any) -> bytes:
    return json.dumps({"vpp-singbox:endpoint": [{"name": name, "address": "127.0.0.1", **extra}]}).encode()


def endpoint_xml(name: str, port: int | None = None) -> bytes:
    port_xml = f"<port>{port}</port>" if port is not None else ""
    return (
        f'<endpoint xmlns="urn:vpp-singbox:yang:vpp-singbox"><name>{name}</name><address>10.0.0.1</address>'
        f"{port_xml}</endpoint>"
    ).encode()


def error_of(resp: Any) -> dict[str, Any]:
    """The first error of an ietf-restconf:errors reply (httpx response)."""
    body = resp.json()
    errors: list[dict[str, Any]] = body["ietf-restconf:errors"]["error"]
    assert errors, body
    return errors[0]


def yang_patch(patch_id: str, *edits: dict[str, Any]) -> bytes:
    return json.dumps({"ietf-yang-patch:yang-patch": {"patch-id": patch_id, "edit": list(edits)}}).encode()


def startup_json(env: dict[str, str], module: str = "vpp-singbox") -> dict[str, Any]:
    """The startup datastore of a module as sysrepocfg exports it."""
    out = subprocess.run(
        ["sysrepocfg", "-X", "-d", "startup", "-f", "json", "-m", module], env=env, capture_output=True, text=True,
        check=True, timeout=30,
    )
    return json.loads(out.stdout) if out.stdout.strip() else {}


def read_events(client: Any, url: str, count: int, got: list[str], ready: threading.Event) -> None:
    """Reads an SSE stream (httpx client) until `count` events arrived into `got`; `ready` once it is open."""
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

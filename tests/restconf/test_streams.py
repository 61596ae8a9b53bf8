"""RFC 8040 §6 event streams: encodings, filters, errors, monitoring, and load: every client gets every notification, none is cut."""

from __future__ import annotations

import asyncio
import json
import os
import threading
import time
import xml.etree.ElementTree as ET
from typing import Any

import httpx
import pytest
import sysrepo
from helpers import JSON, SB, SB_NS, XML, read_events
from rcserver import ADMIN, RestconfServer


NCN_NS = "urn:ietf:params:xml:ns:yang:ietf-netconf-notifications"
SBX_NS = "urn:vpp-singbox:yang:vpp-singbox"
CLIENTS = int(os.environ.get("RESTCONF_STREAM_CLIENTS", "100"))  # fewer for a quick local run
# A create and a delete of running, each also copied to startup (netconf-config-change names the datastore), then
# one endpoint-up: a stream ends once it has the endpoint-up and two config changes (sysrepo delivers each module's
# notifications on a thread of its own, so their order across modules may vary).
LAST = "endpoint-up"


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
        reader = threading.Thread(target=read_events, args=(c, url, 1, got, ready), daemon=True)
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


async def _stream(client: httpx.AsyncClient, url: str, subscribed: asyncio.Event, counter: list[int],
                  done: asyncio.Event) -> list[str]:
    """Reads events until the endpoint-up arrived; an `httpx` error (the server cutting the response) propagates."""
    got: list[str] = []
    async with client.stream("GET", url) as resp:
        assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/event-stream")
        assert resp.headers["cache-control"] == "no-cache"
        data: list[str] = []
        lines = resp.aiter_lines()
        first = await anext(lines)  # the server's opening comment: the subscription exists
        assert first.startswith(":"), first
        counter[0] += 1
        if counter[0] == CLIENTS:
            subscribed.set()
        async for line in lines:
            if line.startswith("data:"):
                data.append(line[5:].lstrip())
            elif line == "" and data:
                got.append("\n".join(data))
                data = []
                if any(LAST in e for e in got) and sum("netconf-config-change" in e for e in got) >= 2:
                    break
    return got


async def _send_notifications(client: httpx.AsyncClient) -> None:
    """A create and a delete through RESTCONF itself, then a notification from an agent."""
    r = await client.put(f"{SB}/log-level", content=b'{"vpp-singbox:log-level": "debug"}',
                         headers={"content-type": "application/yang-data+json"})
    assert r.status_code == 201, r.text
    r = await client.delete(f"{SB}/log-level")
    assert r.status_code == 204, r.text
    await asyncio.to_thread(_notify)


def _notify() -> None:
    with sysrepo.SysrepoConnection() as conn:
        sess = conn.start_session("running")
        try:
            sess.notification_send("/vpp-singbox:endpoint-up", {"endpoint": "e1", "round-trip-time": 7})
        finally:
            sess.stop()


def _kind(event: str, encoding: str) -> str:
    if encoding == "json":
        body: dict[str, Any] = json.loads(event)["ietf-restconf:notification"]
        return next(k for k in body if k != "eventTime")
    root = ET.fromstring(event)
    assert root.tag == "{urn:ietf:params:xml:ns:netconf:notification:1.0}notification"
    return root[1].tag


def test_one_notification_reaches_a_hundred_streams(restconf: RestconfServer) -> None:
    """100 concurrent SSE clients, JSON and XML, HTTP/1.1 and HTTP/2: each receives the three notifications in
    full and its response is never cut (the client saw "incomplete chunked read" before)."""

    async def run() -> list[tuple[str, list[str] | BaseException]]:
        subscribed = asyncio.Event()
        counter = [0]
        done = asyncio.Event()
        limits = httpx.Limits(max_connections=CLIENTS + 10)
        kw: dict[str, Any] = {"base_url": restconf.base_url, "verify": restconf.ca or False, "auth": ADMIN,
                              "timeout": httpx.Timeout(120.0), "limits": limits}
        async with httpx.AsyncClient(http2=False, **kw) as h1, httpx.AsyncClient(http2=True, **kw) as h2:
            encodings = ["json" if i % 2 else "xml" for i in range(CLIENTS)]
            tasks = [
                asyncio.create_task(_stream(h2 if i % 4 == 0 else h1, f"/restconf/streams/NETCONF/{enc}", subscribed,
                                            counter, done))
                for i, enc in enumerate(encodings)
            ]
            try:
                await asyncio.wait_for(subscribed.wait(), 120)
            except TimeoutError:
                raise AssertionError(f"only {counter[0]} of {CLIENTS} streams started") from None
            await _send_notifications(h2)
            results = await asyncio.gather(*tasks, return_exceptions=True)
        return list(zip(encodings, results, strict=True))

    outcomes = asyncio.run(run())
    cut = [(enc, repr(r)) for enc, r in outcomes if isinstance(r, BaseException)]
    assert not cut, f"{len(cut)} of {CLIENTS} streams failed: {cut[:5]}"
    for enc, got in outcomes:
        assert isinstance(got, list)
        kinds = [_kind(e, enc) for e in got]
        change, up = ("ietf-netconf-notifications:netconf-config-change", "vpp-singbox:endpoint-up") if enc == "json" \
            else (f"{{{NCN_NS}}}netconf-config-change", f"{{{SBX_NS}}}endpoint-up")
        assert kinds.count(up) == 1 and kinds.count(change) >= 2, kinds


def test_stream_clients_leaving_uncleanly_are_one_log_line(restconf: RestconfServer) -> None:
    """An SSE client that leaves its TLS connection mid-record made asyncio print Hypercorn's traceback
    (`ssl.SSLError: [SSL: RECORD_LAYER_FAILURE]` in client_connected_cb) unstructured on stderr: now one structured
    line, and the server keeps serving."""
    import base64
    import socket
    import ssl

    host, port = restconf.base_url.split("//")[1].rsplit(":", 1)
    ctx = ssl.create_default_context(cafile=restconf.ca)
    auth = base64.b64encode(f"{ADMIN[0]}:{ADMIN[1]}".encode()).decode()
    for _ in range(2):
        with ctx.wrap_socket(socket.create_connection((host, int(port))), server_hostname=host) as tls:
            tls.sendall(f"GET /restconf/streams/NETCONF/json HTTP/1.1\r\nHost: {host}\r\nAuthorization: Basic {auth}"
                        "\r\n\r\n".encode())
            assert tls.recv(100).startswith(b"HTTP/1.1 200")
            os.write(tls.fileno(), b"\x17\x03\x03\x00\x10" + os.urandom(16))  # a record the server cannot read
            time.sleep(0.3)
    with restconf.client() as c:
        assert c.get("/restconf/yang-library-version").status_code == 200
    deadline = time.monotonic() + 10
    while "client connection ended uncleanly" not in restconf.log() and time.monotonic() < deadline:
        time.sleep(0.1)
    log = restconf.log()
    assert "client connection ended uncleanly" in log
    assert "Traceback" not in log, log[-3000:]
    for line in log.splitlines():
        json.loads(line)  # every line is structured

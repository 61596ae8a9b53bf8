"""RFC 8040 §6 event streams under load: every client gets every notification, none is cut."""

from __future__ import annotations

import asyncio
import os
import json
import xml.etree.ElementTree as ET
from typing import Any

import httpx
import sysrepo

from rcserver import ADMIN, RestconfServer

NCN_NS = "urn:ietf:params:xml:ns:yang:ietf-netconf-notifications"
SBX_NS = "urn:vpp-singbox:yang:vpp-singbox"
SB = "/restconf/data/vpp-singbox:singbox"
CLIENTS = int(os.environ.get("RESTCONF_STREAM_CLIENTS", "100"))
EVENTS = 3  # the endpoint's create and delete (netconf-config-change) and one endpoint-up


async def _stream(client: httpx.AsyncClient, url: str, subscribed: asyncio.Event, counter: list[int],
                  done: asyncio.Event) -> list[str]:
    """Reads events until EVENTS arrived; an `httpx` error (the server cutting the response) propagates."""
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
                if len(got) == EVENTS:
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
        kinds = sorted(_kind(e, enc) for e in got)
        if enc == "json":
            assert kinds == ["ietf-netconf-notifications:netconf-config-change"] * 2 + ["vpp-singbox:endpoint-up"]
        else:
            assert kinds == [f"{{{NCN_NS}}}netconf-config-change"] * 2 + [f"{{{SBX_NS}}}endpoint-up"], kinds

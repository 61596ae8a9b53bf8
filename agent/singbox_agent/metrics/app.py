"""The exporter's ASGI application: `GET /metrics` (authenticated) renders a fresh snapshot of the stats source.

Every request needs HTTP Basic credentials of the shared user store, checked as RESTCONF checks them
(`mgmt.http_basic`: 401 otherwise, 429 while the failed-login back-off holds the address or user, before anything
else is looked at). The stats read and the rendering run in one worker thread (the VPP reader is not thread-safe and
concurrent scrapes then simply queue), credential checks in another pool: the event loop never waits for
either. The format follows the Accept header: OpenMetrics when the client lists it (Prometheus does), else
the Prometheus text format 0.0.4; gzip when the client accepts it.
"""

from __future__ import annotations

import asyncio
import gzip
import math
from collections.abc import Awaitable, Callable, MutableMapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import structlog

from singbox_agent.metrics import render, snapshot
from singbox_agent.metrics.segment import StatsSource
from singbox_agent.mgmt import http_basic

log = structlog.get_logger("metrics.app")

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]

REALM = 'Basic realm="vpp-singbox metrics", charset="UTF-8"'
INDEX = b"vpp-singbox metrics exporter: GET /metrics\n"
GZIP_MIN_BYTES = 4096


def wants_openmetrics(accept: str) -> bool:
    return "application/openmetrics-text" in accept.lower()


def wants_gzip(accept_encoding: str) -> bool:
    return any(part.split(";")[0].strip().lower() == "gzip" for part in accept_encoding.split(","))


class MetricsApp:
    def __init__(self, source: StatsSource, auth: http_basic.BasicAuthenticator, *, agent_version: str,
                 versions: Callable[[], snapshot.Versions | None] = lambda: None) -> None:
        self.source = source
        self.auth = auth
        self.agent_version = agent_version
        self.versions = versions
        self.reader = ThreadPoolExecutor(max_workers=1, thread_name_prefix="metrics-read")
        self.checker = ThreadPoolExecutor(max_workers=2, thread_name_prefix="metrics-auth")

    def scrape(self, openmetrics: bool) -> bytes:
        """One exposition (blocking: the reader thread)."""
        try:
            segment = self.source.read()
        except Exception as exc:  # noqa: BLE001 - a failing read is a dataplane that is not there, not a 500
            log.warning("stats read failed", error=str(exc))
            segment = None
        snap = snapshot.build(segment, agent_version=self.agent_version, versions=self.versions())
        return render.render(snap, openmetrics=openmetrics).encode()

    def close(self) -> None:
        self.reader.shutdown(wait=True, cancel_futures=True)
        self.checker.shutdown(wait=True, cancel_futures=True)
        self.source.close()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        loop = asyncio.get_running_loop()
        client = scope.get("client")
        source = str(client[0]) if client else ""
        try:
            await loop.run_in_executor(self.checker, self.auth.authenticate, headers.get("authorization"), source)
        except http_basic.Unauthenticated as exc:
            await _respond(send, 401, f"{exc}\n".encode(), [(b"www-authenticate", REALM.encode())])
            return
        except http_basic.BackingOff as exc:
            await _respond(send, 429, f"{exc}\n".encode(),
                           [(b"retry-after", str(max(1, math.ceil(exc.retry_after))).encode())])
            return
        method, path = scope["method"], scope["path"]
        if path not in ("/", "/metrics"):
            await _respond(send, 404, b"not found: GET /metrics\n")
            return
        if method not in ("GET", "HEAD"):
            await _respond(send, 405, b"method not allowed\n", [(b"allow", b"GET, HEAD")])
            return
        if path == "/":
            await _respond(send, 200, INDEX, head=method == "HEAD")
            return
        openmetrics = wants_openmetrics(headers.get("accept", ""))
        body = await loop.run_in_executor(self.reader, self.scrape, openmetrics)
        extra = [(b"content-type", (render.OPENMETRICS_CONTENT_TYPE if openmetrics
                                    else render.TEXT_CONTENT_TYPE).encode()),
                 (b"cache-control", b"no-store"), (b"vary", b"Accept, Accept-Encoding")]
        if len(body) >= GZIP_MIN_BYTES and wants_gzip(headers.get("accept-encoding", "")):
            body = gzip.compress(body, compresslevel=1)
            extra.append((b"content-encoding", b"gzip"))
        await _respond(send, 200, body, extra, head=method == "HEAD")


async def _respond(send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]] | None = None, *,
                   head: bool = False) -> None:
    all_headers = list(headers or [])
    if not any(k == b"content-type" for k, _ in all_headers):
        all_headers.append((b"content-type", b"text/plain; charset=utf-8"))
    all_headers.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": all_headers})
    await send({"type": "http.response.body", "body": b"" if head else body})

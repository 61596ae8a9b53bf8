"""The exporter's ASGI application: `GET /metrics` (authenticated) renders a fresh snapshot of the stats source.

Every request needs HTTP Basic credentials of the shared user store, checked as RESTCONF checks them
(`mgmt.http_basic`: 401 otherwise, 429 while the failed-login back-off holds the address or user, before anything
else is looked at). The stats read and the rendering run in one worker thread (the VPP reader is not thread-safe), credential checks
in another pool: the event loop never waits for either. Requests that come while a read is under way get that
read's exposition instead of queueing one each: however many requests arrive at once (HTTP/2 streams opened and
reset as fast as a client can send them, CVE-2023-44487's "rapid reset", which no stream limit holds), the
exporter reads and renders at most once per format at a time. A request with both Content-Length and
Transfer-Encoding is refused (400, connection closed: RFC 9112 §6.3) before anything else, as RESTCONF does. The format follows the Accept header: OpenMetrics when the client lists it (Prometheus does), else
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
        # called with the client's (address, port) once it made an authenticated request (connguard.Limits.trust)
        self.trusted: Callable[[tuple[str, int]], None] = lambda peer: None
        self._reading: dict[bool, asyncio.Future[bytes]] = {}  # the read under way, by format (openmetrics)
        self.waiting = 0  # requests waiting for a read

    async def exposition(self, openmetrics: bool) -> bytes:
        """The read under way for this format, or a new one."""
        reading = self._reading.get(openmetrics)
        if reading is None:
            reading = asyncio.get_running_loop().run_in_executor(self.reader, self.scrape, openmetrics)
            self._reading[openmetrics] = reading
            reading.add_done_callback(lambda done: self._reading.pop(openmetrics, None)
                                      if self._reading.get(openmetrics) is done else None)
        self.waiting += 1
        try:
            return await asyncio.shield(reading)  # a request that goes away does not cancel the others' read
        finally:
            self.waiting -= 1

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
        if "content-length" in headers and "transfer-encoding" in headers:
            # RFC 9112 §6.3: how requests are smuggled past a proxy that reads the other one; refused, not guessed,
            # and the connection closed (h11 had read the rest of the stream as the next request)
            close = [(b"connection", b"close")] if scope.get("http_version") in ("1.0", "1.1") else []
            await _respond(send, 400, b"a request must not have both Content-Length and Transfer-Encoding\n", close)
            return
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
        if client:
            self.trusted((str(client[0]), int(client[1])))
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
        body = await self.exposition(openmetrics)
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

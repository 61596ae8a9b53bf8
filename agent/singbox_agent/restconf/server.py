"""The ASGI side: Starlette app, authentication, event streams; Hypercorn serves it (HTTP/1.1 + HTTP/2, TLS).

Thin by design: each request is authenticated, its body read with a size cap, and the whole RESTCONF work
(parsing against the YANG context, sysrepo, printing) runs in a worker thread through `Handler.handle`, because
sysrepo's API is blocking.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import dataclasses
import hashlib
import hmac
import secrets
import threading
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import structlog
from starlette.responses import Response, StreamingResponse
from starlette.types import Receive, Scope, Send

from singbox_agent.mgmt.users import UserStore
from singbox_agent.restconf import clientcert
from singbox_agent.restconf.errors import RestconfError, bad_request, too_big, unauthorized
from singbox_agent.restconf.handler import MAX_BODY_BYTES, Handler, HttpRequest, HttpResponse
from singbox_agent.restconf.media import error_encoding
from singbox_agent.restconf.datastore import acquired_context
from singbox_agent.restconf.streams import EventStreams
from singbox_agent.restconf.uri import Kind, parse_request

log = structlog.get_logger("restconf")


@dataclass
class _CachedLogin:
    stored_hash: str


class Authenticator:
    """HTTP Basic against the shared user store (RFC 8040 §2.5).

    A crypt(3) check costs milliseconds; a successful (user, password) pair is remembered as an HMAC under a
    per-process key together with the stored hash it verified against, so a changed password invalidates it at once.
    """

    def __init__(self, users: UserStore) -> None:
        self.users = users
        self._key = secrets.token_bytes(32)
        self._ok: dict[tuple[str, bytes], _CachedLogin] = {}
        self._lock = threading.Lock()

    def authenticate(self, header: str | None) -> str:
        if header is None:
            raise unauthorized()
        scheme, _, value = header.strip().partition(" ")
        if scheme.lower() != "basic":
            raise unauthorized("Only HTTP Basic authentication is supported")
        try:
            decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            raise unauthorized("Malformed Basic credentials") from None
        user, sep, password = decoded.partition(":")
        if not sep or not user:
            raise unauthorized("Malformed Basic credentials")
        entry = self.users.get(user)
        mac = hmac.new(self._key, password.encode(), hashlib.sha256).digest()
        with self._lock:
            cached = self._ok.get((user, mac))
        if cached is not None and entry is not None and entry.password_hash == cached.stored_hash:
            return user
        if not self.users.verify_password(user, password):
            log.info("authentication failed", user=user)
            raise unauthorized("Invalid user name or password")
        assert entry is not None and entry.password_hash is not None
        with self._lock:
            if len(self._ok) > 10_000:
                self._ok.clear()
            self._ok[(user, mac)] = _CachedLogin(entry.password_hash)
        return user


# How much of a chunked body beyond the limit is read (and dropped) before the 413, so that a client still
# uploading sees the answer rather than a reset connection; past it the connection is closed.
_DRAIN_LIMIT = 4 * 1024 * 1024


class ClientGone(Exception):
    """The client went away before its request body was complete: nothing of the request may be acted on."""

    def __init__(self, received: int, declared: int | None) -> None:
        super().__init__(f"request body incomplete: {received} of {declared if declared is not None else '?'} bytes")
        self.received = received
        self.declared = declared


class RestconfApp:
    """Starlette application and the objects it shares across requests."""

    def __init__(
        self,
        handler: Handler,
        auth: Authenticator,
        streams: EventStreams,
        *,
        workers: int = 16,
        cert_to_name: clientcert.CertToName | None = None,
        max_body: int = MAX_BODY_BYTES,
    ) -> None:
        self.handler = handler
        self.cert_to_name = cert_to_name  # None: client certificates are not asked for
        self.max_body = max_body
        self.auth = auth
        self.streams = streams
        self.executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="restconf")
        self.app = self.asgi

    async def asgi(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Every request, whatever its method, reaches `endpoint`: the RESTCONF parser is the router (it answers
        unsupported methods with 405 and an errors body, which Starlette's router would answer in plain text)."""
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
        result = await self.endpoint(scope, receive)
        if result is None:
            return
        if isinstance(result, Response):  # event streams
            await result(scope, receive, send)
            return
        resp, method = result
        # Straight to ASGI: a Starlette Response per reply would only copy these headers once more.
        headers = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in resp.headers]
        if resp.content_type is not None:
            headers.append((b"content-type", resp.content_type.encode("latin-1")))
        if not (method == "HEAD" and any(k == b"content-length" for k, _ in headers)):
            headers.append((b"content-length", str(len(resp.body)).encode()))
        await send({"type": "http.response.start", "status": resp.status, "headers": headers})
        await send({"type": "http.response.body", "body": b"" if method == "HEAD" else resp.body})

    async def _run(self, fn: Any, *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self.executor, fn, *args)

    async def endpoint(self, scope: Scope, receive: Receive) -> tuple[HttpResponse, str] | Response | None:
        """The reply to one request: (response, method), a streaming Response for an event stream, or None when
        the client went away before its request was complete (nothing was done; nobody is left to answer)."""
        raw = scope.get("raw_path") or scope["path"].encode()
        raw_path = raw.decode("latin-1").split("?", 1)[0]
        raw_query = scope.get("query_string", b"").decode("latin-1")
        # RFC 9110: field names are case-insensitive; repeated fields combine with ", " (as Starlette did).
        headers: dict[str, str] = {}
        for key, value in scope["headers"]:
            name, text = key.decode("latin-1").lower(), value.decode("latin-1")
            headers[name] = f"{headers[name]}, {text}" if name in headers else text
        method = str(scope["method"]).upper()
        try:
            body = await self._read_body(headers, receive)
        except RestconfError as exc:
            return self.handler.failure(exc, error_encoding(headers.get("accept"))), method
        except ClientGone as exc:
            log.info("request dropped: the client went away before its body was complete", method=method,
                     path=raw_path, received=exc.received, declared=exc.declared)
            return None
        if raw_path.startswith("/restconf/streams/") and method == "GET":
            try:
                user = await self._run(self._user, headers.get("authorization"), self._certificate(scope))
            except RestconfError as exc:
                return self.handler.failure(exc, error_encoding(headers.get("accept"))), method
            return await self._stream(user, method, raw_path, raw_query, headers)
        req = HttpRequest(method, raw_path, raw_query, headers, body, None)
        # One hop to a worker thread for authentication and the request together.
        resp: HttpResponse = await self._run(self._authenticated, req, self._certificate(scope))
        return resp, method

    def _certificate(self, scope: Scope) -> clientcert.PeerChain | None:
        """The verified client certificate chain of the request's connection, if client certificates are on."""
        if self.cert_to_name is None:
            return None
        return clientcert.peer_chain(dict(scope))

    def _user(self, authorization: str | None, chain: clientcert.PeerChain | None) -> str:
        """RFC 8040 §2.5: a certificate that cert-to-name maps to an existing user authenticates it; otherwise
        HTTP Basic decides (401 without it)."""
        if chain is not None and self.cert_to_name is not None:
            mapped = clientcert.map_certificate(chain, self.cert_to_name.entries())
            if mapped is not None and self.auth.users.get(mapped[0]) is not None:
                return mapped[0]
            log.info("client certificate maps to no user", entry=mapped[1] if mapped else None,
                     name=mapped[0] if mapped else None)
        return self.auth.authenticate(authorization)

    def _authenticated(self, req: HttpRequest, chain: clientcert.PeerChain | None) -> HttpResponse:
        try:
            user = self._user(req.headers.get("authorization"), chain)
        except RestconfError as exc:
            return self.handler.failure(exc, error_encoding(req.headers.get("accept")), req)
        return self.handler.handle(dataclasses.replace(req, user=user))

    async def _read_body(self, headers: dict[str, str], receive: Receive) -> bytes:
        """The whole body, at most `max_body` bytes; `ClientGone` when it did not arrive whole.

        A body beyond `max_body` is read and dropped up to a bound before the 413, so that a client still uploading
        a little too much gets the answer instead of a reset connection; one declared (Content-Length) past that
        bound is refused before any of it is read, and one that grows past it (chunked) when it does (the
        connection then closes). A client that goes away before its last byte (Content-Length not reached,
        chunked body without its last chunk, HTTP/2 stream reset) changes nothing: Hypercorn then delivers
        `http.disconnect` instead of a final `more_body=False` message.
        """
        limit = self.max_body
        declared_text = headers.get("content-length")
        declared: int | None = None
        if declared_text is not None:
            if not declared_text.isascii() or not declared_text.isdigit():
                raise bad_request("Invalid Content-Length")
            declared = int(declared_text)
            if declared > limit + _DRAIN_LIMIT:
                raise too_big(f"The request body exceeds {limit} bytes")
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                raise ClientGone(size, declared)
            chunk = message.get("body", b"")
            size += len(chunk)
            if size <= limit:
                chunks.append(chunk)
            else:
                chunks.clear()
                if size > limit + _DRAIN_LIMIT:
                    break
            if not message.get("more_body", False):
                break
        if size > limit:
            raise too_big(f"The request body exceeds {limit} bytes")
        if declared is not None and size != declared:  # the HTTP layer enforces it; never act on a partial body
            raise ClientGone(size, declared)
        return b"".join(chunks)

    @staticmethod
    def _to_response(resp: HttpResponse, method: str) -> Response:
        headers = dict(resp.headers)
        if method == "HEAD" and "Content-Length" in headers:
            out = Response(b"", status_code=resp.status, media_type=resp.content_type)
            for k, v in headers.items():
                out.headers[k] = v
            return out
        return Response(resp.body, status_code=resp.status, headers=headers, media_type=resp.content_type)

    async def _stream(
        self, user: str, method: str, raw_path: str, raw_query: str, headers: dict[str, str]
    ) -> Response:
        try:
            with acquired_context(self.handler.ds.conn) as ctx:
                parsed = parse_request(ctx, method, raw_path, raw_query)
            assert parsed.kind == Kind.STREAM and parsed.stream_encoding is not None
            subscription = await self._run(
                self.streams.subscribe, user, parsed.query, parsed.stream_encoding, asyncio.get_running_loop()
            )
        except Exception as exc:  # noqa: BLE001 - errors before the stream starts are ordinary error replies
            return self._to_response(self.handler.failure(exc, error_encoding(headers.get("accept"))), method)

        async def events() -> AsyncIterator[bytes]:
            try:
                yield b": stream " + (parsed.stream or "").encode() + b"\n\n"
                async for event in subscription.events():
                    if not event:
                        yield b": keepalive\n\n"
                        continue
                    yield b"".join(b"data: " + line + b"\n" for line in event.splitlines()) + b"\n"
            finally:
                # Not awaited: when the client goes, Starlette cancels the response and cancels again every await
                # made here, which could drop the close before a worker took it. Once the server has stopped the
                # executor, close_all() has closed every stream (the generator may be finalized only after that).
                if not subscription.closed:
                    self.executor.submit(subscription.close)

        return StreamingResponse(
            events(), media_type="text/event-stream", headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
        )

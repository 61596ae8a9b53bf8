"""The ASGI side: Starlette app, authentication, event streams; Hypercorn serves it (HTTP/1.1 + HTTP/2, TLS).

Thin by design: each request is authenticated, its body read with a size cap, and the whole RESTCONF work
(parsing against the YANG context, sysrepo, printing) runs in a worker thread through `Handler.handle`, because
sysrepo's API is blocking.
"""

from __future__ import annotations

import asyncio
import dataclasses
import ipaddress
import math
import re
import socket
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import structlog
from hypercorn.asyncio import tcp_server
from hypercorn.utils import parse_socket_addr
from starlette.responses import Response, StreamingResponse
from starlette.types import Receive, Scope, Send

from singbox_agent.mgmt import http_basic
from singbox_agent.mgmt.users import UserStore
from singbox_agent.restconf import clientcert
from singbox_agent.restconf.errors import RestconfError, bad_request, too_big, unauthorized
from singbox_agent.restconf.handler import MAX_BODY_BYTES, Handler, HttpRequest, HttpResponse
from singbox_agent.restconf.media import error_encoding
from singbox_agent.restconf.store import acquired_context
from singbox_agent.restconf.dynamic_subscriptions import PATH_PREFIX as SUBSCRIPTION_PATH
from singbox_agent.restconf.streams import EventStreams
from singbox_agent.restconf.uri import HOST_META_PATHS, IMPLEMENTED_METHODS, Kind, parse_request

log = structlog.get_logger("restconf")


class BackingOff(RestconfError):
    """A login refused unchecked: too many failures of its address or user lately (`LoginGuard`); 429."""

    def __init__(self, refusal: http_basic.BackingOff) -> None:
        wait = max(1, math.ceil(refusal.retry_after))
        super().__init__("protocol", "access-denied", f"{refusal}; try again in {wait} s", status=429,
                         retry_after=wait)  # Retry-After, as for every RestconfError that has one


# RFC 9112 §3.2.2 absolute-form request-target (RFC 3986 absolute-URI, its query already split off by Hypercorn)
_ABSOLUTE_FORM = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://(?P<authority>[^/?#]*)(?P<path>/[^#]*)?$")
# RFC 9110 §7.2 Host = uri-host [ ":" port ] (RFC 3986 §3.2.2-3): an IP-literal — an IPv6 address (checked by
# ipaddress) or IPvFuture in brackets — or a reg-name (IPv4 addresses are reg-names too), possibly empty
_HOST = re.compile(r"^(?:\[(?P<literal>[^\]]*)\]|(?:[A-Za-z0-9._~!$&'()*+,;=-]|%[0-9A-Fa-f]{2})*)(?::[0-9]*)?$")
_IPV_FUTURE = re.compile(r"^[vV][0-9A-Fa-f]+\.[A-Za-z0-9._~!$&'()*+,;=:-]+$")
SUBSCRIPTION_METHODS = ("GET", "HEAD", "OPTIONS")  # an RFC 8650 subscription's URI: its owner reads it


def valid_host(value: str) -> bool:
    """Whether `value` is a Host field value RFC 9110 §7.2 allows."""
    found = _HOST.match(value)
    if found is None:
        return False
    literal = found["literal"]
    if literal is None or _IPV_FUTURE.match(literal):
        return True
    if "%" in literal:  # a zone id is not RFC 3986's (RFC 6874 encodes it, for URIs only)
        return False
    try:
        ipaddress.IPv6Address(literal)
    except ValueError:
        return False
    return True


def authenticate(auth: http_basic.BasicAuthenticator, header: str | None, source: str) -> str:
    """`auth.authenticate` with its refusals as the RestconfErrors to answer (401, or 429 while backing off)."""
    try:
        return auth.authenticate(header, source)
    except http_basic.Unauthenticated as exc:
        raise unauthorized(str(exc)) from None
    except http_basic.BackingOff as exc:
        raise BackingOff(exc) from None


# How much of a chunked body beyond the limit is read (and dropped) before the 413, so that a client still
# uploading sees the answer rather than a reset connection; past it the connection is closed.
_DRAIN_LIMIT = 4 * 1024 * 1024


class ClientGone(Exception):
    """The client went away before its request body was complete: nothing of the request may be acted on."""

    def __init__(self, received: int, declared: int | None) -> None:
        super().__init__(f"request body incomplete: {received} of {declared if declared is not None else '?'} bytes")
        self.received = received
        self.declared = declared


# hypercorn writes a reply's head and its body apart (two TLS records, two TCP segments: the client woke for the head
# alone). Corked around the pair, the kernel sends them as one segment. hypercorn keeps the socket to itself, so its
# connection handler is wrapped to remember each connection's socket by the client's address (as clientcert.install
# does for certificate chains). Only HTTP/1.x replies up to _CORK_MAX: a send that waits while corked (a client
# that does not read, HTTP/2 flow control) would hold the tail of what was written for up to 200 ms (the kernel's
# cork limit); on HTTP/1.x a reply this small never waits (below asyncio's 64 KiB write high-water mark).
_SOCKETS: dict[tuple[str, int], Any] = {}
_CORK_MAX = 16 * 1024


def remember_sockets() -> None:
    if getattr(tcp_server.TCPServer.run, "_remembers_socket", False):
        return
    original = tcp_server.TCPServer.run

    async def run(self: tcp_server.TCPServer) -> None:
        key = None
        sock = self.writer.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            try:
                address = parse_socket_addr(sock.family, sock.getpeername())
            except OSError:
                address = None
            if address:
                key = (str(address[0]), int(address[1]))
                _SOCKETS[key] = sock
        try:
            await original(self)
        finally:
            if key is not None and _SOCKETS.get(key) is sock:
                del _SOCKETS[key]

    run._remembers_socket = True  # type: ignore[attr-defined]
    tcp_server.TCPServer.run = run  # type: ignore[method-assign]


def _cork(sock: Any, on: bool) -> bool:
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_CORK, 1 if on else 0)
        return True
    except OSError:  # the connection is going
        return False


class RestconfApp:
    """Starlette application and the objects it shares across requests."""

    def __init__(
        self,
        handler: Handler,
        auth: http_basic.BasicAuthenticator,
        streams: EventStreams,
        *,
        workers: int = 16,
        cert_to_name: clientcert.CertToName | None = None,
        max_body: int = MAX_BODY_BYTES,
    ) -> None:
        self.handler = handler
        self.cert_to_name = cert_to_name  # None: client certificates are not asked for
        self.max_body = max_body  # these may be changed while serving (settings), read once per request
        self.max_header_size = 16 * 1024
        self.body_timeout = 60.0
        # Settings changed by a commit are read again (in a worker thread) before the next request is read.
        self.settings_stale: Callable[[], bool] = lambda: False
        self.refresh_settings: Callable[[], None] = lambda: None
        self.auth = auth
        self.streams = streams
        # called with the client's (address, port) once a request of its connection authenticated (HTTP Basic or
        # a client certificate), from a worker thread: connguard's Limits keep that connection (__main__)
        self.trusted: Callable[[tuple[str, int]], None] = lambda peer: None
        handler.subscriptions = streams.dynamic  # RFC 8650 RPCs reach the subscriptions the SSE route serves
        self.executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="restconf")
        self.app = self.asgi
        remember_sockets()

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
        if resp.status not in (204, 304) and method != "HEAD":
            # RFC 9110 §8.6: no Content-Length in a 204, nor in a 304 or a reply to HEAD unless it is the length of
            # the content a 200 / the GET would carry (HttpResponse's own header then: the handler knows it)
            headers.append((b"content-length", str(len(resp.body)).encode()))
        client = scope.get("client")
        small = len(resp.body) <= _CORK_MAX and scope.get("http_version") in ("1.0", "1.1")
        sock = _SOCKETS.get((str(client[0]), int(client[1]))) if client and small else None
        corked = sock is not None and _cork(sock, True)
        try:
            await send({"type": "http.response.start", "status": resp.status, "headers": headers})
            await send({"type": "http.response.body", "body": b"" if method == "HEAD" else resp.body})
        finally:
            if corked:
                _cork(sock, False)

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
        absolute = _ABSOLUTE_FORM.match(raw_path)
        if absolute is not None:
            # RFC 9112 §3.2.2: "a server MUST accept the absolute-form in requests"; its authority replaces Host
            # (§3.2.2, RFC 9110 §7.2), which the yang-library locations follow. It was a 404 "No resource at".
            raw_path = absolute["path"] or "/"
            headers["host"] = absolute["authority"].rpartition("@")[2]
        method = str(scope["method"]).upper()
        client = scope.get("client")
        source = str(client[0]) if client else ""
        peer = (source, int(client[1])) if client else None
        if self.settings_stale():
            await self._run(self.refresh_settings)
        try:
            self._check_head(scope, raw)
            body = await self._read_body(headers, receive)
        except RestconfError as exc:
            return self.handler.failure(exc, error_encoding(headers.get("accept"))), method
        except ClientGone as exc:
            log.info("request dropped: the client went away before its body was complete", method=method,
                     path=raw_path, received=exc.received, declared=exc.declared)
            return None
        if raw_path.startswith("/restconf/streams/") and method == "GET":
            try:
                user = await self._run(self._user, headers.get("authorization"), self._certificate(scope), source,
                                       peer)
            except RestconfError as exc:
                return self._refusal(exc, headers), method
            return await self._stream(user, method, raw_path, raw_query, headers)
        if raw_path.startswith(SUBSCRIPTION_PATH) and method == "GET":
            return await self._subscription(raw_path.removeprefix(SUBSCRIPTION_PATH), headers, scope, source, peer)
        req = HttpRequest(method, raw_path, raw_query, headers, body, None)
        if raw_path.startswith(SUBSCRIPTION_PATH) and method in IMPLEMENTED_METHODS:
            # the other methods on a subscription's URI: HEAD and OPTIONS answered, the rest 405 (they were 404s,
            # "No resource", for a URI whose GET streams)
            sub: HttpResponse = await self._run(self._subscription_resource, req, self._certificate(scope), source,
                                                peer)
            return sub, method
        # One hop to a worker thread for authentication and the request together.
        resp: HttpResponse = await self._run(self._authenticated, req, self._certificate(scope), source, peer)
        return resp, method

    def _certificate(self, scope: Scope) -> clientcert.PeerChain | None:
        """The verified client certificate chain of the request's connection, if client certificates are on."""
        if self.cert_to_name is None:
            return None
        return clientcert.peer_chain(dict(scope))

    def _user(self, authorization: str | None, chain: clientcert.PeerChain | None, source: str,
              peer: tuple[str, int] | None = None) -> str:
        """RFC 8040 §2.5: a certificate that cert-to-name maps to an existing user authenticates it; otherwise
        HTTP Basic decides (401 without it; 429 while its address or user is held back). In a worker thread; the
        connection from `peer` is then trusted (`trusted`)."""
        user = self._identify(authorization, chain, source)
        if peer is not None:
            self.trusted(peer)
        return user

    def _identify(self, authorization: str | None, chain: clientcert.PeerChain | None, source: str) -> str:
        if chain is not None and self.cert_to_name is not None:
            mapped = clientcert.map_certificate(chain, self.cert_to_name.entries())
            if mapped is not None and self.auth.users.get(mapped[0]) is not None:
                return mapped[0]
            log.info("client certificate maps to no user", entry=mapped[1] if mapped else None,
                     name=mapped[0] if mapped else None)
        return authenticate(self.auth, authorization, source)

    def _authenticated(self, req: HttpRequest, chain: clientcert.PeerChain | None, source: str,
                       peer: tuple[str, int] | None = None) -> HttpResponse:
        if req.raw_path in HOST_META_PATHS:
            # RFC 8040 §3.1 root discovery happens before a client knows where the API is; host-meta (RFC 6415)
            # names only the API root, nothing protected (§2.5 protects the resources it points to)
            return self.handler.handle(req)
        try:
            user = self._user(req.headers.get("authorization"), chain, source, peer)
        except RestconfError as exc:
            return self._refusal(exc, req.headers, req)
        return self.handler.handle(dataclasses.replace(req, user=user))

    def _subscription_resource(self, req: HttpRequest, chain: clientcert.PeerChain | None, source: str,
                               peer: tuple[str, int] | None = None) -> HttpResponse:
        """HEAD, OPTIONS and the unsupported methods on an RFC 8650 subscription URI, for its owner while it is not
        opened (404 to anyone else, as GET). In a worker thread."""
        try:
            user = self._user(req.headers.get("authorization"), chain, source, peer)
            self.streams.dynamic.check(user, req.raw_path.removeprefix(SUBSCRIPTION_PATH))
            if req.method == "OPTIONS":
                return HttpResponse(200, headers=[("Allow", ", ".join(SUBSCRIPTION_METHODS))])
            if req.method == "HEAD":  # the GET's headers (RFC 9110 §9.3.2), the subscription left unopened
                return HttpResponse(200, content_type="text/event-stream")
            raise RestconfError("protocol", "operation-not-supported",
                                f"Method {req.method} is not allowed on a subscription's URI (RFC 8650 §3.4)",
                                status=405, allowed=SUBSCRIPTION_METHODS)
        except RestconfError as exc:
            return self.handler.failure(exc, error_encoding(req.headers.get("accept")), req)

    def _refusal(self, exc: RestconfError, headers: dict[str, str], req: HttpRequest | None = None) -> HttpResponse:
        """The answer to a request that authenticated nobody (401, or 429 with Retry-After while backing off)."""
        return self.handler.failure(exc, error_encoding(headers.get("accept")), req)

    def _check_head(self, scope: Scope, raw_target: bytes) -> None:
        """The request line and header fields within `max_header_size` (431), framing without ambiguity (400).

        h11 enforces its limit only on a head that arrives in pieces, so one sent at once is measured here; HTTP/2
        header lists are measured the same way (the limit the server advertises binds nobody)."""
        target = len(raw_target) + len(scope.get("query_string", b""))
        if target > self.max_header_size:
            # RFC 9112 §3 (RFC 7230 §3.1.1): a request-target longer than the server parses is 414, so that a
            # client tells a URI too long (a huge key) from too many or too large header fields (431)
            raise RestconfError("transport", "too-big",
                                f"The request target exceeds {self.max_header_size} bytes", status=414)
        size = target + sum(len(k) + len(v) + 4 for k, v in scope["headers"])
        if size > self.max_header_size:
            raise RestconfError("transport", "too-big",
                                f"The request head exceeds {self.max_header_size} bytes", status=431)
        for name, value in scope["headers"]:
            if any(byte < 0x20 and byte != 0x09 or byte == 0x7F for byte in value):
                # RFC 9110 §5.5: no control characters in a field value (h11 lets some through)
                raise bad_request(f"A control character in the header field {name.decode('latin-1')!r}")
        hosts = [v for k, v in scope["headers"] if k.lower() == b"host"]
        if len(hosts) > 1 or (not hosts and scope.get("http_version") == "1.1"):
            # RFC 9112 §3.2: 400 to an HTTP/1.1 request without Host and to any request with more than one Host
            # line (h11 refuses both before this; Hypercorn gives an HTTP/2 request one host field, its :authority)
            raise bad_request("A request must carry one Host header field" if hosts else
                              "An HTTP/1.1 request must carry a Host header field")
        if hosts and not valid_host(hosts[0].decode("latin-1")):
            # RFC 9112 §3.2: "... or a Host header field with an invalid field value" (RFC 9110 §7.2's grammar);
            # such a request was served, its Host only left out of the locations built on it
            raise bad_request("The Host header field is not uri-host [ \":\" port ] (RFC 9110 §7.2)")
        names = {k.lower() for k, _ in scope["headers"]}
        if b"content-length" in names and b"transfer-encoding" in names:
            # RFC 9112 §6.3: Transfer-Encoding wins, but a message with both is how requests are smuggled past
            # a proxy that reads the other one; refused rather than guessed.
            raise bad_request("A request must not have both Content-Length and Transfer-Encoding")

    async def _read_body(self, headers: dict[str, str], receive: Receive) -> bytes:
        """`_receive_body` within `body_timeout` seconds: a client trickling its body (or never ending it) holds a
        connection and a task that long at most, then gets 408."""
        try:
            async with asyncio.timeout(self.body_timeout):
                return await self._receive_body(headers, receive)
        except TimeoutError:
            raise RestconfError("transport", "operation-failed",
                                f"The request body did not arrive within {self.body_timeout:g} s",
                                status=408) from None

    async def _receive_body(self, headers: dict[str, str], receive: Receive) -> bytes:
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

    async def _subscription(self, id_text: str, headers: dict[str, str], scope: Scope, source: str,
                            peer: tuple[str, int] | None = None) -> tuple[HttpResponse, str] | Response:
        """RFC 8650 §3.4: the owner's GET of a dynamic subscription's URI; its notifications as server-sent events.
        Closing the connection ends the subscription."""
        dyn = self.streams.dynamic
        try:
            user = await self._run(self._user, headers.get("authorization"), self._certificate(scope), source, peer)
            entry = await self._run(dyn.attach, user, id_text, asyncio.get_running_loop())
        except RestconfError as exc:
            return self._refusal(exc, headers), "GET"

        async def events() -> AsyncIterator[bytes]:
            try:
                yield b": subscription " + str(entry.id).encode() + b"\n\n"
                async for event in dyn.events(entry):
                    if not event:
                        yield b": keepalive\n\n"
                        continue
                    yield b"".join(b"data: " + line + b"\n" for line in event.splitlines()) + b"\n"
            finally:
                if not entry.ended:  # not awaited, as for event streams
                    self.executor.submit(dyn.detach, entry)

        return StreamingResponse(
            events(), media_type="text/event-stream", headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
        )

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
                parsed = parse_request(ctx, method, raw_path, raw_query, self.handler.limits)
            assert parsed.kind == Kind.STREAM and parsed.stream_encoding is not None
            subscription = await self._run(
                self.streams.subscribe, user, parsed.query, parsed.stream_encoding, asyncio.get_running_loop(),
                self.handler.limits,
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

"""The HTTP adapter: serves a `MetricsApp` over HTTPS with Hypercorn (HTTP/1.1 and HTTP/2 by ALPN) on the
address the settings name, and moves to a new address when they change.

`Exporter.run` binds the socket itself (so an address not up yet or a port in use is one logged error, retried
every 2 s and on new settings, not a crash, and port 0 resolves to the port actually bound), hands it to Hypercorn,
and on a settings change or stop ends that server: Hypercorn first closes gracefully; connections still open after the grace time (Prometheus keeps its
connection alive between scrapes, and closing TLS waits for a close_notify an idle client never sends) are
aborted through `ServingLoop`.

The certificate is served from memory (`restconf.tls.read_pair`: the certificate and key read as one pair) and a
new pair is loaded into the live TLS contexts (`restconf.tls.load_pair`): new connections get it, open ones —
Prometheus' keep-alive scrape connection — keep theirs; the listener stays.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog
from hypercorn.asyncio import serve
from hypercorn.config import Config, Sockets

from singbox_agent.metrics.app import MetricsApp
from singbox_agent.metrics.connguard import MAX_PER_SOURCE, GuardedListener, Limits, default_total
from singbox_agent.metrics.settings import Settings
from singbox_agent.restconf.tls import load_pair, read_pair

log = structlog.get_logger("metrics.server")

GRACE_S = 1.0
RETRY_BIND_S = 2.0
TLS_CHECK_S = 10.0  # how often the certificate and key files are looked at while serving
# A TCP connection that never completes its TLS handshake is closed after this (Hypercorn's default: 60 s, a file
# descriptor held that long per connection opened and left); a scraper's handshake takes milliseconds.
HANDSHAKE_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class TlsFiles:
    certfile: Path
    keyfile: Path
    ca_certificate: Path | None = None  # what clients should trust, when known


class ServingLoop(asyncio.SelectorEventLoop):
    """An event loop that keeps the servers started on it, so that connections left open after the grace time
    can be aborted (Hypercorn cannot)."""

    def __init__(self) -> None:
        super().__init__()
        self.servers: list[asyncio.Server] = []

    async def create_server(self, *args: Any, **kwargs: Any) -> asyncio.Server:
        server = await super().create_server(*args, **kwargs)
        self.servers.append(server)
        return server


def _abort(servers: list[asyncio.Server]) -> None:
    for server in servers:
        server.close()
        if sys.version_info >= (3, 13):
            server.abort_clients()


def tls_signature(tls: TlsFiles) -> tuple[tuple[int, int, int], ...] | None:
    """What tells the certificate and key files' content apart over time (inode, size, mtime of each); None while
    one of them is missing."""
    try:
        return tuple((st.st_ino, st.st_size, st.st_mtime_ns) for st in (tls.certfile.stat(), tls.keyfile.stat()))
    except OSError:
        return None


class ServingConfig(Config):
    """Hypercorn's configuration with the TLS pair in memory (`pem`) instead of paths read at bind time (a renewal
    then could pair a new key with the old certificate), keeping the contexts it makes so that a new pair can be
    loaded into them."""

    def __init__(self, pem: bytes, listener: GuardedListener) -> None:
        super().__init__()
        self.pem = pem
        self.listener = listener
        self.ssl_contexts: list[ssl.SSLContext] = []
        self.ssl_handshake_timeout = HANDSHAKE_TIMEOUT_S

    def create_sockets(self) -> Sockets:
        return Sockets([self.listener], [], [])

    def create_ssl_context(self) -> ssl.SSLContext | None:
        # Hypercorn's own context (Config.create_ssl_context), with the pair loaded from memory
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.set_ciphers(self.ciphers)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2  # RFC 9113 §9.2
        # RFC 9113 §9.2.1: no compression. No TLS 1.2 renegotiation (RFC 9113 §9.2.1 forbids it under HTTP/2
        # too; a handshake's CPU at the client's pace on a connection no accept-time limit sees): CPython's default
        # already, kept explicit since Hypercorn's own context assigns the options rather than adding to them.
        ctx.options |= ssl.OP_NO_COMPRESSION | ssl.OP_NO_RENEGOTIATION
        ctx.set_alpn_protocols(self.alpn_protocols)
        load_pair([ctx], self.pem)
        self.ssl_contexts.append(ctx)
        return ctx


def bind(address: str, port: int) -> GuardedListener:
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    sock = GuardedListener(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        sock.bind((address, port))
        sock.listen(128)
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock


class Exporter:
    """Serves `app` with `tls` wherever `read_settings` says, until `stop` is set; `changed` set means: read the
    settings again. `on_serving(settings, port)` is called after each bind (port = the bound one), and with
    port None when nothing listens (disabled, or the bind failed).

    The certificate and key files are looked at every `tls_check_s`, and at once when `tls_changed` is set (this
    exporter renewed them): files replaced since (either daemon renewed the generated certificate, an operator
    replaced the --cert files) are served to new connections from then on — once they stayed the same for one look
    and load as a pair — without a new bind: open connections keep the certificate they started with."""

    def __init__(self, app: MetricsApp, tls: TlsFiles, read_settings: Callable[[], Awaitable[Settings]],
                 on_serving: Callable[[Settings, int | None], None] = lambda s, p: None,
                 tls_check_s: float = TLS_CHECK_S, max_connections: int | None = None,
                 max_per_source: int = MAX_PER_SOURCE) -> None:
        self.app = app
        self.tls = tls
        self.read_settings = read_settings
        self.on_serving = on_serving
        self.tls_check_s = tls_check_s
        self.changed = asyncio.Event()
        self.stop = asyncio.Event()
        self.tls_changed = asyncio.Event()
        self.pem = b""  # the pair served (read_pair)
        self.served: tuple[tuple[int, int, int], ...] | None = None  # the files' signature when it was read
        self._config: ServingConfig | None = None  # the serving one: its contexts take a new pair
        # one account across re-binds: connections of the previous listener still hold descriptors until closed
        self.limits = Limits(max_connections or default_total(), max_per_source)
        app.trusted = self.limits.trust

    async def load_tls(self) -> None:
        """Reads the pair (raises when it cannot serve); the signature first, so that a change while it is read
        is seen at the next look."""
        signature = tls_signature(self.tls)
        self.pem = await asyncio.to_thread(read_pair, self.tls.certfile, self.tls.keyfile)
        self.served = signature

    def config(self, sock: GuardedListener) -> ServingConfig:
        sock.guard(self.limits)
        config = ServingConfig(self.pem, sock)
        config.accesslog = None
        config.errorlog = None
        config.certfile, config.keyfile = str(self.tls.certfile), str(self.tls.keyfile)
        config.alpn_protocols = ["h2", "http/1.1"]
        config.keep_alive_timeout = 120  # longer than common scrape intervals: one TLS handshake per scraper
        config.keep_alive_max_requests = 2**31
        config.graceful_timeout = GRACE_S
        return config

    async def run(self) -> None:
        if not self.pem:
            await self.load_tls()
        tls_watch = asyncio.ensure_future(self._watch_tls())
        try:
            await self._run()
        finally:
            tls_watch.cancel()

    async def _run(self) -> None:
        failed: tuple[str, int, str] | None = None  # the bind that failed last: retried, logged once
        while not self.stop.is_set():
            self.changed.clear()
            settings = await self.read_settings()
            if not settings.enabled:
                failed = None
                log.info("exporter disabled in its settings")
                self.on_serving(settings, None)
                await self._wait_for_change()
                continue
            try:
                sock = bind(settings.address, settings.port)
            except OSError as exc:
                # the address may come later (boot, DHCP) or the port be freed: bound then, without a restart
                attempt = (settings.address, settings.port, str(exc))
                if attempt != failed:
                    log.error("cannot listen; retrying, and on new settings", address=settings.address,
                              port=settings.port, error=str(exc), retry_every_s=RETRY_BIND_S)
                    self.on_serving(settings, None)
                failed = attempt
                await self._wait_for_change(RETRY_BIND_S)
                continue
            failed = None
            port = int(sock.getsockname()[1])
            log.info("metrics exporter listening", address=settings.address, port=port)
            self.on_serving(settings, port)
            await self._serve(sock)

    async def _wait_for_change(self, timeout: float | None = None) -> None:
        waiters = [asyncio.ensure_future(self.stop.wait()), asyncio.ensure_future(self.changed.wait())]
        try:
            await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for w in waiters:
                w.cancel()

    async def _watch_tls(self) -> None:
        """Serves the files' pair once they differ from the one served, stayed so for one look (or `tls_changed`
        says they are whole), and load as a pair; a pair that cannot serve is logged once, the served one stays."""
        seen, refused = self.served, None
        while True:
            waiter = asyncio.ensure_future(self.tls_changed.wait())
            try:
                await asyncio.wait([waiter], timeout=self.tls_check_s)
            finally:
                waiter.cancel()
            told = self.tls_changed.is_set()
            self.tls_changed.clear()
            now = tls_signature(self.tls)
            if now is None or now == self.served or (now != seen and not told):
                seen = now
                continue
            try:
                await self.load_tls()
            except (OSError, ssl.SSLError) as exc:
                if now != refused:  # once per version of the files
                    log.error("TLS certificate files changed but cannot serve; keeping the previous ones",
                              certfile=str(self.tls.certfile), error=str(exc))
                    refused = now
                continue
            if self._config is not None:
                load_pair(self._config.ssl_contexts, self.pem)
                self._config.pem = self.pem
            log.info("TLS certificate files changed: serving them to new connections", certfile=str(self.tls.certfile))

    async def _serve(self, sock: GuardedListener) -> None:
        loop = asyncio.get_running_loop()
        known = list(loop.servers) if isinstance(loop, ServingLoop) else []
        self._config = self.config(sock)
        task = asyncio.ensure_future(serve(self.app, self._config,  # type: ignore[arg-type]
                                           shutdown_trigger=self._wait_for_change))
        trigger = asyncio.ensure_future(self._wait_for_change())
        try:
            await asyncio.wait([task, trigger], return_when=asyncio.FIRST_COMPLETED)
        finally:
            self._config = None
            trigger.cancel()
            if not task.done():  # Hypercorn's graceful close, then its own grace time, then ours
                await asyncio.wait([task], timeout=2 * GRACE_S)
            if not task.done() and isinstance(loop, ServingLoop):
                _abort([s for s in loop.servers if s not in known])
                await asyncio.wait([task], timeout=GRACE_S)
            if not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            if isinstance(loop, ServingLoop):
                loop.servers = [s for s in loop.servers if s in known]
            sock.close()  # asyncio's server closed it; not when serve() failed before listening
        if task.done() and not task.cancelled() and task.exception() is not None:
            log.error("metrics HTTP server failed", error=str(task.exception()))
            await asyncio.sleep(1)  # then bind again (a loop of instant failures would spin)

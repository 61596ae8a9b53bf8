"""The HTTP adapter: serves a `MetricsApp` over HTTPS with Hypercorn (HTTP/1.1 and HTTP/2 by ALPN) on the
address the settings name, and moves to a new address when they change.

`Exporter.run` binds the socket itself (so an address not up yet or a port in use is one logged error, retried
every 2 s and on new settings, not a crash, and port 0 resolves to the port actually bound), hands it to Hypercorn,
and on a settings change or stop ends that server: Hypercorn first closes gracefully; connections still open after the grace time (Prometheus keeps its
connection alive between scrapes, and closing TLS waits for a close_notify an idle client never sends) are
aborted through `ServingLoop`.
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
from hypercorn.config import Config

from singbox_agent.metrics.app import MetricsApp
from singbox_agent.metrics.settings import Settings

log = structlog.get_logger("metrics.server")

GRACE_S = 1.0
RETRY_BIND_S = 2.0
TLS_CHECK_S = 10.0  # how often the certificate and key files are looked at while serving


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


def tls_problem(tls: TlsFiles) -> str | None:
    """Why the certificate and key cannot serve (None: they can)."""
    try:
        ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER).load_cert_chain(str(tls.certfile), str(tls.keyfile))
    except (OSError, ssl.SSLError) as exc:
        return str(exc)
    return None


def bind(address: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
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

    The certificate and key files are read at each bind, and looked at every `tls_check_s` while serving: files
    replaced since (the RESTCONF server made a new certificate for a new host name or address, or at expiry, with a
    new CA; an operator renewed the --cert files) are served from then on — once they stayed the same for one look
    and load — through a new bind, as on a settings change. Before, the exporter kept the certificate of its start
    until it was restarted, which clients trusting the new CA refused."""

    def __init__(self, app: MetricsApp, tls: TlsFiles, read_settings: Callable[[], Awaitable[Settings]],
                 on_serving: Callable[[Settings, int | None], None] = lambda s, p: None,
                 tls_check_s: float = TLS_CHECK_S) -> None:
        self.app = app
        self.tls = tls
        self.read_settings = read_settings
        self.on_serving = on_serving
        self.tls_check_s = tls_check_s
        self.changed = asyncio.Event()
        self.stop = asyncio.Event()

    def config(self, sock: socket.socket) -> Config:
        config = Config()
        config.bind = [f"fd://{sock.fileno()}"]
        config.accesslog = None
        config.errorlog = None
        config.certfile, config.keyfile = str(self.tls.certfile), str(self.tls.keyfile)
        config.alpn_protocols = ["h2", "http/1.1"]
        config.keep_alive_timeout = 120  # longer than common scrape intervals: one TLS handshake per scraper
        config.keep_alive_max_requests = 2**31
        config.graceful_timeout = GRACE_S
        return config

    async def run(self) -> None:
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

    async def _watch_tls(self, served: tuple[tuple[int, int, int], ...] | None) -> None:
        """Sets `changed` once the TLS files differ from `served`, stayed so for one look, and load."""
        seen, refused = served, None
        while True:
            await asyncio.sleep(self.tls_check_s)
            now = tls_signature(self.tls)
            if now is None or now == served or now != seen:
                seen = now
                continue
            problem = tls_problem(self.tls)
            if problem is None:
                log.info("TLS certificate files changed: serving them", certfile=str(self.tls.certfile))
                self.changed.set()
                return
            if now != refused:  # once per version of the files; the one served stays
                log.error("TLS certificate files changed but cannot serve; keeping the previous ones",
                          certfile=str(self.tls.certfile), error=problem)
                refused = now

    async def _serve(self, sock: socket.socket) -> None:
        loop = asyncio.get_running_loop()
        known = list(loop.servers) if isinstance(loop, ServingLoop) else []
        served = tls_signature(self.tls)
        task = asyncio.ensure_future(serve(self.app, self.config(sock),  # type: ignore[arg-type]
                                           shutdown_trigger=self._wait_for_change))
        trigger = asyncio.ensure_future(self._wait_for_change())
        tls_watch = asyncio.ensure_future(self._watch_tls(served))
        try:
            await asyncio.wait([task, trigger], return_when=asyncio.FIRST_COMPLETED)
        finally:
            trigger.cancel()
            tls_watch.cancel()
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
            sock.detach()  # Hypercorn owned and closed the descriptor it was given as fd://
        if task.done() and not task.cancelled() and task.exception() is not None:
            log.error("metrics HTTP server failed", error=str(task.exception()))
            await asyncio.sleep(1)  # then bind again (a loop of instant failures would spin)

"""`python -m singbox_agent.restconf`: the RESTCONF server (RFC 8040, RFC 8527, RFC 8072) over sysrepo.

HTTPS with HTTP/1.1 and HTTP/2 (Hypercorn, ALPN); plain HTTP only with --plain-http. Without --cert, a generated
certificate names the host (name, FQDN) and the listen address — every interface address for a wildcard one —
and is looked at hourly while serving: made again (same CA) in its renewal window or when it no longer covers the
host, and served to new connections without dropping open ones (restconf/tls.py).
Once it serves: the ready file (host, port, scheme, base URL, the CA certificate clients should trust) and READY=1
to systemd (`Type=notify`). A listen address that cannot be bound yet (not up at boot, the port held) is logged once
and retried every 2 s; the rest starts once it is bound. Exits cleanly on SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import socket
import ssl
import sys
from pathlib import Path
from typing import Any

import structlog
import sysrepo
from hypercorn.asyncio import serve
from hypercorn.config import Config

from singbox_agent.logs import configure_logging
from singbox_agent.mgmt import http_basic, password_hashing, shm_guard, systemd, yang_library
from singbox_agent.mgmt.hostnames import server_names
from singbox_agent.mgmt.login_guard import LoginGuard
from singbox_agent.mgmt.login_settings import LoginSettings
from singbox_agent.mgmt.nacm import destroy_nacm, init_nacm
from singbox_agent.mgmt.replay_keeper import ReplayKeeper
from singbox_agent.mgmt.users import UserStore
from singbox_agent.restconf import clientcert, monitoring
from singbox_agent.restconf.store import Datastore
from singbox_agent.restconf.errors import log_loop_exception
from singbox_agent.restconf.handler import Handler
from singbox_agent.restconf.http_limits import HttpLimits, HttpLimitsSettings
from singbox_agent.restconf.server import RestconfApp
from singbox_agent.restconf.streams import EventStreams
from singbox_agent.restconf import tls

log = structlog.get_logger("restconf")

SHUTDOWN_GRACE_S = 2.0
RETRY_BIND_S = 2.0  # an address not up yet (boot, DHCP) or a port still held: bound once it can be, no restart


def parse_listen(value: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise argparse.ArgumentTypeError(f"--listen wants HOST:PORT, not {value!r}")
    return host.strip("[]") or "127.0.0.1", int(port)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m singbox_agent.restconf", description=__doc__.splitlines()[0])
    parser.add_argument("--listen", type=parse_listen, default=("127.0.0.1", 8443), help="HOST:PORT (port 0: any)")
    parser.add_argument("--state-dir", type=Path, required=True)
    parser.add_argument("--ready-file", type=Path)
    parser.add_argument("--plain-http", action="store_true", help="serve plain HTTP (no TLS): only when asked")
    parser.add_argument("--cert", type=Path, help="server certificate (PEM); generated under the state dir if absent")
    parser.add_argument("--key", type=Path, help="private key of --cert (PEM)")
    parser.add_argument("--workers", type=int, default=16, help="threads for sysrepo calls")
    parser.add_argument("--tls-check-s", type=float, default=tls.CHECK_S, metavar="S",
                        help="look at the certificate every S seconds: a generated one is made again when due, an "
                             f"operator's is warned about near expiry (default {tls.CHECK_S:g})")
    parser.add_argument("--client-ca", type=Path,
                        help="accept client certificates signed by this CA (PEM), mapped to users by the cert-to-name "
                             "list in /vpp-singbox-restconf-server:restconf-server/client-identity-mappings")
    opts = parser.parse_args(argv)
    if bool(opts.cert) != bool(opts.key):
        parser.error("--cert and --key go together")
    configure_logging()
    shm_guard.start()  # sysrepo's subscription SHM of ours not other-readable (mgmt/shm_guard.py)
    with asyncio.Runner(loop_factory=ServingLoop) as runner:
        return runner.run(run(opts))


class ServingConfig(Config):
    """Hypercorn's configuration, keeping the TLS contexts Hypercorn makes from it: a renewed certificate is loaded
    into them (tls.reload_contexts), for the connections that come after."""

    def __init__(self) -> None:
        super().__init__()
        self.ssl_contexts: list[ssl.SSLContext] = []

    def create_ssl_context(self) -> ssl.SSLContext | None:
        ctx = super().create_ssl_context()
        if ctx is not None:
            self.ssl_contexts.append(ctx)
        return ctx


async def keep_certificate(renewal: tls.Renewal, config: ServingConfig, period: float) -> None:
    """Every `period`: `renewal.check()` (in a thread: it may resolve the host's names, make a key), and a new
    certificate is served to new connections; open ones keep the one they started with."""
    loop = asyncio.get_running_loop()
    while True:
        await asyncio.sleep(period)
        try:
            if await loop.run_in_executor(None, renewal.check):
                tls.reload_contexts(config.ssl_contexts, Path(str(config.certfile)), Path(str(config.keyfile)))
                log.info("serving the new TLS certificate to new connections", certfile=str(config.certfile))
        except Exception as exc:  # noqa: BLE001 - the server keeps serving the certificate it has; next look
            log.error("TLS certificate check failed; serving the current one", error=str(exc))


class ServingLoop(asyncio.SelectorEventLoop):
    """The event loop, keeping the servers Hypercorn starts on it so that the connections still open when the
    shutdown's grace time is over can be aborted (Hypercorn has no way to do it)."""

    def __init__(self) -> None:
        super().__init__()
        self.servers: list[asyncio.Server] = []

    async def create_server(self, *args: Any, **kwargs: Any) -> asyncio.Server:
        server = await super().create_server(*args, **kwargs)
        self.servers.append(server)
        return server

    def abort_connections(self) -> None:
        """Drops every connection at once: no TLS close_notify exchange, nothing more sent or awaited (Python 3.13+,
        trixie's; before it only the listening sockets close and the caller's cancellation remains)."""
        for server in self.servers:
            server.close()
            if sys.version_info >= (3, 13):
                server.abort_clients()


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(1024)
    except BaseException:
        sock.close()
        raise
    sock.setblocking(False)
    return sock


async def _listen(host: str, port: int, stop: asyncio.Event, status: systemd.StatusLine) -> socket.socket | None:
    """The listening socket, retried every RETRY_BIND_S while it cannot be bound (logged once, with the reason);
    None when asked to stop meanwhile."""
    failed = False
    while True:
        try:
            sock = _bind(host, port)
        except OSError as exc:
            if not failed:
                log.error("cannot listen", address=host, port=port, error=str(exc), retry_every_s=RETRY_BIND_S)
                status.update(f"waiting for the listen address {host}:{port}: {exc}")
                failed = True
            try:
                await asyncio.wait_for(stop.wait(), RETRY_BIND_S)
                return None
            except TimeoutError:
                continue
        if failed:
            log.info("restconf listening", address=host, port=port)
        return sock


async def run(opts: argparse.Namespace) -> int:
    # WATCHDOG=1 from this loop (requests are parsed and answered on it; sysrepo calls run in the executor): a loop
    # wedged for longer than the unit's WatchdogSec= gets the server restarted
    heartbeat = asyncio.ensure_future(systemd.watchdog())
    try:
        return await _run(opts)
    finally:
        heartbeat.cancel()


async def _run(opts: argparse.Namespace) -> int:
    host, port = opts.listen
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    status = systemd.StatusLine()
    sock = await _listen(host, port, stop, status)
    if sock is None:
        log.info("restconf stopping")
        return 0
    port = sock.getsockname()[1]
    state_dir: Path = opts.state_dir.resolve()
    state_dir.mkdir(parents=True, exist_ok=True)

    # The running cache keeps running's data parsed in this connection and refreshes it when it changes: reads of
    # running (GET, the existence check of PUT, If-Match) then cost microseconds instead of a module load each.
    conn = sysrepo.SysrepoConnection(cache_running=True)
    library = yang_library.announce_datastores(conn)  # noqa: F841 - its session holds <intended>'s entry
    users = UserStore(conn)
    datastore = Datastore(conn)
    watched = datastore.watch_changes()
    log.info("watching commits for Last-Modified", modules=len(watched))
    boot = conn.start_session("running")
    init_nacm(boot)
    # `$0$` passwords written through any client are stored hashed while this server runs (NETCONF's does the same).
    password_hashing.subscribe(boot, priority=1)
    # Notifications sysrepo delivered but refused to store for replay are stored in its place (also when no NETCONF
    # server runs; with one, each is stored once).
    keeper = ReplayKeeper(conn)
    guard = LoginGuard()
    login_settings = LoginSettings(conn, "vpp-singbox-restconf-server", "restconf-server", guard)

    config = ServingConfig()
    config.bind = [f"fd://{sock.fileno()}"]
    config.accesslog = None
    config.errorlog = None
    config.keep_alive_timeout = 60
    # Hypercorn closes a connection after 1,000 requests by default; on HTTP/2 that GOAWAY fails the streams in
    # flight, which long-lived monitoring clients (one multiplexed connection) would see as errors.
    config.keep_alive_max_requests = 2**31
    config.graceful_timeout = 2
    ready: dict[str, object] = {"service": "restconf", "host": host, "port": port}
    cert_to_name: clientcert.CertToName | None = None
    renewal: tls.Renewal | None = None
    if opts.plain_http:
        scheme = "http"
    else:
        scheme = "https"
        if opts.cert:
            config.certfile, config.keyfile = str(opts.cert), str(opts.key)
            renewal = tls.Renewal(state_dir, opts.cert, generated=False)
        else:
            files = tls.ensure_certificate(state_dir, server_names(host))
            config.certfile, config.keyfile = str(files.certfile), str(files.keyfile)
            ready["ca_certificate"] = str(files.ca_certificate)
            renewal = tls.Renewal(state_dir, files.certfile, generated=True, names=lambda: server_names(host),
                              keep_names=True)
        config.alpn_protocols = ["h2", "http/1.1"]
        if opts.client_ca:
            cert_to_name = clientcert.CertToName(conn)
            config.ca_certs = str(opts.client_ca)
            config.verify_mode = ssl.CERT_OPTIONAL
            clientcert.install()
            ready["client_certificates"] = True
    url_host = f"[{host}]" if ":" in host else host
    base_url = f"{scheme}://{url_host}:{port}"
    ready.update(scheme=scheme, base_url=base_url, api_root=f"{base_url}/restconf", http2=scheme == "https")
    datastore.base_url = base_url

    monitoring_session = conn.start_session("operational")
    monitoring.provide(monitoring_session, base_url)

    streams = EventStreams(conn, datastore.policy)
    app = RestconfApp(
        Handler(datastore),
        http_basic.BasicAuthenticator(users, guard),
        streams,
        workers=opts.workers,
        cert_to_name=cert_to_name,
    )

    def apply_limits(limits: HttpLimits) -> None:
        app.max_body = limits.max_body_size
        app.max_header_size = limits.max_header_size
        app.body_timeout = limits.body_timeout
        app.handler.limits = limits.request  # XPath, subtree filters, body trees (restconf/limits.py)
        # h11 is the backstop (431, no body, read per connection) at 4x the limit: a head above the limit but
        # within it reaches RestconfApp, which tells a request-target too long (414) from header fields (431);
        # at 1x, a head split over TLS records (above 16 KiB) was always h11's bodiless 431
        config.h11_max_incomplete_size = 4 * limits.max_header_size
        config.h2_max_header_list_size = limits.max_header_size

    http_limits = HttpLimitsSettings(conn, apply_limits)

    def refresh_settings() -> None:
        login_settings.refresh()
        http_limits.refresh()

    app.refresh_settings = refresh_settings
    app.settings_stale = lambda: login_settings.stale() or http_limits.stale()
    loop.set_exception_handler(log_loop_exception)  # clients leaving TLS uncleanly: one log line, no traceback

    async def shutdown_trigger() -> None:
        await stop.wait()
        streams.end_all()

    server = asyncio.ensure_future(serve(app.app, config, shutdown_trigger=shutdown_trigger))  # type: ignore[arg-type]
    await asyncio.sleep(0.05)
    if opts.ready_file:
        tmp = opts.ready_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(ready, indent=2) + "\n")
        tmp.replace(opts.ready_file)
    log.info("restconf serving", **ready)
    status.update(f"serving {base_url}", ready=True)
    keeper_task = asyncio.ensure_future(keep_certificate(renewal, config, opts.tls_check_s)) if renewal else None
    if renewal is not None and not renewal.generated:
        await loop.run_in_executor(None, renewal.check)  # an operator's certificate near expiry: said at once
    try:
        stop_waiter = asyncio.ensure_future(stop.wait())
        await asyncio.wait([server, stop_waiter], return_when=asyncio.FIRST_COMPLETED)
        stop_waiter.cancel()
        if keeper_task is not None:
            keeper_task.cancel()
        systemd.notify_stopping()
        if not server.done():
            # Since Python 3.12 asyncio's Server.wait_closed() waits for every open connection, so an idle
            # keep-alive client would hold Hypercorn's shutdown open until systemd's SIGKILL. Closing a TLS
            # connection waits for the client's close_notify, which a client that does not read (a connection idle
            # in its pool) never sends: asyncio gives up only after 30 s. Cancelling serve() does not help, as
            # Hypercorn's connection tasks await that close in a `finally` (asyncio.run()'s final cancellation
            # then waited for them). So the connections still open after the grace time are aborted: their tasks
            # see the connection lost, responses (streams) end on the still-running executor, serve() returns.
            await asyncio.wait([server], timeout=config.graceful_timeout + SHUTDOWN_GRACE_S)
            if not server.done():
                log.warning("connections still open after the graceful shutdown; closing them")
                if isinstance(loop, ServingLoop):
                    loop.abort_connections()
                await asyncio.wait([server], timeout=SHUTDOWN_GRACE_S)
            if not server.done():
                log.error("the HTTP server did not stop after its connections were closed; cancelling it")
                server.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await server
        if not server.cancelled():
            await server  # raises what serve() raised
        await _finish_other_tasks()
    finally:
        # Nothing may still be inside sysrepo when the connection goes: queued work is dropped, running calls
        # (bounded by sysrepo's own timeouts) finish, then streams whose clients are still attached are closed.
        app.executor.shutdown(wait=True, cancel_futures=True)
        streams.close_all()
        monitoring_session.stop()
        if cert_to_name is not None:
            cert_to_name.close()
        datastore.close()
        users.close()
        login_settings.close()
        http_limits.close()
        keeper.close()
        destroy_nacm()
        boot.stop()
        conn.disconnect()
        sock.detach()  # Hypercorn owns and closed the descriptor it was given as fd://
    log.info("restconf stopped")
    return 0


async def _finish_other_tasks() -> None:
    """What is left of the connections' tasks is cancelled and awaited here, with a bound and while the executor
    still runs (a stream's end hands its close to it), so that the runner's final cancellation, which waits without
    limit, finds nothing left; a task that outlives the bound is named in the log."""
    others = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
    for task in others:
        task.cancel()
    if others:
        _, pending = await asyncio.wait(others, timeout=SHUTDOWN_GRACE_S)
        if pending:
            log.error("tasks still running at shutdown", tasks=[repr(task) for task in pending])


if __name__ == "__main__":
    sys.exit(main())

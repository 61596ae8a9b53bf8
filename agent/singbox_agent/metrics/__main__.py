"""`singbox-exporterd` (`python -m singbox_agent.metrics`): the metrics exporter daemon.

Serves the appliance's metrics over HTTPS (`GET /metrics`, Prometheus text or OpenMetrics) to the users of the
shared user store, with the RESTCONF server's certificate (renewed by either daemon: metrics/certificate.py), on the address configured in
`/vpp-singbox-metrics:metrics-exporter` (changes apply at once). Numbers come from VPP's stats segment; the
dataplane's versions from the agent. A daemon of its own: whatever happens to it, the agent and the NETCONF and
RESTCONF servers keep running, and the other way round. READY=1 to systemd once its settings are applied.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import ssl
import sys
from concurrent.futures import ThreadPoolExecutor
from importlib import metadata
from pathlib import Path
from typing import Any

import structlog
import sysrepo

from singbox_agent.logs import configure_logging
from singbox_agent.metrics import certificate
from singbox_agent.metrics import settings as exporter_settings
from singbox_agent.metrics.app import MetricsApp
from singbox_agent.metrics.server import TLS_CHECK_S, Exporter, ServingLoop
from singbox_agent.metrics.versions import REFRESH_S, AgentVersions
from singbox_agent.metrics.vppstats import DEFAULT_SOCKET, VppStatsSource
from singbox_agent.mgmt import http_basic, shm_guard, systemd
from singbox_agent.mgmt.hostnames import server_names
from singbox_agent.mgmt.login_guard import LoginGuard
from singbox_agent.mgmt.login_settings import LoginSettings
from singbox_agent.mgmt.users import UserStore
from singbox_agent.restconf import tls as restconf_tls

log = structlog.get_logger("metrics")


def agent_version() -> str:
    try:
        return metadata.version("vpp-singbox-agent")
    except metadata.PackageNotFoundError:
        return "unknown"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="singbox-exporterd", description=__doc__.splitlines()[0])
    parser.add_argument("--state-dir", type=Path, required=True,
                        help="the RESTCONF server's state directory (its certificate is in restconf/)")
    parser.add_argument("--vpp-stats-socket", default=DEFAULT_SOCKET, help=f"VPP's stats socket ({DEFAULT_SOCKET})")
    parser.add_argument("--cert", type=Path, help="server certificate (PEM); default: the RESTCONF server's")
    parser.add_argument("--key", type=Path, help="private key of --cert (PEM)")
    parser.add_argument("--ready-file", type=Path, help="written (JSON: address, port, URL, CA) once serving")
    parser.add_argument("--tls-check-s", type=float, default=restconf_tls.CHECK_S, metavar="S",
                        help="look at the certificate every S seconds: the generated one is made again when due, an "
                             f"operator's is warned about near expiry (default {restconf_tls.CHECK_S:g})")
    opts = parser.parse_args(argv)
    if bool(opts.cert) != bool(opts.key):
        parser.error("--cert and --key go together")
    configure_logging()
    shm_guard.start()  # sysrepo's subscription SHM of ours not other-readable (mgmt/shm_guard.py)
    with asyncio.Runner(loop_factory=ServingLoop) as runner:
        return runner.run(run(opts))


async def run(opts: argparse.Namespace) -> int:
    loop = asyncio.get_running_loop()
    state_dir: Path = opts.state_dir.resolve()
    state_dir.mkdir(parents=True, exist_ok=True)
    conn = sysrepo.SysrepoConnection()
    users = UserStore(conn)
    versions = AgentVersions(conn)
    first = await loop.run_in_executor(None, exporter_settings.read, conn)
    tls = certificate.tls_files(state_dir, opts.cert, opts.key)
    listening = [first.address]  # the names a renewal gives the certificate follow the listen address
    renewal = certificate.renewal(state_dir, tls, generated=opts.cert is None,
                                  names=lambda: server_names(listening[0]))
    cert_warning: list[str | None] = [None]
    try:
        # made now if missing or due (RESTCONF may not run), under the existing CA; an operator's: said at once
        await asyncio.to_thread(renewal.check)
        cert_warning[0] = renewal.warning
        await asyncio.to_thread(restconf_tls.read_pair, tls.certfile, tls.keyfile)  # fails now, with the reason
    except (OSError, ssl.SSLError, ValueError) as exc:
        log.error("cannot use the TLS certificate", certfile=str(tls.certfile), error=str(exc))
        users.close()
        conn.disconnect()
        return 1
    # Same users, same failed-login back-off (RESTCONF's settings) as the RESTCONF server: one door, one policy.
    guard = LoginGuard()
    login_settings = LoginSettings(conn, "vpp-singbox-restconf-server", "restconf-server", guard)
    auth = http_basic.BasicAuthenticator(users, guard, refresh=login_settings.refresh)
    app = MetricsApp(VppStatsSource(opts.vpp_stats_socket), auth, agent_version=agent_version(),
                     versions=versions)
    status = systemd.StatusLine()

    serving: list[tuple[exporter_settings.Settings, int | None]] = []

    def on_serving(current: exporter_settings.Settings, port: int | None) -> None:
        serving[:] = [(current, port)]
        listening[0] = current.address
        info: dict[str, Any] = {"service": "exporter", "enabled": current.enabled, "address": current.address,
                                "port": port, "ca_certificate": str(tls.ca_certificate) if tls.ca_certificate
                                else None, "stats_socket": opts.vpp_stats_socket}
        if port is not None:
            host = current.address
            host = "127.0.0.1" if host == "0.0.0.0" else "::1" if host == "::" else host
            url_host = f"[{host}]" if ":" in host else host
            info["metrics_url"] = f"https://{url_host}:{port}/metrics"
        if opts.ready_file:
            tmp = opts.ready_file.with_suffix(".tmp")
            tmp.write_text(json.dumps(info, indent=2) + "\n")
            tmp.replace(opts.ready_file)
        update_status()

    def update_status() -> None:
        """`systemctl status` follows every change, not only the first state (READY=1), and says while an
        operator's certificate nears or is past its expiry."""
        if not serving:
            return
        current, port = serving[0]
        if port is not None:
            bound = f"[{current.address}]" if ":" in current.address else current.address
            line = f"serving https://{bound}:{port}/metrics"
        elif not current.enabled:
            line = f"not listening: disabled in {exporter_settings.XPATH}"
        else:
            line = f"not listening: cannot bind {current.address}:{current.port} yet, retrying"
        if cert_warning[0]:
            line += f"; WARNING: {cert_warning[0]}"
        status.update(line, ready=True)

    def on_warning(warning: str | None) -> None:
        if warning != cert_warning[0]:
            cert_warning[0] = warning
            update_status()

    async def read_settings() -> exporter_settings.Settings:
        return await loop.run_in_executor(None, exporter_settings.read, conn)

    exporter = Exporter(app, tls, read_settings, on_serving, tls_check_s=min(TLS_CHECK_S, opts.tls_check_s))

    def changed(event: str, _req_id: int, _changes: Any, _priv: Any) -> None:
        # a sysrepo callback never raises (it would abort the process); a loop already closed has nothing to do
        if event == "done":
            try:
                loop.call_soon_threadsafe(exporter.changed.set)
            except RuntimeError:
                pass

    watch = conn.start_session("running")
    try:
        watch.subscribe_module_change(exporter_settings.MODULE, exporter_settings.XPATH, changed, passive=True,
                                      done_only=True)
    except sysrepo.SysrepoError as exc:
        log.warning("exporter settings changes are not followed (module not installed?)", error=str(exc))
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, exporter.stop.set)

    # Its own thread, waited for before the connection goes: a read may be inside sysrepo when the stop comes.
    asker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="metrics-versions")

    async def refresh_versions() -> None:
        while True:
            await loop.run_in_executor(asker, versions.refresh)
            await asyncio.sleep(REFRESH_S)

    refresher = asyncio.ensure_future(refresh_versions())
    keeper = asyncio.ensure_future(certificate.keep(renewal, exporter, opts.tls_check_s, on_warning))
    # WATCHDOG=1 from this loop (scrapes, settings, the certificate's follow-up; sysrepo reads run in threads): a
    # loop wedged for longer than the unit's WatchdogSec= gets the exporter restarted
    heartbeat = asyncio.ensure_future(systemd.watchdog())
    try:
        await exporter.run()
    finally:
        systemd.notify_stopping()
        heartbeat.cancel()
        refresher.cancel()
        keeper.cancel()
        asker.shutdown(wait=True, cancel_futures=True)
        app.close()
        login_settings.close()
        watch.stop()
        users.close()
        conn.disconnect()
    log.info("metrics exporter stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())

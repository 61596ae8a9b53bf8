"""The exporter's certificate over the years an appliance runs: which files it serves, and their renewal.

Without --cert it serves the generated certificate in `<state-dir>/restconf/` (the RESTCONF server's: clients trust
one ca.pem) and keeps it valid itself — RESTCONF may be disabled or stopped — with RESTCONF's code and rules
(`restconf.tls.Renewal`: every --tls-check-s, made again 30 days before expiry or when it does not name this host and
listen address, under the existing CA, files replaced by rename, renewals of the two daemons serialised by the
directory's lock). A renewal keeps the names the current certificate has (RESTCONF's listen address may differ
from ours): neither daemon drops the other's names, so they never take turns renewing. An operator's --cert is
never replaced: warned about once a day from 30 days before its expiry, and in the status line while it holds.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import structlog

from singbox_agent.metrics.server import Exporter, TlsFiles
from singbox_agent.restconf.tls import Renewal

log = structlog.get_logger("metrics.certificate")

OPERATOR_ADVICE = "replace the --cert and --key files (served to new connections without a restart)"


def tls_files(state_dir: Path, cert: Path | None, key: Path | None) -> TlsFiles:
    """--cert/--key, else the generated pair in <state-dir>/restconf/."""
    if cert and key:
        return TlsFiles(cert, key)
    directory = state_dir / "restconf"
    return TlsFiles(directory / "server.pem", directory / "server.key", directory / "ca.pem")


def renewal(state_dir: Path, files: TlsFiles, *, generated: bool, names: Callable[[], list[str]]) -> Renewal:
    return Renewal(state_dir, files.certfile, generated=generated, names=names, keep_names=True,
                   advice=OPERATOR_ADVICE)


async def keep(renewal: Renewal, exporter: Exporter, period: float,
               on_warning: Callable[[str | None], None]) -> None:
    """Every `period`: `renewal.check()` (in a thread: it may resolve names and make a key, and waits for a renewal
    of RESTCONF's in progress); a renewed pair is served to new connections at once (`exporter.tls_changed`)."""
    while True:
        await asyncio.sleep(period)
        try:
            if await asyncio.to_thread(renewal.check):
                exporter.tls_changed.set()
        except Exception as exc:  # noqa: BLE001 - the served certificate stays; next look
            log.error("TLS certificate check failed; serving the current one", error=str(exc))
        on_warning(renewal.warning)

"""The exporter's settings in sysrepo: `/vpp-singbox-metrics:metrics-exporter` (enabled, listen address and port).

Running is the source of truth; YANG defaults apply when nothing is configured. The daemon reads them at start and
again after each commit that touches them (a passive `done` subscription), then re-binds (see `__main__`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import structlog
import sysrepo

log = structlog.get_logger("metrics.settings")

MODULE = "vpp-singbox-metrics"
XPATH = "/vpp-singbox-metrics:metrics-exporter"
DEFAULT_ADDRESS = "0.0.0.0"
DEFAULT_PORT = 9745


@dataclass(frozen=True)
class Settings:
    enabled: bool = True
    address: str = DEFAULT_ADDRESS
    port: int = DEFAULT_PORT


def parse(data: dict[str, Any]) -> Settings:
    """Settings from a `get_data(XPATH)` dictionary (module prefixes stripped)."""
    top = data.get("metrics-exporter", {})
    listen = top.get("listen", {})
    return Settings(
        enabled=bool(top.get("enabled", True)),
        address=str(listen.get("address", DEFAULT_ADDRESS)),
        port=int(listen.get("port", DEFAULT_PORT)),
    )


def read(conn: sysrepo.SysrepoConnection) -> Settings:
    """The running settings (one sysrepo read: call it off the event loop); the defaults when the module is not
    installed (an appliance whose modules were not updated yet), with a warning."""
    sess = conn.start_session("running")
    try:
        try:
            data = sess.get_data(XPATH)
        except sysrepo.SysrepoNotFoundError:
            data = {}
        except sysrepo.SysrepoError as exc:
            log.warning("exporter settings unreadable; using the defaults", module=MODULE, error=str(exc))
            data = {}
        return parse(data)
    finally:
        sess.stop()

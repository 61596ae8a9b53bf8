"""VPP's and the singbox plugin's versions, as the agent reports them in `/vpp-singbox:singbox/dataplane`.

The stats segment carries no version. Rather than a binary-API connection of its own, the exporter asks the agent
(which reads both at each connect to VPP) through sysrepo's operational datastore, now and then, in the background:
never while a scrape waits.
"""

from __future__ import annotations

import threading

import sysrepo
import structlog

from singbox_agent.metrics.snapshot import Versions

log = structlog.get_logger("metrics.versions")

XPATH = "/vpp-singbox:singbox/dataplane"
REFRESH_S = 30.0
TIMEOUT_MS = 2000


def parse(data: dict[str, object]) -> Versions | None:
    dp = data.get("singbox", {})
    dp = dp.get("dataplane", {}) if isinstance(dp, dict) else {}
    if not isinstance(dp, dict):
        return None
    vpp, plugin = dp.get("vpp-version"), dp.get("plugin-version")
    return Versions(str(vpp), str(plugin)) if vpp and plugin else None


class AgentVersions:
    """The last versions the agent reported; `refresh()` blocks for one operational read."""

    def __init__(self, conn: sysrepo.SysrepoConnection) -> None:
        self._conn = conn
        self._lock = threading.Lock()
        self._versions: Versions | None = None

    def __call__(self) -> Versions | None:
        with self._lock:
            return self._versions

    def refresh(self) -> None:
        sess = self._conn.start_session("operational")
        try:
            data = sess.get_data(XPATH, timeout_ms=TIMEOUT_MS)
            versions = parse(data)
        except sysrepo.SysrepoError as exc:
            log.debug("dataplane versions unavailable", error=str(exc))
            return
        finally:
            sess.stop()
        with self._lock:
            if versions != self._versions and versions is not None:
                log.info("dataplane versions", vpp=versions.vpp, plugin=versions.plugin)
            if versions is not None:
                self._versions = versions

"""The HTTP layer's limits: `/vpp-singbox-restconf-server:restconf-server/limits`.

`max-body-size` is what `RestconfApp` reads a body up to (413 beyond); `max-header-size` bounds a request head:
`RestconfApp` answers 431 beyond it, h11 too for a head arriving in pieces (and closes), and it is the HTTP/2
header list size the server advertises; `body-timeout` is how long a body may take to arrive (408 after).
Read at start; a commit that changes them marks them stale (its change event, which the edit waits for), and
`RestconfApp` has them read again in a worker thread before it reads the next request: they apply from the next
request on (h11's part of the header limit to new connections).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import structlog
import sysrepo

from singbox_agent.restconf.handler import MAX_BODY_BYTES

log = structlog.get_logger("restconf")

MODULE = "vpp-singbox-restconf-server"
XPATH = f"/{MODULE}:restconf-server/limits"


@dataclass(frozen=True)
class HttpLimits:
    max_body_size: int = MAX_BODY_BYTES
    max_header_size: int = 16 * 1024
    body_timeout: float = 60.0


def limits_from_data(data: dict[str, Any]) -> HttpLimits:
    node = data.get("restconf-server", {}).get("limits", {})
    default = HttpLimits()
    return HttpLimits(int(node.get("max-body-size", default.max_body_size)),
                      int(node.get("max-header-size", default.max_header_size)),
                      float(node.get("body-timeout", default.body_timeout)))


class HttpLimitsSettings:
    """Keeps `apply(limits)` called with the configured limits. Blocking (sysrepo) at construction and in
    `refresh()` after a change."""

    def __init__(self, conn: sysrepo.SysrepoConnection, apply: Callable[[HttpLimits], None]) -> None:
        self._apply = apply
        self._session = conn.start_session("running")
        self._stale = threading.Event()
        self.current = HttpLimits()
        self.reload()
        try:
            self._session.subscribe_module_change(MODULE, XPATH, self._changed, passive=True)
        except sysrepo.SysrepoError as exc:
            log.warning("HTTP limits not configurable", error=str(exc))

    def stale(self) -> bool:
        return self._stale.is_set()

    def refresh(self) -> None:
        if self._stale.is_set():
            self._stale.clear()
            try:
                self.reload()
            except sysrepo.SysrepoError:
                self._stale.set()
                log.exception("reading the HTTP limits failed; the previous ones stay")

    def reload(self) -> None:
        try:
            data = self._session.get_data(XPATH, include_implicit_defaults=True)
        except sysrepo.SysrepoNotFoundError:
            data = {}
        limits = limits_from_data(data)
        if limits != self.current:
            log.info("HTTP limits", max_body_size=limits.max_body_size, max_header_size=limits.max_header_size,
                     body_timeout_s=limits.body_timeout)
        self.current = limits
        self._apply(limits)

    def _changed(self, event: str, req_id: int, changes: Any, private_data: Any) -> None:
        if event in ("change", "done"):
            self._stale.set()

    def close(self) -> None:
        self._session.stop()

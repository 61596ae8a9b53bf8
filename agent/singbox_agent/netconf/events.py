"""RFC 6470 base event notifications (ietf-netconf-notifications): session start/end and confirmed-commit events,
sent through sysrepo so every subscriber (NETCONF, RESTCONF streams, other tools) sees them.

Sending never fails the operation that caused the event: errors are logged.
"""

from __future__ import annotations

import ipaddress
import threading
from typing import TYPE_CHECKING, Any

import structlog

if TYPE_CHECKING:
    from singbox_agent.netconf.server import NetconfServer
    from singbox_agent.netconf.session import NetconfSession

log = structlog.get_logger("netconf.events")
MODULE = "/ietf-netconf-notifications:"


class BaseEvents:
    def __init__(self, server: NetconfServer) -> None:
        self._server = server
        self._session: Any = None
        self._lock = threading.Lock()  # one sysrepo session, used from workers, timers and the loop

    def _send(self, name: str, values: dict[str, Any]) -> None:
        with self._lock:
            try:
                if self._session is None:
                    self._session = self._server.conn.start_session("running")
                self._session.notification_send(MODULE + name, values)
            except Exception as exc:  # noqa: BLE001 - an event must never break the operation
                log.warning("base event not sent", notification=name, error=str(exc))

    @staticmethod
    def session_parms(session: NetconfSession) -> dict[str, Any]:
        parms: dict[str, Any] = {"username": session.user, "session-id": session.id}
        try:
            parms["source-host"] = str(ipaddress.ip_address(session.source_host))
        except ValueError:
            pass
        return parms

    def session_start(self, session: NetconfSession) -> None:
        self._send("netconf-session-start", self.session_parms(session))

    def session_end(self, session: NetconfSession) -> None:
        values = self.session_parms(session)
        values["termination-reason"] = session.end_reason
        if session.killed_by is not None:
            values["killed-by"] = session.killed_by
        self._send("netconf-session-end", values)

    def confirmed_commit(self, event: str, session: NetconfSession | None, timeout: int | None = None) -> None:
        values: dict[str, Any] = self.session_parms(session) if session is not None and event != "timeout" else {}
        values["confirm-event"] = event
        if timeout is not None and event in ("start", "extend"):
            values["timeout"] = timeout
        self._send("netconf-confirmed-commit", values)

    def close(self) -> None:
        with self._lock:
            if self._session is not None:
                self._session.stop()
                self._session = None

"""RFC 6470 base event notifications (ietf-netconf-notifications): session start/end and confirmed-commit events,
sent through sysrepo so every subscriber (NETCONF, RESTCONF streams, other tools) sees them.

Sending never fails the operation that caused the event: one that sysrepo could not store for replay or send is
counted and logged (`mgmt.notify`).
"""

from __future__ import annotations

import ipaddress
from typing import TYPE_CHECKING, Any

from singbox_agent.mgmt.notify import Notifier

if TYPE_CHECKING:
    from singbox_agent.netconf.server import NetconfServer
    from singbox_agent.netconf.session import NetconfSession

MODULE = "/ietf-netconf-notifications:"


class BaseEvents:
    def __init__(self, server: NetconfServer) -> None:
        self._server = server
        self._notifier = Notifier(server.conn)  # counts and logs what sysrepo could not store or send

    def _send(self, name: str, values: dict[str, Any]) -> None:
        self._notifier.send(MODULE + name, values)

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
        self._notifier.close()

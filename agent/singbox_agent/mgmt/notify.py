"""Sending notifications through sysrepo, and counting those the replay store lost.

sysrepo delivers a notification to live subscribers and stores it for replay in files named by the second; it
refuses to add to a file above 1 MiB. After a large config-change (one of ~4,000+ list entries is several MB, which
sysrepo writes whole) every other notification of that module in the same second is delivered live but not stored
(`notification_send` fails: "base event not sent"), and a second large config-change in that second is not stored
either ("change applied, its config-change notification not stored"). sysrepo has no way to store without
delivering again, so a resend would reach live subscribers twice: such a notification is a replay loss, counted
(`lost_count`, `/vpp-singbox-replay-store:replay-store/state/lost-notifications`) and logged, never silent. A
notification that cannot be sent at all is counted the same way.
"""

from __future__ import annotations

import threading
from typing import Any

import structlog

log = structlog.get_logger("mgmt.notify")

FILE_FULL = "exceeded the maximum size"  # sysrepo: "Notification file A-B exceeded the maximum size of 1024 KB."

_lock = threading.Lock()
_lost = 0


def lost_count() -> int:
    """Notifications this process generated that were not stored for replay (or not sent at all)."""
    with _lock:
        return _lost


def record_loss(notification: str, reason: str, *, delivered: bool) -> None:
    global _lost
    with _lock:
        _lost += 1
    log.error("notification not stored for replay" + (" (delivered live)" if delivered else ", not sent"),
              notification=notification, error=reason)


def file_full(exc: BaseException) -> bool:
    return FILE_FULL in str(exc)


class Notifier:
    """One sysrepo session sending notifications for a server, from any thread."""

    def __init__(self, conn: Any) -> None:
        self._conn = conn
        self._session: Any = None
        self._lock = threading.Lock()

    def send(self, xpath: str, values: dict[str, Any]) -> None:
        """Send; a loss is counted and logged. Never raises."""
        with self._lock:
            try:
                if self._session is None:
                    self._session = self._conn.start_session("running")
                self._session.notification_send(xpath, values)
            except Exception as exc:  # noqa: BLE001 - sending must never break the operation that caused it
                record_loss(xpath, str(exc), delivered=file_full(exc))

    def close(self) -> None:
        with self._lock:
            if self._session is not None:
                self._session.stop()
                self._session = None

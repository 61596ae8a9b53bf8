"""Sending notifications through sysrepo, and counting those that could not be sent or stored for replay.

sysrepo delivers a notification to live subscribers and then stores it for replay in files named by the second; it
refuses to add to a file started in the same second once that is above 1 MiB. After a large config-change (one of
~4,000+ list entries is several MB, which sysrepo writes whole) every other notification of that module in the same
second is delivered live but refused (`notification_send` fails: "base event not sent"; a config-change: "change
applied, its config-change notification not stored"). sysrepo cannot store without delivering again; a
`replay_keeper.ReplayKeeper` (both servers run one) stores such a notification in sysrepo's place. So a refusal is
a loss only where no keeper runs in this process; a loss — that, a notification that cannot be sent at all, or one a
keeper could not store — is counted (`lost_count`, `/vpp-singbox-replay-store:replay-store/state/lost-notifications`)
and logged, never silent.
"""

from __future__ import annotations

import threading
from typing import Any

import structlog

log = structlog.get_logger("mgmt.notify")

FILE_FULL = "exceeded the maximum size"  # sysrepo: "Notification file A-B exceeded the maximum size of 1024 KB."

_lock = threading.Lock()
_lost = 0
_keepers = 0


def lost_count() -> int:
    """Notifications this process generated that were not stored for replay (or not sent at all)."""
    with _lock:
        return _lost


def keeper_started() -> None:
    global _keepers
    with _lock:
        _keepers += 1


def keeper_stopped() -> None:
    global _keepers
    with _lock:
        _keepers -= 1


def record_loss(notification: str, reason: str, *, delivered: bool) -> None:
    """A notification this process generated was not stored for replay (`delivered`: it reached the live
    subscribers) or not sent. One that sysrepo refused for a full file is left to this process's keeper, if any."""
    global _lost
    with _lock:
        if delivered and file_full(reason) and _keepers:
            log.info("notification not stored for replay by sysrepo (its file of this second is full): the replay "
                     "keeper stores it", notification=notification)
            return
        _lost += 1
    log.error("notification not stored for replay" + (" (delivered live)" if delivered else ", not sent"),
              notification=notification, error=reason)


def file_full(exc: BaseException | str) -> bool:
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

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
import time
from collections.abc import Callable
from typing import Any

import libyang

import structlog

log = structlog.get_logger("mgmt.notify")

FILE_FULL = "exceeded the maximum size"  # sysrepo: "Notification file A-B exceeded the maximum size of 1024 KB."

_lock = threading.Lock()
_lost = 0
# (module, seconds, nanoseconds, the notification as sysrepo prints it) -> stored: this process's replay keeper
Keep = Callable[[str, int, int, bytes], bool]
_keeper: Keep | None = None


def lost_count() -> int:
    """Notifications this process generated that were not stored for replay (or not sent at all)."""
    with _lock:
        return _lost


def set_keeper(keep: Keep | None) -> None:
    """Where `Notifier` hands a notification sysrepo delivered but refused to store (`replay_keeper`)."""
    global _keeper
    with _lock:
        _keeper = keep


def record_loss(notification: str, reason: str, *, delivered: bool) -> None:
    """A notification this process generated was not stored for replay (`delivered`: it reached the live
    subscribers) or not sent: counted and logged."""
    global _lost
    with _lock:
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
        """Send; one sysrepo refused to store is handed to this process's keeper, if any; a loss is counted and
        logged. Never raises."""
        with self._lock:
            tree: Any = None
            try:
                if self._session is None:
                    self._session = self._conn.start_session("running")
                full: dict[str, Any] = {}
                libyang.xpath_set(full, xpath, values)
                module = next(libyang.xpath_split(xpath))[0]
                with self._session.get_ly_ctx() as ctx:
                    tree = ctx.get_module(module).parse_data_dict(full, notification=True, validate=False)
                self._session.notification_send_ly(tree)
            except Exception as exc:  # noqa: BLE001 - sending must never break the operation that caused it
                if not (file_full(exc) and tree is not None and self._keep(module, tree)):
                    record_loss(xpath, str(exc), delivered=file_full(exc))
            finally:
                if tree is not None:
                    tree.free()

    def _keep(self, module: str, tree: Any) -> bool:
        """Delivered, refused by sysrepo's store: stored by the keeper (with the time of the refusal: sysrepo's own
        time of the event, a few milliseconds earlier, is not known here)."""
        keep = _keeper
        if keep is None:
            return False
        now = time.time_ns()
        payload = tree.print_mem("json", with_siblings=True, pretty=False)
        data = payload.encode() if isinstance(payload, str) else payload
        log.info("notification not stored for replay by sysrepo (its file of this second is full): the replay "
                 "keeper stores it", notification=module)
        return keep(module, now // 1_000_000_000, now % 1_000_000_000, data)

    def close(self) -> None:
        with self._lock:
            if self._session is not None:
                self._session.stop()
                self._session = None

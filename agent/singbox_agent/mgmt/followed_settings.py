"""A server's own settings in sysrepo running (a container of its settings module), kept applied.

Read at start; a commit that changes them marks them stale (a passive subscription, whose change event an edit
waits for), and `refresh()`, which a server calls from a worker thread before it next needs them (`stale()` says
whether it has to), reads them again: they apply from the next request or login on, and no sysrepo call runs inside
sysrepo's callback or on an event loop. A module that is not installed (or not this revision) leaves the defaults.
Used for each server's `login-backoff` (`mgmt.login_settings`) and RESTCONF's HTTP `limits`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, Generic, TypeVar

import structlog
import sysrepo

log = structlog.get_logger("mgmt.settings")

T = TypeVar("T")


def container(data: dict[str, Any], xpath: str) -> dict[str, Any]:
    """The container at the absolute schema path `xpath` (`/mod:top/child`) of get_data's dict; {} when absent."""
    node: Any = data
    for name in xpath.strip("/").split("/"):
        node = node.get(name.split(":", 1)[-1], {}) if isinstance(node, dict) else {}
    return node if isinstance(node, dict) else {}


class FollowedSettings(Generic[T]):
    """Keeps `apply(parse(container))` called with the configured contents of `xpath`, a container of `module`.
    `what` names the settings in log lines. Blocking (sysrepo) at construction and in `refresh()` after a change."""

    def __init__(self, conn: sysrepo.SysrepoConnection, module: str, xpath: str, *, what: str,
                 parse: Callable[[dict[str, Any]], T], apply: Callable[[T], None]) -> None:
        self.xpath = xpath
        self.what = what
        self._parse = parse
        self._apply = apply
        self.current: T = parse({})
        self._session = conn.start_session("running")
        self._stale = threading.Event()
        try:
            self.reload()
            self._session.subscribe_module_change(module, xpath, self._changed, passive=True)
        except sysrepo.SysrepoError as exc:
            log.warning("settings not configurable; defaults apply", settings=what, module=module, error=str(exc))
            self._apply(self.current)

    def stale(self) -> bool:
        return self._stale.is_set()

    def refresh(self) -> None:
        """Read the settings again if a commit changed them since the last read."""
        if self._stale.is_set():
            self._stale.clear()
            try:
                self.reload()
            except sysrepo.SysrepoError:
                self._stale.set()
                log.exception("reading the settings failed; the previous ones stay", settings=self.what)

    def reload(self) -> None:
        try:
            data = self._session.get_data(self.xpath, include_implicit_defaults=True)
        except sysrepo.SysrepoNotFoundError:
            data = {}
        value = self._parse(container(data, self.xpath))
        if value != self.current:
            log.info("settings", settings=self.what, value=str(value))
        self.current = value
        self._apply(value)

    def _changed(self, event: str, req_id: int, changes: Any, private_data: Any) -> None:
        # a sysrepo callback: only marks (the read happens on the next refresh, in a worker thread)
        if event in ("change", "done"):
            self._stale.set()

    def close(self) -> None:
        self._session.stop()

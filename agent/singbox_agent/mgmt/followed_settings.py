"""A server's own settings in sysrepo running (a container of its settings module), kept applied.

Read at start; a commit of their module makes them stale, and `refresh()`, which a server calls from a worker thread
before it next needs them (`stale()` says whether it has to), reads them again: they apply from the next request or
login on, and no sysrepo call runs inside sysrepo's callback or on an event loop. A module that is not installed (or
not this revision) leaves the defaults. Used for each server's `login-backoff` (`mgmt.login_settings`) and RESTCONF's
HTTP `limits`.

Stale how: no subscription (issue 17). sysrepo 3.7.11 waits for every change subscriber of a commit's module, done-only
ones too, before the commit returns (a round trip to each subscribing process, ~0.1-0.4 ms, on every commit of the
module). `change_notice.RunningStamps` sees the commit instead: sysrepo's JSON datastore plugin renames the module's
new running file into place in the writer's `apply_changes` before it returns (sysrepo.c `sr_changes_notify_store`:
`sr_modinfo_data_store(..., 1)` → ds_json.c `srpds_json_store_commit`'s rename, before the done event), and the
kernel queues the rename on our inotify watch within that rename: any look after the commit returned, in any
process, sees it (one non-blocking read). A commit of another part of the module marks them stale too (one read of a
small container, ~0.03 ms, on the next use). Without such a file (another datastore plugin) a passive done-only
subscription marks them, as before.

"From the next request on" holds for requests that come while another one's refresh is still reading: the settings
stay stale until a read that began after the last change has been applied, and a `refresh()` waits for a read in
progress and then reads again if that one began too early. (Clearing the mark when a read began let a second request
find them not stale and be served with the old ones: a RESTCONF body-timeout just set to 1 s still took 60 s.)
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, Generic, TypeVar

import structlog
import sysrepo

from singbox_agent.mgmt import change_notice

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
        # commits seen (`_seen()`: the stamps' generation, or the done events counted in `_changes`) and the one the
        # applied settings were read after (`_read`): stale while they differ. `_mark` guards both and is never held
        # over a sysrepo call (the callback takes it); `_reading` makes reads one at a time, so a refresh that finds
        # one in progress waits for it.
        self._mark = threading.Lock()
        self._reading = threading.Lock()
        self._changes = 0
        self._read = 0
        # watching before the first read: a commit during that read makes them stale instead of being missed
        self._stamps: change_notice.RunningStamps | None = change_notice.RunningStamps([module])
        if self._stamps.unwatched:
            self._stamps.close()
            self._stamps = None
        try:
            if self._stamps is None:
                change_notice.subscribe(self._session, module, xpath, self._changed, done_only=True)
            self._read = self._seen()
            self.reload()
        except sysrepo.SysrepoError as exc:
            log.warning("settings not configurable; defaults apply", settings=what, module=module, error=str(exc))
            self._apply(self.current)

    def _seen(self) -> int:
        """Moves with every commit of the module that returned to its writer."""
        if self._stamps is not None:
            return self._stamps.generation()
        with self._mark:
            return self._changes

    def stale(self) -> bool:
        """Whether a commit of their module returned after the read the applied settings come from began (also
        while a refresh is reading them)."""
        seen = self._seen()
        with self._mark:
            return seen != self._read

    def refresh(self) -> None:
        """Read the settings again if a commit changed them since the last read began; returns once settings read
        after the last change (before the call) apply, waiting for a read in progress. Blocking (sysrepo)."""
        if not self.stale():
            return
        with self._reading:
            seen = self._seen()  # before the read: a commit during it leaves them stale
            with self._mark:
                if seen == self._read:
                    return  # read by the refresh this one waited for
            try:
                self.reload()
            except sysrepo.SysrepoError:
                log.exception("reading the settings failed; the previous ones stay", settings=self.what)
                return
            with self._mark:
                self._read = seen

    def reload(self) -> None:
        """Reads and applies them (whatever stale() says): `refresh()` and the constructor call it."""
        try:
            data = self._session.get_data(self.xpath, include_implicit_defaults=True)
        except sysrepo.SysrepoNotFoundError:
            data = {}
        value = self._parse(container(data, self.xpath))
        if value != self.current:
            log.info("settings", settings=self.what, value=str(value))
        self.current = value
        self._apply(value)

    def _changed(self, event: str, _ev_sess: Any) -> None:
        # (without RunningStamps only) a sysrepo callback: only marks (the read happens on the next refresh, in a worker thread). At done, when
        # running holds the new data: a read that began before (it may have read the old data) took the count from
        # before this mark, so the settings stay stale after it; a read that begins after reads the new data
        if event == "done":
            with self._mark:
                self._changes += 1

    def close(self) -> None:
        if self._stamps is not None:
            self._stamps.close()
        self._session.stop()

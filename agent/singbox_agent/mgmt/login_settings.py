"""A server's `login-backoff` settings in sysrepo running, kept applied to its `LoginGuard`.

Each server has the container in its own settings module (`/vpp-singbox-netconf-server:netconf-server/
login-backoff`, `/vpp-singbox-restconf-server:restconf-server/login-backoff`), with the same leaves. The policy is
read at start; a commit that changes it marks it stale (a passive subscription, whose change event an edit waits
for), and `refresh()`, which a server calls from a worker thread before the next login (`stale()` says whether it
has to), reads it again then: the next login sees it, and no sysrepo call runs inside sysrepo's callback or on an
event loop.
"""

from __future__ import annotations

import threading
from typing import Any

import structlog
import sysrepo

from singbox_agent.mgmt.login_guard import BackoffPolicy, LoginGuard

log = structlog.get_logger("mgmt.login_settings")


def policy_from_data(data: dict[str, Any]) -> BackoffPolicy:
    """The policy of a `login-backoff` container as get_data gives it (defaults included)."""
    default = BackoffPolicy()
    return BackoffPolicy(
        enabled=bool(data.get("enabled", default.enabled)),
        free_failures=int(data.get("free-failures", default.free_failures)),
        initial_delay=int(data.get("initial-delay", default.initial_delay * 1000)) / 1000,
        maximum_delay=int(data.get("maximum-delay", default.maximum_delay * 1000)) / 1000,
        forget_after=float(data.get("forget-after", default.forget_after)),
        max_auth_tries=int(data.get("max-auth-tries", default.max_auth_tries)),
    )


class LoginSettings:
    """Follows `/<module>:<top>/login-backoff` and sets `guard.policy`. Blocking (sysrepo) at construction and in
    `refresh()` after a change."""

    def __init__(self, conn: sysrepo.SysrepoConnection, module: str, top: str, guard: LoginGuard) -> None:
        self.xpath = f"/{module}:{top}/login-backoff"
        self.guard = guard
        self._session = conn.start_session("running")
        self._stale = threading.Event()
        try:
            self.reload()
            self._session.subscribe_module_change(module, self.xpath, self._changed, passive=True)
        except sysrepo.SysrepoError as exc:  # the module is not installed (or not this revision): defaults stay
            log.warning("login back-off not configurable; defaults apply", module=module, error=str(exc))

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
                log.exception("reading the login back-off settings failed; the previous ones stay")

    def reload(self) -> None:
        try:
            data = self._session.get_data(self.xpath, include_implicit_defaults=True)
        except sysrepo.SysrepoNotFoundError:
            data = {}
        node: Any = data
        for name in self.xpath.strip("/").split("/"):
            node = node.get(name.split(":", 1)[-1], {}) if isinstance(node, dict) else {}
        policy = policy_from_data(node if isinstance(node, dict) else {})
        if policy != self.guard.policy:
            log.info("login back-off", enabled=policy.enabled, free_failures=policy.free_failures,
                     initial_delay_s=policy.initial_delay, maximum_delay_s=policy.maximum_delay,
                     forget_after_s=policy.forget_after)
        self.guard.policy = policy

    def _changed(self, event: str, req_id: int, changes: Any, private_data: Any) -> None:
        if event in ("change", "done"):
            self._stale.set()

    def close(self) -> None:
        self._session.stop()

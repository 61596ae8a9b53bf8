"""A server's `login-backoff` settings in sysrepo running, kept applied to its `LoginGuard` (`FollowedSettings`).

Each server has the container in its own settings module (`/vpp-singbox-netconf-server:netconf-server/
login-backoff`, `/vpp-singbox-restconf-server:restconf-server/login-backoff`), with the same leaves; the next login
after a commit sees a change.
"""

from __future__ import annotations

from typing import Any

import sysrepo

from singbox_agent.mgmt.followed_settings import FollowedSettings
from singbox_agent.mgmt.login_guard import BackoffPolicy, LoginGuard


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


class LoginSettings(FollowedSettings[BackoffPolicy]):
    """Follows `/<module>:<top>/login-backoff` and sets `guard.policy`. Blocking (sysrepo) at construction and in
    `refresh()` after a change."""

    def __init__(self, conn: sysrepo.SysrepoConnection, module: str, top: str, guard: LoginGuard) -> None:
        self.guard = guard
        super().__init__(conn, module, f"/{module}:{top}/login-backoff", what="login back-off",
                         parse=policy_from_data, apply=self._set)

    def _set(self, policy: BackoffPolicy) -> None:
        self.guard.policy = policy

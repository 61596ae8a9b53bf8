"""The limits of `/vpp-singbox-restconf-server:restconf-server/limits`, kept applied.

`max-body-size` is what `RestconfApp` reads a body up to (413 beyond); `max-header-size` bounds a request head:
`RestconfApp` answers 431 beyond it (414 when the request-target alone is larger), h11 431 for a head arriving in
pieces past 4 times it (and closes), and it is the HTTP/2 header list size the server advertises; `body-timeout` is how long a body may take to arrive (408 after).
Read at start; a commit that changes them marks them stale (its change event, which the edit waits for), and
`RestconfApp` has them read again in a worker thread before it reads the next request: they apply from the next
request on (h11's part of the header limit to new connections). The request limits of the same container (XPath,
subtree filters, body trees: `limits.RestconfLimits`) are followed the same way and handed to the handler.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import sysrepo

from singbox_agent.mgmt.followed_settings import FollowedSettings
from singbox_agent.restconf.handler import MAX_BODY_BYTES
from singbox_agent.restconf.limits import MODULE, XPATH, RestconfLimits


@dataclass(frozen=True)
class HttpLimits:
    max_body_size: int = MAX_BODY_BYTES
    max_header_size: int = 16 * 1024
    body_timeout: float = 60.0
    request: RestconfLimits = field(default_factory=RestconfLimits)


def limits_from_data(node: dict[str, Any]) -> HttpLimits:
    """The limits of a `limits` container as get_data gives it (defaults included)."""
    default = HttpLimits()
    return HttpLimits(int(node.get("max-body-size", default.max_body_size)),
                      int(node.get("max-header-size", default.max_header_size)),
                      float(node.get("body-timeout", default.body_timeout)), default.request.with_config(node))


class HttpLimitsSettings(FollowedSettings[HttpLimits]):
    """Keeps `apply(limits)` called with the configured limits. Blocking (sysrepo) at construction and in
    `refresh()` after a change."""

    def __init__(self, conn: sysrepo.SysrepoConnection, apply: Callable[[HttpLimits], None]) -> None:
        super().__init__(conn, MODULE, XPATH, what="HTTP limits", parse=limits_from_data, apply=apply)

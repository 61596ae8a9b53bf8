"""sysrepo's own view of its connections and subscriptions (sysrepo-monitoring), for tests that check who
subscribes to what."""

from __future__ import annotations

import json
from typing import Any

import sysrepo


def sysrepo_state() -> dict[str, Any]:
    """`/sysrepo-monitoring:sysrepo-state` of the instance the environment names, as JSON data."""
    with sysrepo.SysrepoConnection() as conn:
        sess = conn.start_session("operational")
        try:
            with sess.get_data_ly("/sysrepo-monitoring:sysrepo-state") as state:
                data: dict[str, Any] = json.loads(state.print_mem("json", with_siblings=True))
        finally:
            sess.stop()
    return data["sysrepo-monitoring:sysrepo-state"]  # type: ignore[no-any-return]

"""ietf-restconf-monitoring (RFC 8040 §9): capabilities and event streams, served as operational data.

The module is installed into sysrepo with the management-plane modules; this process provides
`/ietf-restconf-monitoring:restconf-state` through an operational-data subscription, so every client (RESTCONF,
NETCONF) reads it like any other state.
"""

from __future__ import annotations

from typing import Any

import sysrepo
from sysrepo.session import SysrepoSession

from singbox_agent.mgmt import replay

MODULE = "ietf-restconf-monitoring"
XPATH = "/ietf-restconf-monitoring:restconf-state"

CAPABILITIES = (
    "urn:ietf:params:restconf:capability:defaults:1.0?basic-mode=explicit",
    "urn:ietf:params:restconf:capability:depth:1.0",
    "urn:ietf:params:restconf:capability:fields:1.0",
    "urn:ietf:params:restconf:capability:filter:1.0",
    "urn:ietf:params:restconf:capability:with-defaults:1.0",
    "urn:ietf:params:restconf:capability:with-origin:1.0",  # RFC 8527 §3.2.2
    "urn:ietf:params:restconf:capability:yang-patch:1.0",
)
# RFC 8040 §9.1.1 / §4.8.7: start-time and stop-time on the event streams, advertised while replay is on
REPLAY = "urn:ietf:params:restconf:capability:replay:1.0"


def restconf_state(base_url: str, replay_support: bool = False, replay_since: float | None = None) -> dict[str, Any]:
    """The restconf-state tree; stream locations are absolute URIs of this server (RFC 8040 §9.3). With replay, the
    log's creation time is that of the oldest notification sysrepo still keeps."""
    state: dict[str, Any] = {
        "restconf-state": {
            "capabilities": {"capability": [*CAPABILITIES, *((REPLAY,) if replay_support else ())]},
            "streams": {
                "stream": [
                    {
                        "name": "NETCONF",
                        "description": "Every YANG notification of every module (RFC 5277 default stream)",
                        "replay-support": replay_support,
                        "access": [
                            {"encoding": "json", "location": f"{base_url}/restconf/streams/NETCONF/json"},
                            {"encoding": "xml", "location": f"{base_url}/restconf/streams/NETCONF/xml"},
                        ],
                    }
                ]
            },
        }
    }
    if replay_support and replay_since is not None:
        state["restconf-state"]["streams"]["stream"][0]["replay-log-creation-time"] = replay.event_time(
            int(replay_since), int((replay_since % 1) * 1e9))
    return state


def provide(session: SysrepoSession, base_url: str) -> None:
    """Subscribe on `session` (kept open by the caller for the server's lifetime)."""
    def callback(xpath: str, private_data: Any, **_: Any) -> dict[str, Any]:
        # replay state read on each request: the oldest stored notification moves as sysrepo rotates its files
        return restconf_state(base_url, *replay.session_replay_state(session))

    session.subscribe_oper_data_request(MODULE, XPATH, callback)

"""ietf-restconf-monitoring (RFC 8040 §9): capabilities and event streams, served as operational data.

The module is installed into sysrepo with the management-plane modules; this process provides
`/ietf-restconf-monitoring:restconf-state` through an operational-data subscription, so every client (RESTCONF,
NETCONF) reads it like any other state.
"""

from __future__ import annotations

from typing import Any

import sysrepo
from sysrepo.session import SysrepoSession

MODULE = "ietf-restconf-monitoring"
XPATH = "/ietf-restconf-monitoring:restconf-state"

CAPABILITIES = (
    "urn:ietf:params:restconf:capability:defaults:1.0?basic-mode=explicit",
    "urn:ietf:params:restconf:capability:depth:1.0",
    "urn:ietf:params:restconf:capability:fields:1.0",
    "urn:ietf:params:restconf:capability:filter:1.0",
    "urn:ietf:params:restconf:capability:with-defaults:1.0",
    "urn:ietf:params:restconf:capability:yang-patch:1.0",
)


def restconf_state(base_url: str) -> dict[str, Any]:
    """The restconf-state tree; stream locations are absolute URIs of this server (RFC 8040 §9.3)."""
    return {
        "restconf-state": {
            "capabilities": {"capability": list(CAPABILITIES)},
            "streams": {
                "stream": [
                    {
                        "name": "NETCONF",
                        "description": "Every YANG notification of every module (RFC 5277 default stream)",
                        "replay-support": False,
                        "access": [
                            {"encoding": "json", "location": f"{base_url}/restconf/streams/NETCONF/json"},
                            {"encoding": "xml", "location": f"{base_url}/restconf/streams/NETCONF/xml"},
                        ],
                    }
                ]
            },
        }
    }


def provide(session: SysrepoSession, base_url: str) -> None:
    """Subscribe on `session` (kept open by the caller for the server's lifetime)."""
    state = restconf_state(base_url)

    def callback(xpath: str, private_data: Any, **_: Any) -> dict[str, Any]:
        return state

    session.subscribe_oper_data_request(MODULE, XPATH, callback)

"""Operational data of vpp-singbox as libyang dicts: the `config false` nodes, from the dataplane's report."""

from __future__ import annotations

import re
import threading
from datetime import UTC, datetime, timedelta
from typing import Any

from singbox_agent.agent.fastoper import OperTree, SessionsOnChangeTree, SessionsOperTree
from singbox_agent.dataplane.base import OperState, Session
from singbox_agent.mgmt import xpath

# What a read asks for, from the request xpath sysrepo hands the callback. Only plain paths are narrowed; anything
# else (unions, wildcards, '//', predicates on other leaves) gets the whole subtree, which is always correct:
# sysrepo filters the tree by the request xpath anyway. Narrowing only saves building what would be filtered out.
_P = r"(?:vpp-singbox:)?"
_CHILD = re.compile(rf"/{_P}singbox/{_P}(?P<top>client|server)/{_P}(?P<child>[a-z-]+)(?:[/\[].*)?")
_SESSION = re.compile(rf"""/{_P}singbox/{_P}sessions/{_P}session\[{_P}id=(?P<q>['"])(?P<id>\d+)(?P=q)\](?:/.*)?""")


def _plain(xpath: str | None) -> str | None:
    if not xpath or any(t in xpath for t in ("|", "//", "*", "..", "(", " or ", " and ")):
        return None
    return xpath


def requested_child(xpath: str | None, top: str) -> str | None:
    """'statistics' for a read of /singbox/server/statistics/...; None when the read may need all of `top`."""
    m = _CHILD.fullmatch(_plain(xpath) or "")
    return m["child"] if m and m["top"] == top else None


def requested_session(xpath: str | None) -> int | None:
    """The id of the one session a read asks for (/singbox/sessions/session[id='7']/...), else None."""
    m = _SESSION.fullmatch(_plain(xpath) or "")
    return int(m["id"]) if m else None


# 64-bit values (uint64, counter64) are JSON strings (RFC 7951): the trees go through libyang's JSON parser.


def timestamp(at: datetime | None = None) -> str:
    """yang:date-and-time in UTC."""
    return (at or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


_steady: dict[str, datetime] = {}
_steady_lock = threading.Lock()


def steady_ago(key: str, seconds: int) -> str:
    """The time `seconds` (a whole-second age the dataplane reports) ago, the same at every read while the age
    keeps counting: now minus a whole-second age moves by up to a second from read to read, which on-change
    subscribers (oper_poll.py) would hear as a change of e.g. last-change at every poll."""
    at = datetime.now(UTC) - timedelta(seconds=seconds)
    with _steady_lock:
        seen = _steady.get(key)
        if seen is not None and abs((at - seen).total_seconds()) < 2:
            at = seen
        else:
            _steady[key] = at
    return timestamp(at)


def forget_steady(prefix: str, keep: set[str]) -> None:
    """Drop the remembered times of `prefix` keys not in `keep` (endpoints no longer configured)."""
    with _steady_lock:
        for key in [k for k in _steady if k.startswith(prefix) and k not in keep]:
            del _steady[key]


def client_state(state: OperState, endpoints: list[str], interfaces: list[tuple[str, bool]],
                 discontinuity: dict[tuple[str, ...], str], groups: list[str] | None = None) -> dict[str, Any]:
    """`interfaces` are (name, enabled) of the configured entries, `groups` the configured endpoint groups; only
    configured entries are reported."""
    eps: list[dict[str, Any]] = []
    if endpoints:  # all the configured ones (a read that wants endpoints at all wants them all)
        forget_steady("endpoint ", {f"endpoint {name}" for name in endpoints})
    for name in endpoints:
        st = state.endpoints.get(name)
        if st is None:
            continue
        eps.append({
            "name": name,
            "oper-status": st.oper_status,
            "last-change": steady_ago(f"endpoint {name}", st.last_change_age),
            "round-trip-time": st.rtt_us,
            "statistics": {
                "discontinuity-time": discontinuity.get(("endpoint", name), discontinuity[()]),
                "connection-failures": str(st.failures),
                "consecutive-failures": st.consecutive_failures,
                "active-connections": st.active_connections,
            },
        })
    ifs: list[dict[str, Any]] = []
    for name, enabled in interfaces:
        ist = state.interfaces.get(name)
        if not enabled or ist is None:
            ifs.append({"name": name, "oper-status": "disabled" if not enabled else "not-present"})
            continue
        entry: dict[str, Any] = {
            "name": name,
            "oper-status": "active" if ist.present else "not-present",
            "statistics": {
                "discontinuity-time": discontinuity.get(("interface", name), discontinuity[()]),
                "packets-redirected": str(ist.packets_redirected),
                "bytes-redirected": str(ist.bytes_redirected),
                "active-connections": ist.active_connections,
                "total-connections": str(ist.total_connections),
                "connection-failures": str(ist.connection_failures),
            },
        }
        if ist.udp is not None:
            u = ist.udp
            entry["statistics"]["udp"] = {
                "active-flows": u.active_flows, "flows": str(u.flows), "flow-failures": str(u.flow_failures),
                "packets-to-proxy": str(u.packets_to_proxy), "octets-to-proxy": str(u.octets_to_proxy),
                "packets-from-proxy": str(u.packets_from_proxy), "octets-from-proxy": str(u.octets_from_proxy),
                "dropped": str(u.dropped)}
        if ist.active_endpoint:
            entry["effective-endpoint"] = ist.active_endpoint
        ifs.append(entry)
    grps: list[dict[str, Any]] = []
    for name in groups or ():
        members = state.groups.get(name)
        if not members:
            continue
        since = discontinuity.get(("endpoint-group", name), discontinuity[()])
        grps.append({"name": name, "member": [{
            "endpoint": endpoint,
            "eligible": mst.eligible,
            "statistics": {
                "discontinuity-time": since,
                "connections": str(mst.connections),
                "active-connections": mst.active_connections,
                "connection-failures": str(mst.connection_failures),
            }} for endpoint, mst in members.items()]})
    client: dict[str, Any] = {}
    if eps:
        client["endpoint"] = eps
    if grps:
        client["endpoint-group"] = grps
    if ifs:
        client["interface"] = ifs
    return OperTree(singbox={"client": client}) if client else {}


def server_state(state: OperState | None, listeners: list[str], users: list[str],
                 discontinuity: dict[tuple[str, ...], str], *, counters: bool = True) -> dict[str, Any]:
    """`counters`: oper-status and statistics of the server (left out when the read asks for something else)."""
    if state is None:
        return OperTree(singbox={"server": {"oper-status": "stopped"}})
    srv = state.server
    out: dict[str, Any] = {} if not counters else {
        "oper-status": "running" if srv.running else "stopped",
        "statistics": {
            "discontinuity-time": discontinuity.get(("server",), discontinuity[()]),
            "connections-accepted": str(srv.accepted),
            "connections-rejected": str(srv.rejected),
            "auth-failures": str(srv.auth_failures),
            "connect-failures": str(srv.connect_failures),
            "bytes-forwarded": str(srv.bytes_forwarded),
            "active-sessions": srv.active_sessions,
        },
    }
    lst = [{"name": n, "listening": state.listeners.get(n, False)} for n in listeners]
    if lst:
        out["listen"] = lst
    usr = []
    for u in users:
        ust = state.users.get(u)
        if ust is not None:
            usr.append({"username": u, "statistics": {"auth-failures": str(ust.auth_failures),
                                                      "active-sessions": ust.active_sessions}})
    if usr:
        out["authentication"] = {"user": usr}
    return OperTree(singbox={"server": out}) if out else {}


# What of a session is worth an on-change notification (RFC 8641 3.10: the publisher decides which nodes are
# on-change notifiable): the session starting and ending (its entry) and its state. Not its counters (bytes,
# datagrams) and age: they move with every packet and every second, so on-change of them would be a report per
# session per poll, which periodic YANG-Push carries at the rate the subscriber chooses. Nor what the session is
# (mode, addresses, ports, interface, endpoint, user): fixed for its life, read with the session when wanted. The
# agent's poll of the sessions list (oper_poll.py) reads this path only, so sysrepo's difference (and srsn's YANG
# patch) holds only starts, ends and state changes, and a poll of 10,000 sessions is 30,000 nodes, not 110,000.
SESSIONS_ON_CHANGE_XPATH = "/vpp-singbox:singbox/sessions/session/state"


def sessions(items: list[Session], only: int | None = None, *, on_change: bool = False) -> dict[str, Any]:
    """`only`: the id of the one session the read asks for; the others are not built. `on_change`: only the
    on-change notifiable leaf (SESSIONS_ON_CHANGE_XPATH), for the agent's poll of the sessions list."""
    out: list[dict[str, Any]] = []
    for s in items:
        if only is not None and s.id != only:
            continue
        if on_change:
            out.append({"id": str(s.id), "state": s.state})
            continue
        e: dict[str, Any] = {
            "id": str(s.id),
            "mode": s.mode,
            "client-address": s.client_address,
            "client-port": s.client_port,
            "destination-port": s.destination_port,
            "state": s.state,
            "bytes-from-client": str(s.bytes_from_client),
            "bytes-to-client": str(s.bytes_to_client),
            "age": s.age,
        }
        if s.protocol == "udp":  # tcp is the default: left out, 10,000 TCP sessions are 10,000 nodes fewer
            e["protocol"] = "udp"
            e["packets-from-client"] = str(s.packets_from_client)
            e["packets-to-client"] = str(s.packets_to_client)
        if s.destination_domain:
            e["destination-domain"] = s.destination_domain
        elif s.destination_address:
            e["destination-address"] = s.destination_address
        if s.endpoint:  # client mode's, or a server session's in the proxy chain
            e["endpoint"] = s.endpoint
        if s.mode == "client":
            if s.interface:
                e["interface"] = s.interface
        elif s.username:
            e["username"] = s.username
        out.append(e)
    if on_change:  # none left is news too: the kept tree lets them go a batch at a time (sessions_tree.py)
        return SessionsOnChangeTree(singbox={"sessions": {"session": out}})
    if not out:
        return {}
    # the whole list is kept between reads (sessions_tree.py): each read changes what changed
    return (OperTree if only is not None else SessionsOperTree)(singbox={"sessions": {"session": out}})



PUSH_TOP = "/vpp-singbox:singbox"


def endpoint_node(name: str) -> str:
    return f"{PUSH_TOP}/client/endpoint[name={xpath.quote(name, in_path=True)}]"


def interface_node(name: str) -> str:
    return f"{PUSH_TOP}/client/interface[name={xpath.quote(name, in_path=True)}]"


def pushed_objects(state: OperState | None, endpoints: list[str], interfaces: list[tuple[str, bool]], *,
                   server: bool = True) -> dict[str, dict[str, Any]]:
    """The slowly changing part of the client's and server's state, as the agent pushes it into the operational
    datastore (oper_push): node xpath -> leaves, the same values the pull callbacks give (client_state,
    server_state). `state`: the dataplane's report, None when it is not connected; `endpoints`, `interfaces`
    ((name, enabled)): the configured ones. What the dataplane does not report (it is away, or has not taken the
    object), or reports as 'unknown', has no leaves: unknown, not the last value seen. `server`: the server's
    node too (a re-read of a few endpoints leaves it out)."""
    out: dict[str, dict[str, Any]] = {}
    reported = state if state is not None else OperState()
    for name in endpoints:
        st = reported.endpoints.get(name)
        # 'unknown' (no health check, or none finished yet) is not pushed: thousands of endpoints without health
        # checks would otherwise make every push cost more (sysrepo rewrites the session's push data whole)
        status = st.oper_status if st is not None else "unknown"
        out[endpoint_node(name)] = {"oper-status": status} if status != "unknown" else {}
    for name, enabled in interfaces:
        leaves: dict[str, Any] = {}
        ist = reported.interfaces.get(name)
        if not enabled:
            leaves["oper-status"] = "disabled"
        elif state is not None:
            leaves["oper-status"] = "active" if ist is not None and ist.present else "not-present"
            if ist is not None and ist.present and ist.active_endpoint:
                leaves["effective-endpoint"] = ist.active_endpoint
        out[interface_node(name)] = leaves
    if server:
        out[f"{PUSH_TOP}/server"] = {"oper-status": "running" if state is not None and state.server.running
                                     else "stopped"}
    return out


def pushed_dataplane(connected: bool, pending: bool, last_error: str | None) -> dict[str, dict[str, Any]]:
    """The dataplane's part of what the agent pushes: the leaves of /singbox/dataplane that change seldom."""
    leaves: dict[str, Any] = {"connected": connected, "config-pending": pending}
    if last_error:
        leaves["last-error"] = last_error
    return {f"{PUSH_TOP}/dataplane": leaves}

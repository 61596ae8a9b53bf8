"""The product's metrics at one instant, built from a stats `Segment` (pure: no I/O).

Names: VPP keys per-interface counters by sw_if_index; the interface's name is taken from the segment's own name
vector `/if/names` (the same names `show interface` prints and the YANG interface list uses). Endpoint names are
part of their stats paths (`/singbox/client/endpoint/<name>/state`), as the plugin registers them. Nothing here
asks the agent or VPP's binary API: a scrape costs one read of the shared memory segment.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from singbox_agent.metrics.segment import CombinedCounter, NameVector, Segment, SimpleCounter, Value

EndpointStateName = Literal["unknown", "up", "down"]
ENDPOINT_STATES: tuple[EndpointStateName, ...] = ("unknown", "up", "down")  # the plugin's gauge values 0, 1, 2

SERVER = "/singbox/server/"
CLIENT_IF = "/singbox/client/interface/"
CLIENT_EP = "/singbox/client/endpoint/"
CLIENT_GROUP = "/singbox/client/group/"
# The singbox plugin's presence in the segment: registered at plugin init, whatever is configured.
PLUGIN_MARK = SERVER + "accepted"


@dataclass(frozen=True)
class ServerMetrics:
    accepted: int = 0
    rejected: int = 0
    rejected_max_sessions: int = 0
    rejected_prefix: int = 0
    auth_failures: int = 0
    connect_failures: int = 0
    bytes_to_client: int = 0
    bytes_from_client: int = 0
    udp_dropped: int = 0
    udp_from_client: tuple[int, int] = (0, 0)  # packets, bytes
    udp_to_client: tuple[int, int] = (0, 0)
    active_sessions: int = 0


@dataclass(frozen=True)
class ClientInterfaceMetrics:
    name: str
    connections: int = 0
    failures: int = 0
    redirected_packets: int = 0
    redirected_bytes: int = 0
    active_connections: int = 0
    # UDP relaying (SOCKS5 UDP ASSOCIATE per flow); zeros while it is off
    udp_flows: int = 0
    udp_flow_failures: int = 0
    udp_dropped: int = 0
    udp_to_proxy: tuple[int, int] = (0, 0)  # datagrams, payload bytes
    udp_from_proxy: tuple[int, int] = (0, 0)
    udp_active_flows: int = 0


@dataclass(frozen=True)
class EndpointMetrics:
    name: str
    state: EndpointStateName = "unknown"
    rtt_seconds: float = 0.0
    failures: int = 0
    connections: int | None = None  # None: the plugin does not export it (see README.md)


@dataclass(frozen=True)
class GroupMemberMetrics:
    """One member of an endpoint group, as the group counts it (/singbox/client/group/<group>/<endpoint>/...)."""

    group: str
    endpoint: str
    connections: int = 0
    active_connections: int = 0
    failures: int = 0

    @property
    def name(self) -> str:
        return f"{self.group}/{self.endpoint}"


@dataclass(frozen=True)
class InterfaceMetrics:
    """VPP's own counters of one interface (/if/rx, /if/tx, /if/drops, ...)."""

    name: str
    rx_packets: int = 0
    rx_bytes: int = 0
    tx_packets: int = 0
    tx_bytes: int = 0
    drops: int = 0
    rx_errors: int = 0
    tx_errors: int = 0


@dataclass(frozen=True)
class Versions:
    vpp: str
    plugin: str


@dataclass(frozen=True)
class Snapshot:
    agent_version: str
    dataplane_up: bool = False
    dataplane_versions: Versions | None = None
    dataplane_start_time: float | None = None  # Unix time VPP started
    server: ServerMetrics | None = None
    client_interfaces: tuple[ClientInterfaceMetrics, ...] = ()
    endpoints: tuple[EndpointMetrics, ...] = ()
    group_members: tuple[GroupMemberMetrics, ...] = ()
    interfaces: tuple[InterfaceMetrics, ...] = ()
    read_seconds: float | None = None  # how long reading the segment took


def _int(entries: dict[str, Value], path: str) -> int:
    """A counter's index 0 summed over threads, or a gauge."""
    value = entries.get(path, 0)
    if isinstance(value, SimpleCounter):
        return value.at(0)
    if isinstance(value, int | float):
        return int(value)
    return 0


def interface_name(names: NameVector | None, index: int) -> str:
    """The VPP name of sw_if_index `index`; "sw_if_index=N" when the segment names none (deleted meanwhile)."""
    name = names.at(index) if names is not None else ""
    return name or f"sw_if_index={index}"


def _server(e: dict[str, Value]) -> ServerMetrics:
    udp = e.get(SERVER + "udp-datagrams")
    udp_from, udp_to = (udp.at(0), udp.at(1)) if isinstance(udp, CombinedCounter) else ((0, 0), (0, 0))
    return ServerMetrics(
        accepted=_int(e, SERVER + "accepted"),
        rejected=_int(e, SERVER + "rejected"),
        rejected_max_sessions=_int(e, SERVER + "rejected-max-sessions"),
        rejected_prefix=_int(e, SERVER + "rejected-prefix"),
        auth_failures=_int(e, SERVER + "auth-failures"),
        connect_failures=_int(e, SERVER + "connect-failures"),
        bytes_to_client=_int(e, SERVER + "bytes-to-client"),
        bytes_from_client=_int(e, SERVER + "bytes-from-client"),
        udp_dropped=_int(e, SERVER + "udp-dropped"),
        udp_from_client=udp_from,
        udp_to_client=udp_to,
        active_sessions=_int(e, SERVER + "active-sessions"),
    )


def _client_interfaces(e: dict[str, Value], names: NameVector | None) -> list[ClientInterfaceMetrics]:
    """One entry per interface the plugin relays on: those with an `/singbox/client/interface/<index>/active`
    gauge (registered when relaying is enabled on it, removed when disabled)."""
    connections = e.get(CLIENT_IF + "connections")
    failures = e.get(CLIENT_IF + "failures")
    redirected = e.get(CLIENT_IF + "redirected")
    udp_simple = {name: e.get(CLIENT_IF + name) for name in ("udp-flows", "udp-failures", "udp-dropped")}
    udp_to, udp_from = e.get(CLIENT_IF + "udp-to-proxy"), e.get(CLIENT_IF + "udp-from-proxy")

    def simple(name: str, index: int) -> int:
        c = udp_simple[name]
        return c.at(index) if isinstance(c, SimpleCounter) else 0

    out: list[ClientInterfaceMetrics] = []
    for path, value in e.items():
        if not (path.startswith(CLIENT_IF) and path.endswith("/active")):
            continue
        index_text = path[len(CLIENT_IF):-len("/active")]
        if not index_text.isdigit():
            continue
        index = int(index_text)
        packets, octets = redirected.at(index) if isinstance(redirected, CombinedCounter) else (0, 0)
        udp_active = e.get(f"{CLIENT_IF}{index}/udp-active")
        out.append(ClientInterfaceMetrics(
            name=interface_name(names, index),
            connections=connections.at(index) if isinstance(connections, SimpleCounter) else 0,
            failures=failures.at(index) if isinstance(failures, SimpleCounter) else 0,
            redirected_packets=packets,
            redirected_bytes=octets,
            active_connections=int(value) if isinstance(value, int | float) else 0,
            udp_flows=simple("udp-flows", index),
            udp_flow_failures=simple("udp-failures", index),
            udp_dropped=simple("udp-dropped", index),
            udp_to_proxy=udp_to.at(index) if isinstance(udp_to, CombinedCounter) else (0, 0),
            udp_from_proxy=udp_from.at(index) if isinstance(udp_from, CombinedCounter) else (0, 0),
            udp_active_flows=int(udp_active) if isinstance(udp_active, int | float) else 0,
        ))
    return out


def _endpoints(e: dict[str, Value]) -> list[EndpointMetrics]:
    """Endpoints by the name in their stats paths: /singbox/client/endpoint/<name>/{state,rtt-us,failures,
    connections}. Endpoint names cannot contain "/" (YANG pattern), but the name is taken up to the last "/" anyway."""
    fields: dict[str, dict[str, int]] = {}
    for path, value in e.items():
        if not path.startswith(CLIENT_EP) or not isinstance(value, int | float):
            continue
        name, sep, leaf = path[len(CLIENT_EP):].rpartition("/")
        if sep and name:
            fields.setdefault(name, {})[leaf] = int(value)
    out: list[EndpointMetrics] = []
    for name, f in fields.items():
        state = f.get("state", 0)
        out.append(EndpointMetrics(
            name=name,
            state=ENDPOINT_STATES[state] if 0 <= state < len(ENDPOINT_STATES) else "unknown",
            rtt_seconds=f.get("rtt-us", 0) / 1e6,
            failures=f.get("failures", 0),
            connections=f.get("connections"),
        ))
    return out


def _group_members(e: dict[str, Value]) -> list[GroupMemberMetrics]:
    """Members by the group and endpoint names in their stats paths: /singbox/client/group/<group>/<endpoint>/
    {connections,active,failures}. Neither name can contain "/" (YANG patterns)."""
    fields: dict[tuple[str, str], dict[str, int]] = {}
    for path, value in e.items():
        if not path.startswith(CLIENT_GROUP) or not isinstance(value, int | float):
            continue
        parts = path[len(CLIENT_GROUP):].split("/")
        if len(parts) == 3 and parts[0] and parts[1]:
            fields.setdefault((parts[0], parts[1]), {})[parts[2]] = int(value)
    return [GroupMemberMetrics(group, endpoint, f.get("connections", 0), f.get("active", 0), f.get("failures", 0))
            for (group, endpoint), f in fields.items()]


def _interfaces(e: dict[str, Value], names: NameVector | None) -> list[InterfaceMetrics]:
    if names is None:
        return []
    rx, tx = e.get("/if/rx"), e.get("/if/tx")
    drops, rx_err, tx_err = e.get("/if/drops"), e.get("/if/rx-error"), e.get("/if/tx-error")

    def simple(counter: Value | None, index: int) -> int:
        return counter.at(index) if isinstance(counter, SimpleCounter) else 0

    def combined(counter: Value | None, index: int) -> tuple[int, int]:
        return counter.at(index) if isinstance(counter, CombinedCounter) else (0, 0)

    out: list[InterfaceMetrics] = []
    for index, name in enumerate(names.names):
        if not name:
            continue
        rxp, rxb = combined(rx, index)
        txp, txb = combined(tx, index)
        out.append(InterfaceMetrics(name, rxp, rxb, txp, txb, simple(drops, index), simple(rx_err, index),
                                    simple(tx_err, index)))
    return out


def build(segment: Segment | None, *, agent_version: str, versions: Versions | None = None) -> Snapshot:
    """The metrics of `segment` (None: no dataplane). `versions`: VPP's and the plugin's, when known."""
    if segment is None:
        return Snapshot(agent_version=agent_version, dataplane_versions=versions)
    e = dict(segment.entries)
    names = e.get("/if/names")
    names = names if isinstance(names, NameVector) else None
    plugin = PLUGIN_MARK in e
    boot = e.get("/sys/boottime")
    by_name = lambda item: item.name  # noqa: E731 - stable output order for diffs and tests
    return Snapshot(
        agent_version=agent_version,
        dataplane_up=plugin,
        dataplane_versions=versions,
        dataplane_start_time=float(boot) if isinstance(boot, int | float) and boot > 0 else None,
        server=_server(e) if plugin else None,
        client_interfaces=tuple(sorted(_client_interfaces(e, names), key=by_name)),
        endpoints=tuple(sorted(_endpoints(e), key=by_name)),
        group_members=tuple(sorted(_group_members(e), key=by_name)),
        interfaces=tuple(_interfaces(e, names)),
        read_seconds=segment.read_seconds,
    )

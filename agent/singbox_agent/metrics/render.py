"""`render(snapshot)`: the Prometheus text exposition format (0.0.4) or OpenMetrics 1.0 text (pure: no I/O).

Every family has HELP and TYPE (and UNIT in OpenMetrics when its name ends in a base unit), even with no samples
at the moment (no endpoint configured, VPP down). Counters end in `_total`; times are seconds, sizes bytes.
Per-session series are deliberately absent: a label per session would create one time series per connection (10,000
sessions, each short-lived) — the session list is in the YANG operational data.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

from singbox_agent.metrics.snapshot import ENDPOINT_STATES, Snapshot

Kind = Literal["counter", "gauge", "info"]
Labels = tuple[tuple[str, str], ...]
TEXT_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
OPENMETRICS_CONTENT_TYPE = "application/openmetrics-text; version=1.0.0; charset=utf-8"


@dataclass
class Family:
    """One metric family. `name` is the OpenMetrics family name: without `_total` (counter) or `_info` (info)."""

    name: str
    kind: Kind
    help: str
    unit: str = ""
    samples: list[tuple[Labels, int | float]] = field(default_factory=list)

    def add(self, value: int | float, **labels: str) -> None:
        self.samples.append((tuple(labels.items()), value))

    @property
    def sample_name(self) -> str:
        return self.name + {"counter": "_total", "info": "_info", "gauge": ""}[self.kind]


def _escape_label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _escape_help(text: str, openmetrics: bool) -> str:
    text = text.replace("\\", "\\\\").replace("\n", "\\n")
    return text.replace('"', '\\"') if openmetrics else text


def _number(value: int | float) -> str:
    if isinstance(value, int):
        return str(value)
    if value != value:  # NaN
        return "NaN"
    return repr(float(value))


def families(snap: Snapshot) -> list[Family]:
    """The metric families of `snap`, in output order."""
    out: list[Family] = []

    def fam(name: str, kind: Kind, help: str, unit: str = "") -> Family:
        out.append(Family(name, kind, help, unit))
        return out[-1]

    fam("singbox_agent_build", "info", "Version of the vpp-singbox management plane (agent, NETCONF and RESTCONF "
        "servers, this exporter).").add(1, version=snap.agent_version)
    f = fam("singbox_dataplane_build", "info", "Versions of the dataplane: VPP and the singbox plugin, as the agent "
            "last saw them connected.")
    if snap.dataplane_versions is not None:
        f.add(1, vpp_version=snap.dataplane_versions.vpp, plugin_version=snap.dataplane_versions.plugin)
    fam("singbox_dataplane_up", "gauge", "1 when VPP's stats segment is readable and holds the singbox plugin's "
        "counters, else 0.").add(1 if snap.dataplane_up else 0)
    f = fam("singbox_dataplane_start_time_seconds", "gauge", "When VPP started, seconds since the Unix epoch (its "
            "counters restart from zero then).", "seconds")
    if snap.dataplane_start_time is not None:
        f.add(snap.dataplane_start_time)
    f = fam("singbox_exporter_stats_read_seconds", "gauge", "Time this scrape spent reading VPP's stats segment.",
            "seconds")
    if snap.read_seconds is not None:
        f.add(snap.read_seconds)

    s = snap.server
    server_counters = [
        ("singbox_server_connections_accepted", "SOCKS5 server: TCP connections accepted.", "accepted"),
        ("singbox_server_connections_rejected", "SOCKS5 server: connections refused for any reason (sessions limit, "
         "client prefix not allowed, bad SOCKS request).", "rejected"),
        ("singbox_server_connections_rejected_max_sessions", "SOCKS5 server: connections refused because "
         "max-sessions were open (also counted in connections_rejected).", "rejected_max_sessions"),
        ("singbox_server_connections_rejected_prefix", "SOCKS5 server: connections refused because the client's "
         "address is in no allowed prefix (also counted in connections_rejected).", "rejected_prefix"),
        ("singbox_server_auth_failures", "SOCKS5 server: failed authentications (wrong user name or password, no "
         "acceptable method).", "auth_failures"),
        ("singbox_server_connect_failures", "SOCKS5 server: failed connects to the destination or name "
         "resolutions.", "connect_failures"),
    ]
    for name, help, attr in server_counters:
        f = fam(name, "counter", help)
        if s is not None:
            f.add(getattr(s, attr))
    f = fam("singbox_server_relayed_bytes", "counter", "SOCKS5 server: payload bytes relayed, by direction as seen "
            "from the SOCKS client.", "bytes")
    if s is not None:
        f.add(s.bytes_to_client, direction="to_client")
        f.add(s.bytes_from_client, direction="from_client")
    f = fam("singbox_server_udp_datagrams", "counter", "SOCKS5 server, UDP ASSOCIATE: datagrams relayed, by "
            "direction.")
    g = fam("singbox_server_udp_relayed_bytes", "counter", "SOCKS5 server, UDP ASSOCIATE: bytes relayed, by "
            "direction.", "bytes")
    if s is not None:
        f.add(s.udp_to_client[0], direction="to_client")
        f.add(s.udp_from_client[0], direction="from_client")
        g.add(s.udp_to_client[1], direction="to_client")
        g.add(s.udp_from_client[1], direction="from_client")
    f = fam("singbox_server_udp_dropped_datagrams", "counter", "SOCKS5 server, UDP ASSOCIATE: datagrams dropped "
            "(fragmented, from an unexpected source, malformed).")
    if s is not None:
        f.add(s.udp_dropped)
    f = fam("singbox_server_active_sessions", "gauge", "SOCKS5 server: sessions open now.")
    if s is not None:
        f.add(s.active_sessions)

    itf = [
        ("singbox_client_interface_connections", "counter", "Client mode: connections intercepted on the interface "
         "since relaying was enabled on it.", "", "connections"),
        ("singbox_client_interface_connection_failures", "counter", "Client mode: intercepted connections refused "
         "(limit reached, no endpoint) or whose upstream connect or handshake failed.", "", "failures"),
        ("singbox_client_interface_redirected_packets", "counter", "Client mode: packets relayed through the "
         "upstream proxy for connections of the interface that ended.", "", "redirected_packets"),
        ("singbox_client_interface_redirected_bytes", "counter", "Client mode: bytes relayed through the upstream "
         "proxy for connections of the interface that ended.", "bytes", "redirected_bytes"),
        ("singbox_client_interface_active_connections", "gauge", "Client mode: intercepted connections open now.",
         "", "active_connections"),
    ]
    for name, kind, help, unit, attr in itf:
        f = fam(name, kind, help, unit)  # type: ignore[arg-type]
        for ci in snap.client_interfaces:
            f.add(getattr(ci, attr), interface=ci.name)
    f = fam("singbox_client_interface_udp_flows", "counter", "Client mode, UDP: flows relayed through the endpoint, "
            "one SOCKS5 UDP association each.")
    g = fam("singbox_client_interface_udp_flow_failures", "counter", "Client mode, UDP: flows whose association "
            "failed (endpoint unreachable or not SOCKS5, request refused, no reply in time).")
    h = fam("singbox_client_interface_udp_dropped_datagrams", "counter", "Client mode, UDP: datagrams dropped "
            "(beyond max-flows, queue full, a reply fragmented or not from the flow's destination).")
    for ci in snap.client_interfaces:
        f.add(ci.udp_flows, interface=ci.name)
        g.add(ci.udp_flow_failures, interface=ci.name)
        h.add(ci.udp_dropped, interface=ci.name)
    f = fam("singbox_client_interface_udp_datagrams", "counter", "Client mode, UDP: datagrams relayed, by "
            "direction (to_proxy: from clients to the endpoint).")
    g = fam("singbox_client_interface_udp_relayed_bytes", "counter", "Client mode, UDP: payload bytes relayed, by "
            "direction.", "bytes")
    for ci in snap.client_interfaces:
        for direction, (packets, octets) in (("to_proxy", ci.udp_to_proxy), ("from_proxy", ci.udp_from_proxy)):
            f.add(packets, interface=ci.name, direction=direction)
            g.add(octets, interface=ci.name, direction=direction)
    f = fam("singbox_client_interface_udp_active_flows", "gauge", "Client mode, UDP: flows relayed now.")
    for ci in snap.client_interfaces:
        f.add(ci.udp_active_flows, interface=ci.name)

    f = fam("singbox_client_endpoint_state", "gauge", "Client mode: health of the upstream endpoint, 1 for its "
            "current state (up, down, unknown = health checks off or not yet probed) and 0 for the others.")
    for ep in snap.endpoints:
        for state in ENDPOINT_STATES:
            f.add(1 if ep.state == state else 0, endpoint=ep.name, state=state)
    f = fam("singbox_client_endpoint_rtt_seconds", "gauge", "Client mode: round trip time of the endpoint's last "
            "health probe or handshake.", "seconds")
    for ep in snap.endpoints:
        f.add(ep.rtt_seconds, endpoint=ep.name)
    f = fam("singbox_client_endpoint_failures", "counter", "Client mode: failed connects, handshakes and health "
            "probes of the endpoint.")
    for ep in snap.endpoints:
        f.add(ep.failures, endpoint=ep.name)
    f = fam("singbox_client_endpoint_connections", "counter", "Client mode: connections relayed through the "
            "endpoint.")
    for ep in snap.endpoints:
        if ep.connections is not None:
            f.add(ep.connections, endpoint=ep.name)

    members = [
        ("singbox_client_group_member_connections", "counter", "Client mode: new connections the endpoint group "
         "chose the member for.", "connections"),
        ("singbox_client_group_member_active_connections", "gauge", "Client mode: connections through the member, "
         "chosen by the endpoint group, open now.", "active_connections"),
        ("singbox_client_group_member_failures", "counter", "Client mode: connections the endpoint group chose the "
         "member for whose upstream connection or handshake failed.", "failures"),
    ]
    for name, kind, help, attr in members:
        f = fam(name, kind, help)  # type: ignore[arg-type]
        for m in snap.group_members:
            f.add(getattr(m, attr), group=m.group, endpoint=m.endpoint)

    vif = [
        ("singbox_dataplane_interface_receive_packets", "VPP interface: packets received.", "", "rx_packets"),
        ("singbox_dataplane_interface_receive_bytes", "VPP interface: bytes received.", "bytes", "rx_bytes"),
        ("singbox_dataplane_interface_transmit_packets", "VPP interface: packets sent.", "", "tx_packets"),
        ("singbox_dataplane_interface_transmit_bytes", "VPP interface: bytes sent.", "bytes", "tx_bytes"),
        ("singbox_dataplane_interface_drops", "VPP interface: packets dropped.", "", "drops"),
        ("singbox_dataplane_interface_receive_errors", "VPP interface: receive errors.", "", "rx_errors"),
        ("singbox_dataplane_interface_transmit_errors", "VPP interface: transmit errors.", "", "tx_errors"),
    ]
    for name, help, unit, attr in vif:
        f = fam(name, "counter", help, unit)
        for i in snap.interfaces:
            f.add(getattr(i, attr), interface=i.name)
    return out


def _lines(fams: Iterable[Family], openmetrics: bool) -> Iterable[str]:
    for f in fams:
        sample = f.sample_name
        head = f.name if openmetrics else sample
        kind = f.kind if openmetrics or f.kind != "info" else "gauge"
        yield f"# HELP {head} {_escape_help(f.help, openmetrics)}\n"
        yield f"# TYPE {head} {kind}\n"
        if openmetrics and f.unit:
            yield f"# UNIT {head} {f.unit}\n"
        for labels, value in f.samples:
            if labels:
                inner = ",".join(f'{k}="{_escape_label(v)}"' for k, v in labels)
                yield f"{sample}{{{inner}}} {_number(value)}\n"
            else:
                yield f"{sample} {_number(value)}\n"
    if openmetrics:
        yield "# EOF\n"


def render(snap: Snapshot, *, openmetrics: bool = False) -> str:
    """The exposition of `snap`: Prometheus text format 0.0.4, or OpenMetrics 1.0.0 with `openmetrics`."""
    return "".join(_lines(families(snap), openmetrics))

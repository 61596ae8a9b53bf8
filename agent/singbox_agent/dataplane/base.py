"""The Dataplane interface the agent drives, and the operational state and events a dataplane reports."""

from __future__ import annotations

import abc
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from typing import Literal, Union

from singbox_agent.dataplane.objects import ConfigMap, DataplaneError, DataplaneUnavailable, ErrorCode, Op

ProbeResultName = Literal["success", "connect-failed", "timeout", "auth-failed", "protocol-error",
                          "dataplane-unavailable"]


@dataclass(frozen=True)
class EndpointState:
    oper_status: Literal["up", "down", "unknown"] = "unknown"
    last_change_age: int = 0  # seconds since oper_status changed
    rtt_us: int = 0
    failures: int = 0
    consecutive_failures: int = 0
    active_connections: int = 0


@dataclass(frozen=True)
class UdpState:
    """An interface's UDP relaying (singbox_interface_udp_details)."""

    active_flows: int = 0
    flows: int = 0
    flow_failures: int = 0
    packets_to_proxy: int = 0
    octets_to_proxy: int = 0
    packets_from_proxy: int = 0
    octets_from_proxy: int = 0
    dropped: int = 0


@dataclass(frozen=True)
class InterfaceState:
    present: bool = True  # VPP has an interface of this name
    active_endpoint: str = ""
    packets_redirected: int = 0
    bytes_redirected: int = 0
    active_connections: int = 0
    total_connections: int = 0
    connection_failures: int = 0
    udp: UdpState | None = None  # None: UDP is not relayed


@dataclass(frozen=True)
class MemberState:
    """One member of an endpoint group, as the group counts it."""

    connections: int = 0  # new connections the group chose it for
    active_connections: int = 0
    connection_failures: int = 0
    eligible: bool = True  # takes new connections now (not down, of the lowest usable priority)


@dataclass(frozen=True)
class ServerState:
    running: bool = False
    accepted: int = 0
    rejected: int = 0
    auth_failures: int = 0
    connect_failures: int = 0
    bytes_forwarded: int = 0
    active_sessions: int = 0


@dataclass(frozen=True)
class UserState:
    auth_failures: int = 0
    active_sessions: int = 0


# A UDP flow's session id: its flow id (generation << 32 | index) with bit 31 set. TCP session ids (also
# generation << 32 | pool index) never have it: a pool of 2**31 sessions does not fit in VPP's memory. So the two
# share the YANG list key (/singbox/sessions/session/id) without colliding, and the id maps back to the flow.
UDP_FLOW_BIT = 1 << 31


def udp_session_id(flow_id: int) -> int:
    """The session id of the UDP flow `flow_id` (singbox_udp_flow_details.flow_id)."""
    return flow_id | UDP_FLOW_BIT


def is_udp_session_id(session_id: int) -> bool:
    return bool(session_id & UDP_FLOW_BIT)


def refuse_udp_disconnect(session_id: int) -> None:
    """disconnect_session's answer to a UDP flow's id: the plugin cannot close a flow (it ends when idle).

    :raises DataplaneError: with code UNIMPLEMENTED if `session_id` is a UDP flow's."""
    if is_udp_session_id(session_id):
        raise DataplaneError(f"session {session_id} is a UDP flow: UDP flows end when idle and cannot be "
                             "disconnected", ErrorCode.UNIMPLEMENTED)


@dataclass(frozen=True)
class Session:
    id: int  # a UDP flow's: udp_session_id
    mode: Literal["client", "server"]
    state: str  # a YANG session state name
    client_address: str
    client_port: int
    destination_address: str | None = None
    destination_domain: str | None = None
    destination_port: int = 0
    interface: str | None = None
    endpoint: str | None = None
    username: str | None = None
    bytes_from_client: int = 0
    bytes_to_client: int = 0
    age: int = 0
    protocol: Literal["tcp", "udp"] = "tcp"  # udp: a client-mode UDP flow (singbox_udp_flow_details)
    packets_from_client: int = 0  # datagrams, UDP flows only
    packets_to_client: int = 0


@dataclass
class OperState:
    """What the dataplane reports now; objects it does not know are absent."""

    endpoints: dict[str, EndpointState] = field(default_factory=dict)
    interfaces: dict[str, InterfaceState] = field(default_factory=dict)
    server: ServerState = field(default_factory=ServerState)
    listeners: dict[str, bool] = field(default_factory=dict)  # name -> listening
    users: dict[str, UserState] = field(default_factory=dict)
    groups: dict[str, dict[str, MemberState]] = field(default_factory=dict)  # group -> member endpoint -> state


StatePart = Literal["endpoints", "interfaces", "server", "listeners", "users", "groups"]
ALL_STATE: frozenset[StatePart] = frozenset(("endpoints", "interfaces", "server", "listeners", "users", "groups"))


@dataclass(frozen=True)
class Load:
    """How close the dataplane is to its session limits (read every second, so cheap)."""

    server_running: bool = False
    server_sessions: int = 0
    interface_connections: dict[str, int] = field(default_factory=dict)  # only interfaces with connections


@dataclass(frozen=True)
class ProbeResult:
    result: ProbeResultName
    rtt_us: int = 0
    message: str = ""


@dataclass(frozen=True)
class Versions:
    vpp: str
    plugin: str


# Events a dataplane reports to its sink (from its own thread; the sink must not block).
@dataclass(frozen=True)
class Connected:
    versions: Versions


@dataclass(frozen=True)
class Disconnected:
    reason: str


@dataclass(frozen=True)
class EndpointEvent:
    endpoint: str
    up: bool
    result: ProbeResultName
    rtt_us: int = 0
    message: str = ""


Event = Union[Connected, Disconnected, EndpointEvent]
EventSink = Callable[[Event], None]

# Whether a failed op ends a batch (see Dataplane.apply_batch).
StopRule = Callable[[Op, DataplaneError], bool]
BatchResult = list[Union[DataplaneError, None]]

ClearScope = Union[tuple[Literal["all"]], tuple[Literal["server"]], tuple[Literal["interface"], str],
                   tuple[Literal["endpoint"], str], tuple[Literal["endpoint-group"], str]]


class Dataplane(abc.ABC):
    """One VPP with the singbox plugin, as the agent sees it. Every method may raise DataplaneUnavailable; calls
    that VPP refuses raise DataplaneError. Implementations are thread-safe and bound every call in time."""

    _sink: EventSink | None = None
    # How many calls may be under way when a failure is seen. The default apply_batch emulates that many (tests
    # run the agent's undo against what a pipelining dataplane does); 1 is strictly one call after another.
    in_flight: int = 1

    def set_event_sink(self, sink: EventSink) -> None:
        self._sink = sink

    def emit(self, event: Event) -> None:
        if self._sink is not None:
            self._sink(event)

    def start(self) -> None:
        """Begin connecting (in the background for real VPP); Connected is emitted once it is usable."""

    def stop(self) -> None:
        """Disconnect without changing anything in VPP."""

    @property
    @abc.abstractmethod
    def connected(self) -> bool: ...

    @abc.abstractmethod
    def versions(self) -> Versions | None: ...

    @abc.abstractmethod
    def apply(self, op: Op) -> None:
        """Perform one planned operation (one API call)."""

    def apply_batch(self, ops: Sequence[Op], *, stop: StopRule | None = None) -> BatchResult:
        """Perform `ops` in order; one entry per op attempted, in order: None (done) or its error.

        Without `stop` every op is attempted. With it, an error for which `stop` is true ends the batch: no op
        after it is sent, but ops already under way (at most `in_flight - 1`, and only ops of the same run: the
        same action on the same kind, which the planner's order keeps together and which are independent of
        each other) complete and are reported, so the caller can undo exactly what succeeded. A run starts only
        when every op before it is answered, so nothing that depends on a failed op is ever sent.

        :raises DataplaneUnavailable: the dataplane went away; what the ops under way did is unknown.
        """
        results: BatchResult = []
        last = len(ops) - 1  # the last op to attempt
        for i, op in enumerate(ops):
            if i > last:
                break
            try:
                self.apply(op)
                results.append(None)
            except DataplaneUnavailable:
                raise
            except DataplaneError as exc:
                results.append(exc)
                if stop is not None and last == len(ops) - 1 and stop(op, exc):
                    last = min(run_end(ops, i), i + self.in_flight - 1)
        return results

    @abc.abstractmethod
    def read_config(self) -> ConfigMap:
        """What the dataplane is configured with now, in the planner's terms (dump messages)."""

    @abc.abstractmethod
    def read_state(self, parts: frozenset[StatePart] = ALL_STATE, *,
                   endpoints: Collection[str] | None = None, interfaces: Collection[str] | None = None
                   ) -> OperState:
        """The state of the objects in `parts` (a read of the server's counters need not dump 10,000 users);
        what is not asked for may be left out. `endpoints`, `interfaces`: only these are wanted (the agent's push
        after a commit touching one endpoint of 10,000); the others may be left out."""

    @abc.abstractmethod
    def read_sessions(self) -> list[Session]: ...

    @abc.abstractmethod
    def read_load(self, interfaces: bool) -> Load:
        """Server sessions now, and (if `interfaces`) the connections of every interface that has some."""

    @abc.abstractmethod
    def clear_stats(self, scope: ClearScope) -> None: ...

    @abc.abstractmethod
    def disconnect_session(self, session_id: int) -> None:
        """:raises DataplaneError: with code NO_SUCH_ENTRY if there is no such session, UNIMPLEMENTED if it is a
        UDP flow's id (refuse_udp_disconnect)."""

    @abc.abstractmethod
    def test_endpoint(self, name: str, timeout_s: float = 305.0) -> ProbeResult:
        """Probe now; the reply may take up to the endpoint's health-check timeout (`timeout_s` bounds it)."""


def run_of(op: Op) -> tuple[str, str]:
    """Ops with the same run touch different objects of one kind the same way: none depends on another."""
    return op.action, op.key[0]


def run_end(ops: Sequence[Op], i: int) -> int:
    """Index of the last op of the run `ops[i]` belongs to."""
    run = run_of(ops[i])
    while i + 1 < len(ops) and run_of(ops[i + 1]) == run:
        i += 1
    return i

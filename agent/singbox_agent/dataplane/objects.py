"""What the dataplane holds, as plain values: the vocabulary shared by the planner and every Dataplane.

The dataplane's configuration is a map from a key to a value. A key names one object the plugin API adds, replaces
or removes as a whole (one endpoint, one listener, the server settings, ...); its first element is the object kind.
Singletons (log level, client settings, server settings, default endpoint, server enabled) always exist and are only
ever replaced. The agent turns YANG configuration into such a map (`singbox_agent.agent.mapping`), the planner diffs
two maps into ordered `Op`s, and a Dataplane applies each Op with one API call.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from enum import Enum
from typing import Literal, Union

Key = tuple[str, ...]

# Object kinds (first element of a Key).
LOG_LEVEL = "log-level"
CLIENT = "client"
DEFAULT_ENDPOINT = "default-endpoint"
ENDPOINT = "endpoint"
INTERFACE = "interface"
BYPASS = "bypass"
SERVER = "server"
SERVER_ENABLED = "server-enabled"
LISTENER = "listener"
USER = "user"
ALLOWED_PREFIX = "allowed-prefix"
GROUP = "endpoint-group"
DEFAULT_GROUP = "default-endpoint-group"
INTERFACE_UDP = "interface-udp"  # an enabled interface's UDP relaying (key: the interface's name)
# The server's explicit upstream (the proxy chain): a client-mode interface's name, "" = by route (API.md)
SERVER_UPSTREAM = "server-upstream"

# An endpoint's protocol (its YANG identity's name), in the order of the plugin API's singbox_proxy_protocol enum.
PROTOCOLS = ("socks5", "http-connect")
# An endpoint group's policy (its YANG identity's name), in the order of the plugin API's singbox_lb_policy enum.
LB_POLICIES = ("source-address-hash", "five-tuple-hash", "weighted-round-robin", "least-connections")

SINGLETONS: tuple[Key, ...] = ((LOG_LEVEL,), (CLIENT,), (DEFAULT_ENDPOINT,), (DEFAULT_GROUP,), (SERVER,),
                               (SERVER_ENABLED,), (SERVER_UPSTREAM,))


class _Unknown:
    """A secret the dataplane does not report back (API.md: passwords are write-only). Equal to nothing, so an
    object read from the dataplane that carries one is always re-sent on resync (an add replaces; no flap)."""

    def __eq__(self, other: object) -> bool:
        return False

    def __hash__(self) -> int:
        return 0

    def __repr__(self) -> str:
        return "<unknown>"


SECRET_UNKNOWN = _Unknown()
Secret = Union[str, _Unknown, None]


# The objects carry every value: none has a default of its own. The YANG defaults are applied once, from the
# schema, by the mapping (singbox_agent.agent.mapping, defaults.py); an adapter reads every field back from VPP.


@dataclass(frozen=True)
class ClientSettings:
    session_timeout: int
    pooling: bool
    max_pool_size: int


@dataclass(frozen=True)
class EndpointSpec:
    # As configured (an IP address or a host name, YANG inet:host); what a dataplane receives is always an IP
    # address: the agent resolves names before the endpoint is planned (singbox_agent.agent.resolve).
    address: str
    port: int
    username: str | None
    password: Secret = field(repr=False)
    priority: int  # failover order, lower first
    connect_timeout: int
    health_check: bool
    health_check_interval: int
    health_check_timeout: int
    failure_threshold: int
    recovery_threshold: int
    # the YANG identity's name: "socks5" or "http-connect" (PROTOCOLS, in the plugin API's enum order)
    protocol: str = "socks5"


@dataclass(frozen=True)
class GroupMember:
    endpoint: str
    weight: int
    priority: int  # failover order within the group, lower first


@dataclass(frozen=True)
class GroupSpec:
    # the YANG identity's name (LB_POLICIES, in the plugin API's enum order)
    policy: str
    members: tuple[GroupMember, ...]  # in the order of the endpoint names: two equal groups compare equal


@dataclass(frozen=True)
class InterfaceSpec:
    endpoint: str  # empty: the group, else the default (endpoint or group)
    max_connections: int
    group: str = ""  # an endpoint group instead of an endpoint (YANG's choice: never both)


@dataclass(frozen=True)
class InterfaceUdpSpec:
    """UDP relaying of an enabled interface (SOCKS5 UDP ASSOCIATE per flow); exists only with its interface."""

    idle_timeout: int
    max_flows: int


@dataclass(frozen=True)
class ServerSettings:
    auth_required: bool
    allow_connect: bool
    allow_udp_associate: bool
    max_sessions: int
    handshake_timeout: int
    idle_timeout: int
    connect_timeout: int
    udp_idle_timeout: int
    udp_public_address: str | None
    dns_server: str | None
    dns_server_port: int


@dataclass(frozen=True)
class ListenerSpec:
    address: str
    port: int


@dataclass(frozen=True)
class UserSpec:
    password_hash: Secret = field(repr=False)


Value = Union[str, bool, ClientSettings, EndpointSpec, GroupSpec, InterfaceSpec, InterfaceUdpSpec, ServerSettings,
              ListenerSpec, UserSpec]
ConfigMap = Mapping[Key, Value]

# The plugin's state after it loads, before anyone configures it (what the memory dataplane starts from). Only the
# kinds that always exist; their values are never compared with anything the agent derives.
FACTORY: dict[Key, Value] = {
    (LOG_LEVEL,): "info",
    (CLIENT,): ClientSettings(session_timeout=0, pooling=False, max_pool_size=0),
    (DEFAULT_ENDPOINT,): "",
    (DEFAULT_GROUP,): "",
    (SERVER,): ServerSettings(auth_required=False, allow_connect=True, allow_udp_associate=False, max_sessions=0,
                              handshake_timeout=0, idle_timeout=0, connect_timeout=0, udp_idle_timeout=0,
                              udp_public_address=None, dns_server=None, dns_server_port=0),
    (SERVER_ENABLED,): False,
    (SERVER_UPSTREAM,): "",
}


@dataclass(frozen=True)
class Op:
    """One dataplane call: put (add or replace) `value` at `key`, or delete `key`. `old` is what was there."""

    action: Literal["put", "delete"]
    key: Key
    value: Value | None
    old: Value | None

    def inverse(self) -> Op:
        if self.action == "delete" or self.old is not None:
            return Op("put", self.key, self.old, self.value)
        return Op("delete", self.key, None, self.value)

    def describe(self) -> str:
        """Human-readable, never with a secret: 'put endpoint e1', 'delete bypass tap0 10.0.0.0/8'."""
        return f"{self.action} {describe_key(self.key)}"

    def __repr__(self) -> str:
        return f"Op({self.describe()})"


def describe_key(key: Key) -> str:
    if len(key) == 1:
        return key[0]
    return key[0] + " " + " ".join(repr(k) for k in key[1:])


def redacted(value: Value | None) -> object:
    """A value with its secrets masked, for logs and test messages."""
    if isinstance(value, (EndpointSpec, UserSpec)):
        out = {f.name: getattr(value, f.name) for f in fields(value)}
        for name in ("password", "password_hash"):
            if out.get(name) is not None:
                out[name] = "<redacted>"
        return out
    return value


class ErrorCode(Enum):
    """VNET_API_ERROR_* codes the plugin returns (vnet/api_errno.h)."""

    UNSPECIFIED = -1
    INVALID_SW_IF_INDEX = -2
    NO_SUCH_FIB = -3
    NO_SUCH_ENTRY = -6
    INVALID_VALUE = -7
    UNIMPLEMENTED = -9
    FEATURE_DISABLED = -30
    VALUE_EXIST = -81
    ADDRESS_IN_USE = -105
    INSTANCE_IN_USE = -147
    TIMEOUT = -1000  # not a VPP code: the call did not complete in time


class DataplaneError(Exception):
    """The dataplane refused or failed one call; `message` names the call and the reason."""

    def __init__(self, message: str, code: ErrorCode | int | None = None) -> None:
        super().__init__(message)
        self.code = code


class DataplaneUnavailable(DataplaneError):
    """VPP is not connected (or went away during the call): nothing can be said about the call's effect."""

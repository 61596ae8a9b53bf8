"""The one place that maps the YANG configuration of vpp-singbox to dataplane objects.

The running configuration is kept as *units*: independent pieces of the tree that each turn into a fixed set of
dataplane objects (one endpoint entry, one interface entry, the client globals, the server settings, ...). A change
path names its unit, so a commit touches only the units its changes name and costs what the change costs, whatever
the size of the datastore. `derive(unit, data)` is the YANG-to-API mapping; `singbox_agent.dataplane.vpp` maps the
resulting objects to messages.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from singbox_agent.agent import defaults
from singbox_agent.dataplane.objects import (
    ALLOWED_PREFIX,
    BYPASS,
    CLIENT,
    DEFAULT_ENDPOINT,
    DEFAULT_GROUP,
    ENDPOINT,
    GROUP,
    INTERFACE,
    INTERFACE_UDP,
    LISTENER,
    LOG_LEVEL,
    SERVER,
    SERVER_ENABLED,
    SERVER_UPSTREAM,
    USER,
    ClientSettings,
    EndpointSpec,
    GroupMember,
    GroupSpec,
    InterfaceSpec,
    InterfaceUdpSpec,
    Key,
    ListenerSpec,
    ServerSettings,
    UserSpec,
    Value,
)

MODULE = "vpp-singbox"
TOP = f"/{MODULE}:singbox"

Unit = tuple[str, ...]
Segment = tuple[str, str | None]  # node name, key value (list key or leaf-list value) or None
UnitData = dict[str, Any]

LEAF_LISTS = frozenset({"bypass-prefix", "allowed-client-prefix", "allowed-command"})
# The units that always exist (their leaves have defaults); list units exist while their entry does.
SINGLETON_UNITS: tuple[Unit, ...] = ((LOG_LEVEL,), (CLIENT,), (DEFAULT_ENDPOINT,), (DEFAULT_GROUP,), (SERVER,),
                                     (SERVER_ENABLED,), (SERVER_UPSTREAM,))
# The lists of the client, as units: list name -> object kind.
CLIENT_LISTS = {"endpoint": ENDPOINT, "interface": INTERFACE, "endpoint-group": GROUP}


class PathError(ValueError):
    """A change path outside the part of the model the agent handles."""


def split_path(path: str) -> list[Segment]:
    """'/vpp-singbox:singbox/client/endpoint[name='e1']/port' -> [('singbox', None), ('client', None),
    ('endpoint', 'e1'), ('port', None)]. Module prefixes are dropped; values may use either quote."""
    out: list[Segment] = []
    i, n = 0, len(path)
    while i < n:
        if path[i] != "/":
            raise PathError(f"bad path {path!r} at {i}")
        i += 1
        start = i
        while i < n and path[i] not in "/[":
            i += 1
        name = path[start:i].rpartition(":")[2]
        key: str | None = None
        while i < n and path[i] == "[":
            eq = path.index("=", i)
            quote = path[eq + 1]
            end = path.index(quote, eq + 2)
            key = path[eq + 2:end]  # single-key lists only in this model
            if path[end + 1] != "]":
                raise PathError(f"bad predicate in {path!r}")
            i = end + 2
        out.append((name, key))
    return out


def unit_of(segments: list[Segment]) -> tuple[Unit, list[Segment]] | None:
    """The unit a change path belongs to and the path relative to it; None for the top containers."""
    if not segments or segments[0][0] != "singbox":
        raise PathError(f"not under {TOP}: {segments}")
    rest = segments[1:]
    if not rest:
        return None
    head = rest[0][0]
    if head == "log-level":
        return (LOG_LEVEL,), rest
    if head == "client":
        sub = rest[1:]
        if not sub:
            return None
        name, key = sub[0]
        if name == "default-endpoint":
            return (DEFAULT_ENDPOINT,), sub
        if name == "default-endpoint-group":
            return (DEFAULT_GROUP,), sub
        if name in CLIENT_LISTS and key is not None:
            return (CLIENT_LISTS[name], key), sub[1:]
        if name in CLIENT_LISTS:
            raise PathError(f"list entry without key: {segments}")
        return (CLIENT,), sub
    if head == "server":
        sub = rest[1:]
        if not sub:
            return None
        name, key = sub[0]
        if name == "enabled":
            return (SERVER_ENABLED,), sub
        if name == "upstream-interface":
            return (SERVER_UPSTREAM,), sub
        if name == "listen" and key is not None:
            return (LISTENER, key), sub[1:]
        if name == "allowed-client-prefix" and key is not None:
            return (ALLOWED_PREFIX, key), sub[1:]
        if name == "authentication" and len(sub) > 1 and sub[1][0] == "user" and sub[1][1] is not None:
            return (USER, sub[1][1]), sub[2:]
        return (SERVER,), sub
    raise PathError(f"unknown node {head!r}")


def apply_change(data: UnitData, rel: list[Segment], op: str, value: Any) -> None:
    """Apply one created/modified/deleted node to a unit's data (nested dicts; leaf-lists as dicts of values)."""
    if not rel:
        return  # the unit's own list entry: its presence is handled by the caller
    node = data
    for name, key in rel[:-1]:
        child = node.get(name)
        if child is None:
            if op == "deleted":
                return
            child = node[name] = {}
        if key is not None:
            entry = child.get(key)
            if entry is None:
                if op == "deleted":
                    return
                entry = child[key] = {}
            child = entry
        node = child
    name, key = rel[-1]
    if op == "deleted":
        if key is not None:  # a leaf-list value or a list entry
            values = node.get(name)
            if values is not None:
                values.pop(key, None)
                if not values:
                    del node[name]
        else:
            node.pop(name, None)
        return
    if name in LEAF_LISTS and key is not None:
        node.setdefault(name, {})[key] = None
    elif key is not None:  # an entry of a list inside the unit (an endpoint group's member): keyed by its key
        node.setdefault(name, {}).setdefault(key, {})
    elif isinstance(value, dict):
        node.setdefault(name, {})
    else:
        node[name] = value


@dataclass
class Change:
    """One node change as the agent needs it (from sysrepo's change list, or built by tests)."""

    op: str  # created | modified | deleted
    path: str
    value: Any = None
    # the path as `split_path` would give it, when the reader has it without printing the path (changes.py)
    segments: list[Segment] | None = None


def _copy_unit(data: UnitData) -> UnitData:
    """A copy of a unit's data to change: its dicts copied, its leaf values (immutable) shared. copy.deepcopy did
    the same at several times the cost, inside the change callback sysrepo waits for (issue 17)."""
    return {name: _copy_unit(value) if isinstance(value, dict) else value for name, value in data.items()}


class RunningConfig:
    """The running configuration, by unit. Copy-on-write per unit: `overlay` gives the units a change touches."""

    def __init__(self, units: dict[Unit, UnitData] | None = None) -> None:
        self.units: dict[Unit, UnitData] = units if units is not None else {}

    def changed_units(self, changes: Iterable[Change]) -> dict[Unit, UnitData | None]:
        """The new data of every unit the changes touch (None: the list entry is gone); self is unchanged."""
        touched: dict[Unit, UnitData | None] = {}
        for ch in changes:
            located = unit_of(ch.segments if ch.segments is not None else split_path(ch.path))
            if located is None:
                continue
            unit, rel = located
            is_entry = len(unit) > 1 and not rel
            if is_entry and ch.op == "deleted":
                touched[unit] = None  # no copy of what goes
                continue
            if unit not in touched:
                old = self.units.get(unit)
                touched[unit] = _copy_unit(old) if old is not None else None
            data = touched[unit]
            if is_entry:
                touched[unit] = data if data is not None else {}
                continue
            if data is None:
                if ch.op == "deleted":
                    continue
                data = touched[unit] = {}
            apply_change(data, rel, ch.op, ch.value)
        return touched

    def updated(self, new_units: Mapping[Unit, UnitData | None]) -> None:
        for unit, data in new_units.items():
            if data is None:
                self.units.pop(unit, None)
            else:
                self.units[unit] = data

    def desired(self) -> dict[Key, Value]:
        """Every dataplane object the whole configuration asks for."""
        out: dict[Key, Value] = {}
        for unit in SINGLETON_UNITS:
            out.update(derive(unit, self.units.get(unit)))
        for unit, data in self.units.items():
            if len(unit) > 1:
                out.update(derive(unit, data))
        return out

    def desired_unit(self, unit: Unit) -> Value | None:
        """The main object of one unit (the interface itself, not its bypass prefixes); None if absent."""
        return derive(unit, self.units.get(unit)).get(unit)


def derive_units(units: Mapping[Unit, UnitData | None]) -> dict[Key, Value]:
    out: dict[Key, Value] = {}
    for unit, data in units.items():
        out.update(derive(unit, data))
    return out


def derive(unit: Unit, data: UnitData | None) -> dict[Key, Value]:
    """The dataplane objects one unit asks for; a leaf the data leaves out takes its YANG default, read from the
    schema (`defaults.py`): nothing here restates one."""
    kind = unit[0]
    d: UnitData = data or {}
    dflt = defaults.current()

    def leaf(node: UnitData, path: str) -> Any:
        value = node.get(path.rpartition("/")[2])
        return dflt[path] if value is None else value

    if kind == LOG_LEVEL:
        return {unit: str(leaf(d, "log-level"))}
    if kind == DEFAULT_ENDPOINT:
        return {unit: str(d.get("default-endpoint", ""))}
    if kind == DEFAULT_GROUP:
        return {unit: str(d.get("default-endpoint-group", ""))}
    if kind == CLIENT:
        pool = d.get("connection-pool", {})
        return {unit: ClientSettings(session_timeout=int(leaf(d, "client/session-timeout")),
                                     pooling=bool(leaf(pool, "client/connection-pool/enabled")),
                                     max_pool_size=int(leaf(pool, "client/connection-pool/max-size")))}
    if kind == SERVER_ENABLED:
        return {unit: bool(leaf(d, "server/enabled"))}
    if kind == SERVER_UPSTREAM:
        # absent: by route (the plugin's default)
        return {unit: str(d.get("upstream-interface", ""))}
    if kind == SERVER:
        auth = d.get("authentication", {})
        resolver = d.get("resolver", {})
        udp = d.get("udp-associate", {})
        default_commands = dflt["server/allowed-command"]
        assert isinstance(default_commands, tuple)
        commands = d.get("allowed-command") or dict.fromkeys(default_commands)
        return {unit: ServerSettings(
            auth_required=leaf(auth, "server/authentication/method") == "username-password",
            allow_connect="connect" in commands,
            allow_udp_associate="udp-associate" in commands,
            max_sessions=int(leaf(d, "server/max-sessions")),
            handshake_timeout=int(leaf(d, "server/handshake-timeout")),
            idle_timeout=int(leaf(d, "server/idle-timeout")),
            connect_timeout=int(leaf(d, "server/connect-timeout")),
            # no default when the udp-associate feature is off: UDP ASSOCIATE cannot be allowed then
            udp_idle_timeout=int(udp.get("idle-timeout", dflt.get("server/udp-associate/idle-timeout", 0))),
            udp_public_address=udp.get("public-address"),
            dns_server=resolver.get("address"),
            dns_server_port=int(leaf(resolver, "server/resolver/port")),
        )}
    if data is None:
        return {}
    if kind == ENDPOINT:
        hc = d.get("health-check", {})
        return {unit: EndpointSpec(
            address=str(d.get("address", "")),
            port=int(leaf(d, "client/endpoint/port")),
            username=d.get("username"),
            password=d.get("password"),
            # a module installed before the leaf existed (an appliance not yet upgraded) has no default for it
            priority=int(d.get("priority", dflt.get("client/endpoint/priority", 0))),
            connect_timeout=int(leaf(d, "client/endpoint/connect-timeout")),
            health_check=bool(leaf(hc, "client/endpoint/health-check/enabled")),
            health_check_interval=int(leaf(hc, "client/endpoint/health-check/interval")),
            health_check_timeout=int(leaf(hc, "client/endpoint/health-check/timeout")),
            failure_threshold=int(leaf(hc, "client/endpoint/health-check/failure-threshold")),
            recovery_threshold=int(leaf(hc, "client/endpoint/health-check/recovery-threshold")),
            # an identityref: "[module:]name"
            protocol=str(leaf(d, "client/endpoint/protocol")).rpartition(":")[2],
        )}
    if kind == GROUP:
        members = d.get("member", {})
        return {unit: GroupSpec(
            # an identityref: "[module:]name"
            policy=str(leaf(d, "client/endpoint-group/policy")).rpartition(":")[2],
            members=tuple(GroupMember(endpoint=name,
                                      weight=int(leaf(members[name], "client/endpoint-group/member/weight")),
                                      priority=int(leaf(members[name], "client/endpoint-group/member/priority")))
                          for name in sorted(members)))}
    if kind == INTERFACE:
        if not leaf(d, "client/interface/enabled"):
            return {}
        out: dict[Key, Value] = {unit: InterfaceSpec(
            endpoint=str(d.get("endpoint", "")),
            max_connections=int(leaf(d, "client/interface/max-connections")),
            group=str(d.get("endpoint-group", "")))}
        for prefix in d.get("bypass-prefix", {}):
            out[(BYPASS, unit[1], prefix)] = True
        udp = d.get("udp", {})
        # a module installed before the container existed (an appliance not yet upgraded) has no defaults for it
        if udp.get("enabled", dflt.get("client/interface/udp/enabled", False)):
            out[(INTERFACE_UDP, unit[1])] = InterfaceUdpSpec(
                idle_timeout=int(leaf(udp, "client/interface/udp/idle-timeout")),
                max_flows=int(leaf(udp, "client/interface/udp/max-flows")))
        return out
    if kind == LISTENER:
        return {unit: ListenerSpec(address=str(d.get("address", "")), port=int(leaf(d, "server/listen/port")))}
    if kind == USER:
        return {unit: UserSpec(password_hash=d.get("password"))}
    if kind == ALLOWED_PREFIX:
        return {unit: True}
    raise PathError(f"unknown unit {unit}")

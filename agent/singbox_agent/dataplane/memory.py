"""An in-memory dataplane with the plugin's rules (plugin/API.md error codes), for tests and benchmarks.

It refuses what the plugin refuses (removing an endpoint an interface uses, a bypass prefix on a disabled interface,
unknown keys on delete, bad values), reports passwords as unknown like the plugin's dumps, and can be told to fail a
given call or to be disconnected, so the agent's undo and resync paths are tested against the same rules as VPP.
"""

from __future__ import annotations

import ipaddress
import socket
import threading
from collections.abc import Callable, Collection
from dataclasses import replace

from singbox_agent.dataplane import base
from singbox_agent.dataplane import objects


class MemoryDataplane(base.Dataplane):
    def __init__(self, *, connected: bool = True, vpp_interfaces: set[str] | None = None,
                 in_flight: int = 1) -> None:
        self._lock = threading.RLock()
        self.in_flight = in_flight  # > 1: behave like VPP with that many calls pipelined (see apply_batch)
        self._connected = connected
        self.objects: dict[objects.Key, objects.Value] = dict(objects.FACTORY)
        # who refers to an endpoint or group ((kind, name) -> interface and group keys), and each interface's
        # bypass prefixes: a delete checks these, not every object (that was quadratic: deleting 10,000
        # endpoints in one commit took 30 s)
        self._refs: dict[tuple[str, str], dict[objects.Key, None]] = {}
        self._bypass: dict[str, dict[objects.Key, None]] = {}
        # Interfaces VPP has; None: every name exists. Config for absent ones is kept, like the VPP adapter does.
        self.vpp_interfaces = vpp_interfaces
        self.calls: list[objects.Op] = []  # every call that succeeded, in order
        self.fail_after: int | None = None  # succeed this many more calls, then fail one
        self.fail_error = objects.DataplaneError("injected failure", objects.ErrorCode.UNSPECIFIED)
        self.fail_when: Callable[[objects.Op], objects.DataplaneError | None] | None = None
        self.sessions: dict[int, base.Session] = {}
        self.endpoint_states: dict[str, base.EndpointState] = {}
        self.interface_counters: dict[str, base.InterfaceState] = {}
        self.udp_counters: dict[str, base.UdpState] = {}
        self.server_state = base.ServerState()
        self.user_states: dict[str, base.UserState] = {}
        self.member_states: dict[tuple[str, str], base.MemberState] = {}  # (group, endpoint) -> counters
        self.probe_results: dict[str, base.ProbeResult] = {}
        self.cleared: list[base.ClearScope] = []
        self.state_reads: list[frozenset[base.StatePart]] = []  # the parts of every read_state, in order
        self.version = base.Versions(vpp="26.06-memory", plugin="1.0.0")

    # connection ---------------------------------------------------------------------------------------------

    def start(self) -> None:
        if self._connected:
            self.emit(base.Connected(self.version))

    @property
    def connected(self) -> bool:
        return self._connected

    def versions(self) -> base.Versions | None:
        return self.version if self._connected else None

    def connect(self, *, restarted: bool = False) -> None:
        """VPP is (back) up; `restarted` loses every object, as a VPP restart does."""
        with self._lock:
            if restarted:
                self.objects = dict(objects.FACTORY)
                self._refs.clear()
                self._bypass.clear()
            self._connected = True
        self.emit(base.Connected(self.version))

    def disconnect(self, reason: str = "VPP went away") -> None:
        with self._lock:
            self._connected = False
        self.emit(base.Disconnected(reason))

    def endpoint_event(self, name: str, up: bool, result: str = "success", rtt_us: int = 0) -> None:
        self.emit(base.EndpointEvent(name, up, result, rtt_us))  # type: ignore[arg-type]

    def _check_connected(self) -> None:
        if not self._connected:
            raise objects.DataplaneUnavailable("dataplane not connected")

    # configuration ------------------------------------------------------------------------------------------

    def apply(self, op: objects.Op) -> None:
        with self._lock:
            self._check_connected()
            if self.fail_when is not None:
                err = self.fail_when(op)
                if err is not None:
                    raise err
            if self.fail_after is not None:
                if self.fail_after == 0:
                    self.fail_after = None
                    raise self.fail_error
                self.fail_after -= 1
            if op.action == "put":
                assert op.value is not None
                self._put(op.key, op.value)
            else:
                self._delete(op.key)
            self.calls.append(op)

    def _present(self, ifname: str) -> bool:
        return self.vpp_interfaces is None or ifname in self.vpp_interfaces

    def _put(self, key: objects.Key, value: objects.Value) -> None:
        kind = key[0]
        if kind == objects.ENDPOINT:
            assert isinstance(value, objects.EndpointSpec)
            _check_name(key[1], "endpoint name")
            if value.port == 0:
                raise objects.DataplaneError("singbox_endpoint_add_del: port 0", objects.ErrorCode.INVALID_VALUE)
            if value.username and not value.password:
                raise objects.DataplaneError("singbox_endpoint_add_del: username without password",
                                             objects.ErrorCode.INVALID_VALUE)
            if value.protocol not in objects.PROTOCOLS:
                raise objects.DataplaneError(f"singbox_endpoint_add_del: protocol {value.protocol!r}",
                                             objects.ErrorCode.INVALID_VALUE)
            # the plugin refuses what Basic cannot carry (RFC 7617)
            if value.protocol == "http-connect" and value.username and ":" in value.username:
                raise objects.DataplaneError("singbox_endpoint_add_del: ':' in a Basic user-id",
                                             objects.ErrorCode.INVALID_VALUE)
            if value.health_check and value.health_check_timeout >= value.health_check_interval:
                raise objects.DataplaneError("singbox_endpoint_add_del: health-check timeout not below interval",
                                     objects.ErrorCode.INVALID_VALUE)
            packed = _packed(value.address)
            if packed is None:  # the API's proxy_addr is an address: names are the agent's to resolve
                raise objects.DataplaneError(f"singbox_endpoint_add_del: {value.address!r} is not an IP address",
                                             objects.ErrorCode.INVALID_VALUE)
            if packed == bytes(len(packed)):
                raise objects.DataplaneError("singbox_endpoint_add_del: zero address", objects.ErrorCode.INVALID_VALUE)
        elif kind == objects.GROUP:
            assert isinstance(value, objects.GroupSpec)
            _check_name(key[1], "endpoint group name")
            if value.policy not in objects.LB_POLICIES:
                raise objects.DataplaneError(f"singbox_endpoint_group_add_del: policy {value.policy!r}",
                                             objects.ErrorCode.INVALID_VALUE)
            if not value.members or any(not 1 <= m.weight <= 0xffff for m in value.members):
                raise objects.DataplaneError("singbox_endpoint_group_add_del: no member, or a weight out of range",
                                             objects.ErrorCode.INVALID_VALUE)
            for m in value.members:
                if (objects.ENDPOINT, m.endpoint) not in self.objects:
                    raise objects.DataplaneError(f"singbox_endpoint_group_add_del: no endpoint {m.endpoint!r}",
                                                 objects.ErrorCode.NO_SUCH_ENTRY)
        elif kind == objects.DEFAULT_GROUP:
            assert isinstance(value, str)
            if value and (objects.GROUP, value) not in self.objects:
                raise objects.DataplaneError(f"singbox_set_default_endpoint_group: no endpoint group {value!r}",
                                             objects.ErrorCode.NO_SUCH_ENTRY)
        elif kind == objects.DEFAULT_ENDPOINT:
            assert isinstance(value, str)
            if value and (objects.ENDPOINT, value) not in self.objects:
                raise objects.DataplaneError(f"singbox_set_default_endpoint: no endpoint {value!r}",
                                     objects.ErrorCode.NO_SUCH_ENTRY)
        elif kind == objects.INTERFACE:
            assert isinstance(value, objects.InterfaceSpec)
            if self._present(key[1]):
                if value.group and (objects.GROUP, value.group) not in self.objects:
                    raise objects.DataplaneError(
                        f"singbox_interface_endpoint_group_enable: no endpoint group {value.group!r}",
                        objects.ErrorCode.NO_SUCH_ENTRY)
                if value.endpoint and (objects.ENDPOINT, value.endpoint) not in self.objects:
                    raise objects.DataplaneError(f"singbox_enable_disable: no endpoint {value.endpoint!r}",
                                         objects.ErrorCode.NO_SUCH_ENTRY)
                if not value.endpoint and not value.group and not self.objects[(objects.DEFAULT_ENDPOINT,)] \
                        and not self.objects[(objects.DEFAULT_GROUP,)]:
                    raise objects.DataplaneError("singbox_enable_disable: no endpoint and no default endpoint",
                                         objects.ErrorCode.NO_SUCH_ENTRY)
        elif kind == objects.SERVER_UPSTREAM:
            assert isinstance(value, str)
            if value and not self._present(value):
                raise objects.DataplaneError(f"server upstream-interface {value!r}: VPP has no such interface",
                                             objects.ErrorCode.NO_SUCH_ENTRY)
        elif kind == objects.BYPASS:
            if (objects.INTERFACE, key[1]) not in self.objects:
                raise objects.DataplaneError(f"singbox_interface_bypass_add_del: interface {key[1]!r} not enabled",
                                     objects.ErrorCode.NO_SUCH_ENTRY)
        elif kind == objects.INTERFACE_UDP:
            assert isinstance(value, objects.InterfaceUdpSpec)
            if (objects.INTERFACE, key[1]) not in self.objects:
                raise objects.DataplaneError(
                    f"singbox_interface_udp_enable_disable: client mode not enabled on {key[1]!r}",
                    objects.ErrorCode.FEATURE_DISABLED)
            if value.idle_timeout > 86400 or value.max_flows > 1000000:
                raise objects.DataplaneError("singbox_interface_udp_enable_disable: value out of range",
                                             objects.ErrorCode.INVALID_VALUE)
        elif kind == objects.LISTENER:
            assert isinstance(value, objects.ListenerSpec)
            _check_name(key[1], "listener name")
            if value.port == 0:
                raise objects.DataplaneError("singbox_server_listener_add_del: port 0", objects.ErrorCode.INVALID_VALUE)
        elif kind == objects.USER:
            assert isinstance(value, objects.UserSpec)
            if not 1 <= len(key[1].encode()) <= 255 or not value.password_hash:
                raise objects.DataplaneError("singbox_server_user_add_del: bad username or password",
                                     objects.ErrorCode.INVALID_VALUE)
        self._index(key, self.objects.get(key), False)
        self.objects[key] = value
        self._index(key, value, True)

    def _index(self, key: objects.Key, value: objects.Value | None, add: bool) -> None:
        """Record (or forget) what the object `key` holding `value` refers to."""
        targets: list[tuple[str, str]] = []
        if isinstance(value, objects.InterfaceSpec):
            targets = [(objects.ENDPOINT, value.endpoint), (objects.GROUP, value.group)]
        elif isinstance(value, objects.GroupSpec):
            targets = [(objects.ENDPOINT, m.endpoint) for m in value.members]
        elif key[0] == objects.BYPASS and value is not None:
            targets = [(objects.BYPASS, key[1])]
        for target in targets:
            table = self._bypass.setdefault(target[1], {}) if target[0] == objects.BYPASS else \
                self._refs.setdefault(target, {})
            if add:
                table[key] = None
            else:
                table.pop(key, None)

    def _delete(self, key: objects.Key) -> None:
        if key not in self.objects:
            raise objects.DataplaneError(f"delete {key[0]} {key[1:]}: no such entry", objects.ErrorCode.NO_SUCH_ENTRY)
        kind = key[0]
        refs = self._refs.get((kind, key[1]), {}) if len(key) > 1 else {}
        if kind == objects.ENDPOINT:
            users = [k[1] for k in refs if k[0] == objects.INTERFACE and self._present(k[1])]
            if users:
                raise objects.DataplaneError(f"singbox_endpoint_add_del: endpoint {key[1]!r} in use by {users[0]!r}",
                                     objects.ErrorCode.INSTANCE_IN_USE)
            groups = [k[1] for k in refs if k[0] == objects.GROUP]
            if groups:
                raise objects.DataplaneError(
                    f"singbox_endpoint_add_del: endpoint {key[1]!r} is a member of group {groups[0]!r}",
                    objects.ErrorCode.INSTANCE_IN_USE)
            if self.objects[(objects.DEFAULT_ENDPOINT,)] == key[1]:
                self.objects[(objects.DEFAULT_ENDPOINT,)] = ""
        elif kind == objects.GROUP:
            users = [k[1] for k in refs if k[0] == objects.INTERFACE and self._present(k[1])]
            if users:
                raise objects.DataplaneError(
                    f"singbox_endpoint_group_add_del: endpoint group {key[1]!r} in use by {users[0]!r}",
                    objects.ErrorCode.INSTANCE_IN_USE)
            if self.objects[(objects.DEFAULT_GROUP,)] == key[1]:
                self.objects[(objects.DEFAULT_GROUP,)] = ""
        elif kind == objects.INTERFACE:
            # disabling an interface drops its bypass prefixes and its UDP relaying
            for k in [*self._bypass.pop(key[1], {}), (objects.INTERFACE_UDP, key[1])]:
                self.objects.pop(k, None)
        self._index(key, self.objects.pop(key), False)

    def read_config(self) -> objects.ConfigMap:
        with self._lock:
            self._check_connected()
            out: dict[objects.Key, objects.Value] = {}
            for key, value in self.objects.items():
                if isinstance(value, objects.EndpointSpec) and value.password is not None:
                    value = replace(value, password=objects.SECRET_UNKNOWN)
                elif isinstance(value, objects.UserSpec):
                    value = replace(value, password_hash=objects.SECRET_UNKNOWN)
                out[key] = value
            return out

    # state --------------------------------------------------------------------------------------------------

    def read_state(self, parts: frozenset[base.StatePart] = base.ALL_STATE, *,
                   endpoints: Collection[str] | None = None, interfaces: Collection[str] | None = None
                   ) -> base.OperState:
        with self._lock:
            self._check_connected()
            self.state_reads.append(parts)
            if endpoints is not None and interfaces is not None and parts <= {"endpoints", "interfaces", "server"}:
                return self._some_state(parts, endpoints, interfaces)
            state = base.OperState(server=replace(self.server_state,
                                                  running=bool(self.objects[("server-enabled",)])))
            kinds = {objects.ENDPOINT: "endpoints", objects.INTERFACE: "interfaces", objects.LISTENER: "listeners",
                     objects.USER: "users", objects.GROUP: "groups"}
            for key, value in self.objects.items():
                if kinds.get(key[0]) not in parts:
                    continue
                if key[0] == objects.ENDPOINT:
                    state.endpoints[key[1]] = self.endpoint_states.get(key[1], base.EndpointState())
                elif key[0] == objects.INTERFACE:
                    assert isinstance(value, objects.InterfaceSpec)
                    state.interfaces[key[1]] = self._interface_state(key[1], value)
                elif key[0] == objects.LISTENER:
                    state.listeners[key[1]] = bool(self.objects[("server-enabled",)])
                elif key[0] == objects.USER:
                    state.users[key[1]] = self.user_states.get(key[1], base.UserState())
                elif key[0] == objects.GROUP:
                    assert isinstance(value, objects.GroupSpec)
                    state.groups[key[1]] = self._members(value, self.member_states, key[1])
            return state

    def _interface_state(self, name: str, spec: objects.InterfaceSpec) -> base.InterfaceState:
        counters = self.interface_counters.get(name, base.InterfaceState())
        udp = self.udp_counters.get(name, base.UdpState()) \
            if (objects.INTERFACE_UDP, name) in self.objects and self._present(name) else None
        return replace(counters, present=self._present(name), active_endpoint=self._pick_endpoint(spec), udp=udp)

    def _some_state(self, parts: frozenset[base.StatePart], endpoints: Collection[str],
                    interfaces: Collection[str]) -> base.OperState:
        """read_state of a few endpoints and interfaces (and the server): by key, not a walk of every object."""
        state = base.OperState(server=replace(self.server_state, running=bool(self.objects[("server-enabled",)])))
        for name in endpoints if "endpoints" in parts else ():
            if (objects.ENDPOINT, name) in self.objects:
                state.endpoints[name] = self.endpoint_states.get(name, base.EndpointState())
        for name in interfaces if "interfaces" in parts else ():
            value = self.objects.get((objects.INTERFACE, name))
            if isinstance(value, objects.InterfaceSpec):
                state.interfaces[name] = self._interface_state(name, value)
        return state

    def _members(self, group: objects.GroupSpec, counters: dict[tuple[str, str], base.MemberState],
                 name: str) -> dict[str, base.MemberState]:
        """As the plugin reports them (singbox_lb.c's eligibility): members not down, of the lowest priority that
        has one; every member down: those of the lowest priority."""
        def down(m: objects.GroupMember) -> bool:
            return self.endpoint_states.get(m.endpoint, base.EndpointState()).oper_status == "down"

        usable = [m for m in group.members if not down(m)]
        prio = min(m.priority for m in (usable or group.members))
        return {m.endpoint: replace(counters.get((name, m.endpoint), base.MemberState()),
                                    eligible=m.priority == prio and (not usable or not down(m)))
                for m in group.members}

    def _pick_endpoint(self, itf: objects.InterfaceSpec) -> str:
        """As the plugin picks (singbox_client_pick_endpoint): the interface's endpoint, or the default; when
        health checks have it down, the endpoint with the lowest priority that is not down (ties: the first).
        None through an endpoint group: each connection has its own member."""
        if itf.group or (not itf.endpoint and self.objects[(objects.DEFAULT_GROUP,)]):
            return ""
        name = itf.endpoint or str(self.objects[(objects.DEFAULT_ENDPOINT,)])
        if self.endpoint_states.get(name, base.EndpointState()).oper_status != "down":
            return name
        best: tuple[int, str] | None = None
        for key, value in self.objects.items():
            if key[0] == objects.ENDPOINT and isinstance(value, objects.EndpointSpec) \
                    and self.endpoint_states.get(key[1], base.EndpointState()).oper_status != "down" \
                    and (best is None or value.priority < best[0]):
                best = (value.priority, key[1])
        return best[1] if best is not None else name

    def read_load(self, interfaces: bool) -> base.Load:
        with self._lock:
            self._check_connected()
            active = {n: c.active_connections for n, c in self.interface_counters.items()
                      if c.active_connections and (objects.INTERFACE, n) in self.objects} if interfaces else {}
            return base.Load(bool(self.objects[("server-enabled",)]), self.server_state.active_sessions, active)

    def read_sessions(self) -> list[base.Session]:
        with self._lock:
            self._check_connected()
            return list(self.sessions.values())

    def clear_stats(self, scope: base.ClearScope) -> None:
        with self._lock:
            self._check_connected()
            if scope[0] in ("interface", "endpoint", "endpoint-group") and (scope[0], scope[1]) not in self.objects:
                raise objects.DataplaneError(f"singbox_clear_stats: no {scope[0]} {scope[1]!r}",
                                     objects.ErrorCode.NO_SUCH_ENTRY)
            self.cleared.append(scope)

    def disconnect_session(self, session_id: int) -> None:
        with self._lock:
            self._check_connected()
            base.refuse_udp_disconnect(session_id)
            if self.sessions.pop(session_id, None) is None:
                raise objects.DataplaneError(f"singbox_session_disconnect: no session {session_id}",
                                     objects.ErrorCode.NO_SUCH_ENTRY)

    def test_endpoint(self, name: str, timeout_s: float = 305.0) -> base.ProbeResult:
        with self._lock:
            self._check_connected()
            if (objects.ENDPOINT, name) not in self.objects:
                raise objects.DataplaneError(f"singbox_endpoint_test: no endpoint {name!r}",
                                             objects.ErrorCode.NO_SUCH_ENTRY)
            return self.probe_results.get(name, base.ProbeResult("connect-failed", message="connection refused"))


def _check_name(name: str, what: str) -> None:
    if not 1 <= len(name) <= 63:
        raise objects.DataplaneError(f"{what} must be 1..63 characters", objects.ErrorCode.INVALID_VALUE)


def _packed(address: str) -> bytes | None:
    """The address's bytes; None when it is no IP address (dotted quads at C speed, the rest through ipaddress)."""
    try:
        return socket.inet_pton(socket.AF_INET, address)
    except (OSError, ValueError):
        pass
    try:
        return ipaddress.ip_address(address).packed
    except ValueError:
        return None

"""VPP through vpp-papi over the API socket: each planner Op becomes the plugin message API.md names for it.

A background thread connects (retrying every RECONNECT_MAX_S at most), checks that every message the agent needs is
known to the running VPP with the same CRC (vpp-papi silently drops the others), watches the connection with a ping,
and reports Connected / Disconnected. Every call holds one lock (vpp-papi's sync client is not thread-safe) and is
bounded by the client's read timeout.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import queue
import socket
import struct
import threading
import time
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog

from singbox_agent.dataplane.base import (
    ALL_STATE,
    BatchResult,
    ClearScope,
    Connected,
    Dataplane,
    Disconnected,
    EndpointEvent,
    EndpointState,
    InterfaceState,
    Load,
    MemberState,
    OperState,
    ProbeResult,
    ProbeResultName,
    ServerState,
    Session,
    StatePart,
    StopRule,
    UdpState,
    UserState,
    Versions,
    refuse_udp_disconnect,
    run_of,
    udp_session_id,
)
from singbox_agent.dataplane import objects
from singbox_agent.dataplane.objects import (
    SECRET_UNKNOWN,
    ClientSettings,
    ConfigMap,
    DataplaneError,
    DataplaneUnavailable,
    EndpointSpec,
    ErrorCode,
    GroupMember,
    GroupSpec,
    InterfaceSpec,
    InterfaceUdpSpec,
    Key,
    ListenerSpec,
    Op,
    ServerSettings,
    UserSpec,
    Value,
)

log = structlog.get_logger("dataplane.vpp")

# A VPP that dies is seen at once (its API socket closes); this bounds one that is alive but silent. Busy is not
# dead: while the plugin starts health probes for thousands of new endpoints at once, VPP's main thread was seen
# silent for over 2 s on a loaded 2-core box, and a 2 s bound made the agent drop a working connection and start
# the resync over (re-adding endpoints restarts their probes: the stall came back each time).
CALL_TIMEOUT_S = 10.0
PING_INTERVAL_S = 0.25
RECONNECT_MIN_S = 0.05
RECONNECT_MAX_S = 0.25
# While nothing listens on the API socket, a plain connect() tells so for almost nothing: that is polled this often
# (a restarted VPP is taken within this of its socket appearing), the costly attempts back off to RECONNECT_MAX_S.
LISTEN_POLL_S = 0.02
MISSING_RETRY_S = 10.0
ABSENT_REFRESH_S = 5.0
ALL = 0xFFFFFFFF
# Requests sent before their replies are read (apply_batch). Bounds what is under way when one fails and the bytes
# queued in the API socket (a request is < 400 bytes); beyond ~64 the batch is no faster here.
WINDOW = 128
# vpp-papi logs every call with its arguments at DEBUG, passwords included: never let it.
PAPI_LOGGER = logging.getLogger("vpp_papi.singbox_agent")
PAPI_LOGGER.setLevel(logging.WARNING)

# Every message the agent sends (replies and details come with them).
REQUIRED_MESSAGES = (
    "show_version", "sw_interface_dump", "control_ping",
    "singbox_plugin_get_version", "singbox_set_log_level", "singbox_clear_stats",
    "singbox_server_enable_disable", "singbox_server_config", "singbox_server_dump",
    "singbox_server_listener_add_del", "singbox_server_listener_dump",
    "singbox_server_user_add_del", "singbox_server_user_dump",
    "singbox_server_allowed_prefix_add_del", "singbox_server_allowed_prefix_dump", "singbox_server_get_stats",
    "singbox_endpoint_add_del", "singbox_set_default_endpoint", "singbox_endpoint_dump", "singbox_endpoint_test",
    "want_singbox_endpoint_events", "singbox_enable_disable", "singbox_interface_bypass_add_del",
    "singbox_interface_dump", "singbox_set_timeout", "singbox_set_pooling", "singbox_client_dump",
    "singbox_session_dump", "singbox_session_disconnect",
)
# Endpoint groups (API 1.1): a plugin without them still serves everything else; group ops are refused then.
GROUP_MESSAGES = ("singbox_endpoint_group_add_del", "singbox_endpoint_group_dump",
                  "singbox_set_default_endpoint_group", "singbox_interface_endpoint_group_enable")
# UDP in client mode (API 1.1, with the groups): without them everything else is served; UDP relaying ops are
# refused then.
UDP_MESSAGES = ("singbox_interface_udp_enable_disable", "singbox_interface_udp_dump", "singbox_udp_flow_dump")
LOG_LEVELS = ("error", "warning", "info", "debug")
PROBE_RESULTS: tuple[ProbeResultName, ...] = ("success", "connect-failed", "timeout", "auth-failed",
                                              "protocol-error", "dataplane-unavailable")
# plugin session states -> YANG session states
SESSION_STATES = ("greeting", "auth", "request", "connecting", "connecting", "established", "established",
                  "closing", "request", "request")
UDP_FLOW_STATES = ("connecting", "request", "established", "closing")  # singbox_udp_flow_state, as YANG states
ENDPOINT_STATES = ("unknown", "up", "down")
SERVER_COUNTERS = ("accepted", "rejected", "auth-failures", "connect-failures", "bytes-to-client",
                   "bytes-from-client")


class MissingMessages(DataplaneError):
    """The running VPP lacks messages the agent needs, or has them with another CRC."""


class _NotListening(ConnectionError):
    """Nothing accepts connections on the API socket (VPP is down or still starting)."""


class _Lost(Exception):
    """The connection failed under a call: VPP is gone or the reply stream cannot be trusted any more."""


@dataclass(frozen=True)
class _Request:
    msg: str
    args: dict[str, Any]
    undo: tuple[str, dict[str, Any]] | None = None  # restores what this message changed (ops of several messages)


def _refused(msg: str, retval: int) -> DataplaneError:
    code = _code(retval)
    label = code.name if isinstance(code, ErrorCode) else str(retval)
    return DataplaneError(f"{msg} returned {label} ({retval})", code)


def _code(retval: int) -> ErrorCode | int:
    try:
        return ErrorCode(retval)
    except ValueError:
        return retval


def _s(value: Any) -> str:
    return value.decode(errors="replace").rstrip("\0") if isinstance(value, bytes) else str(value)


class VppDataplane(Dataplane):
    def __init__(self, api_socket: str | None, api_files: list[Path], *, client_name: str = "singbox-agent",
                 stats_socket: str | None = None) -> None:
        self.api_socket = api_socket
        # The stats segment (counters); by default next to the API socket, as VPP's startup.conf usually puts it.
        if stats_socket is None and api_socket is not None:
            stats_socket = str(Path(api_socket).with_name("stats.sock"))
        self.stats_socket = stats_socket
        self._stats: Any = None
        self.api_files = [str(f) for f in api_files]
        self.client_name = client_name
        self._lock = threading.RLock()
        self._vpp: Any = None
        self._connected = False
        self._versions: Versions | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lost: str | None = None  # set by a failed call; the monitor reports it
        self._if_index: dict[str, int] = {}
        self._if_name: dict[int, str] = {}
        # Configuration for interfaces VPP does not have (yet): applied when they appear.
        self._absent: dict[str, InterfaceSpec] = {}
        self._absent_udp: dict[str, InterfaceUdpSpec] = {}  # UDP relaying of absent interfaces
        self._has_udp = False  # the plugin offers UDP_MESSAGES (set at connect)
        self._has_groups = False  # the plugin offers GROUP_MESSAGES (set at connect)
        self._absent_bypass: dict[str, set[str]] = {}

    # connection ---------------------------------------------------------------------------------------------

    def start(self) -> None:
        if self.api_socket is None:
            log.warning("no VPP API socket configured: the dataplane stays disconnected")
            return
        self._thread = threading.Thread(target=self._run, name="vpp-connection", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._close()

    @property
    def connected(self) -> bool:
        return self._connected

    def versions(self) -> Versions | None:
        return self._versions

    def _run(self) -> None:
        delay = RECONNECT_MIN_S
        last_reason = ""
        next_absent = 0.0
        while not self._stop.is_set():
            if not self._connected:
                try:
                    self._connect()
                except MissingMessages as exc:
                    if str(exc) != last_reason:
                        log.error("VPP lacks messages the agent needs", error=str(exc))
                        self.emit(Disconnected(str(exc)))
                        last_reason = str(exc)
                    self._stop.wait(MISSING_RETRY_S)
                    continue
                except Exception as exc:  # noqa: BLE001 - any failure to connect is retried
                    reason = f"cannot connect to VPP at {self.api_socket}: {exc}"
                    if reason != last_reason:
                        log.info("VPP not reachable", reason=reason)
                        last_reason = reason
                    if isinstance(exc, _NotListening):
                        self._stop.wait(LISTEN_POLL_S)
                        continue
                    self._stop.wait(delay)
                    delay = min(delay * 2, RECONNECT_MAX_S)
                    continue
                delay = RECONNECT_MIN_S
                last_reason = ""
                assert self._versions is not None
                self.emit(Connected(self._versions))
                continue
            self._stop.wait(PING_INTERVAL_S)
            lost: str | None = self._lost
            if lost is None:
                try:
                    self._call("control_ping")
                except DataplaneError as exc:
                    lost = str(exc)
            if lost is not None:
                self._close()
                log.warning("VPP connection lost", reason=lost)
                self.emit(Disconnected(lost))
            elif self._absent and time.monotonic() >= next_absent:
                next_absent = time.monotonic() + ABSENT_REFRESH_S
                self._adopt_appeared_interfaces()

    def _connect(self) -> None:
        from vpp_papi import VPPApiClient

        assert self.api_socket is not None
        if not Path(self.api_socket).exists():
            raise _NotListening(f"{self.api_socket} does not exist")
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            probe.settimeout(CALL_TIMEOUT_S)
            probe.connect(self.api_socket)
        except OSError as exc:
            raise _NotListening(str(exc)) from None
        finally:
            probe.close()
        if any("singbox" in Path(f).name for f in self.api_files):
            vpp = VPPApiClient(apifiles=self.api_files, use_socket=True, server_address=self.api_socket,
                               read_timeout=CALL_TIMEOUT_S, logger=PAPI_LOGGER)
        else:
            # No API files of the plugin: take the definitions from VPP itself (its own CRCs, so the check below
            # then only proves that the plugin is loaded and offers every message).
            vpp = VPPApiClient(bootstrapapi=True, use_socket=True, server_address=self.api_socket,
                               read_timeout=CALL_TIMEOUT_S, logger=PAPI_LOGGER)
        vpp.connect(self.client_name)
        _thread_queue(vpp)
        try:
            missing = [m for m in REQUIRED_MESSAGES if not hasattr(vpp.api, m)]
            if missing:
                table = getattr(vpp.transport, "message_table", {}) or {}
                details = []
                for m in missing:
                    theirs = [k for k in table if k.rsplit("_", 1)[0] == m]
                    ours = vpp.messages[m].crc if m in vpp.messages else None
                    details.append(f"{m} (VPP has {theirs[0]}, ours {ours})" if theirs and ours
                                   else f"{m} (not in VPP)" if ours else f"{m} (not in the API files)")
                raise MissingMessages("VPP does not offer these messages with the expected CRC: "
                                      + ", ".join(details))
            version = vpp.api.show_version()
            plugin = vpp.api.singbox_plugin_get_version()
            if plugin.major != 1:
                raise MissingMessages(f"singbox plugin API {plugin.major}.{plugin.minor} is not 1.x")
            vpp.register_event_callback(self._on_vpp_event)
            vpp.api.want_singbox_endpoint_events(enable_disable=True, pid=os.getpid())
        except BaseException:
            _disconnect(vpp)
            raise
        with self._lock:
            self._vpp = vpp
            self._has_groups = all(hasattr(vpp.api, m) for m in GROUP_MESSAGES)
            self._has_udp = all(hasattr(vpp.api, m) for m in UDP_MESSAGES)
            self._lost = None
            self._versions = Versions(vpp=_s(version.version), plugin=_s(plugin.version))
            self._refresh_interfaces()
            self._connected = True
        log.info("VPP connected", vpp_version=self._versions.vpp, plugin_version=self._versions.plugin)

    def _close(self) -> None:
        with self._lock:
            vpp, self._vpp = self._vpp, None
            self._connected = False
            stats, self._stats = self._stats, None
        if stats is not None:
            try:
                stats.disconnect()
            except Exception:  # noqa: BLE001 - the segment is gone with VPP
                pass
        if vpp is not None:
            _disconnect(vpp)

    def _on_vpp_event(self, name: str, msg: Any) -> None:
        if name != "singbox_endpoint_event":
            return
        try:
            state = ENDPOINT_STATES[int(msg.state)]
            result = PROBE_RESULTS[min(int(msg.result), len(PROBE_RESULTS) - 1)]
            if state in ("up", "down"):
                self.emit(EndpointEvent(_s(msg.name), state == "up", result, int(msg.rtt_us)))
        except Exception as exc:  # noqa: BLE001 - never let an exception into vpp-papi's thread
            log.warning("bad endpoint event", error=str(exc))

    def _call(self, msg: str, /, **kwargs: Any) -> Any:
        """One API call; raises DataplaneUnavailable when VPP is gone, DataplaneError on retval != 0."""
        with self._lock:
            vpp = self._vpp
            if vpp is None or not self._connected:
                raise DataplaneUnavailable("VPP is not connected")
            try:
                reply = getattr(vpp.api, msg)(**kwargs)
            except UnicodeDecodeError as exc:
                # The rest of a multi-part reply is still in the socket: this connection is unusable now.
                self._lost = f"{msg}: undecodable reply"
                raise DataplaneError(f"{msg}: VPP sent a reply that does not decode ({exc}); a string field of "
                                     "the plugin's reply is not NUL-terminated?") from None
            except (TypeError, ValueError) as exc:
                raise DataplaneError(f"{msg}: bad arguments: {exc}") from None
            except Exception as exc:  # noqa: BLE001 - vpp-papi raises assorted types on a dead socket
                lost = f"{msg}: {exc or type(exc).__name__}"
                self._lost = lost
                raise DataplaneUnavailable(lost) from None
        retval = getattr(reply, "retval", 0)
        if retval:
            raise _refused(msg, retval)
        return reply

    # stats segment ------------------------------------------------------------------------------------------

    def _server_counters(self) -> dict[str, int] | None:
        """/singbox/server/* simple counters summed over threads, or None if the stats segment is unavailable
        (then the API's get_stats reply is used: the same numbers)."""
        if self.stats_socket is None or not Path(self.stats_socket).exists():
            return None
        try:
            if self._stats is None:
                from vpp_papi.vpp_stats import VPPStats

                stats = VPPStats(socketname=self.stats_socket, timeout=CALL_TIMEOUT_S)
                stats.connect()
                self._stats = stats
            out: dict[str, int] = {}
            for name in SERVER_COUNTERS:
                for _ in range(3):  # a reader retries while VPP updates the directory; never spin forever
                    try:
                        out[name] = int(sum(sum(row) for row in self._stats.__getitem__(
                            f"/singbox/server/{name}", blocking=False)))
                        break
                    except OSError:
                        continue
                else:
                    return None
            return out
        except Exception as exc:  # noqa: BLE001 - counters then come from the API
            log.debug("stats segment unavailable", error=str(exc))
            self._stats = None
            return None

    # interfaces by name -------------------------------------------------------------------------------------

    def _refresh_interfaces(self) -> None:
        self._set_interfaces(self._vpp.api.sw_interface_dump(name_filter_valid=False, name_filter=""))

    def _set_interfaces(self, details: list[Any]) -> None:
        self._if_index = {_s(d.interface_name): int(d.sw_if_index) for d in details}
        self._if_name = {v: k for k, v in self._if_index.items()}

    def _adopt_appeared_interfaces(self) -> None:
        try:
            with self._lock:
                self._refresh_interfaces()
                ops: list[Op] = []
                for name in [n for n in self._absent if n in self._if_index]:
                    spec = self._absent.pop(name)
                    prefixes = self._absent_bypass.pop(name, set())
                    ops.append(Op("put", (objects.INTERFACE, name), spec, None))
                    ops += [Op("put", (objects.BYPASS, name, p), True, None) for p in sorted(prefixes)]
                    if name in self._absent_udp:
                        ops.append(Op("put", (objects.INTERFACE_UDP, name), self._absent_udp.pop(name), None))
                    log.info("interface appeared, relaying enabled", interface=name)
                for op, error in zip(ops, self.apply_batch(ops)):
                    if error is not None:
                        log.warning("enabling an interface that appeared failed", op=op.describe(), error=str(error))
        except Exception as exc:  # noqa: BLE001 - retried at the next refresh
            log.warning("enabling an interface that appeared failed", error=str(exc))

    # configuration ------------------------------------------------------------------------------------------

    def apply(self, op: Op) -> None:
        error = self.apply_batch([op])[0]
        if error is not None:
            raise error

    def apply_batch(self, ops: Sequence[Op], *, stop: StopRule | None = None) -> BatchResult:
        """Pipelined: up to WINDOW requests are sent before the first reply is read, and replies are matched to
        their op by context. VPP handles one client's messages in order, so order-dependent ops still work; with
        `stop`, each run of independent ops waits for the previous run's replies (Dataplane.apply_batch)."""
        with self._lock:
            vpp = self._vpp
            if vpp is None or not self._connected:
                raise DataplaneUnavailable("VPP is not connected")
            return _Batch(self, vpp, ops, stop).run()

    @staticmethod
    def _address(host: str) -> str:
        """The plugin takes an IP address; the agent resolves names before an endpoint is planned (resolve.py)."""
        try:
            return str(ipaddress.ip_address(host))
        except ValueError:
            raise DataplaneError(f"{host!r} is not an IP address", ErrorCode.INVALID_VALUE) from None

    @staticmethod
    def _protocol(name: str) -> int:
        if name not in objects.PROTOCOLS:
            raise DataplaneError(f"endpoint protocol {name!r} is not one the plugin speaks", ErrorCode.INVALID_VALUE)
        return objects.PROTOCOLS.index(name)

    @staticmethod
    def _policy(name: str) -> int:
        if name not in objects.LB_POLICIES:
            raise DataplaneError(f"endpoint group policy {name!r} is not one the plugin has", ErrorCode.INVALID_VALUE)
        return objects.LB_POLICIES.index(name)

    def _requests(self, op: Op) -> list[_Request]:
        """The plugin messages (API.md) that perform `op`; none when it only changes what is kept for an
        interface VPP does not have. Raises DataplaneError when the op cannot be expressed."""
        kind, key = op.key[0], op.key
        uses_group = kind in (objects.GROUP, objects.DEFAULT_GROUP) and (op.value or op.action == "delete") or (
            isinstance(op.value, InterfaceSpec) and op.value.group)
        if uses_group and not self._has_groups:
            raise DataplaneError("the plugin has no endpoint groups (singbox API 1.1)", ErrorCode.UNIMPLEMENTED)
        if kind == objects.INTERFACE_UDP and not self._has_udp:
            raise DataplaneError("the plugin does not relay UDP in client mode (singbox API 1.1)",
                                 ErrorCode.UNIMPLEMENTED)
        if op.action == "put":
            assert op.value is not None
            return self._put_requests(kind, key, op.value, op.old)
        return self._delete_requests(kind, key)

    def _put_requests(self, kind: str, key: Key, value: Value, old: Value | None) -> list[_Request]:
        if kind == objects.LOG_LEVEL:
            return [_Request("singbox_set_log_level", {"level": LOG_LEVELS.index(str(value))})]
        if kind == objects.CLIENT:
            assert isinstance(value, ClientSettings)
            before = old if isinstance(old, ClientSettings) else None
            # two messages: if the second fails the first is taken back, so the op stays all-or-nothing
            return [_Request("singbox_set_timeout", {"timeout": value.session_timeout},
                             ("singbox_set_timeout", {"timeout": before.session_timeout}) if before else None),
                    _Request("singbox_set_pooling", {"enable": value.pooling, "max_pool_size": value.max_pool_size})]
        if kind == objects.DEFAULT_ENDPOINT:
            return [_Request("singbox_set_default_endpoint", {"name": str(value)})]
        if kind == objects.DEFAULT_GROUP:
            if not self._has_groups:
                return []  # no default group (anything else is refused in _requests)
            return [_Request("singbox_set_default_endpoint_group", {"name": str(value)})]
        if kind == objects.GROUP:
            assert isinstance(value, GroupSpec)
            return [_Request("singbox_endpoint_group_add_del", {
                "is_add": True, "name": key[1], "policy": self._policy(value.policy),
                "n_members": len(value.members),
                "members": [{"endpoint_name": m.endpoint, "weight": m.weight, "priority": m.priority}
                            for m in value.members]})]
        if kind == objects.ENDPOINT:
            assert isinstance(value, EndpointSpec)
            return [_Request("singbox_endpoint_add_del", {
                "is_add": True, "name": key[1], "proxy_addr": self._address(value.address), "proxy_port": value.port,
                "protocol_type": self._protocol(value.protocol), "username": value.username or "",
                "password": value.password if isinstance(value.password, str) else "", "priority": value.priority,
                "connect_timeout": value.connect_timeout, "health_check_enabled": value.health_check,
                "health_check_interval": value.health_check_interval,
                "health_check_timeout": value.health_check_timeout, "failure_threshold": value.failure_threshold,
                "recovery_threshold": value.recovery_threshold, "table_id": 0})]
        if kind == objects.INTERFACE:
            assert isinstance(value, InterfaceSpec)
            index = self._if_index.get(key[1])
            if index is None:
                self._absent[key[1]] = value  # relaying starts when the interface appears
                return []
            if value.group:
                return [_Request("singbox_interface_endpoint_group_enable", {
                    "sw_if_index": index, "group_name": value.group, "max_connections": value.max_connections})]
            return [_Request("singbox_enable_disable", {
                "sw_if_index": index, "enable_disable": True, "proxy_port": 0, "endpoint_name": value.endpoint,
                "max_connections": value.max_connections})]
        if kind == objects.BYPASS:
            index = self._if_index.get(key[1])
            if index is None and key[1] in self._absent:
                self._absent_bypass.setdefault(key[1], set()).add(key[2])
                return []
            if index is None:
                raise DataplaneError(f"interface {key[1]!r} is not enabled", ErrorCode.NO_SUCH_ENTRY)
            return [_Request("singbox_interface_bypass_add_del",
                             {"sw_if_index": index, "is_add": True, "prefix": key[2]})]
        if kind == objects.INTERFACE_UDP:
            assert isinstance(value, InterfaceUdpSpec)
            index = self._if_index.get(key[1])
            if index is None and key[1] in self._absent:
                self._absent_udp[key[1]] = value
                return []
            if index is None:
                raise DataplaneError(f"interface {key[1]!r} is not enabled", ErrorCode.NO_SUCH_ENTRY)
            return [_Request("singbox_interface_udp_enable_disable", {
                "sw_if_index": index, "enable": True, "idle_timeout": value.idle_timeout,
                "max_flows": value.max_flows})]
        if kind == objects.SERVER:
            assert isinstance(value, ServerSettings)
            return [_Request("singbox_server_config", {
                "auth_required": value.auth_required, "allow_connect": value.allow_connect,
                "allow_udp_associate": value.allow_udp_associate, "max_sessions": value.max_sessions,
                "handshake_timeout": value.handshake_timeout, "idle_timeout": value.idle_timeout,
                "connect_timeout": value.connect_timeout, "udp_idle_timeout": value.udp_idle_timeout,
                "udp_public_address": value.udp_public_address or "0.0.0.0",
                "dns_enabled": value.dns_server is not None, "dns_server": value.dns_server or "0.0.0.0",
                "dns_server_port": value.dns_server_port})]
        if kind == objects.SERVER_ENABLED:
            return [_Request("singbox_server_enable_disable", {"enable": bool(value)})]
        if kind == objects.SERVER_UPSTREAM:
            return self._server_upstream_requests(str(value))
        if kind == objects.LISTENER:
            assert isinstance(value, ListenerSpec)
            return [_Request("singbox_server_listener_add_del", {
                "is_add": True, "name": key[1], "addr": value.address, "port": value.port, "table_id": 0})]
        if kind == objects.USER:
            assert isinstance(value, UserSpec)
            secret = value.password_hash if isinstance(value.password_hash, str) else ""
            # '$0$<clear text>' (RFC 7317) is replaced by a hash in sysrepo soon; until then it is clear text.
            clear = secret.startswith("$0$")
            return [_Request("singbox_server_user_add_del", {
                "is_add": True, "password_is_hash": not clear, "username": key[1],
                "password": secret[3:] if clear else secret})]
        if kind == objects.ALLOWED_PREFIX:
            return [_Request("singbox_server_allowed_prefix_add_del", {"is_add": True, "prefix": key[1]})]
        raise DataplaneError(f"unknown object kind {kind!r}")

    def _server_upstream_requests(self, name: str) -> list[_Request]:
        """The proxy chain's explicit upstream: the interface's sw_if_index, ~0 (by route) for ""."""
        if not hasattr(self._vpp.api, "singbox_server_set_upstream"):
            if not name:
                return []  # an older plugin always routes server sessions directly: nothing to undo
            raise DataplaneError("the plugin has no proxy chain (singbox API 1.2)", ErrorCode.UNIMPLEMENTED)
        index = self._if_index.get(name) if name else ALL
        if index is None:
            # never "by route" in its place: the operator sends this traffic through a proxy
            raise DataplaneError(f"server upstream-interface {name!r}: VPP has no such interface",
                                 ErrorCode.NO_SUCH_ENTRY)
        return [_Request("singbox_server_set_upstream", {"sw_if_index": index})]

    def _delete_requests(self, kind: str, key: Key) -> list[_Request]:
        if kind == objects.ENDPOINT:
            return [_Request("singbox_endpoint_add_del", {"is_add": False, "name": key[1]})]
        if kind == objects.GROUP:
            return [_Request("singbox_endpoint_group_add_del", {"is_add": False, "name": key[1], "n_members": 0,
                                                                "members": []})]
        if kind == objects.INTERFACE:
            if self._absent.pop(key[1], None) is not None:
                self._absent_bypass.pop(key[1], None)
                self._absent_udp.pop(key[1], None)
                return []
            index = self._if_index.get(key[1])
            if index is None:
                raise DataplaneError(f"interface {key[1]!r} is not enabled", ErrorCode.NO_SUCH_ENTRY)
            return [_Request("singbox_enable_disable", {"sw_if_index": index, "enable_disable": False})]
        if kind == objects.BYPASS:
            if key[1] in self._absent:
                self._absent_bypass.get(key[1], set()).discard(key[2])
                return []
            index = self._if_index.get(key[1])
            if index is None:
                raise DataplaneError(f"interface {key[1]!r} is not enabled", ErrorCode.NO_SUCH_ENTRY)
            return [_Request("singbox_interface_bypass_add_del",
                             {"sw_if_index": index, "is_add": False, "prefix": key[2]})]
        if kind == objects.INTERFACE_UDP:
            if key[1] in self._absent:
                self._absent_udp.pop(key[1], None)
                return []
            index = self._if_index.get(key[1])
            if index is None:
                raise DataplaneError(f"interface {key[1]!r} is not enabled", ErrorCode.NO_SUCH_ENTRY)
            return [_Request("singbox_interface_udp_enable_disable", {"sw_if_index": index, "enable": False})]
        if kind == objects.LISTENER:
            return [_Request("singbox_server_listener_add_del",
                             {"is_add": False, "name": key[1], "addr": "0.0.0.0", "port": 0})]
        if kind == objects.USER:
            return [_Request("singbox_server_user_add_del", {"is_add": False, "username": key[1], "password": ""})]
        if kind == objects.ALLOWED_PREFIX:
            return [_Request("singbox_server_allowed_prefix_add_del", {"is_add": False, "prefix": key[1]})]
        raise DataplaneError(f"{kind} cannot be deleted")

    def _call_in_turn(self, requests: list[_Request]) -> DataplaneError | None:
        """One op of several messages, one after another; when one fails, those before it are taken back."""
        done: list[_Request] = []
        for request in requests:
            try:
                self._call(request.msg, **request.args)
            except DataplaneUnavailable:
                raise
            except DataplaneError as exc:
                for earlier in reversed(done):
                    if earlier.undo is not None:
                        try:
                            self._call(earlier.undo[0], **earlier.undo[1])
                        except DataplaneError as undo_exc:
                            log.error("taking back a partly applied op failed", msg=earlier.undo[0],
                                      error=str(undo_exc))
                return exc
            done.append(request)
        return None

    def _dump_many(self, *requests: tuple[str, dict[str, Any]]) -> list[list[Any]]:
        """Several dumps at once, their details sorted out by context: one round trip instead of one per dump."""
        with self._lock:
            vpp = self._vpp
            if vpp is None or not self._connected:
                raise DataplaneUnavailable("VPP is not connected")
            out: list[list[Any]] = [[] for _ in requests]
            ends: dict[int, tuple[int, str]] = {}  # context -> (request number, name of the message that ends it)
            try:
                for n, (msg, args) in enumerate(requests):
                    context = _send(vpp, msg, args)
                    service = vpp.services[msg]
                    if "stream_msg" in service:
                        ends[context] = (n, service["reply"])
                    else:  # old-style dump: a control_ping with the same context marks its end (as vpp-papi does)
                        try:
                            vpp._control_ping(context)  # noqa: SLF001
                        except Exception as exc:  # noqa: BLE001
                            raise _Lost(f"control_ping: {exc or type(exc).__name__}") from None
                        ends[context] = (n, "control_ping_reply")
                while ends:
                    reply = _receive(vpp)
                    context = getattr(reply, "context", 0)
                    if context not in ends:
                        continue  # the late reply of a call that timed out earlier
                    n, end = ends[context]
                    if type(reply).__name__ == end:
                        del ends[context]
                        if getattr(reply, "retval", 0):
                            raise _refused(requests[n][0], reply.retval)
                    else:
                        out[n].append(reply)
            except _Lost as exc:
                self._lost = str(exc)
                raise DataplaneUnavailable(str(exc)) from None
            return out

    def read_config(self) -> ConfigMap:
        with self._lock:
            group_dump: list[tuple[str, dict[str, Any]]] = \
                [("singbox_endpoint_group_dump", {})] if self._has_groups else []
            udp_dump: list[tuple[str, dict[str, Any]]] = \
                [("singbox_interface_udp_dump", {"sw_if_index": ALL})] if self._has_udp else []
            client, endpoints, sw_interfaces, interfaces, server, listeners, users, prefixes, *optional = \
                self._dump_many(
                ("singbox_client_dump", {}), ("singbox_endpoint_dump", {}),
                ("sw_interface_dump", {"name_filter_valid": False, "name_filter": ""}),
                ("singbox_interface_dump", {"sw_if_index": ALL}), ("singbox_server_dump", {}),
                ("singbox_server_listener_dump", {}), ("singbox_server_user_dump", {}),
                ("singbox_server_allowed_prefix_dump", {}), *group_dump, *udp_dump)
            groups = optional[0] if group_dump else []
            udp = optional[-1] if udp_dump else []
            self._set_interfaces(sw_interfaces)
            out: dict[Key, Value] = {}
            out[(objects.LOG_LEVEL,)] = LOG_LEVELS[int(client[0].log_level)]
            out[(objects.CLIENT,)] = ClientSettings(int(client[0].timeout), bool(client[0].pooling),
                                            int(client[0].max_pool_size))
            out[(objects.DEFAULT_ENDPOINT,)] = _s(client[0].default_endpoint)
            for e in endpoints:
                out[(objects.ENDPOINT, _s(e.name))] = EndpointSpec(
                    address=str(e.proxy_addr), port=int(e.proxy_port), username=_s(e.username) or None,
                    password=SECRET_UNKNOWN if e.has_credentials else None, priority=int(e.priority),
                    connect_timeout=int(e.connect_timeout), health_check=bool(e.health_check_enabled),
                    health_check_interval=int(e.health_check_interval),
                    health_check_timeout=int(e.health_check_timeout),
                    failure_threshold=int(e.failure_threshold), recovery_threshold=int(e.recovery_threshold),
                    protocol=objects.PROTOCOLS[int(e.protocol_type)] if int(e.protocol_type) < len(objects.PROTOCOLS)
                    else f"unknown-{int(e.protocol_type)}")
            out[(objects.DEFAULT_GROUP,)] = ""
            for g in groups:
                out[(objects.GROUP, _s(g.name))] = GroupSpec(
                    policy=objects.LB_POLICIES[int(g.policy)] if int(g.policy) < len(objects.LB_POLICIES)
                    else f"unknown-{int(g.policy)}",
                    members=tuple(sorted((GroupMember(_s(m.endpoint_name), int(m.weight), int(m.priority))
                                          for m in g.members[: int(g.n_members)]), key=lambda m: m.endpoint)))
                if g.is_default:
                    out[(objects.DEFAULT_GROUP,)] = _s(g.name)
            for i in interfaces:
                name = self._if_name.get(int(i.sw_if_index), f"sw_if_index {int(i.sw_if_index)}")
                out[(objects.INTERFACE, name)] = InterfaceSpec(_s(i.endpoint_name), int(i.max_connections),
                                                               _s(getattr(i, "endpoint_group_name", "")))
                for p in i.bypass[: int(i.n_bypass)]:
                    out[(objects.BYPASS, name, str(p))] = True
            for u in udp:
                name = self._if_name.get(int(u.sw_if_index), f"sw_if_index {int(u.sw_if_index)}")
                out[(objects.INTERFACE_UDP, name)] = InterfaceUdpSpec(int(u.idle_timeout), int(u.max_flows))
            for name, spec in self._absent.items():
                out[(objects.INTERFACE, name)] = spec
                for p in self._absent_bypass.get(name, ()):
                    out[(objects.BYPASS, name, p)] = True
                if name in self._absent_udp:
                    out[(objects.INTERFACE_UDP, name)] = self._absent_udp[name]
            srv = server[0]
            # The plugin keeps the server enabled when one of its listeners fails to listen (its address is not
            # there yet, say, right after a VPP restart) and returns the error; enabling again retries exactly the
            # listeners that are not listening. So "enabled" counts only when every listener listens: otherwise
            # the resync sends the enable again instead of believing the server is as configured.
            out[(objects.SERVER_ENABLED,)] = bool(srv.is_enabled) and all(bool(li.is_listening) for li in listeners)
            out[(objects.SERVER,)] = ServerSettings(
                auth_required=bool(srv.auth_required), allow_connect=bool(srv.allow_connect),
                allow_udp_associate=bool(srv.allow_udp_associate), max_sessions=int(srv.max_sessions),
                handshake_timeout=int(srv.handshake_timeout), idle_timeout=int(srv.idle_timeout),
                connect_timeout=int(srv.connect_timeout), udp_idle_timeout=int(srv.udp_idle_timeout),
                udp_public_address=_unspecified_none(srv.udp_public_address),
                dns_server=str(srv.dns_server) if srv.dns_enabled else None,
                dns_server_port=int(srv.dns_server_port))
            upstream = int(getattr(srv, "upstream_sw_if_index", ALL))
            out[(objects.SERVER_UPSTREAM,)] = "" if upstream == ALL else \
                self._if_name.get(upstream, f"sw_if_index {upstream}")
            for li in listeners:
                out[(objects.LISTENER, _s(li.name))] = ListenerSpec(str(li.addr), int(li.port))
            for u in users:
                out[(objects.USER, _s(u.username))] = UserSpec(SECRET_UNKNOWN)
            for p in prefixes:
                out[(objects.ALLOWED_PREFIX, str(p.prefix))] = True
            return out

    # state --------------------------------------------------------------------------------------------------

    def read_state(self, parts: frozenset[StatePart] = ALL_STATE, *, endpoints: Collection[str] | None = None,
                   interfaces: Collection[str] | None = None) -> OperState:
        # `endpoints`, `interfaces`: the plugin's dumps have no name filter; all are read, the wanted ones built
        with self._lock:
            state = OperState()
            dumps: dict[StatePart, tuple[str, dict[str, Any]]] = {
                "endpoints": ("singbox_endpoint_dump", {}),
                "interfaces": ("singbox_interface_dump", {"sw_if_index": ALL}),
                "server": ("singbox_server_dump", {}), "listeners": ("singbox_server_listener_dump", {}),
                "users": ("singbox_server_user_dump", {}), "groups": ("singbox_endpoint_group_dump", {})}
            asked = [p for p in dumps if p in parts and (p != "groups" or self._has_groups)]
            requests = [dumps[p] for p in asked]
            if "interfaces" in asked and self._has_udp:
                requests.append(("singbox_interface_udp_dump", {"sw_if_index": ALL}))
            dumped = self._dump_many(*requests)
            got = dict(zip(asked, dumped))
            udp = {int(u.sw_if_index): UdpState(
                int(u.active_flows), int(u.flows), int(u.failures), int(u.packets_to_proxy), int(u.bytes_to_proxy),
                int(u.packets_from_proxy), int(u.bytes_from_proxy), int(u.dropped))
                for u in (dumped[-1] if len(requests) > len(asked) else [])}
            dumped_endpoints, dumped_interfaces, listeners, users = (got.get(p, []) for p in (
                "endpoints", "interfaces", "listeners", "users"))
            wanted = None if endpoints is None else set(endpoints)
            for e in dumped_endpoints:
                if wanted is not None and _s(e.name) not in wanted:
                    continue
                state.endpoints[_s(e.name)] = EndpointState(
                    ENDPOINT_STATES[int(e.state)], int(e.last_change_age), int(e.rtt_us), int(e.failures),  # type: ignore[arg-type]
                    int(e.consecutive_failures), int(e.connections))
            for i in dumped_interfaces:
                name = self._if_name.get(int(i.sw_if_index))
                if name is not None:
                    state.interfaces[name] = InterfaceState(
                        True, _s(i.active_endpoint_name), int(i.packets_redirected), int(i.bytes_redirected),
                        int(i.active_connections), int(i.total_connections), int(i.connection_failures),
                        udp.get(int(i.sw_if_index)))
            if "interfaces" in parts:
                for name in self._absent:
                    state.interfaces[name] = InterfaceState(present=False)
            if "server" in parts:
                state.server = self._server_state(got["server"][0])
            for li in listeners:
                state.listeners[_s(li.name)] = bool(li.is_listening)
            for u in users:
                state.users[_s(u.username)] = UserState(int(u.auth_failures), 0)
            for g in got.get("groups", []):
                state.groups[_s(g.name)] = {
                    _s(m.endpoint_name): MemberState(int(m.connections), int(m.active_connections), int(m.failures),
                                                     bool(m.eligible))
                    for m in g.members[: int(g.n_members)]}
            return state

    def _server_state(self, srv: Any) -> ServerState:
        with self._lock:
            counters = self._server_counters()
            if counters is None:
                st = self._call("singbox_server_get_stats")
                counters = {"accepted": st.accepted, "rejected": st.rejected, "auth-failures": st.auth_failures,
                            "connect-failures": st.connect_failures, "bytes-to-client": st.bytes_to_client,
                            "bytes-from-client": st.bytes_from_client}
            # the gauge comes from the reply: the stats segment refreshes gauges only every update-interval
            return ServerState(bool(srv.is_running), int(counters["accepted"]), int(counters["rejected"]),
                               int(counters["auth-failures"]), int(counters["connect-failures"]),
                               int(counters["bytes-to-client"]) + int(counters["bytes-from-client"]),
                               int(srv.active_sessions))

    def read_load(self, interfaces: bool) -> Load:
        with self._lock:
            running = bool(self._call("singbox_server_dump")[0].is_running)
            sessions = int(self._call("singbox_server_get_stats").active_sessions)
            active: dict[str, int] = {}
            if interfaces:
                for i in self._call("singbox_interface_dump", sw_if_index=ALL):
                    name = self._if_name.get(int(i.sw_if_index))
                    if name is not None and int(i.active_connections):
                        active[name] = int(i.active_connections)
            return Load(running, sessions, active)

    def read_sessions(self) -> list[Session]:
        with self._lock:
            udp_dump: list[tuple[str, dict[str, Any]]] = \
                [("singbox_udp_flow_dump", {"sw_if_index": ALL})] if self._has_udp else []
            endpoint_details, details, *flows = self._dump_many(
                ("singbox_endpoint_dump", {}), ("singbox_session_dump", {"mode": 0, "sw_if_index": ALL}), *udp_dump)
            endpoints = {int(e.endpoint_index): _s(e.name) for e in endpoint_details}
            out: list[Session] = []
            for d in details:
                client = int(d.mode) == 2
                name = _s(d.dst_name)
                out.append(Session(
                    id=int(d.session_id), mode="client" if client else "server",
                    state=SESSION_STATES[min(int(d.state), len(SESSION_STATES) - 1)],
                    client_address=str(d.client_addr), client_port=int(d.client_port),
                    destination_domain=name or None,
                    destination_address=None if name else _unspecified_none(d.dst_addr),
                    destination_port=int(d.dst_port),
                    interface=self._if_name.get(int(d.sw_if_index)) if client else None,
                    # a server session in the proxy chain has one too
                    endpoint=endpoints.get(int(d.endpoint_index)),
                    username=None if client else (_s(d.username) or None),
                    bytes_from_client=int(d.bytes_from_client), bytes_to_client=int(d.bytes_to_client),
                    age=int(d.age)))
            for f in flows[0] if flows else ():
                out.append(Session(
                    id=udp_session_id(int(f.flow_id)), mode="client", protocol="udp",
                    state=UDP_FLOW_STATES[min(int(f.state), len(UDP_FLOW_STATES) - 1)],
                    client_address=str(f.client_addr), client_port=int(f.client_port),
                    destination_address=str(f.dst_addr), destination_port=int(f.dst_port),
                    interface=self._if_name.get(int(f.sw_if_index)), endpoint=_s(f.endpoint_name) or None,
                    bytes_from_client=int(f.bytes_to_proxy), bytes_to_client=int(f.bytes_from_proxy),
                    packets_from_client=int(f.packets_to_proxy), packets_to_client=int(f.packets_from_proxy),
                    age=int(f.age)))
            return out

    def clear_stats(self, scope: ClearScope) -> None:
        with self._lock:
            if scope[0] == "interface":
                index = self._if_index.get(scope[1])
                if index is None:
                    raise DataplaneError(f"no interface {scope[1]!r} in VPP", ErrorCode.NO_SUCH_ENTRY)
                self._call("singbox_clear_stats", scope=2, sw_if_index=index, endpoint_name="")
            elif scope[0] == "endpoint":
                self._call("singbox_clear_stats", scope=3, sw_if_index=ALL, endpoint_name=scope[1])
            elif scope[0] == "endpoint-group":  # SINGBOX_API_STATS_SCOPE_ENDPOINT_GROUP: the name in endpoint_name
                self._call("singbox_clear_stats", scope=4, sw_if_index=ALL, endpoint_name=scope[1])
            else:
                self._call("singbox_clear_stats", scope=1 if scope[0] == "server" else 0, sw_if_index=ALL,
                           endpoint_name="")

    def disconnect_session(self, session_id: int) -> None:
        refuse_udp_disconnect(session_id)
        self._call("singbox_session_disconnect", session_id=session_id)

    def test_endpoint(self, name: str, timeout_s: float = 305.0) -> ProbeResult:
        """On a connection of its own: the reply comes only when the probe ends, and commits must not wait."""
        from vpp_papi import VPPApiClient

        if not self._connected or self.api_socket is None:
            raise DataplaneUnavailable("VPP is not connected")
        bootstrap = not any("singbox" in Path(f).name for f in self.api_files)
        try:
            vpp = VPPApiClient(apifiles=None if bootstrap else self.api_files, bootstrapapi=bootstrap,
                               use_socket=True, server_address=self.api_socket, read_timeout=CALL_TIMEOUT_S,
                               logger=PAPI_LOGGER)
            vpp.connect(self.client_name + "-probe")
            _thread_queue(vpp)
        except Exception as exc:  # noqa: BLE001 - whatever stops the connection means VPP is not usable
            raise DataplaneUnavailable(f"cannot connect to VPP for the probe: {exc}") from None
        try:
            reply = vpp.api.singbox_endpoint_test(name=name, _timeout=timeout_s)
        except Exception as exc:  # noqa: BLE001
            raise DataplaneUnavailable(f"singbox_endpoint_test: {exc or type(exc).__name__}") from None
        finally:
            _disconnect(vpp)
        if reply.retval:
            raise _refused("singbox_endpoint_test", reply.retval)
        result = PROBE_RESULTS[min(int(reply.result), len(PROBE_RESULTS) - 1)]
        return ProbeResult(result, int(reply.rtt_us), _s(reply.message))


def _disconnect(vpp: Any) -> None:
    """Disconnect without ever blocking the process's exit: vpp-papi's transport queues replies in
    multiprocessing queues whose feeder threads are joined at exit, and replies nobody read (a dump cut short)
    would make that join wait forever."""
    try:
        vpp.disconnect()
    except Exception:  # noqa: BLE001 - the connection is already gone
        pass
    for name in ("q", "sque"):
        q = getattr(vpp.transport, name, None)
        if q is not None and hasattr(q, "cancel_join_thread"):
            q.cancel_join_thread()


def _thread_queue(vpp: Any) -> None:
    """vpp-papi's socket transport hands replies from its reader thread to the caller through a
    multiprocessing.Queue (pickling, a pipe and a feeder thread) although both are threads of this process: a
    plain queue.Queue makes a call 4-5x cheaper (1.1 -> 0.24 ms per add here). Done right after connect, before
    any request, so no reply can be in the old queue. Each connection uses a new client object.

    The reader thread also asks `has_context` of every message, which builds a new serializer type (a namedtuple
    through eval) each time: ~90 us per message, as much as everything else about a reply. The same answer from a
    precompiled header is ~1 us; with 10,000 replies in a resync that is 0.9 s."""
    vpp.transport.q = queue.Queue()
    header = struct.Struct(">HII")

    def has_context(msg: bytes) -> bool:
        if len(msg) < header.size:
            return False
        index, _client, _context = header.unpack_from(msg, 0)
        names = vpp.id_names
        if index < len(names) and names[index] == "rx_thread_exit":
            return False
        msgdefs = vpp.id_msgdef
        msgdef = msgdefs[index] if index < len(msgdefs) else None
        # unknown messages go to the reply queue, where decoding them fails the call that reads them
        return msgdef is None or "context" in msgdef.field_by_name

    vpp.has_context = has_context


def _send(vpp: Any, msg: str, args: dict[str, Any]) -> int:
    """Send one request without waiting for its reply; returns its context. TypeError/ValueError/struct.error:
    the arguments do not fit the message; _Lost: the socket failed."""
    msgdef = vpp.messages[msg]
    vpp.validate_args(msgdef, args)
    # what vpp-papi's _call_vpp_async does, with packing errors told apart from a dead socket
    context = int(vpp.get_context())
    data = msgdef.pack({**args, "_vl_msg_id": vpp.transport.get_msg_index(f"{msg}_{msgdef.crc[2:]}"),
                        "context": context, "client_index": vpp.transport.socket_index})
    try:
        vpp.transport.write(data)
    except Exception as exc:  # noqa: BLE001 - vpp-papi raises assorted types on a dead socket
        raise _Lost(f"{msg}: {exc or type(exc).__name__}") from None
    return context


def _receive(vpp: Any) -> Any:
    """The next reply (any context), or _Lost when none comes within the read timeout or it cannot be decoded."""
    try:
        reply = vpp.read_blocking()
    except UnicodeDecodeError as exc:
        # The rest of a multi-part reply is still in the socket: this connection is unusable now.
        raise _Lost(f"VPP sent a reply that does not decode ({exc}); a string field of the plugin's reply is not "
                    "NUL-terminated?") from None
    except Exception as exc:  # noqa: BLE001
        raise _Lost(f"reading a reply: {exc or type(exc).__name__}") from None
    if reply is None:
        raise _Lost(f"no reply from VPP within {CALL_TIMEOUT_S:.0f} s")
    return reply


class _Batch:
    """One VppDataplane.apply_batch: requests go out while fewer than WINDOW are unanswered; each reply settles
    the op its context belongs to."""

    def __init__(self, dp: VppDataplane, vpp: Any, ops: Sequence[Op], stop: StopRule | None) -> None:
        self.dp, self.vpp, self.ops, self.stop = dp, vpp, ops, stop
        self.waiting: dict[int, tuple[int, str]] = {}  # context -> op index, message
        self.results: BatchResult = [None] * len(ops)
        self.stopped = False

    def run(self) -> BatchResult:
        attempted = 0
        try:
            for i, op in enumerate(self.ops):
                new_run = self.stop is not None and i > 0 and run_of(op) != run_of(self.ops[i - 1])
                self.drain(0 if new_run else WINDOW - 1)
                if self.stopped:
                    break
                try:
                    requests = self.dp._requests(op)  # noqa: SLF001
                except DataplaneError as exc:
                    attempted = i + 1
                    self.settle(i, exc)
                    continue
                if len(requests) > 1:  # several messages: one after another, with their own undo
                    self.drain(0)
                    if self.stopped:
                        break
                    attempted = i + 1
                    self.settle(i, self.dp._call_in_turn(requests))  # noqa: SLF001
                    continue
                attempted = i + 1
                if not requests:
                    self.settle(i, None)
                    continue
                try:
                    context = _send(self.vpp, requests[0].msg, requests[0].args)
                except (TypeError, ValueError, struct.error) as exc:
                    self.settle(i, DataplaneError(f"{requests[0].msg}: bad arguments: {exc}"))
                    continue
                self.waiting[context] = (i, requests[0].msg)
            self.drain(0)
        except _Lost as exc:
            self.dp._lost = str(exc)  # noqa: SLF001 - the monitor reconnects
            raise DataplaneUnavailable(str(exc)) from None
        return self.results[:attempted]

    def drain(self, limit: int) -> None:
        """Read replies until at most `limit` requests are unanswered."""
        while len(self.waiting) > limit:
            reply = _receive(self.vpp)
            sent = self.waiting.pop(getattr(reply, "context", 0), None)
            if sent is None:
                continue  # the late reply of a call that timed out earlier
            retval = getattr(reply, "retval", 0)
            self.settle(sent[0], _refused(sent[1], retval) if retval else None)

    def settle(self, i: int, error: DataplaneError | None) -> None:
        self.results[i] = error
        if error is not None and self.stop is not None and self.stop(self.ops[i], error):
            self.stopped = True


def _unspecified_none(address: Any) -> str | None:
    text = str(address)
    try:
        return None if ipaddress.ip_address(text).packed == bytes(len(ipaddress.ip_address(text).packed)) else text
    except ValueError:
        return text or None

"""Endpoint host names: resolved outside every sysrepo callback and every lock, cached, with a configured timeout.

The plugin's API takes an endpoint's address as an IP address (`singbox_endpoint_add_del.proxy_addr` is a
`vl_api_address_t`; the plugin looks names up through VPP's dns plugin only for server mode's ATYP 3 requests and for
endpoints given by name on VPP's CLI), so an endpoint configured by name (YANG `inet:host`) is resolved by the agent,
with the host's resolver (getaddrinfo: /etc/resolv.conf, /etc/hosts), not with the dataplane's `server/resolver`.
The agent alone looks such a name up again: VPP only ever sees its address (plugin/API.md "CLI and logging" says when
the plugin re-resolves the names of its CLI). getaddrinfo can take seconds and cannot
be cancelled, so a commit never waits for it: the change callback only reads this cache (`address`). A name the cache
does not know yet is looked up in the background, and until it has an address the endpoint and what uses it are held
back (`hold_unresolved`): the commit is accepted, the objects are pending, and the agent applies them when the answer
arrives (`on_change`). A lookup without an answer after `timeout_s` counts as failed (the reason shows in
`/singbox/dataplane/last-error`) and is retried every `retry_s`; an answered name is looked up again every
`refresh_s` (records' TTLs are not seen through getaddrinfo), and a new address re-sends its endpoints: the plugin then
sends the endpoint's new flows, probes and pooled connections to the new address while flows already relayed keep
theirs (tests/vpp/test_dns.py shows the same for a CLI name). A failed refresh keeps the last address.

The objects the planner compares carry the resolved address, so a resync compares VPP's IP address with the IP
address the agent sent — like with like — and leaves an endpoint configured by name alone when it is right.
"""

from __future__ import annotations

import ipaddress
import socket
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace

import structlog

from singbox_agent.dataplane.objects import (
    BYPASS,
    DEFAULT_ENDPOINT,
    DEFAULT_GROUP,
    ENDPOINT,
    GROUP,
    INTERFACE,
    EndpointSpec,
    GroupSpec,
    InterfaceSpec,
    Key,
    Value,
)

log = structlog.get_logger("agent.resolve")

TIMEOUT_S = 2.0
RETRY_S = 10.0
REFRESH_S = 300.0

Lookup = Callable[[str], str]  # host name -> IP address text; raises OSError when there is none


def getaddrinfo_lookup(host: str) -> str:
    infos = socket.getaddrinfo(host, None, 0, socket.SOCK_STREAM)
    return str(infos[0][4][0])


def literal(host: str) -> str | None:
    """The address `host` is written as, canonical; None for a host name."""
    try:
        # the common case at C speed (a commit of 10,000 endpoints asks 10,000 times): inet_pton takes exactly
        # the dotted quads ipaddress does (four decimal parts, no leading zero), which are their canonical form
        socket.inet_pton(socket.AF_INET, host)
        return host
    except (OSError, ValueError):  # ValueError: an embedded NUL
        pass
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        return None


@dataclass
class _Entry:
    address: str | None = None  # the last answer
    error: str | None = None  # why the last lookup failed (None while the first one runs)
    answered_at: float = 0.0  # monotonic time of the last answer
    started_at: float = 0.0  # monotonic time the current or last lookup started
    future: Future[str] | None = None  # the lookup under way


class Resolver:
    def __init__(self, *, timeout_s: float = TIMEOUT_S, retry_s: float = RETRY_S, refresh_s: float = REFRESH_S,
                 lookup: Lookup = getaddrinfo_lookup, workers: int = 4) -> None:
        self.timeout_s = timeout_s
        self.retry_s = retry_s
        self.refresh_s = refresh_s
        self._lookup = lookup
        # reentrant: a lookup that ends at once runs its done-callback (`_answered`) inside `_start`
        self._lock = threading.RLock()
        self._entries: dict[str, _Entry] = {}
        # A lookup that never returns keeps its thread: a few threads, so such names cannot exhaust the process.
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="resolve")
        self._on_change: Callable[[], None] = lambda: None

    def set_listener(self, on_change: Callable[[], None]) -> None:
        """`on_change()` runs (in a resolver thread) whenever a name gets a new address."""
        self._on_change = on_change

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    def address(self, host: str) -> str | None:
        """The address to send for `host` now, without waiting: the literal itself, or the name's last answer.
        None when the name has none yet; its lookup is then under way."""
        found = literal(host)
        if found is not None:
            return found
        with self._lock:
            entry = self._entries.get(host)
            if entry is None:
                entry = self._entries[host] = _Entry()
                self._start(host, entry)
            return entry.address

    def reason(self, host: str) -> str:
        """Why `host` has no address (for last-error and logs)."""
        with self._lock:
            entry = self._entries.get(host)
            if entry is not None and entry.error is not None:
                return f"cannot resolve {host!r}: {entry.error}"
        return f"resolving {host!r}"

    def tick(self) -> None:
        """Worker thread, every second: time out lookups, retry failed names, refresh answered ones."""
        now = time.monotonic()
        with self._lock:
            for host, entry in self._entries.items():
                if entry.future is not None:
                    if entry.error is None and now - entry.started_at > self.timeout_s:
                        entry.error = f"no answer within {self.timeout_s:g} s"
                        log.warning("endpoint name unresolved", host=host, error=entry.error)
                    continue
                due = entry.answered_at + self.refresh_s if entry.error is None else entry.started_at + self.retry_s
                if now >= due:
                    self._start(host, entry)

    def wait(self, timeout: float = 5.0) -> bool:
        """Until no lookup is under way (tests)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if all(e.future is None for e in self._entries.values()):
                    return True
            time.sleep(0.005)
        return False

    def _start(self, host: str, entry: _Entry) -> None:
        entry.started_at = time.monotonic()
        entry.future = future = self._pool.submit(self._lookup, host)
        future.add_done_callback(lambda f: self._answered(host, f))

    def _answered(self, host: str, future: Future[str]) -> None:
        changed = False
        with self._lock:
            entry = self._entries.get(host)
            if entry is None or entry.future is not future:
                return
            entry.future = None
            try:
                address = literal(future.result())
                if address is None:
                    raise OSError("the lookup returned no IP address")
            except Exception as exc:  # noqa: BLE001 - OSError from getaddrinfo, or anything a lookup raised
                entry.error = str(exc) or type(exc).__name__
                log.warning("endpoint name unresolved", host=host, error=entry.error,
                            kept=entry.address)  # a failed refresh keeps the last address
                return
            changed = address != entry.address
            entry.address, entry.error, entry.answered_at = address, None, time.monotonic()
        if changed:
            log.info("endpoint name resolved", host=host, address=address)
            self._on_change()


def hold_unresolved(objs: Mapping[Key, Value], address: Callable[[str], str | None],
                    endpoint_host: Callable[[str], str | None], default_endpoint: Callable[[], str],
                    reason: Callable[[str], str], group_members: Callable[[str], list[str]] | None = None,
                    ) -> tuple[dict[Key, Value], dict[Key, str]]:
    """`objs` as the dataplane can take them now: each endpoint with its address resolved (`address`), and, held
    back with the reason, every object that cannot go yet — an endpoint whose name has no address, the default
    endpoint naming one, an interface using one (its own, or the default when it names none) and its bypass
    prefixes. `endpoint_host(name)` is the configured address of an endpoint outside `objs` (None: no such
    endpoint, which the dataplane will refuse itself); `default_endpoint()` the default endpoint's name (asked
    only when an interface uses it). An endpoint group is held while one of its members is, and so is an interface
    using it; `group_members(name)` names the members of a group outside `objs`."""
    out: dict[Key, Value] = {}
    held: dict[Key, str] = {}

    def missing(name: str) -> str | None:
        spec = objs.get((ENDPOINT, name))
        host = spec.address if isinstance(spec, EndpointSpec) else endpoint_host(name)
        if host is None or address(host) is not None:
            return None
        return f"endpoint {name!r}: {reason(host)}"

    def group_missing(name: str) -> str | None:
        spec = objs.get((GROUP, name))
        members = [m.endpoint for m in spec.members] if isinstance(spec, GroupSpec) else \
            group_members(name) if group_members is not None else []
        for member in members:
            why = missing(member)
            if why is not None:
                return f"endpoint group {name!r}: {why}"
        return None

    for key, value in objs.items():
        kind = key[0]
        why: str | None = None
        if kind == ENDPOINT:
            assert isinstance(value, EndpointSpec)
            found = address(value.address)
            if found is None:
                why = f"endpoint {key[1]!r}: {reason(value.address)}"
            elif found != value.address:
                value = replace(value, address=found)
        elif kind == DEFAULT_ENDPOINT and value:
            why = missing(str(value))
        elif kind == GROUP:
            why = group_missing(key[1])
        elif kind == DEFAULT_GROUP and value:
            why = group_missing(str(value))
        elif kind in (INTERFACE, BYPASS):
            spec = objs.get((INTERFACE, key[1]))
            if isinstance(spec, InterfaceSpec):
                why = group_missing(spec.group) if spec.group else missing(spec.endpoint or default_endpoint())
        if why is None:
            out[key] = value
        else:
            held[key] = why
    return out, held

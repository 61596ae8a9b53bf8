# SPDX-License-Identifier: Apache-2.0
# Copyright (c) 2026 vpp-singbox authors
"""Fixtures for tests against a real VPP running the singbox plugin.

Skipped, with the reason, when VPP (VPP_PREFIX or `vpp` on PATH) or the
built plugin (SINGBOX_PLUGIN_DIR) is missing, or when not root (network
namespaces need it).
"""

from __future__ import annotations

import json
import os
import secrets
import sys
import time
from pathlib import Path
from typing import Any, Iterator

import pytest

sys.path.insert(0, str(Path(__file__).parent))
import vpptopo  # noqa: E402
from vppfixtures import (  # noqa: E402 - shared with tests/e2e; the test modules import them from here
    CLOSED_PORT,
    ECHO_PORT,
    HERE,
    HTTP_PORT,
    UDP_PORT,
    mark_vpp_tests,
    skip_reason,
    start_origin,
    vpp_output,
)
_skip_reason = skip_reason  # the name test_dual_mode imports


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    mark_vpp_tests(items, HERE, skip_reason())


class Env:
    """A running VPP, its namespaces, origin servers and an API client."""

    def __init__(self, workers: int) -> None:
        self.vpp = vpptopo.Vpp(workers=workers,
                               extra_conf="")
        self.topo: vpptopo.Topology | None = None
        self.api: Any = None
        self.papi: Any = None
        self.client_defaults: Any = None
        # records a test was already failed for (check_no_records): not blamed on later tests
        self.reported: set[str] = set()
        try:
            # not the pid: every scripts/in-env run has its own pid namespace,
            # so concurrent runs would share veth names in the host's netns
            self.topo = vpptopo.Topology(self.vpp,
                                         tag=f"s{secrets.token_hex(2)}w{workers}")
            start_origin(self.topo, "53")
            from vpp_papi import VPPApiClient  # type: ignore[import-untyped]

            self.papi = VPPApiClient(server_address=str(self.vpp.api_sock),
                                     bootstrapapi=True, read_timeout=10)
            self.papi.connect("sbx-pytest")
            self.api = self.papi.api
            # client-mode globals as VPP starts, restored between tests
            self.client_defaults = self.api.singbox_client_dump()[0]
        except Exception:
            self.close()
            raise

    @property
    def t(self) -> vpptopo.Topology:
        assert self.topo is not None
        return self.topo

    def cli(self, cmd: str, check: bool = True) -> str:
        return self.vpp.cli(cmd, check=check)

    def probe(self, *args: str, timeout: float = 40) -> dict[str, Any]:
        r = self.t.run_in(self.t.ns_client, sys.executable, str(HERE / "socks_probe.py"),
                          *args, timeout=timeout)
        assert r.returncode == 0, r.stderr.decode()
        return json.loads(r.stdout)

    def client(self, *cmd: str, timeout: float = 30) -> Any:
        return self.t.run_in(self.t.ns_client, *cmd, timeout=timeout)

    def stats(self) -> dict[str, Any]:
        r = self.api.singbox_server_get_stats()
        assert r.retval == 0
        return {k: getattr(r, k) for k in r._fields if k not in ("_0", "context", "retval")}

    def sessions(self) -> list[Any]:
        return list(self.api.singbox_session_dump(mode=1, sw_if_index=0xFFFFFFFF))

    def wait_no_sessions(self, timeout: float = 20) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.sessions():
                return
            time.sleep(0.2)
        raise AssertionError("sessions left: " + self.cli("show singbox sessions"))

    # Each source below is one or two binary API calls or one CLI command, and every one of them
    # stops VPP's workers at the barrier (none is mp-safe): polls ask for one source at a time
    # and stop at the first that is not empty (quick), so that waiting for a slow record does
    # not keep a loaded machine's workers at the barrier ("worker thread deadlock", vppfixtures).

    def _dumped_sessions(self) -> list[str]:
        return [f"{_MODES.get(int(s.mode), s.mode)} session {s.session_id:#x} "
                f"state={_STATES.get(int(s.state), s.state)} client={s.client_addr}:{s.client_port} "
                f"dst={s.dst_name or s.dst_addr}:{s.dst_port} age={s.age}s idle={s.idle}s"
                for s in self.api.singbox_session_dump(mode=0, sw_if_index=0xFFFFFFFF)]

    def _server_active(self) -> list[str]:
        n = self.api.singbox_server_dump()[0].active_sessions
        return [f"server active_sessions {n}"] if n else []

    def _interfaces_active(self) -> list[str]:
        # singbox_get_stats sums the enabled interfaces' counts (~0)
        n = self.api.singbox_get_stats(sw_if_index=0xFFFFFFFF).active_connections
        return [f"client-mode interfaces active_connections {n}"] if n else []

    def _session_records(self) -> list[str]:
        out = []
        lines = self.cli("show singbox sessions verbose").splitlines()
        for i, line in enumerate(lines):
            if line.startswith("["):  # "[id] dst=... state=..."; its legs on the next line
                nxt = lines[i + 1] if i + 1 < len(lines) else ""
                out.append(f"session record {line.strip()} ({nxt.strip() if nxt.startswith(' ') else ''})")
        return out

    def _udp_flows(self) -> list[str]:
        return [f"udp flow {f.flow_id:#x} on {f.sw_if_index} {f.client_addr}:{f.client_port} -> "
                f"{f.dst_addr}:{f.dst_port} state={f.state} age={f.age}s idle={f.idle}s"
                for f in self.api.singbox_udp_flow_dump(sw_if_index=0xFFFFFFFF)]

    def _udp_active(self) -> list[str]:
        return [f"interface {i.sw_if_index} udp active_flows {i.active_flows}"
                for i in self.api.singbox_interface_udp_dump(sw_if_index=0xFFFFFFFF)
                if i.active_flows]

    def _collect(self, sources: list[Any], quick: bool, skip: set[str] = set()) -> list[str]:
        out: list[str] = []
        for source in sources:
            out += [r for r in source() if _record_key(r) not in skip]
            if quick and out:
                break
        return out

    def open_sessions(self, quick: bool = False) -> list[str]:
        """What still holds a client's connection, either mode, each named: the sessions of the
        binary API's dump (every record with a client leg: server, client, chained, a client
        session on a pooled upstream), and the active counts the limits use (the server's
        active_sessions, the client-mode interfaces' active_connections), which must come back
        to zero with them."""
        return self._collect([self._dumped_sessions, self._server_active,
                              self._interfaces_active], quick)

    def records(self, quick: bool = False) -> list[str]:
        """Every record the plugin keeps, each named, whatever holds it: the session records of
        every thread's pool as `show singbox sessions verbose` lists them (a record whose client
        leg is gone, or a pooled upstream connection, has no place in the API's dump), the
        client-mode UDP flows and their interfaces' counts, and the active counts of
        open_sessions."""
        return self._collect(self._record_sources(), quick)

    def new_records(self, quick: bool = False) -> list[str]:
        """records() but those a test was already failed for."""
        return self._collect(self._record_sources(), quick, self.reported)

    def _record_sources(self) -> list[Any]:
        return [self._server_active, self._interfaces_active, self._session_records,
                self._udp_flows, self._udp_active]

    def _wait_empty(self, what: Any, timeout: float) -> list[str]:
        """Poll what(quick=True) until it is empty or timeout passes; all that is left."""
        deadline = time.monotonic() + timeout
        pause = 0.05
        while what(quick=True):
            if time.monotonic() >= deadline:
                return list(what())
            time.sleep(pause)
            pause = min(0.5, pause * 2)
        return []

    def check_sessions_end(self, timeout: float = 20) -> None:
        """After a test, with its configuration still in place: every connection it opened has
        ended, so every session holding one must end too. A session the plugin keeps for a
        connection that ended is a leak (it counts against max-sessions / max-connections for
        good); disabling client mode on the interface would reset it and hide it, which is why
        this runs before the test's fixtures undo their configuration."""
        left = self._wait_empty(self.open_sessions, timeout)
        assert not left, ("sessions left open after the test:\n  " + "\n  ".join(left) + "\n"
                          + self.cli("show singbox sessions verbose"))

    def unconfigure(self) -> None:
        """Everything the tests configure goes, client mode included (what a test's fixture
        left behind too): server off, listeners, users and prefixes removed, client mode and UDP
        off on every interface, groups and endpoints removed, pooling off."""
        api = self.api
        assert api.singbox_server_enable_disable(enable=False).retval == 0
        for l in api.singbox_server_listener_dump():
            assert api.singbox_server_listener_add_del(is_add=False, name=l.name).retval == 0
        for u in api.singbox_server_user_dump():
            assert api.singbox_server_user_add_del(is_add=False, username=u.username).retval == 0
        for p in api.singbox_server_allowed_prefix_dump():
            assert api.singbox_server_allowed_prefix_add_del(is_add=False,
                                                             prefix=p.prefix).retval == 0
        api.singbox_server_set_upstream(sw_if_index=0xFFFFFFFF)
        for itf in api.singbox_interface_udp_dump(sw_if_index=0xFFFFFFFF):
            api.singbox_interface_udp_enable_disable(sw_if_index=itf.sw_if_index, enable=False)
        for itf in api.singbox_interface_dump(sw_if_index=0xFFFFFFFF):
            api.singbox_enable_disable(sw_if_index=itf.sw_if_index, enable_disable=False)
        api.singbox_set_default_endpoint_group(name="")
        for g in api.singbox_endpoint_group_dump():
            api.singbox_endpoint_group_add_del(is_add=False, name=g.name, n_members=0, members=[])
        for ep in api.singbox_endpoint_dump():
            api.singbox_endpoint_add_del(is_add=False, name=ep.name)
        c = self.client_defaults
        assert api.singbox_set_pooling(enable=False, max_pool_size=c.max_pool_size).retval == 0
        assert api.singbox_set_timeout(timeout=c.timeout).retval == 0

    def check_no_records(self, timeout: float = 40) -> None:
        """After a test and its fixtures: with everything unconfigured, every record the plugin
        keeps must go (a pooled connection, a record whose legs did not both end, a UDP flow).
        Up to 40 s: a leg VPP closes on its own can take tcp's closewait-time, 30 s here
        (vpptopo.Vpp). A record left is named, and only once: a later test does not fail for it
        again (reset)."""
        self.unconfigure()
        left = [r for r in self._wait_empty(self.new_records, timeout)]
        self.reported |= {_record_key(r) for r in left}
        assert not left, ("records left after the test and its fixtures (all unconfigured):\n  "
                          + "\n  ".join(left) + "\n" + self.cli("show session verbose 2"))

    def reset(self) -> None:
        """Back to a stopped server with the default settings, and nothing left of an earlier
        test but what that test was already failed for (check_no_records)."""
        self.unconfigure()
        self.configure()
        left = self._wait_empty(self.new_records, 40)
        self.reported |= {_record_key(r) for r in left}
        assert not left, "records left from before this test:\n  " + "\n  ".join(left)
        assert self.api.singbox_clear_stats(scope=0).retval == 0

    def configure(self, **kw: Any) -> None:
        args: dict[str, Any] = dict(
            auth_required=False, allow_connect=True, allow_udp_associate=False,
            max_sessions=1024, handshake_timeout=10, idle_timeout=300,
            connect_timeout=10, udp_idle_timeout=60, udp_public_address="0.0.0.0",
            dns_enabled=False, dns_server="0.0.0.0", dns_server_port=0)
        args.update(kw)
        assert self.api.singbox_server_config(**args).retval == 0

    def start(self, addr: str = vpptopo.VPP_CLIENT_IP4, port: int = 1080,
              name: str = "main") -> None:
        r = self.api.singbox_server_listener_add_del(is_add=True, name=name, addr=addr,
                                                     port=port, table_id=0)
        assert r.retval == 0
        assert self.api.singbox_server_enable_disable(enable=True).retval == 0

    def close(self) -> None:
        if self.papi is not None:
            try:
                self.papi.disconnect()
            except Exception:
                pass
        if self.topo is not None:
            self.topo.close()
        self.vpp.close()


_MODES = {1: "server", 2: "client"}
_STATES = {0: "greeting", 1: "auth", 2: "request", 3: "resolving", 4: "connecting",
           5: "established", 6: "udp-associated", 7: "closing", 8: "socks5-request",
           9: "socks5-reply"}


def _record_key(record: str) -> str:
    """What names a record across polls: its id, without the counters that change."""
    return record.split(" dst=")[0].split(" state=")[0]


# VPP pins each worker to its own core besides the main core: on a 2-core
# machine the multi-worker run gets 1 worker, not 2 (the id says which).
MULTI_WORKERS = max(1, min(2, (os.cpu_count() or 1) - 1))
# SINGBOX_VPP_WORKERS="0,2": the worker counts to run each module with
# (more workers than spare cores: see vpptopo.Vpp._more_cpus)
WORKER_COUNTS = [int(w) for w in
                 os.environ.get("SINGBOX_VPP_WORKERS", f"0,{MULTI_WORKERS}").split(",")]


def worker_counts(*default: int) -> pytest.MarkDecorator:
    """Module mark: run the module's VPP with these worker counts instead
    (SINGBOX_VPP_WORKERS still wins when set)."""
    counts = WORKER_COUNTS if "SINGBOX_VPP_WORKERS" in os.environ else list(default)
    return pytest.mark.parametrize("vpp_env", counts, indirect=True, scope="module",
                                   ids=[f"workers{w}" for w in counts])


@pytest.fixture(scope="module", params=WORKER_COUNTS,
                ids=[f"workers{w}" for w in WORKER_COUNTS])
def vpp_env(request: pytest.FixtureRequest) -> Iterator[Env]:
    yield from running_env(request.param)


def running_env(workers: int, vpp_environ: dict[str, str] | None = None) -> Iterator[Env]:
    """A module's VPP with `workers` workers (started with `vpp_environ` added to the environment), closed after
    its tests, which fail if it died meanwhile."""
    reason = skip_reason()
    if reason:
        pytest.skip(reason)
    saved = {name: os.environ.get(name) for name in vpp_environ or {}}
    os.environ.update(vpp_environ or {})
    try:
        env = Env(workers=workers)
    finally:
        for name, value in saved.items():
            if value is None:
                del os.environ[name]
            else:
                os.environ[name] = value
    try:
        yield env
    finally:
        log = vpp_output(env.vpp)
        alive = env.vpp.alive()
        env.close()
        assert alive, "VPP died during the tests:\n" + log


@pytest.fixture
def env(vpp_env: Env) -> Iterator[Env]:
    """The module's VPP, reset; after the test (pytest_runtest_call: its sessions end) and
    after the fixtures built on this one (they tear down first): every record gone."""
    assert vpp_env.vpp.alive(), "VPP is not running"
    vpp_env.reset()
    yield vpp_env
    if vpp_env.vpp.alive():  # a dead VPP is vpp_env's to report
        vpp_env.check_no_records()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    """A test that passed fails if a session of its own is still open when it ends: its
    connections have all ended by then (Env.check_sessions_end). Here, after the test's body and
    before any fixture's teardown, because those undo the configuration that would hide it."""
    result = yield
    env = getattr(item, "funcargs", {}).get("vpp_env")
    if isinstance(env, Env) and "env" in getattr(item, "fixturenames", ()) and env.vpp.alive():
        env.check_sessions_end()
    return result


def sw_if_index(env: Env, name: str) -> int:
    """The index of the VPP interface `name` (as `show interface` lists it)."""
    for line in env.cli("show interface").splitlines():
        parts = line.split()
        if parts and parts[0] == name:
            return int(parts[1])
    raise AssertionError(name)

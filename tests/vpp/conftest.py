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

    def reset(self) -> None:
        """Back to a stopped server with the default settings."""
        api = self.api
        assert api.singbox_server_enable_disable(enable=False).retval == 0
        for l in api.singbox_server_listener_dump():
            assert api.singbox_server_listener_add_del(is_add=False, name=l.name).retval == 0
        for u in api.singbox_server_user_dump():
            assert api.singbox_server_user_add_del(is_add=False, username=u.username).retval == 0
        for p in api.singbox_server_allowed_prefix_dump():
            assert api.singbox_server_allowed_prefix_add_del(is_add=False,
                                                             prefix=p.prefix).retval == 0
        self.configure()
        # every session of the previous test must end: a leak fails here
        deadline = time.monotonic() + 30
        while api.singbox_server_dump()[0].active_sessions or self.sessions():
            assert time.monotonic() < deadline, (
                "sessions did not end: " + self.cli("show singbox sessions"))
            time.sleep(0.1)
        assert api.singbox_clear_stats(scope=0).retval == 0

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
    reason = skip_reason()
    if reason:
        pytest.skip(reason)
    env = Env(workers=request.param)
    try:
        yield env
    finally:
        log = vpp_output(env.vpp)
        alive = env.vpp.alive()
        env.close()
        assert alive, "VPP died during the tests:\n" + log


@pytest.fixture
def env(vpp_env: Env) -> Iterator[Env]:
    assert vpp_env.vpp.alive(), "VPP is not running"
    vpp_env.reset()
    yield vpp_env


def sw_if_index(env: Env, name: str) -> int:
    """The index of the VPP interface `name` (as `show interface` lists it)."""
    for line in env.cli("show interface").splitlines():
        parts = line.split()
        if parts and parts[0] == name:
            return int(parts[1])
    raise AssertionError(name)

# SPDX-License-Identifier: Apache-2.0
# Copyright (c) 2026 vpp-singbox authors
"""The suite's leak check (conftest: Env.check_sessions_end after every test's body,
Env.check_no_records after its fixtures) sees every kind of record the plugin keeps, and fails
the test that left one, naming it. Before it, the check between tests listed server-mode
sessions with a client leg only (singbox_session_dump mode=1): a client-mode session, a pooled
upstream connection or a client-mode UDP flow left behind failed nothing."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

from .conftest import ECHO_PORT, HERE, Env, worker_counts
from .test_client_udp import flow, udp_upstream  # noqa: F401 - udp_upstream: a fixture
from .test_client_udp import enable as enable_udp
from .test_vpp_client import _fill_pool, enable, upstream  # noqa: F401 - upstream: a fixture
from vpptopo import ORIGIN_IP4

# what the check sees does not depend on the worker count
ONE_VPP = worker_counts(0)

# holds one connection open (a byte each way first, so that it is relayed) until killed
HOLD = textwrap.dedent("""
    import socket, sys, time
    s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=10)
    s.sendall(b"x")
    assert s.recv(1) == b"x"
    print("open", flush=True)
    time.sleep(120)
""")


def _hold(env: Env, host: str, port: int) -> subprocess.Popen[bytes]:
    p = subprocess.Popen(["ip", "netns", "exec", env.t.ns_client, sys.executable, "-c", HOLD,
                          host, str(port)], stdout=subprocess.PIPE, start_new_session=True)
    assert p.stdout is not None and p.stdout.readline() == b"open\n"
    return p


def _wait(cond: Any, what: str, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, what
        time.sleep(0.1)


@ONE_VPP
def test_client_session_left_open_is_named(upstream: Env) -> None:
    """A client-mode session still open fails check_sessions_end, named; the server-only dump the
    old check read does not list it."""
    env = upstream
    enable(env)
    holder = _hold(env, ORIGIN_IP4, ECHO_PORT)
    try:
        _wait(lambda: any(r.startswith("client session") for r in env.open_sessions()),
              env.cli("show singbox sessions verbose"))
        assert env.sessions() == []  # what the check before this one looked at
        with pytest.raises(AssertionError) as e:
            env.check_sessions_end(timeout=1)
        assert "client session 0x" in str(e.value) and f"dst={ORIGIN_IP4}:{ECHO_PORT}" in str(e.value)
        assert "active_connections 1" in str(e.value)
    finally:
        holder.kill()
        holder.wait()
    env.check_sessions_end()  # the holder's end ended it


@ONE_VPP
def test_pooled_connections_are_records(upstream: Env) -> None:
    """Pooled upstream connections have no client leg (not in the API's dump) but are records:
    check_no_records waits for them, and they go when pooling is turned off."""
    env = upstream
    enable(env)
    _fill_pool(env, 2)
    assert env.open_sessions() == []
    pooled = [r for r in env.records() if r.startswith("session record") and "pooled" in r]
    assert len(pooled) == 2, env.records()
    assert env.api.singbox_set_pooling(enable=False, max_pool_size=2).retval == 0
    _wait(lambda: not env.records(), "\n".join(env.records()), timeout=30)


@ONE_VPP
def test_udp_flow_is_a_record(udp_upstream: tuple[Env, int, Path]) -> None:
    """A client-mode UDP flow is a record until its interface's UDP relaying stops (or it idles
    out)."""
    env, echo_port, _ = udp_upstream
    idx = enable_udp(env)
    assert flow(env, ORIGIN_IP4, echo_port)["sources"] == [ORIGIN_IP4]  # relayed
    assert any(r.startswith("udp flow") for r in env.records()), env.records()
    env.api.singbox_interface_udp_enable_disable(sw_if_index=idx, enable=False)
    _wait(lambda: not env.records(), "\n".join(env.records()), timeout=30)


INNER_CONFTEST = """
import importlib.util, sys
spec = importlib.util.spec_from_file_location("vpp_conftest", {conftest!r})
m = importlib.util.module_from_spec(spec)
sys.modules["vpp_conftest"] = m
spec.loader.exec_module(m)
vpp_env, env, pytest_runtest_call = m.vpp_env, m.env, m.pytest_runtest_call
"""

INNER_TESTS = """
import sys

def test_closes(env):
    env.start()
    assert env.probe({vpp!r}, "1080", "connect", {origin!r}, "{port}")["rep"] == 0

def test_leaves_a_session_open(env):
    env.start()
    p = env.t.spawn(env.t.ns_client, sys.executable, {probe!r}, {vpp!r}, "1080", "idle",
                    {origin!r}, "{port}", "60")
    import time
    deadline = time.monotonic() + 10
    while not env.sessions():
        assert time.monotonic() < deadline
        time.sleep(0.1)
"""


def test_leaving_a_session_open_fails_that_test(tmp_path: Path) -> None:
    """End to end, in a pytest run of its own (its own VPP): of two tests, the one that leaves a
    session open fails, with the session named; the one that closes its connection passes."""
    from vpptopo import VPP_CLIENT_IP4

    (tmp_path / "conftest.py").write_text(INNER_CONFTEST.format(conftest=str(HERE / "conftest.py")))
    (tmp_path / "test_inner.py").write_text(INNER_TESTS.format(
        vpp=VPP_CLIENT_IP4, probe=str(HERE / "socks_probe.py"), origin=ORIGIN_IP4,
        port=ECHO_PORT))
    r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                        "--rootdir", str(tmp_path), str(tmp_path)],
                       capture_output=True, text=True, timeout=300,
                       env=dict(os.environ, SINGBOX_VPP_WORKERS="0"), cwd=tmp_path)
    out = r.stdout + r.stderr
    assert "1 failed, 1 passed" in out, out
    assert "FAILED test_inner.py::test_leaves_a_session_open" in out, out
    assert "sessions left open after the test" in out and "server session 0x" in out, out

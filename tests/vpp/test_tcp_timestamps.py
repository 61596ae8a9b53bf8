# SPDX-License-Identifier: Apache-2.0
# Copyright (c) 2026 vpp-singbox authors
"""The TCP timestamps of the plugin's active opens never go back.

VPP's workers keep clocks of their own, milliseconds apart: when the SYN-ACK
of a connection VPP opened lands on another worker than the one that sent the
SYN, the segments after it carried a TSval older than the SYN's, the kernel
peer's PAWS check dropped them and the flow waited ~1.5 s for a SYN-ACK
retransmission. The peer's PAWS counters (in the origin namespace, where
sing-box and the origin servers run) must stay unchanged over many connects:
client mode's upstream connects to sing-box and server mode's connects to the
destination. Only with 2 workers or more: with none there is one clock."""

from __future__ import annotations

import sys
from typing import Iterator

import pytest

from .conftest import ECHO_PORT, Env
from .test_vpp_client import enable, upstream  # noqa: F401 - the fixture
from vpptopo import ORIGIN_IP4, VPP_CLIENT_IP4

CONNECTS = 200

# Sequential connects, each echoing a line and bounded by its own timeout;
# prints how many took over a second (a SYN-ACK retransmission's wait).
CLIENT = r"""
import socket, struct, sys, time
dst, port, n, socks = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4:]
slow = 0
for i in range(n):
    t = time.monotonic()
    with socket.create_connection((socks[0], int(socks[1])) if socks else (dst, port), 10) as s:
        if socks:
            s.sendall(b"\x05\x01\x00")
            assert s.recv(2) == b"\x05\x00"
            s.sendall(b"\x05\x01\x00\x01" + socket.inet_aton(dst) + struct.pack("!H", port))
            r = b""
            while len(r) < 10:
                c = s.recv(10 - len(r))
                assert c, r
                r += c
            assert r[1] == 0, r
        s.sendall(b"x%d\n" % i)
        got = b""
        while not got.endswith(b"\n"):
            c = s.recv(64)
            assert c, got
            got += c
        assert got == b"x%d\n" % i, got
    slow += time.monotonic() - t > 1
print(slow)
"""


def paws(env: Env) -> dict[str, int]:
    """The origin namespace's kernel counters of segments PAWS dropped."""
    r = env.t.run_in(env.t.ns_origin, "nstat", "-asz")
    assert r.returncode == 0, r.stderr
    out = {}
    for line in r.stdout.decode().splitlines():
        parts = line.split()
        if len(parts) >= 2 and "PAWS" in parts[0]:
            out[parts[0]] = int(parts[1])
    assert out, r.stdout
    return out


@pytest.fixture
def workers(env: Env) -> Iterator[Env]:
    if env.vpp.workers < 2:
        pytest.skip(f"{env.vpp.workers} VPP worker(s): the clocks differ only between workers")
    yield env


def connects(env: Env, *socks: str) -> str:
    r = env.client(sys.executable, "-c", CLIENT, ORIGIN_IP4, str(ECHO_PORT), str(CONNECTS),
                   *socks, timeout=CONNECTS * 12)
    assert r.returncode == 0, r.stderr.decode()
    return r.stdout.decode().strip()


def test_client_mode_upstream_connects(workers: Env, upstream: Env) -> None:
    env = upstream
    idx = enable(env)
    before = paws(env)
    slow = connects(env)
    assert paws(env) == before, f"{slow} of {CONNECTS} connects over 1 s"
    assert env.api.singbox_get_stats(sw_if_index=idx).total_connections == CONNECTS


def test_server_mode_destination_connects(workers: Env) -> None:
    env = workers
    env.start()
    before = paws(env)
    slow = connects(env, VPP_CLIENT_IP4, "1080")
    assert paws(env) == before, f"{slow} of {CONNECTS} connects over 1 s"
    assert env.stats()["accepted"] == CONNECTS

# SPDX-License-Identifier: Apache-2.0
# Copyright (c) 2026 vpp-singbox authors
"""Client mode over an endpoint group (issue 19) with three real sing-box upstreams in the
origin namespace: the split of 3,000 connections follows the weights, a killed member stops
taking new flows within its health-check interval plus one probe while the flows on the other
members carry on, and a member that comes back takes flows again. Each sing-box logs every
connection it relays, so the split is checked from the upstreams' side too, not only from the
plugin's counters."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import pytest

from .conftest import ECHO_PORT, Env, sw_if_index
from vpptopo import ORIGIN_IP4, free_port, ns_cmd, sing_box_binary, wait_port

GROUP = "sb-pool"
HC_INTERVAL = 5  # seconds: the YANG minimum
# long enough that a probe of a live sing-box does not time out on a loaded 2-core box with 2 workers
HC_TIMEOUT = 2


@dataclass
class Upstream:
    name: str
    port: int
    log: Path
    proc: "subprocess.Popen[bytes]"

    def relayed(self) -> int:
        """Connections this sing-box relayed to the echo server, as its own log says."""
        if not self.log.exists():
            return 0
        return self.log.read_text().count(f"inbound connection to {ORIGIN_IP4}:{ECHO_PORT}")


def start_sing_box(env: Env, name: str) -> Upstream:
    port = free_port()
    d = Path(tempfile.mkdtemp(prefix=f"sbx-{name}-"))
    log = d / "sing-box.log"
    cfg = {
        "log": {"level": "info", "output": str(log), "timestamp": False},
        "inbounds": [{"type": "socks", "tag": "in", "listen": ORIGIN_IP4, "listen_port": port,
                      "users": [{"username": "vpp", "password": "s3cret"}]}],
        "outbounds": [{"type": "direct", "tag": "direct"}],
        "route": {"final": "direct"},
    }
    (d / "config.json").write_text(json.dumps(cfg))
    p = env.t.spawn(env.t.ns_origin, str(sing_box_binary()), "run", "-c", str(d / "config.json"))
    wait_port(env.t.ns_origin, ORIGIN_IP4, port)
    return Upstream(name, port, log, p)


def add_endpoint(env: Env, up: Upstream, health_check: bool) -> None:
    r = env.api.singbox_endpoint_add_del(
        is_add=True, name=up.name, proxy_addr=ORIGIN_IP4, proxy_port=up.port, protocol_type=0,
        username="vpp", password="s3cret", priority=0, connect_timeout=5,
        health_check_enabled=health_check, health_check_interval=HC_INTERVAL,
        health_check_timeout=HC_TIMEOUT, failure_threshold=1, recovery_threshold=1, table_id=0)
    assert r.retval == 0, r


def set_group(env: Env, policy: int, weights: list[int], names: list[str]) -> None:
    members = [{"endpoint_name": n, "weight": w, "priority": 0} for n, w in zip(names, weights)]
    r = env.api.singbox_endpoint_group_add_del(is_add=True, name=GROUP, policy=policy,
                                               n_members=len(members), members=members)
    assert r.retval == 0, r


def members(env: Env) -> dict[str, Any]:
    groups = [g for g in env.api.singbox_endpoint_group_dump() if g.name == GROUP]
    assert len(groups) == 1
    return {m.endpoint_name: m for m in groups[0].members[: groups[0].n_members]}


@pytest.fixture
def upstreams(env: Env, request: pytest.FixtureRequest) -> Iterator[tuple[Env, list[Upstream]]]:
    health_check = bool(getattr(request, "param", False))
    ups = [start_sing_box(env, f"sb{i}") for i in (1, 2, 3)]
    idx = sw_if_index(env, env.t.vpp_if_client)
    try:
        for up in ups:
            add_endpoint(env, up, health_check)
        yield env, ups
        deadline = time.monotonic() + 30
        while env.api.singbox_get_stats(sw_if_index=idx).active_connections:
            assert time.monotonic() < deadline, env.cli("show singbox sessions verbose")
            time.sleep(0.2)
    finally:
        env.api.singbox_enable_disable(sw_if_index=idx, enable_disable=False)
        env.api.singbox_set_default_endpoint_group(name="")
        env.api.singbox_endpoint_group_add_del(is_add=False, name=GROUP, n_members=0, members=[])
        for up in ups:
            env.api.singbox_endpoint_add_del(is_add=False, name=up.name)
            up.proc.kill()
            up.proc.wait(10)


# Opens connections to the echo server through VPP, `parallel` at a time, each sending a line and
# reading it back; prints how many were answered. Bounded: every socket has a timeout.
MANY = r"""
import socket, sys
from concurrent.futures import ThreadPoolExecutor
host, port, n, parallel = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
def one(i):
    try:
        with socket.create_connection((host, port), timeout=15) as s:
            s.sendall(b"flow %d\n" % i)
            got = b""
            while not got.endswith(b"\n"):
                b = s.recv(64)
                if not b:
                    break
                got += b
            return got == b"flow %d\n" % i
    except OSError:
        return False
with ThreadPoolExecutor(parallel) as ex:
    print(sum(ex.map(one, range(n))))
"""

# Holds `n` connections open; prints their local ports, then for every line on stdin echoes one
# line on each and prints which answered ("1") or not ("0"), in the same order.
HOLD = r"""
import socket, sys
host, port, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
socks = [socket.create_connection((host, port), timeout=10) for _ in range(n)]
print(" ".join(str(s.getsockname()[1]) for s in socks), flush=True)
for _ in sys.stdin:
    out = []
    for i, s in enumerate(socks):
        try:
            s.sendall(b"held %d\n" % i)
            got = b""
            while not got.endswith(b"\n"):
                b = s.recv(64)
                if not b:
                    break
                got += b
            out.append("1" if got == b"held %d\n" % i else "0")
        except OSError:
            out.append("0")
    print(" ".join(out), flush=True)
"""


def many(env: Env, n: int, parallel: int = 32) -> int:
    r = env.client(sys.executable, "-c", MANY, ORIGIN_IP4, str(ECHO_PORT), str(n), str(parallel),
                   timeout=600)
    assert r.returncode == 0, r.stderr.decode()
    return int(r.stdout)


def test_split_of_3000_connections_follows_the_weights(upstreams: tuple[Env, list[Upstream]]) -> None:
    """Weighted round-robin 1:2:3 over three sing-box: each member's share of 3,000 relayed
    connections is within 5 % of its weight's share, as the plugin counts it and as each
    sing-box's own log counts it."""
    env, ups = upstreams
    weights = [1, 2, 3]
    set_group(env, 2, weights, [u.name for u in ups])  # SINGBOX_API_LB_WEIGHTED_ROUND_ROBIN
    idx = sw_if_index(env, env.t.vpp_if_client)
    r = env.api.singbox_interface_endpoint_group_enable(sw_if_index=idx, group_name=GROUP,
                                                        max_connections=0)
    assert r.retval == 0, r
    assert env.api.singbox_interface_dump(sw_if_index=idx)[0].endpoint_group_name == GROUP

    n = 3000
    assert many(env, n) == n
    total = sum(weights)
    got = members(env)
    for up, w in zip(ups, weights):
        want = n * w / total
        assert abs(got[up.name].connections - want) <= 0.05 * want, (up.name, got[up.name])
        assert got[up.name].failures == 0
    deadline = time.monotonic() + 20  # sing-box writes its log asynchronously
    while sum(u.relayed() for u in ups) < n and time.monotonic() < deadline:
        time.sleep(0.2)
    for up, w in zip(ups, weights):
        want = n * w / total
        assert abs(up.relayed() - want) <= 0.05 * want, (up.name, up.relayed(), want)
    assert "policy weighted-round-robin" in env.cli("show singbox endpoint-groups")
    # the same per-member counters in the stats segment (the metrics exporter reads them there)
    from vpp_papi.vpp_stats import VPPStats  # type: ignore[import-untyped]

    st = VPPStats(str(env.vpp.stats_sock))
    st.connect()
    try:
        deadline = time.monotonic() + 10  # singbox-process refreshes the gauges every second or so
        while True:
            seg = {up.name: st.get_counter(f"/singbox/client/group/{GROUP}/{up.name}/connections")
                   for up in ups}
            if all(seg[up.name] == got[up.name].connections for up in ups) or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert seg == {up.name: got[up.name].connections for up in ups}, seg
    finally:
        st.disconnect()


@pytest.mark.parametrize("upstreams", [True], indirect=True, ids=["health-checked"])
def test_killed_member_stops_taking_flows_and_the_others_keep_theirs(
        upstreams: tuple[Env, list[Upstream]]) -> None:
    """Three equal members, health-checked every 5 s with a 2 s probe timeout and a failure
    threshold of 1. Connections held open through every member; sb2 is killed: within one
    interval plus one probe it is down and takes no new flow, the held flows of sb1 and sb3
    still carry data, and when sb2 runs again it takes flows again."""
    env, ups = upstreams
    names = [u.name for u in ups]
    set_group(env, 2, [1, 1, 1], names)
    idx = sw_if_index(env, env.t.vpp_if_client)
    # the group as the default, the interface naming nothing of its own
    assert env.api.singbox_set_default_endpoint_group(name=GROUP).retval == 0
    assert env.api.singbox_enable_disable(sw_if_index=idx, enable_disable=True, proxy_port=0,
                                          endpoint_name="", max_connections=0).retval == 0
    deadline = time.monotonic() + HC_INTERVAL + HC_TIMEOUT + 5
    while any(e.state != 1 for e in env.api.singbox_endpoint_dump()):  # every member up
        assert time.monotonic() < deadline, env.cli("show singbox endpoints")
        time.sleep(0.2)

    hold = subprocess.Popen(ns_cmd(env.t.ns_client, sys.executable, "-c", HOLD, ORIGIN_IP4, str(ECHO_PORT),
                                   "9"), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        assert hold.stdout is not None and hold.stdin is not None
        ports = [int(p) for p in hold.stdout.readline().split()]
        assert len(ports) == 9
        endpoints = {int(e.endpoint_index): e.name for e in env.api.singbox_endpoint_dump()}
        via = {int(s.client_port): endpoints[int(s.endpoint_index)]
               for s in env.api.singbox_session_dump(mode=2, sw_if_index=0xFFFFFFFF)}
        held_via = [via[p] for p in ports]
        assert sorted(held_via) == sorted(names * 3), held_via  # round-robin: 3 each

        ups[1].proc.kill()
        ups[1].proc.wait(10)
        killed = time.monotonic()
        # down within the interval plus one probe (plus the time a poll takes)
        while next(e for e in env.api.singbox_endpoint_dump() if e.name == "sb2").state != 2:
            assert time.monotonic() < killed + HC_INTERVAL + HC_TIMEOUT + 1, \
                env.cli("show singbox endpoints")
            time.sleep(0.1)

        before = members(env)["sb2"].connections
        assert many(env, 60, parallel=8) == 60  # none fails: none goes to sb2
        after = members(env)
        assert after["sb2"].connections == before
        assert after["sb1"].connections >= 3 + 30 and after["sb3"].connections >= 3 + 30

        hold.stdin.write(b"again\n")
        hold.stdin.flush()
        answered = hold.stdout.readline().split()
        for port, ep, ok in zip(ports, held_via, answered):
            if ep != "sb2":
                assert ok == b"1", (port, ep, answered)

        # sb2 runs again (same port): up at a following probe (a few intervals allowed: a probe that a
        # loaded box delays past its timeout counts as failed), and it takes flows again
        ups[1] = Upstream("sb2", ups[1].port, ups[1].log, env.t.spawn(
            env.t.ns_origin, str(sing_box_binary()), "run", "-c", str(ups[1].log.parent / "config.json")))
        wait_port(env.t.ns_origin, ORIGIN_IP4, ups[1].port)
        deadline = time.monotonic() + 4 * (HC_INTERVAL + HC_TIMEOUT)
        while any(e.state != 1 for e in env.api.singbox_endpoint_dump()):
            assert time.monotonic() < deadline, env.cli("show singbox endpoints")
            time.sleep(0.1)
        assert many(env, 30, parallel=8) == 30
        assert members(env)["sb2"].connections >= before + 10
    finally:
        hold.kill()
        hold.wait(10)


def test_source_hash_keeps_a_host_on_its_member(upstreams: tuple[Env, list[Upstream]]) -> None:
    """source-address-hash: every connection of the one client host goes through one member."""
    env, ups = upstreams
    set_group(env, 0, [1, 1, 1], [u.name for u in ups])  # SINGBOX_API_LB_SOURCE_HASH
    idx = sw_if_index(env, env.t.vpp_if_client)
    assert env.api.singbox_interface_endpoint_group_enable(sw_if_index=idx, group_name=GROUP,
                                                           max_connections=0).retval == 0
    assert many(env, 60, parallel=8) == 60
    counts = sorted(m.connections for m in members(env).values())
    assert counts == [0, 0, 60], counts


def test_group_errors(upstreams: tuple[Env, list[Upstream]]) -> None:
    """What the plugin refuses: a member that is no endpoint, an endpoint a group uses, a group an
    interface uses, an unknown group for an interface."""
    env, ups = upstreams
    r = env.api.singbox_endpoint_group_add_del(
        is_add=True, name=GROUP, policy=2, n_members=1,
        members=[{"endpoint_name": "nowhere", "weight": 1, "priority": 0}])
    assert r.retval == -6  # VNET_API_ERROR_NO_SUCH_ENTRY
    set_group(env, 2, [1], ["sb1"])
    assert env.api.singbox_endpoint_add_del(is_add=False, name="sb1").retval == -147  # in use
    idx = sw_if_index(env, env.t.vpp_if_client)
    assert env.api.singbox_interface_endpoint_group_enable(
        sw_if_index=idx, group_name="nowhere", max_connections=0).retval == -6
    assert env.api.singbox_interface_endpoint_group_enable(
        sw_if_index=idx, group_name=GROUP, max_connections=0).retval == 0
    r = env.api.singbox_endpoint_group_add_del(is_add=False, name=GROUP, n_members=0, members=[])
    assert r.retval == -147  # VNET_API_ERROR_INSTANCE_IN_USE
    # the interface moves to an endpoint: the group is free again
    assert env.api.singbox_enable_disable(sw_if_index=idx, enable_disable=True, proxy_port=0,
                                          endpoint_name="sb2", max_connections=0).retval == 0
    assert env.api.singbox_interface_dump(sw_if_index=idx)[0].endpoint_group_name == ""
    set_group(env, 2, [1, 1], ["sb1", "sb3"])


def test_cli_takes_what_its_help_names(env: Env) -> None:
    """`singbox set endpoint-group`, `singbox set default-endpoint-group`, `singbox enable <itf> endpoint-group`,
    `show singbox endpoint-groups` and `singbox delete endpoint-group`, checked through the binary API's dumps."""
    idx = sw_if_index(env, env.t.vpp_if_client)
    for name in ("c1", "c2"):
        env.cli(f"singbox set endpoint 198.18.0.20:1080 socks5 name {name}")
    try:
        env.cli("singbox set endpoint-group cli-g policy five-tuple-hash member c1 weight 3 member c2 priority 2")
        g = next(g for g in env.api.singbox_endpoint_group_dump() if g.name == "cli-g")
        assert g.policy == 1  # SINGBOX_API_LB_FIVE_TUPLE_HASH
        assert [(m.endpoint_name, m.weight, m.priority) for m in g.members[: g.n_members]] == [
            ("c1", 3, 0), ("c2", 1, 2)]
        env.cli("singbox set default-endpoint-group cli-g")
        assert next(g for g in env.api.singbox_endpoint_group_dump() if g.name == "cli-g").is_default
        env.cli(f"singbox enable {env.t.vpp_if_client} endpoint-group cli-g")
        assert env.api.singbox_interface_dump(sw_if_index=idx)[0].endpoint_group_name == "cli-g"
        assert "Proxy: endpoint group cli-g" in env.cli(f"show singbox {env.t.vpp_if_client}")
        shown = env.cli("show singbox endpoint-groups")
        assert "group cli-g policy five-tuple-hash (default)" in shown and "member c1 weight 3" in shown, shown
        # in use: refused, and said so
        assert "failed" in env.cli("singbox delete endpoint-group cli-g", check=False)
        env.cli(f"singbox disable {env.t.vpp_if_client}")
        env.cli("singbox set default-endpoint-group none")
        env.cli("singbox delete endpoint-group cli-g")
        assert not [g for g in env.api.singbox_endpoint_group_dump() if g.name == "cli-g"]
        help_text = env.cli("help singbox set endpoint-group", check=False)
        for option in ("policy", "member", "weight", "priority", "least-connections"):
            assert option in help_text, help_text
    finally:
        env.api.singbox_enable_disable(sw_if_index=idx, enable_disable=False)
        env.api.singbox_endpoint_group_add_del(is_add=False, name="cli-g", n_members=0, members=[])
        env.api.singbox_set_default_endpoint(name="")
        for name in ("c1", "c2"):
            env.api.singbox_endpoint_add_del(is_add=False, name=name)


def hold(env: Env, n: int) -> "tuple[subprocess.Popen[bytes], list[int]]":
    """`n` connections held open through VPP (the HOLD script) and their client ports."""
    p = subprocess.Popen(ns_cmd(env.t.ns_client, sys.executable, "-c", HOLD, ORIGIN_IP4, str(ECHO_PORT), str(n)),
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                         start_new_session=True)
    assert p.stdout is not None
    ports = [int(x) for x in p.stdout.readline().split()]
    assert len(ports) == n, ports
    return p, ports


def group_members(env: Env, name: str) -> dict[str, Any]:
    g = next(g for g in env.api.singbox_endpoint_group_dump() if g.name == name)
    return {m.endpoint_name: m for m in g.members[: g.n_members]}


def test_flows_of_a_deleted_group_leave_the_group_in_its_slot_alone(
        upstreams: tuple[Env, list[Upstream]]) -> None:
    """Least-connections group A holds 4 flows (2 per member); the interface moves to an endpoint,
    A is deleted and B created in A's pool slot with the same members, 2 flows through B. When A's
    flows end, B's members still count 1 active flow each (a flow knows its group by an id, not by
    the slot: on the old code A's releases took B's counts down to 0)."""
    env, ups = upstreams
    names = [ups[0].name, ups[1].name]
    other = "sb-pool-b"
    idx = sw_if_index(env, env.t.vpp_if_client)
    set_group(env, 3, [1, 1], names)  # SINGBOX_API_LB_LEAST_CONNECTIONS
    slot = next(g.group_index for g in env.api.singbox_endpoint_group_dump() if g.name == GROUP)
    assert env.api.singbox_interface_endpoint_group_enable(sw_if_index=idx, group_name=GROUP,
                                                           max_connections=0).retval == 0
    held_a, held_b = hold(env, 4), None
    try:
        assert {n: m.active_connections for n, m in members(env).items()} == {n: 2 for n in names}
        assert env.api.singbox_enable_disable(sw_if_index=idx, enable_disable=True, proxy_port=0,
                                              endpoint_name=ups[2].name, max_connections=0).retval == 0
        r = env.api.singbox_endpoint_group_add_del(is_add=False, name=GROUP, n_members=0, members=[])
        assert r.retval == 0, r
        members_b = [{"endpoint_name": n, "weight": 1, "priority": 0} for n in names]
        r = env.api.singbox_endpoint_group_add_del(is_add=True, name=other, policy=3, n_members=2,
                                                   members=members_b)
        assert r.retval == 0, r
        # the premise: B lives in A's slot
        assert next(g.group_index for g in env.api.singbox_endpoint_group_dump() if g.name == other) == slot
        assert env.api.singbox_interface_endpoint_group_enable(sw_if_index=idx, group_name=other,
                                                               max_connections=0).retval == 0
        held_b = hold(env, 2)
        assert {n: m.active_connections for n, m in group_members(env, other).items()} == {n: 1 for n in names}

        held_a[0].kill()
        held_a[0].wait(10)
        deadline = time.monotonic() + 30
        while len(env.api.singbox_session_dump(mode=2, sw_if_index=idx)) > 2:
            assert time.monotonic() < deadline, env.cli("show singbox sessions verbose")
            time.sleep(0.2)
        got = group_members(env, other)
        assert {n: m.active_connections for n, m in got.items()} == {n: 1 for n in names}, got
        assert {n: m.connections for n, m in got.items()} == {n: 1 for n in names}, got

        held_b[0].kill()
        held_b[0].wait(10)
        deadline = time.monotonic() + 30
        while any(m.active_connections for m in group_members(env, other).values()):
            assert time.monotonic() < deadline, env.cli("show singbox endpoint-groups")
            time.sleep(0.2)
    finally:
        for p in (held_a, held_b):
            if p:
                p[0].kill()
                p[0].wait(10)
        env.api.singbox_enable_disable(sw_if_index=idx, enable_disable=False)
        deadline = time.monotonic() + 30
        while env.api.singbox_get_stats(sw_if_index=idx).active_connections and time.monotonic() < deadline:
            time.sleep(0.2)
        env.api.singbox_endpoint_group_add_del(is_add=False, name=other, n_members=0, members=[])


def wait_flows(env: Env, idx: int, n: int) -> None:
    """Until the interface has at most `n` client-mode sessions."""
    deadline = time.monotonic() + 30
    while len(env.api.singbox_session_dump(mode=2, sw_if_index=idx)) > n:
        assert time.monotonic() < deadline, env.cli("show singbox sessions verbose")
        time.sleep(0.2)


def test_member_that_leaves_and_comes_back_counts_its_open_flows(
        upstreams: tuple[Env, list[Upstream]]) -> None:
    """A least-connections group's only member A holds 2 flows; the group is replaced by one of
    B alone, then by one of A again while those flows are open. A comes back counting them (2),
    a new flow makes 3, and when the 2 old flows end A counts the 1 still open. A flow knows its
    member by its endpoint: on the old code A came back at 0 and the old flows' releases took the
    new flow's count away (0 with 1 open)."""
    env, ups = upstreams
    a, b = ups[0].name, ups[1].name
    idx = sw_if_index(env, env.t.vpp_if_client)
    set_group(env, 3, [1], [a])  # SINGBOX_API_LB_LEAST_CONNECTIONS
    assert env.api.singbox_interface_endpoint_group_enable(sw_if_index=idx, group_name=GROUP,
                                                           max_connections=0).retval == 0
    held_old, held_new = hold(env, 2), None
    try:
        assert members(env)[a].active_connections == 2
        set_group(env, 3, [1], [b])
        got = members(env)
        assert set(got) == {b} and got[b].active_connections == 0, got
        set_group(env, 3, [1], [a])
        assert members(env)[a].active_connections == 2
        held_new = hold(env, 1)
        assert members(env)[a].active_connections == 3

        held_old[0].kill()
        held_old[0].wait(10)
        wait_flows(env, idx, 1)
        got = members(env)
        assert got[a].active_connections == 1, got
        # the flow left open still relays
        assert held_new[0].stdin is not None and held_new[0].stdout is not None
        held_new[0].stdin.write(b"\n")
        held_new[0].stdin.flush()
        assert held_new[0].stdout.readline().split() == [b"1"]

        held_new[0].kill()
        held_new[0].wait(10)
        wait_flows(env, idx, 0)
        assert members(env)[a].active_connections == 0
    finally:
        for p in (held_old, held_new):
            if p:
                p[0].kill()
                p[0].wait(10)
        env.api.singbox_enable_disable(sw_if_index=idx, enable_disable=False)


def test_clear_statistics_of_one_endpoint_group(upstreams: tuple[Env, list[Upstream]]) -> None:
    """singbox_clear_stats scope ENDPOINT_GROUP (YANG clear-statistics endpoint-group) zeroes that
    group's members' connections and failures and nothing else: not another group's, not the
    interface's, not the endpoints'; an unknown or empty name is refused. The CLI does the same."""
    env, ups = upstreams
    names = [u.name for u in ups]
    other = "sb-pool-other"
    idx = sw_if_index(env, env.t.vpp_if_client)
    set_group(env, 2, [1, 1, 1], names)
    try:
        # 30 flows through `other`, then 30 through GROUP
        r = env.api.singbox_endpoint_group_add_del(
            is_add=True, name=other, policy=2, n_members=1,
            members=[{"endpoint_name": names[0], "weight": 1, "priority": 0}])
        assert r.retval == 0, r
        for g in (other, GROUP):
            assert env.api.singbox_interface_endpoint_group_enable(sw_if_index=idx, group_name=g,
                                                                   max_connections=0).retval == 0
            assert many(env, 30, parallel=8) == 30
        assert sum(m.connections for m in members(env).values()) == 30
        itf_before = env.api.singbox_get_stats(sw_if_index=idx).total_connections
        ep_before = {e.name: e.connections for e in env.api.singbox_endpoint_dump()}

        r = env.api.singbox_clear_stats(scope=4, endpoint_name=GROUP)  # SINGBOX_API_STATS_SCOPE_ENDPOINT_GROUP
        assert r.retval == 0, r
        assert all(m.connections == 0 and m.failures == 0 for m in members(env).values()), members(env)
        assert group_members(env, other)[names[0]].connections == 30
        assert env.api.singbox_get_stats(sw_if_index=idx).total_connections == itf_before
        assert {e.name: e.connections for e in env.api.singbox_endpoint_dump()} == ep_before

        assert env.api.singbox_clear_stats(scope=4, endpoint_name="nowhere").retval == -6  # NO_SUCH_ENTRY
        assert env.api.singbox_clear_stats(scope=4, endpoint_name="").retval == -7  # INVALID_VALUE

        assert many(env, 9, parallel=3) == 9
        assert sum(m.connections for m in members(env).values()) == 9
        env.cli(f"clear singbox endpoint-group counters {GROUP}")
        assert all(m.connections == 0 for m in members(env).values()), members(env)
        assert group_members(env, other)[names[0]].connections == 30
        assert "no such endpoint group" in env.cli("clear singbox endpoint-group counters nowhere", check=False)
        # "all" (API and CLI) covers every group
        env.cli("clear singbox counters")
        assert group_members(env, other)[names[0]].connections == 0
    finally:
        env.api.singbox_enable_disable(sw_if_index=idx, enable_disable=False)
        env.api.singbox_endpoint_group_add_del(is_add=False, name=other, n_members=0, members=[])

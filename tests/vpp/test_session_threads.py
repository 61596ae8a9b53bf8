# SPDX-License-Identifier: Apache-2.0
# Copyright (c) 2026 vpp-singbox authors
"""Per-thread session records (plugin/API.md, "Threads"): a session's record
lives in the pool of its client leg's thread, its id names that thread
(generation << 32 | thread << 24 | index, bit 31 clear), and the API, the CLI
and disconnect-session reach records on every thread."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

from .conftest import ECHO_PORT, Env, worker_counts
from vpptopo import ORIGIN_IP4, VPP_CLIENT_IP4

pytestmark = worker_counts(0, 2)

HERE = Path(__file__).parent
N_SESSIONS = 8


def _thread(session_id: int) -> int:
    return (session_id >> 24) & 0x7F


def _records_per_thread(env: Env) -> dict[int, int]:
    """`show singbox server`'s per-thread record counts ("thread 1: 3 in use, ...", with workers)."""
    out: dict[int, int] = {}
    for line in env.cli("show singbox server").splitlines():
        words = line.split()
        if len(words) >= 4 and words[0] == "thread" and words[3] == "in":
            out[int(words[1].rstrip(":"))] = int(words[2])
    return out


def test_sessions_live_on_their_client_legs_thread(env: Env) -> None:
    env.start()
    workers = env.vpp.workers
    procs = [subprocess.Popen(
        ["ip", "netns", "exec", env.t.ns_client, sys.executable, str(HERE / "socks_probe.py"),
         VPP_CLIENT_IP4, "1080", "idle", ORIGIN_IP4, str(ECHO_PORT), "30"],
        stdout=subprocess.PIPE) for _ in range(N_SESSIONS)]
    try:
        deadline = time.monotonic() + 20
        while len(ss := [s for s in env.sessions() if s.state == 5]) < N_SESSIONS:
            assert time.monotonic() < deadline, env.cli("show singbox sessions verbose")
            time.sleep(0.1)
        ids = [s.session_id for s in ss]
        assert len(set(ids)) == N_SESSIONS
        assert all(not i & (1 << 31) for i in ids), ids  # the agent's UDP flow bit
        threads = {_thread(i) for i in ids}
        if workers:
            # the legs are on workers (the interfaces' rx queues): so are the records
            assert threads <= set(range(1, workers + 1)), (ids, threads)
            per_thread = _records_per_thread(env)
            assert set(per_thread) == set(range(workers + 1)), per_thread
            assert per_thread[0] == 0, per_thread
            for t in threads:
                assert per_thread[t] >= sum(1 for i in ids if _thread(i) == t), per_thread
        else:
            assert threads == {0}, ids
        # the verbose listing names each client leg's thread: the record's
        for line in env.cli("show singbox sessions verbose").splitlines():
            if "client leg" in line and "(thread " in line:
                leg_thread = int(line.split("(thread ")[1].split(")")[0])
                assert leg_thread in threads, line
        # disconnect-session reaches a record on any thread, and only it
        victim = ids[-1]
        assert env.api.singbox_session_disconnect(session_id=victim).retval == 0
        deadline = time.monotonic() + 10
        while victim in [s.session_id for s in env.sessions()]:
            assert time.monotonic() < deadline, env.cli("show singbox sessions verbose")
            time.sleep(0.1)
        left = [s.session_id for s in env.sessions() if s.state == 5]
        assert sorted(left) == sorted(ids[:-1]), (left, ids)
        assert env.api.singbox_session_disconnect(session_id=victim).retval != 0
        # an id naming a thread that does not exist is no session, not a crash
        assert env.api.singbox_session_disconnect(session_id=(1 << 32) | (100 << 24)).retval != 0
    finally:
        for p in procs:
            p.kill()
            p.wait()


def _thread_cpus(pid: int) -> dict[str, set[int]]:
    """The CPUs each of VPP's threads may run on, by thread name (vpp_main, vpp_wk_0, ...)."""
    out: dict[str, set[int]] = {}
    for task in (Path("/proc") / str(pid) / "task").iterdir():
        name = (task / "comm").read_text().strip()
        if name.startswith("vpp_"):
            out[name] = os.sched_getaffinity(int(task.name))
    return out


def test_workers_have_cpus_of_their_own(env: Env) -> None:
    """As many workers as CPUs (2 on a 2-core machine, vpptopo.Vpp._more_cpus): each worker has a CPU the
    others may not use. VPP itself put them all on CPU 0, where a worker spinning at the barrier kept the
    other one off the CPU it needed to reach the barrier: VPP aborted ("worker thread deadlock", its 1 s
    barrier timeout) even with no session at all."""
    workers = env.vpp.workers
    cpus = _thread_cpus(env.vpp.proc.pid)
    wk = [cpus[f"vpp_wk_{i}"] for i in range(workers)]
    if workers and workers <= (os.cpu_count() or 1):
        for i in range(workers):
            for j in range(i + 1, workers):
                assert not wk[i] & wk[j], cpus


N_BURST = 2500  # over the 2,048 events of a thread's session event queue (VPP's default)


def test_server_stop_ends_more_sessions_than_an_event_queue_holds(env: Env) -> None:
    """Stopping the server ends every session by a message to its thread, all sent at once from
    the API handler: 2,500 of them overflow a thread's 2,048-event queue, where VPP's
    session_send_rpc_evt_to_thread_force dropped the rest (those sessions stayed open, the old
    plugin kept ~450 of them here). singbox_rpc keeps what finds the queue full and sends it
    later, in order."""
    import json

    env.configure(max_sessions=N_BURST + 100)
    env.start()
    p = subprocess.Popen(
        ["ip", "netns", "exec", env.t.ns_client, sys.executable, str(HERE / "many.py"),
         VPP_CLIENT_IP4, "1080", ORIGIN_IP4, str(ECHO_PORT), str(N_BURST)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert p.stdout is not None and p.stdin is not None
        first = json.loads(p.stdout.readline())
        assert first == {"open": N_BURST}, first
        assert env.api.singbox_server_dump()[0].active_sessions == N_BURST
        # the clients keep their ends open: only the server's stop ends the sessions
        assert env.api.singbox_server_enable_disable(enable=False).retval == 0
        deadline = time.monotonic() + 60
        while (left := len(env.sessions())) != 0:
            assert time.monotonic() < deadline, (left, env.cli("show singbox server"))
            time.sleep(0.5)
        # the queue did overflow: the test tests what it says
        out = env.cli("show singbox server")
        m = re.search(r"Messages deferred \(queue full\): (\d+), waiting (\d+)", out)
        assert m and int(m.group(1)) > 0 and int(m.group(2)) == 0, out
        p.stdin.write("\n")
        p.stdin.flush()
        p.stdout.readline()
    finally:
        p.kill()
        p.wait()

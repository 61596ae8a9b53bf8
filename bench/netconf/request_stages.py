#!/usr/bin/env python3
"""Where one small request's time goes inside our NETCONF server, stage by stage (issue 17).

    scripts/in-env python bench/netconf/request_stages.py [--list nacm|truststore] [--entries 100]
        [--iterations 300] [--no-get] [--tree TREE]

Our server runs as a child process with timers around its stages (installed by this file's `--serve` mode before
the server's own `main`, nothing of the product changed); ncclient (poll tick 1 ms, as in bench_vs_netopeer2.py)
makes a list of `--entries` entries, then alternates the one-leaf edit-config and the get-config of
bench_vs_netopeer2.py. Printed: the client's p50 and, per stage, the server's p50 wall time and the p50 CPU time of
the thread that ran it (a stage's wall time above its CPU is waiting: a thread wake-up, the GIL, the CPU taken by
another process). `--tree` runs another checkout's server (its `agent/` first on PYTHONPATH).

An edit-config (run on the session's worker thread):
- ssh in: the connection's read handed to asyncssh until the channel gets the bytes (decrypt, MAC, SSH parse);
- framing: the channel's bytes until a whole message (RFC 6242 chunks; the request limits' look, server.limits);
- hop to worker: the message until the session's worker runs it (the wake-up of an idle thread);
- parse rpc: messages.parse_rpc (ElementTree); libyang parse: the whole rpc by libyang; validate: its input;
  nacm: the operation's check; handler: the operation's handler, of which sysrepo apply_changes is one part;
- hop back: the dispatcher's return until the event loop runs the reply (call_soon_threadsafe, its wake-up);
- ssh out: the reply framed, encrypted, signed and sent (the send runs the client's TCP receive on loopback).
A get-config short enough runs on the event loop (session.INLINE_OPS): ssh in, framing, to dispatch, dispatch,
ssh out. Each timer costs ~1 µs; the totals are a little above an untimed server's.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

TOP = Path(__file__).resolve().parents[2]
OUT_ENV = "REQUEST_STAGES_OUT"

EDIT_STAGES = [("A", "B", "ssh in"), ("B", "C", "framing"), ("C", "D", "hop to worker"),
               ("E0", "E1", "parse rpc"), ("F0", "F1", "libyang parse"), ("G0", "G1", "validate"),
               ("H0", "H1", "nacm"), ("I0", "I1", "handler"), ("S0", "S1", ".. sysrepo apply_changes"),
               ("K0", "K1", "reply"), ("X1", "L", "hop back"), ("M", "N", "ssh out"), ("A", "N", "total")]
GET_STAGES = [("A", "B", "ssh in"), ("B", "C", "framing"), ("C", "X0", "to dispatch"), ("X0", "X1", "dispatch"),
              ("M", "N", "ssh out"), ("A", "N", "total")]


def serve(argv: list[str]) -> int:
    """The server with stage timers; the records go to $REQUEST_STAGES_OUT when it exits."""
    import atexit

    import sysrepo.session

    from singbox_agent.netconf import dispatch, messages, server, session
    from singbox_agent.netconf import ops  # noqa: F401 - registers the handlers wrapped below
    from singbox_agent.mgmt import nacm

    clock, cpu = time.perf_counter, time.thread_time
    records: list[dict[str, float | str]] = []
    cur: dict[str, Any] = {}  # the request in flight (one at a time: the client waits for each reply)

    def timed(owner: Any, name: str, start: str, end: str) -> None:
        inner = getattr(owner, name)

        def wrapper(*args: Any, **kwargs: Any) -> Any:
            cur[start], c0 = clock(), cpu()
            try:
                return inner(*args, **kwargs)
            finally:
                cur[end] = clock()
                cur["cpu " + start] = cpu() - c0

        setattr(owner, name, wrapper)

    made = server._SSHServer.connection_made
    last_read = [0.0, 0.0]  # when the connection's latest read was handed to asyncssh: wall, thread CPU

    def connection_made(self: Any, conn: Any) -> None:
        made(self, conn)
        received = conn.data_received

        def data_received(data: bytes, datatype: Any = None) -> None:
            last_read[:] = clock(), cpu()
            received(data, datatype)

        conn.data_received = data_received

    setattr(server._SSHServer, "connection_made", connection_made)
    channel_received = server._NetconfChannel.data_received

    def channel_data(self: Any, data: bytes, datatype: Any) -> None:
        if "B" not in cur:
            cur["A"], cur["cpu A"], cur["B"] = last_read[0], cpu() - last_read[1], clock()
            cur["cpu B"] = cpu()  # made a duration by `message`
        channel_received(self, data, datatype)

    setattr(server._NetconfChannel, "data_received", channel_data)
    on_message = session.NetconfSession._message

    def message(self: Any, data: bytes) -> None:
        if not self.hello_done:  # the client's hello: no reply, no record
            on_message(self, data)
            cur.clear()
            return
        if "C" not in cur:
            cur["C"] = clock()
            cur["cpu B"] = cpu() - cur.get("cpu B", cpu())
        on_message(self, data)

    setattr(session.NetconfSession, "_message", message)
    run_rpc = session.NetconfSession._run_rpc

    def run(self: Any, data: bytes, op: str) -> None:
        cur["D"], cur["op"] = clock(), op
        run_rpc(self, data, op)

    setattr(session.NetconfSession, "_run_rpc", run)
    worker_reply = session.NetconfSession._worker_reply

    def reply_on_loop(self: Any, *args: Any) -> None:
        cur.setdefault("L", clock())
        worker_reply(self, *args)

    setattr(session.NetconfSession, "_worker_reply", reply_on_loop)
    timed(messages, "parse_rpc", "E0", "E1")
    timed(dispatch, "parse_netconf_rpc", "F0", "F1")
    timed(dispatch, "_invalid_input", "G0", "G1")
    timed(nacm, "check_operation", "H0", "H1")
    timed(messages, "reply", "K0", "K1")
    timed(dispatch, "dispatch", "X0", "X1")
    timed(sysrepo.session.SysrepoSession, "apply_changes", "S0", "S1")
    for key, handler in list(dispatch.HANDLERS.items()):
        dispatch.HANDLERS[key] = _timed_handler(handler, cur, clock, cpu)
    send = server._NetconfChannel._send

    def send_reply(self: Any, data: bytes) -> None:
        t, c0 = clock(), cpu()
        send(self, data)
        if "C" in cur:  # a reply (not the hello)
            cur["M"], cur["N"], cur["cpu M"] = t, clock(), cpu() - c0
            cur.setdefault("op", "inline")
            cur.pop("cpu C", None)
            records.append(dict(cur))
        cur.clear()

    setattr(server._NetconfChannel, "_send", send_reply)
    def dump() -> None:
        Path(os.environ[OUT_ENV]).write_text(json.dumps(records))

    atexit.register(dump)
    from singbox_agent.netconf.__main__ import main

    return main(argv)


def _timed_handler(handler: Callable[[Any], str], cur: dict[str, Any], clock: Callable[[], float],
                   cpu: Callable[[], float]) -> Callable[[Any], str]:
    def wrapper(ctx: Any) -> str:
        cur["I0"], c0 = clock(), cpu()
        try:
            return handler(ctx)
        finally:
            cur["I1"], cur["cpu I0"] = clock(), cpu() - c0

    return wrapper


def stage_table(records: list[dict[str, Any]], stages: list[tuple[str, str, str]]) -> list[str]:
    """One row per stage: p50 wall ms, p50 thread CPU ms where the stage has it (not for a hop or the total)."""
    rows = []
    for start, end, name in stages:
        walls = [(r[end] - r[start]) * 1000 for r in records if start in r and end in r]
        cpus = [r["cpu " + start] * 1000 for r in records if "cpu " + start in r]
        if walls:
            cpu_text = f"{statistics.median(cpus):.3f}" if cpus and name not in ("total", "hop to worker") else ""
            rows.append(f"| {name} | {statistics.median(walls):.3f} | {cpu_text} |")
    return rows


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--serve":
        return serve(sys.argv[2:])
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--list", choices=("nacm", "truststore"), default="nacm")
    ap.add_argument("--entries", type=int, default=100)
    ap.add_argument("--iterations", type=int, default=300)
    ap.add_argument("--no-get", action="store_true", help="edits only")
    ap.add_argument("--tree", help="another checkout whose server runs (its agent/ first on PYTHONPATH)")
    args = ap.parse_args()

    sys.path.insert(0, str(TOP))
    sys.path.insert(0, str(TOP / "bench" / "netconf"))
    import bench_vs_netopeer2 as peer
    from tests.conftest import new_sysrepo_instance
    from tests.netconf.conftest import ADMIN, ADMIN_PASSWORD, bootstrap

    work = Path(tempfile.mkdtemp(prefix="stages", dir="/tmp"))
    inst = new_sysrepo_instance()
    env = {**os.environ, **inst.env, OUT_ENV: str(work / "stages.json")}
    if args.tree:
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(Path(args.tree).resolve() / "agent"),
                                                         env.get("PYTHONPATH", "")) if p)
    bootstrap(env, work)
    ready = work / "ready.json"
    proc = subprocess.Popen([sys.executable, __file__, "--serve", "--listen", "127.0.0.1:0", "--state-dir", str(work),
                             "--ready-file", str(ready)], env=env, stdout=open(work / "server.log", "wb"),
                            stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while not ready.exists():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("server did not start:\n" + (work / "server.log").read_text())
            time.sleep(0.05)
        mgr = peer.connect(json.loads(ready.read_text())["port"], ADMIN, ADMIN_PASSWORD)
        blist = peer.LISTS[args.list]
        peer.edit(mgr, blist.entries(args.entries))
        time.sleep(1.1)  # the load's config-change has its replay file to itself (bench_vs_netopeer2.py)
        warm = 10
        edits: list[float] = []
        gets: list[float] = []
        get: Callable[[], Any] = lambda: mgr.get_config(source="running", filter=("subtree", blist.module_filter))
        for i in range(warm + args.iterations):
            t_edit = peer.timed(lambda: peer.edit(mgr, blist.one_leaf(i)))
            t_get = 0.0 if args.no_get else peer.timed(get)
            if i >= warm:
                edits.append(t_edit)
                gets.append(t_get)
        mgr.close_session()
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
        inst.destroy()
    records = json.loads((work / "stages.json").read_text())
    edit_records = [r for r in records if r.get("op") == "edit-config"][warm + 1:]  # + the load
    get_records = [r for r in records if r.get("op") == "inline"][warm:]
    print(f"{args.list} {args.entries}, {args.iterations} iterations, load average {os.getloadavg()[0]:.1f}; "
          f"client p50 ms: edit {statistics.median(edits):.3f}"
          + ("" if args.no_get else f", get {statistics.median(gets):.3f}"))
    for title, recs, stages in (("edit-config (worker)", edit_records, EDIT_STAGES),
                                ("get-config (event loop)", get_records, GET_STAGES)):
        if recs:
            print(f"\n{title}, {len(recs)} requests\n\n| stage | wall p50 ms | thread CPU p50 ms |\n|---|---:|---:|")
            print("\n".join(stage_table(recs, stages)))
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""On-change YANG-Push of an endpoint going down (issue 18): latency from the agent seeing it to the subscriber,
and what the pushed operational data costs a read of /singbox/sessions at 10,000 sessions.

The real agent (in-memory dataplane holding --sessions sessions, --endpoints endpoints) pushes endpoint
oper-status into sysrepo's operational datastore (agent/oper_push.py). A subscriber, sysrepo's own on-change
YANG-Push (srsn, as the NETCONF server uses it) on /singbox/client/endpoint/oper-status, takes each
push-change-update from its pipe in a thread of its own. Measured:

- latency: from the dataplane handing the agent an endpoint event (what the agent sees) to the subscriber holding
  the push-change-update, --flips times, an endpoint going down then up again; with --via netconf the subscriber
  is ncclient on the real NETCONF server (its own process, SSH), which sends what its srsn subscription reads;
- a read of /singbox/sessions (sysrepo get_data on the operational datastore, the agent's pull callback building
  --sessions entries) and of /singbox/server/statistics (small: a fixed cost per read would show there), with the
  agent's push data in sysrepo and without it (the agent's push session stopped: what the agent did before), in
  alternating rounds.

    scripts/in-env python bench/subscriptions/bench_oper_push.py [--sessions 10000] [--endpoints 20] [--flips 100]
        [--via srsn|netconf]

Nothing here asserts a time.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TOP = "/vpp-singbox:singbox"


class Subscriber:
    """Push-change-updates of an on-change subscription to endpoint oper-status, each with the time it arrived,
    taken by a thread of its own: from srsn directly, or from ncclient on the NETCONF server."""

    def __init__(self, conn: object, oper: object, via: str, state_dir: Path) -> None:
        self.received: list[tuple[float, str]] = []
        self.got = threading.Event()
        self._stop = threading.Event()
        self._server: subprocess.Popen[bytes] | None = None
        xpath = f"{TOP}/client/endpoint/oper-status"
        if via == "srsn":
            from singbox_agent.subscriptions import srsn

            sub = srsn.yang_push_on_change(oper, "operational", xpath=xpath, sync_on_start=False)
            self._close = sub.close

            def take() -> str | None:
                with conn.get_ly_ctx() as ctx:  # type: ignore[attr-defined]
                    n = sub.read(ctx, 100)
                return None if n is None else n.content
        else:
            m = self._netconf(state_dir)
            from lxml import etree

            m.dispatch(etree.fromstring(
                '<establish-subscription xmlns="urn:ietf:params:xml:ns:yang:ietf-subscribed-notifications">'
                '<datastore xmlns="urn:ietf:params:xml:ns:yang:ietf-yang-push" '
                'xmlns:ds="urn:ietf:params:xml:ns:yang:ietf-datastores">ds:operational</datastore>'
                '<datastore-xpath-filter xmlns="urn:ietf:params:xml:ns:yang:ietf-yang-push" '
                'xmlns:sb="urn:vpp-singbox:yang:vpp-singbox">/sb:singbox/sb:client/sb:endpoint/sb:oper-status'
                '</datastore-xpath-filter><on-change xmlns="urn:ietf:params:xml:ns:yang:ietf-yang-push">'
                "<sync-on-start>false</sync-on-start></on-change></establish-subscription>"))

            def close() -> None:
                m.close_session()
                assert self._server is not None
                self._server.terminate()
                self._server.wait(30)

            self._close = close

            def take() -> str | None:
                n = m.take_notification(block=True, timeout=0.1)
                return None if n is None else str(n.notification_xml)

        def run() -> None:
            while not self._stop.is_set():
                content = take()
                if content is not None and "push-change-update" in content:
                    self.received.append((time.perf_counter(), content))
                    self.got.set()

        self._thread = threading.Thread(target=run, daemon=True)
        self._thread.start()

    def _netconf(self, state_dir: Path) -> object:
        from ncclient import manager

        pw = state_dir / "pw"
        pw.write_text("bench-secret")
        subprocess.run([sys.executable, "-m", "singbox_agent.mgmt", "bootstrap-admin", "--user", "admin",
                        "--password-file", str(pw)], check=True, capture_output=True, timeout=120)
        ready = state_dir / "ready.json"
        self._server = subprocess.Popen([sys.executable, "-m", "singbox_agent.netconf", "--listen", "127.0.0.1:0",
                                         "--state-dir", str(state_dir), "--ready-file", str(ready)],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while not ready.exists():
            if self._server.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the NETCONF server did not start")
            time.sleep(0.05)
        port = int(json.loads(ready.read_text())["port"])
        return manager.connect(host="127.0.0.1", port=port, username="admin", password="bench-secret",
                               hostkey_verify=False, look_for_keys=False, allow_agent=False, timeout=60)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self._close()


def child(n_sessions: int, n_endpoints: int, health_checked: int, flips: int, reads: int, rounds: int, via: str
          ) -> dict[str, object]:
    import sysrepo

    from singbox_agent.agent.daemon import Agent
    from singbox_agent.agent.oper_push import OperPush
    from singbox_agent.dataplane.base import EndpointState, Session
    from singbox_agent.dataplane.memory import MemoryDataplane

    dp = MemoryDataplane()
    dp.sessions = {i: Session(i, "server" if i % 2 else "client", "established", "198.18.1.2", 1024 + i % 60000,
                              destination_address="198.18.2.2", destination_port=443,
                              interface=None if i % 2 else "tap0", endpoint=None if i % 2 else "e0",
                              username="bob" if i % 2 else None, bytes_from_client=i, bytes_to_client=i,
                              age=i % 600) for i in range(n_sessions)}
    # endpoints beyond --health-checked have no health check: 'unknown', not pushed
    dp.endpoint_states = {f"e{i}": EndpointState("up", 1, 800) for i in range(min(health_checked, n_endpoints))}
    agent = Agent(dp)
    agent.start()
    assert agent.wait_idle(300)
    conn = sysrepo.SysrepoConnection()
    run = conn.start_session("running")
    for i in range(n_endpoints):
        run.set_item(f"{TOP}/client/endpoint[name='e{i}']/address", f"198.18.3.{i % 250 + 1}")
        run.set_item(f"{TOP}/client/endpoint[name='e{i}']/priority", 100 + i)
    run.set_item(f"{TOP}/client/interface[name='tap0']/endpoint", "e0")
    run.apply_changes()
    assert agent.wait_idle(300)
    oper = conn.start_session("operational")

    def timed_read(path: str) -> float:
        started = time.perf_counter()
        with oper.get_data_ly(path) as data:
            assert data is not None
        return (time.perf_counter() - started) * 1e3

    # /singbox/sessions: the big pull read; /singbox/server/statistics: a small one, where a fixed cost of merging
    # the push data into every read of the module would show
    reads_of = {"sessions": f"{TOP}/sessions", "statistics": f"{TOP}/server/statistics"}
    read_ms: dict[str, dict[str, list[float]]] = {k: {"with push data": [], "without push data": []}
                                                  for k in reads_of}
    pushed_nodes = len(agent._oper_push.pushed) if agent._oper_push else 0
    timed_read(reads_of["sessions"])  # warm-up
    for _ in range(rounds):
        for label in ("with push data", "without push data"):
            for what, path in reads_of.items():
                for _ in range(reads if what == "sessions" else 20 * reads):
                    read_ms[what][label].append(timed_read(path))
            if label == "with push data":
                assert agent._oper_push is not None
                agent._oper_push.stop()  # sysrepo drops the session's push data: the agent as it was before
                agent._oper_push = None
            else:
                agent._oper_push = OperPush(agent._conn.start_session("operational"))
                agent._events.put("oper-push")
                assert agent.wait_idle(300)

    import tempfile

    state = Path(tempfile.mkdtemp(prefix="sbx-bench-"))
    subscriber = Subscriber(conn, oper, via, state)
    # the agent's own part: its worker's push after an endpoint event (dataplane read, difference, sysrepo apply)
    push_ms: list[float] = []
    handled = agent._push_oper

    def timed_push(item: object, **kw: bool) -> None:
        started = time.perf_counter()
        handled(item, **kw)  # type: ignore[arg-type]
        if type(item).__name__ == "EndpointEvent":
            push_ms.append((time.perf_counter() - started) * 1e3)

    agent._push_oper = timed_push  # type: ignore[method-assign]
    latencies: list[float] = []
    lost = 0
    try:
        for i in range(flips):
            up = i % 2 == 1
            dp.endpoint_states["e0"] = EndpointState("up" if up else "down", 0, 800 if up else 0)
            subscriber.got.clear()
            subscriber.received.clear()
            seen = time.perf_counter()
            dp.endpoint_event("e0", up, "success" if up else "connect-failed")
            if not subscriber.got.wait(5):
                lost += 1
                continue
            at, content = subscriber.received[0]
            assert ("<oper-status" in content and (">up<" if up else ">down<") in content), content
            latencies.append((at - seen) * 1e3)
            assert agent.wait_idle(300)
            time.sleep(0.01)
    finally:
        subscriber.close()
        oper.stop()
        run.stop()
        conn.disconnect()
        agent.stop()
    return {"latency_ms": latencies, "lost": lost, "read_ms": read_ms, "pushed_nodes": pushed_nodes,
            "push_ms": push_ms}


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sessions", type=int, default=10000)
    ap.add_argument("--endpoints", type=int, default=20)
    ap.add_argument("--health-checked", type=int, default=1_000_000,
                    help="endpoints with a status (the others have no health check); default all")
    ap.add_argument("--flips", type=int, default=100)
    ap.add_argument("--reads", type=int, default=3, help="reads of /singbox/sessions per round (x20 of statistics)")
    ap.add_argument("--rounds", type=int, default=4, help="rounds of reads with, then without, the push data")
    ap.add_argument("--via", choices=("srsn", "netconf"), default="srsn")
    ap.add_argument("--child", action="store_true")
    opts = ap.parse_args()
    if opts.child:
        import logging

        from singbox_agent.logs import configure_logging

        configure_logging(logging.WARNING, json_output=True)
        sys.path.insert(0, str(ROOT))
        print(json.dumps(child(opts.sessions, opts.endpoints, opts.health_checked, opts.flips, opts.reads, opts.rounds,
                                     opts.via)))
        return 0
    sys.path.insert(0, str(ROOT))
    from singbox_agent.subscriptions import srsn
    from tests.conftest import new_sysrepo_instance

    inst = new_sysrepo_instance()
    try:
        args = ["sysrepoctl", "-s", str(srsn.SR_MODULE_DIR)]
        for name, features in srsn.MODULES:
            args += ["-i", str(srsn.SR_MODULE_DIR / name)] + [a for f in features for a in ("-e", f)]
        subprocess.run(args, env={**os.environ, **inst.env}, check=True, capture_output=True, timeout=120)
        p = subprocess.run([sys.executable, "-X", "faulthandler", __file__, "--child", "--sessions",
                            str(opts.sessions), "--endpoints", str(opts.endpoints), "--flips", str(opts.flips),
                            "--health-checked", str(opts.health_checked),
                            "--reads", str(opts.reads), "--rounds", str(opts.rounds), "--via", opts.via],
                           env={**os.environ, **inst.env},
                           capture_output=True, text=True, timeout=1800)
    finally:
        inst.destroy()
    if p.returncode:
        print(f"child failed ({p.returncode}):", p.stdout[-2000:], p.stderr[-4000:])
        return 1
    r = json.loads(p.stdout.strip().splitlines()[-1])
    lat = r["latency_ms"]
    print(f"endpoint event -> on-change push-change-update ({opts.via} subscriber), {opts.endpoints} endpoints, "
          f"{opts.sessions} sessions, {len(lat)} changes ({r['lost']} not delivered within 5 s):")
    if lat:
        print(f"  latency  p50 {pct(lat, 50):7.2f} ms  p99 {pct(lat, 99):7.2f} ms  max {max(lat):7.2f} ms")
        push = r["push_ms"]
        print(f"  of which the agent's push (read, difference, apply)  p50 {pct(push, 50):7.2f} ms  "
              f"p99 {pct(push, 99):7.2f} ms")
    for what, by_label in r["read_ms"].items():
        print(f"read of /singbox/{'sessions' if what == 'sessions' else 'server/statistics'} "
              f"({opts.sessions} sessions), agent pushing {r['pushed_nodes']} nodes, {opts.rounds} rounds:")
        base = statistics.median(by_label["without push data"])
        for label, values in by_label.items():
            med = statistics.median(values)
            print(f"  {label:18s} median {med:8.2f} ms  p90 {pct(values, 90):8.2f} ms  ({med / base:.2f}x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

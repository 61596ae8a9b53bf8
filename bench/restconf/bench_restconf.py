#!/usr/bin/env python3
"""RESTCONF benchmark, each number next to a floor measured in the same run on a private sysrepo instance.

1. GET of one leaf and PUT of one leaf at 100, 1,000 and 10,000 list entries through our server (httpx, HTTP/1.1,
   one keep-alive connection) next to the same operation done directly with sysrepo-python (target <= 1.5x).
   Also timed in turn: the HTTP floor (http_floor.py: the same Hypercorn, TLS, ALPN and thread hop answering at
   once), so each ratio splits into what the HTTP stack costs and what the server adds on top of it.
2. GET of the whole operational tree (`/restconf/data`) with 10,000 live sessions served by the real agent over
   a memory dataplane (target <= 300 ms), next to sysrepo-python getting and libyang printing the same tree; the
   server's RSS afterwards.
3. Requests per second for GET of one leaf at concurrency 32 (hey, HTTP/1.1 and HTTP/2) from running (what
   get-config reads) and from /data (operational), next to the NETCONF server's get-config rate in the same run
   (ncclient, 32 sessions in threads).

    scripts/in-env python bench/restconf/bench_restconf.py [--sizes 100,1000,10000] [--iterations 40]

hey: put a `hey` binary on PATH or at build/tools/hey (Debian's package `hey`; `apt-get download hey` and
`dpkg-deb -x` give a static binary), or set HEY=/path/to/hey. Without it, step 3 says so and skips.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

TOP = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(TOP / "tests" / "restconf"))
sys.path.insert(0, str(TOP / "tests"))  # first: tests/conftest.py, not tests/restconf/conftest.py

SBX = "/vpp-singbox:singbox"
LEAF = f"{SBX}/client/endpoint[name='e00000']/port"
URI_LEAF = "/restconf/data/vpp-singbox:singbox/client/endpoint=e00000/port"
URI_RUNNING_LEAF = "/restconf/ds/ietf-datastores:running/vpp-singbox:singbox/client/endpoint=e00000/port"


def p50(samples: list[float]) -> float:
    return statistics.median(samples)


def p90(samples: list[float]) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(round(0.9 * (len(ordered) - 1))))]


def interleaved(fns: dict[str, Callable[[int], None]], iterations: int, warmup: int = 3) -> dict[str, list[float]]:
    """Variants in turn, iteration by iteration, so load drifts of the machine hit all of them alike."""
    for i in range(warmup):
        for fn in fns.values():
            fn(i)
    out: dict[str, list[float]] = {name: [] for name in fns}
    for i in range(iterations):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            fn(i)
            out[name].append((time.perf_counter() - t0) * 1e3)
    return out


def populate(sess: Any, n: int) -> None:
    entries = [{"name": f"e{i:05d}", "address": "198.18.0.1", "port": 1080} for i in range(n)]
    sess.replace_config({"singbox": {"client": {"endpoint": entries}}}, "vpp-singbox", timeout_ms=300_000)


def find_hey() -> str | None:
    for candidate in (os.environ.get("HEY"), shutil.which("hey"), str(TOP / "build/tools/hey")):
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return candidate
    return None


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


# ---- the child: one process per sysrepo instance ---------------------------------------------------------------


def child(sizes: list[int], iterations: int, state_dir: Path) -> None:
    import httpx
    import libyang
    import sysrepo
    from rcserver import ADMIN, start_server, stop_server

    from singbox_agent.agent.daemon import Agent
    from singbox_agent.dataplane.base import Session
    from singbox_agent.dataplane.memory import MemoryDataplane
    from singbox_agent.repository import SysrepoInstance

    instance = SysrepoInstance(Path(os.environ["SYSREPO_REPOSITORY_PATH"]), os.environ["SYSREPO_SHM_PREFIX"])
    conn = sysrepo.SysrepoConnection()
    run = conn.start_session("running")
    populate(run, sizes[0])
    dp = MemoryDataplane()
    agent = Agent(dp)  # the real agent: running config shows in operational, commits go through it
    agent.start()
    agent.wait_idle(120)
    server = start_server(instance, state_dir)
    hello_ready = state_dir / "http-floor.json"
    hello = subprocess.Popen(
        [sys.executable, str(Path(__file__).with_name("http_floor.py")), "--cert",
         str(state_dir / "restconf" / "server.pem"), "--key", str(state_dir / "restconf" / "server.key"),
         "--ready-file", str(hello_ready)])
    deadline = time.monotonic() + 30
    while not hello_ready.exists() and time.monotonic() < deadline and hello.poll() is None:
        time.sleep(0.05)
    hello_url = json.loads(hello_ready.read_text())["base_url"]
    oper = conn.start_session("operational")
    # The server connects with sysrepo's running cache; the same floor with it on is shown next to the default.
    cconn = sysrepo.SysrepoConnection(cache_running=True)
    crun = cconn.start_session("running")
    coper = cconn.start_session("operational")
    results: dict[str, Any] = {"sizes": {}}
    try:
        with httpx.Client(base_url=server.base_url, verify=server.ca or False, auth=ADMIN, timeout=60) as http, \
                httpx.Client(base_url=hello_url, verify=server.ca or False, auth=ADMIN, timeout=60) as hello_http:
            # 1. one leaf, GET and PUT, at each size
            for n in sizes:
                populate(run, n)
                agent.wait_idle(120)

                def floor_get(i: int) -> None:
                    with oper.get_data_ly(LEAF) as tree:
                        node = tree.find_one(LEAF)
                        assert node is not None
                        node.print_mem("json")

                def floor_get_cached(i: int) -> None:
                    with coper.get_data_ly(LEAF) as tree:
                        node = tree.find_one(LEAF)
                        assert node is not None
                        node.print_mem("json")

                def floor_put_cached(i: int) -> None:
                    crun.set_item(LEAF, 4000 + i % 2)
                    crun.apply_changes()

                def ours_get(i: int) -> None:
                    r = http.get(URI_LEAF)
                    assert r.status_code == 200, r.text

                def floor_put(i: int) -> None:
                    run.set_item(LEAF, 2000 + i % 2)
                    run.apply_changes()

                def http_floor_get(i: int) -> None:
                    r = hello_http.get(URI_LEAF)
                    assert r.status_code == 200, r.text

                def http_floor_put(i: int) -> None:
                    r = hello_http.put(URI_LEAF, content=f'{{"vpp-singbox:port": {3000 + i % 2}}}',
                                       headers={"content-type": "application/yang-data+json"})
                    assert r.status_code == 204, r.text

                def ours_put(i: int) -> None:
                    r = http.put(URI_LEAF, content=f'{{"vpp-singbox:port": {3000 + i % 2}}}',
                                 headers={"content-type": "application/yang-data+json"})
                    assert r.status_code == 204, r.text

                got = interleaved(
                    {"floor_get": floor_get, "floor_get_cached": floor_get_cached, "ours_get": ours_get,
                     "http_get": http_floor_get}, iterations
                )
                put = interleaved(
                    {"floor_put": floor_put, "floor_put_cached": floor_put_cached, "ours_put": ours_put,
                     "http_put": http_floor_put}, iterations
                )
                results["sizes"][n] = {**got, **put}

            # 2. the whole operational tree with 10,000 live sessions
            populate(run, 100)
            agent.wait_idle(120)
            dp.sessions = {
                i: Session(i, "server" if i % 2 else "client", "established", "198.18.1.2", 1024 + i % 60000,
                           destination_address="198.18.2.2" if i % 3 else None,
                           destination_domain=None if i % 3 else "example.com", destination_port=443,
                           interface=None if i % 2 else "tap0", endpoint=None if i % 2 else "e00000",
                           username="bob" if i % 2 else None, bytes_from_client=i, bytes_to_client=i, age=i % 600)
                for i in range(10000)
            }

            def floor_all(i: int) -> None:
                with oper.get_data_ly("/*") as tree:
                    tree.print_mem("json", with_siblings=True)

            def ours_all(i: int) -> None:
                r = http.get("/restconf/data")
                assert r.status_code == 200 and r.content.count(b'"id"') >= 10000, r.text[:300]

            whole = interleaved({"floor_all": floor_all, "ours_all": ours_all}, max(5, iterations // 4), warmup=1)
            results["whole"] = whole
            results["rss_kib"] = rss_kib(server.process.pid)
            dp.sessions = {}

        # 3. requests per second, one leaf, concurrency 32
        results["rps"] = rps(server.base_url, server.ca, state_dir, instance)
    finally:
        coper.stop()
        crun.stop()
        cconn.disconnect()
        oper.stop()
        stop_server(server)
        hello.terminate()
        hello.wait(timeout=15)
        agent.stop()
        run.stop()
        conn.disconnect()
    del libyang
    print("RESULT " + json.dumps(results))


def rps(base_url: str, ca: str | None, state_dir: Path, instance: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    hey = find_hey()
    if hey is None:
        out["hey"] = "hey not found (PATH, build/tools/hey or HEY=): skipped"
    else:
        # hey 0.1.4's -a is not sent; the header is.
        token = base64.b64encode(b"admin:admin-secret-1").decode()
        for label, uri in (("running", URI_RUNNING_LEAF), ("data", URI_LEAF)):
            for proto, flags in (("http1.1", []), ("http2", ["-h2"])):
                proc = subprocess.run(
                    [hey, "-z", "8s", "-c", "32", *flags, "-H", f"Authorization: Basic {token}", base_url + uri],
                    capture_output=True, text=True, timeout=120,
                )
                m = re.search(r"Requests/sec:\s+([\d.]+)", proc.stdout)
                codes = re.findall(r"\[(\d{3})\]\s+(\d+) responses", proc.stdout)
                out[f"{label} {proto}"] = {"rps": float(m.group(1)) if m else 0.0, "codes": dict(codes)}
    out["netconf"] = netconf_rate(state_dir, instance)
    return out


def netconf_rate(state_dir: Path, instance: Any, seconds: float = 8.0, clients: int = 32) -> dict[str, Any]:
    """get-config of the same leaf through our NETCONF server, `clients` ncclient sessions in threads."""
    import importlib.util

    if importlib.util.find_spec("singbox_agent.netconf.__main__") is None:
        return {"skipped": "no NETCONF server in this checkout"}
    import ncclient.transport.session
    from ncclient import manager

    ncclient.transport.session.TICK = 0.0005
    ready = state_dir / "netconf-ready.json"
    log = open(state_dir / "netconf.log", "wb")  # noqa: SIM115 - closed below
    proc = subprocess.Popen([sys.executable, "-m", "singbox_agent.netconf", "--listen", "127.0.0.1:0",
                             "--state-dir", str(state_dir / "nc"), "--ready-file", str(ready)],
                            stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while not ready.exists():
            if proc.poll() is not None or time.monotonic() > deadline:
                return {"skipped": "NETCONF server did not start"}
            time.sleep(0.05)
        info = json.loads(ready.read_text())
        filt = ('<singbox xmlns="urn:vpp-singbox:yang:vpp-singbox"><client><endpoint><name>e00000</name><port/>'
                "</endpoint></client></singbox>")
        counts = [0] * clients
        stop_at = time.monotonic() + seconds + 2.0
        start_at = time.monotonic() + 2.0  # connections first, then the timed window

        def worker(k: int) -> None:
            with manager.connect(host=info["host"], port=info["port"], username="admin", password="admin-secret-1",
                                 hostkey_verify=False, look_for_keys=False, allow_agent=False, timeout=60) as m:
                while time.monotonic() < start_at:
                    time.sleep(0.001)
                while time.monotonic() < stop_at:
                    m.get_config(source="running", filter=("subtree", filt))
                    counts[k] += 1

        threads = [threading.Thread(target=worker, args=(k,), daemon=True) for k in range(clients)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(seconds + 60)
        return {"rps": sum(counts) / seconds, "clients": clients}
    finally:
        proc.terminate()
        proc.wait(timeout=15)
        log.close()


# ---- the parent ------------------------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--sizes", default="100,1000,10000")
    parser.add_argument("--iterations", type=int, default=40)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--state-dir", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    if args.child:
        child(sizes, args.iterations, args.state_dir)
        return 0

    from conftest import new_sysrepo_instance  # tests/conftest.py
    from rcserver import bootstrap_users

    instance = new_sysrepo_instance()
    state = Path(tempfile.mkdtemp(prefix="rcbench"))
    try:
        bootstrap_users(instance, state)
        proc = subprocess.run(
            [sys.executable, __file__, "--child", "--sizes", args.sizes, "--iterations", str(args.iterations),
             "--state-dir", str(state)],
            env={**os.environ, **instance.env}, capture_output=True, text=True, timeout=3600,
        )
        line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")), None)
        if proc.returncode != 0 or line is None:
            print(proc.stdout[-3000:], proc.stderr[-5000:], file=sys.stderr)
            return 1
        report(json.loads(line[len("RESULT "):]))
    finally:
        instance.destroy()
        shutil.rmtree(state, ignore_errors=True)
    return 0


def report(res: dict[str, Any]) -> None:
    print("RESTCONF one leaf, ms (p50 / p90), ours = httpx HTTP/1.1 keep-alive -> server -> sysrepo; "
          "floor = sysrepo-python in-process")
    print("floor = default connection; floor(c) = connection with cache_running, as the server uses; target <= 1.5x")
    print(f"{'entries':>8} | {'GET floor':>13} {'floor(c)':>13} {'ours':>13} {'ratio':>6} {'(c)':>6} | "
          f"{'PUT floor':>13} {'floor(c)':>13} {'ours':>13} {'ratio':>6} {'(c)':>6}")
    for n, r in sorted(res["sizes"].items(), key=lambda kv: int(kv[0])):
        def cell(key: str) -> str:
            return f"{p50(r[key]):6.2f}/{p90(r[key]):6.2f}"

        g, gc = p50(r["ours_get"]) / p50(r["floor_get"]), p50(r["ours_get"]) / p50(r["floor_get_cached"])
        p, pc = p50(r["ours_put"]) / p50(r["floor_put"]), p50(r["ours_put"]) / p50(r["floor_put_cached"])
        print(f"{int(n):>8} | {cell('floor_get')} {cell('floor_get_cached')} {cell('ours_get')} {g:5.2f}x {gc:5.2f}x | "
              f"{cell('floor_put')} {cell('floor_put_cached')} {cell('ours_put')} {p:5.2f}x {pc:5.2f}x")
    print("HTTP floor = the same Hypercorn + TLS + thread hop answering at once (http_floor.py), same httpx client;")
    print("server part = (ours - HTTP floor) / floor: what the server adds to the sysrepo floor beyond the HTTP stack")
    for n, r in sorted(res["sizes"].items(), key=lambda kv: int(kv[0])):
        for op in ("get", "put"):
            floor_p50, ours_p50, http_p50 = p50(r[f"floor_{op}"]), p50(r[f"ours_{op}"]), p50(r[f"http_{op}"])
            print(f"{int(n):>8} {op.upper():>3}: HTTP floor p50 {http_p50:5.2f} ms; best possible with this stack "
                  f"(floor + HTTP floor) {(floor_p50 + http_p50) / floor_p50:4.2f}x; measured {ours_p50 / floor_p50:4.2f}x; "
                  f"server part {(ours_p50 - http_p50) / floor_p50:4.2f}x")
    w = res["whole"]
    print(f"GET /restconf/data, whole operational tree with 10,000 live sessions: p50 {p50(w['ours_all']):.0f} ms, "
          f"max {max(w['ours_all']):.0f} ms (target <= 300 ms); floor (sysrepo get + libyang JSON print) "
          f"p50 {p50(w['floor_all']):.0f} ms; ratio {p50(w['ours_all']) / p50(w['floor_all']):.2f}x; "
          f"server RSS {res['rss_kib'] / 1024:.0f} MiB")
    r = res["rps"]
    nc = r.get("netconf", {})
    nc_rps = nc.get("rps")
    for key, what in (("running http1.1", "running datastore (= get-config), HTTP/1.1"),
                      ("running http2", "running datastore (= get-config), HTTP/2"),
                      ("data http1.1", "/data (operational: the agent's state callbacks run), HTTP/1.1"),
                      ("data http2", "/data (operational), HTTP/2")):
        if key in r:
            ratio = f"{r[key]['rps'] / nc_rps:.2f}x the NETCONF rate" if nc_rps else "no NETCONF rate"
            print(f"GET one leaf, concurrency 32 (hey), {what}: {r[key]['rps']:.0f} req/s, status counts "
                  f"{r[key]['codes']}; {ratio}")
    if "hey" in r:
        print(r["hey"])
    if nc_rps:
        print(f"NETCONF get-config of the same leaf, {nc['clients']} ncclient sessions: {nc_rps:.0f} req/s")
    else:
        print(f"NETCONF rate: {nc}")


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Password guessing against the RESTCONF server, with the failed-login back-off off and on.

One guesser (127.0.1.x, a fresh address each round, one keep-alive HTTPS connection, wrong admin passwords as fast
as answers come) and, at the same time, the real admin (127.0.0.2, GET of yang-library-version in a loop). For each setting: how many guesses the
server checked (401) and refused unchecked (429) per second, and the admin's latency; then the ratios on/off.
The two settings alternate in rounds so that the machine's load drifts hit both alike.

    scripts/in-env python bench/restconf/bench_login_backoff.py [--seconds 5] [--rounds 2]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

TOP = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(TOP / "tests" / "restconf"))
sys.path.insert(0, str(TOP / "tests"))  # first: tests/conftest.py, not tests/restconf/conftest.py

SETTINGS = "/restconf/data/vpp-singbox-restconf-server:restconf-server/login-backoff"


def client(base_url: str, ca: str | None, address: str, auth: tuple[str, str] | None) -> httpx.Client:
    transport = httpx.HTTPTransport(local_address=address, verify=ca or False)
    return httpx.Client(base_url=base_url, transport=transport, auth=auth, timeout=30.0)


def run_round(base_url: str, ca: str | None, admin: tuple[str, str], seconds: float,
              guesser: str) -> dict[str, float]:
    stop = threading.Event()
    counts = {"401": 0, "429": 0, "other": 0}
    latencies: list[float] = []

    def guess() -> None:
        with client(base_url, ca, guesser, None) as c:
            i = 0
            while not stop.is_set():
                i += 1
                r = c.get("/restconf/yang-library-version", auth=("admin", f"guess-{i}"))
                key = str(r.status_code) if r.status_code in (401, 429) else "other"
                counts[key] += 1

    def work() -> None:
        with client(base_url, ca, "127.0.0.2", admin) as c:
            while not stop.is_set():
                started = time.perf_counter()
                assert c.get("/restconf/yang-library-version").status_code == 200
                latencies.append(time.perf_counter() - started)

    threads = [threading.Thread(target=guess), threading.Thread(target=work)]
    for t in threads:
        t.start()
    time.sleep(seconds)
    stop.set()
    for t in threads:
        t.join()
    return {"checked_per_s": counts["401"] / seconds, "refused_per_s": counts["429"] / seconds,
            "other": counts["other"], "admin_p50_ms": statistics.median(latencies) * 1e3,
            "admin_requests": len(latencies)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--rounds", type=int, default=2)
    opts = parser.parse_args()

    from conftest import new_sysrepo_instance  # tests/conftest.py
    from rcserver import ADMIN, bootstrap_users, start_server, stop_server

    instance = new_sysrepo_instance()
    instance.activate()
    state = Path(tempfile.mkdtemp(prefix="bench-backoff"))
    try:
        bootstrap_users(instance, state)
        server = start_server(instance, state)
        results: dict[str, list[dict[str, float]]] = {"off": [], "on": []}
        try:
            with client(server.base_url, server.ca, "127.0.0.3", ADMIN) as admin:
                for round_no in range(opts.rounds):
                    for setting in ("off", "on"):
                        body = {"vpp-singbox-restconf-server:login-backoff": {"enabled": setting == "on"}}
                        r = admin.put(SETTINGS, content=json.dumps(body).encode(),
                                      headers={"content-type": "application/yang-data+json"})
                        assert r.status_code in (201, 204), r.text
                        # a fresh guessing address each round: no failures carried over from an earlier one
                        guesser = f"127.0.1.{2 * round_no + (setting == 'on') + 1}"
                        results[setting].append(run_round(server.base_url, server.ca, ADMIN, opts.seconds,
                                                          guesser))
        finally:
            stop_server(server)
    finally:
        instance.destroy()

    def mean(setting: str, key: str) -> float:
        return statistics.mean(r[key] for r in results[setting])

    print(f"{opts.rounds} rounds of {opts.seconds:g} s per setting (default policy when on); guesser 127.0.1.x, "
          "admin 127.0.0.2")
    for setting in ("off", "on"):
        print(f"back-off {setting:3}: guesses checked {mean(setting, 'checked_per_s'):8.1f}/s, refused unchecked "
              f"{mean(setting, 'refused_per_s'):8.1f}/s, admin p50 {mean(setting, 'admin_p50_ms'):6.2f} ms")
    checked_off, checked_on = mean("off", "checked_per_s"), mean("on", "checked_per_s")
    print(f"guesses checked, on/off: {checked_on / checked_off if checked_off else float('nan'):.4f}")
    print(f"admin p50 latency, on/off: {mean('on', 'admin_p50_ms') / mean('off', 'admin_p50_ms'):.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""NETCONF benchmark: edit-config of one leaf and get-config of the whole list through our server (ncclient over
SSH) next to the same operation done directly with sysrepo-python in this process (the floor), at 100, 1,000 and
10,000 list entries, on a private sysrepo instance. Prints p50/p90 and the ratio to the floor.

    scripts/in-env python bench/netconf/bench_netconf.py [--sizes 100,1000,10000] [--iterations 40]

Reference (netopeer2 measured on these machines): edit p50 ≈ 2.7 ms at 100 entries, 5.1 ms at 1,000, 43 ms at
10,000. Target: ours within 1.5x the floor at every size.
"""

from __future__ import annotations

import argparse
import os
import secrets
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

TOP = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(TOP))

import ncclient.transport.session  # noqa: E402
from ncclient import manager  # noqa: E402

from singbox_agent.repository import SysrepoInstance, project_yang_dirs, project_yang_files  # noqa: E402
from tests.netconf.conftest import ADMIN, ADMIN_PASSWORD, bootstrap, start_server, stop_server  # noqa: E402

SBX = "urn:vpp-singbox:yang:vpp-singbox"
NC = "urn:ietf:params:xml:ns:netconf:base:1.0"
ncclient.transport.session.TICK = 0.0005  # ncclient polls its send queue every TICK (0.1 s by default)


def percentile(samples: list[float], p: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def measure_blocks(fns: dict[str, Callable[[int], None]], iterations: int, warmup: int = 3) -> dict[str, list[float]]:
    """One variant after the other. For writes: a write through one connection makes the next read of running
    through another (cached) connection reload it, so interleaving writers would charge each other's cache misses."""
    out: dict[str, list[float]] = {}
    for name, fn in fns.items():
        out.update(measure_interleaved({name: fn}, iterations, warmup))
    return out


def measure_interleaved(fns: dict[str, Callable[[int], None]], iterations: int, warmup: int = 3) -> dict[str, list[float]]:
    """Run the variants in turn, iteration by iteration, so machine load drifts hit all of them alike."""
    for i in range(warmup):
        for fn in fns.values():
            fn(i)
    out: dict[str, list[float]] = {name: [] for name in fns}
    for i in range(iterations):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            fn(i)
            out[name].append((time.perf_counter() - t0) * 1000)
    return out


def edit_xml(i: int) -> str:
    return (f'<singbox xmlns="{SBX}"><client><endpoint><name>e00000</name><port>{2000 + i % 2}</port></endpoint>'
            "</client></singbox>")


class LeanClient:
    """A minimal blocking NETCONF 1.1 client on a plain SSH channel (asyncssh in its own event loop), to show the
    server's round trip without ncclient's own per-request cost (lxml building/parsing, its polling thread)."""

    def __init__(self, host: str, port: int) -> None:
        import asyncio

        from tests.netconf.rawclient import RawClient

        self.loop = asyncio.new_event_loop()
        self.client = self.loop.run_until_complete(RawClient.connect(host, port, ADMIN, ADMIN_PASSWORD))
        self.n = 0

    def call(self, body: str) -> bytes:
        self.n += 1
        self.client.send(f'<rpc xmlns="{NC}" message-id="{self.n}">{body}</rpc>'.encode())
        reply = self.loop.run_until_complete(self.client.recv(120))
        if b"<rpc-error>" in reply:
            raise RuntimeError(reply[:500].decode())
        return reply

    def close(self) -> None:
        self.loop.run_until_complete(self.client.close())
        self.loop.close()


def populate(sess: object, n: int) -> None:
    import sysrepo  # noqa: F401

    entries = "".join(f"<endpoint><name>e{i:05d}</name><address>198.18.{i // 256 % 256}.{i % 256}</address>"
                      f"</endpoint>" for i in range(n))
    xml = f'<singbox xmlns="{SBX}"><client>{entries}</client></singbox>'
    with sess.get_ly_ctx() as ctx:  # type: ignore[attr-defined]
        tree = ctx.parse_data_mem(xml, "xml", strict=True, no_state=True, parse_only=True)
        sess.replace_config_ly(tree, "vpp-singbox")  # type: ignore[attr-defined]


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="100,1000,10000")
    parser.add_argument("--iterations", type=int, default=40)
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]

    repo = Path(tempfile.mkdtemp(prefix="srbn", dir="/tmp"))
    instance = SysrepoInstance(repository=repo, shm_prefix="sbb" + secrets.token_hex(4))
    instance.install_modules(project_yang_files(TOP), project_yang_dirs(TOP))
    instance.activate()
    env = {**os.environ, **instance.env}
    state = Path(tempfile.mkdtemp(prefix="ncbench"))
    bootstrap(env, state)
    info = start_server(env, state)
    import sysrepo
    from singbox_agent.mgmt.datastore import print_xml

    rows = []
    try:
        with sysrepo.SysrepoConnection() as conn, sysrepo.SysrepoConnection(cache_running=True) as cached_conn:
            sess = conn.start_session("running")
            cached = cached_conn.start_session("running")
            raw = LeanClient(info.host, info.port)
            m = manager.connect(host=info.host, port=info.port, username=ADMIN, password=ADMIN_PASSWORD,
                                hostkey_verify=False, look_for_keys=False, allow_agent=False, timeout=120)
            for n in sizes:
                populate(sess, n)
                # sysrepo names its replay files by the second: right after the populate's netconf-config-change
                # notification (over its 1 MiB file limit at 10,000 entries) the next one in the same second
                # cannot be stored and apply_changes reports it (the change is applied all the same).
                time.sleep(1.1)
                iters = args.iterations if n < 10000 else max(10, args.iterations // 3)

                def floor_edit(i: int) -> None:
                    with sess.get_ly_ctx() as ctx:
                        tree = ctx.parse_data_mem(edit_xml(i), "xml", strict=True, no_state=True, parse_only=True)
                        try:
                            sess.edit_batch_ly(tree, "merge")
                            sess.apply_changes()
                        finally:
                            sess.discard_changes()
                            tree.free()

                def nc_edit(i: int) -> None:
                    m.edit_config(target="running", config=f'<config xmlns="{NC}">{edit_xml(i)}</config>')

                def floor_get(i: int) -> None:
                    with sess.get_data_ly("/vpp-singbox:singbox") as tree:
                        print_xml(tree)

                def cached_floor_get(i: int) -> None:
                    with cached.get_data_ly("/vpp-singbox:singbox") as tree:
                        print_xml(tree)

                def nc_get(i: int) -> None:
                    reply = m.get_config(source="running", filter=("subtree", f'<singbox xmlns="{SBX}"/>'))
                    assert len(reply.xml) > n * 40

                def raw_edit(i: int) -> None:
                    raw.call(f'<edit-config><target><running/></target><config>{edit_xml(i)}</config></edit-config>')

                def raw_get(i: int) -> None:
                    raw.call(f'<get-config><source><running/></source><filter><singbox xmlns="{SBX}"/></filter>'
                             "</get-config>")

                def cached_floor_edit(i: int) -> None:
                    with cached.get_ly_ctx() as ctx:
                        tree = ctx.parse_data_mem(edit_xml(i), "xml", strict=True, no_state=True, parse_only=True)
                        try:
                            cached.edit_batch_ly(tree, "merge")
                            cached.apply_changes()
                        finally:
                            cached.discard_changes()
                            tree.free()

                results = measure_blocks({"edit floor": floor_edit, "edit cached-floor": cached_floor_edit,
                                          "edit ncclient": nc_edit, "edit lean": raw_edit}, iters)
                results.update(measure_interleaved({"get floor": floor_get, "get cached-floor": cached_floor_get,
                                                    "get ncclient": nc_get, "get lean": raw_get}, iters))
                for op in ("edit", "get"):
                    floor = statistics.median(results[f"{op} floor"])
                    cached_floor = statistics.median(results[f"{op} cached-floor"])
                    for client in ("ncclient", "lean"):
                        ours = statistics.median(results[f"{op} {client}"])
                        rows.append((f"{op} ({client})", n, floor, cached_floor, ours,
                                     percentile(results[f"{op} {client}"], 90), ours / floor,
                                     ours / cached_floor if cached_floor else None))
            m.close_session()
            raw.close()
    finally:
        stop_server(info)
        instance.destroy()
    print(f"{'operation':<18}{'entries':>8}{'floor p50':>11}{'cached p50':>12}{'ours p50':>10}{'ours p90':>10}"
          f"{'ratio':>8}{'ratio(c)':>10}")
    for op, n, fp50, cp50, np50, np90, ratio, ratio_c in rows:
        cached = f"{cp50:>12.2f}" if cp50 is not None else f"{'-':>12}"
        rc = f"{ratio_c:>10.2f}" if ratio_c is not None else f"{'-':>10}"
        print(f"{op:<18}{n:>8}{fp50:>11.2f}{cached}{np50:>10.2f}{np90:>10.2f}{ratio:>8.2f}{rc}")
    print("ms; floor = sysrepo-python with a default connection; cached = with cache_running, as the server uses")
    print("netopeer2 reference (edit p50): 2.7 ms @100, 5.1 ms @1000, 43 ms @10000; target ratio <= 1.5")
    return 0


if __name__ == "__main__":
    sys.exit(main())

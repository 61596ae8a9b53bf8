# SPDX-License-Identifier: Apache-2.0
# Copyright (c) 2026 vpp-singbox authors
"""Load generators for bench_socks.py and bench_client.py, run inside
namespaces; the sink and the connection-rate prober are in cpsload.c
(cpsload_binary() builds it).

    loadgen.py bulk <proxy|-> <pport> <dst> <dport> <streams> <mbytes> <secs>
        -> {"bytes": n, "seconds": s}; sends through SOCKS5 (or directly
           with proxy "-"), each stream writes until its share or time is up
    loadgen.py idle <proxy> <pport> <dst> <dport> <n>
        -> {"open": n, "errors": e} once n sessions are CONNECTed (no payload),
           holds them until a line arrives on stdin, closes them all
           -> {"closed": n}
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import ipaddress
import json
import os
import socket
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any


GREETING = b"\x05\x01\x00"


def socks_request(dst: str, dport: int) -> bytes:
    """CONNECT request; sent after the method reply, since some servers
    (microsocks) drop pipelined handshakes."""
    ip = ipaddress.ip_address(dst)
    return (b"\x05\x01\x00" + (b"\x01" if ip.version == 4 else b"\x04")
            + ip.packed + struct.pack("!H", dport))


async def open_via(proxy: str, pport: int, dst: str, dport: int
                   ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    if proxy == "-":
        return await asyncio.open_connection(dst, dport)
    r, w = await asyncio.open_connection(proxy, pport)
    w.write(GREETING)
    m = await r.readexactly(2)
    w.write(socks_request(dst, dport))
    head = m + await r.readexactly(10)
    if head[1] != 0 or head[3] != 0:
        raise ConnectionError(f"socks reply {head.hex()}")
    return r, w


PYTHON_LOADGEN = (sys.executable, str(Path(__file__).resolve()))


def run_json(ns: str, *argv: str, timeout: float = 300) -> dict[str, float]:
    """Run a load generator in a namespace; its last output line is JSON."""
    r = subprocess.run(["ip", "netns", "exec", ns, *argv], capture_output=True, text=True,
                       timeout=timeout)
    if r.returncode:
        raise RuntimeError(r.stderr)
    return dict(json.loads(r.stdout.strip().splitlines()[-1]))


def cpsload_binary() -> str:
    """cpsload.c compiled with the host's cc, once per version of the source."""
    src = Path(__file__).with_name("cpsload.c")
    digest = hashlib.sha256(src.read_bytes()).hexdigest()[:12]
    out = Path(tempfile.gettempdir()) / f"vpp-singbox-cpsload-{digest}"
    if not out.exists():
        tmp = out.with_name(f"{out.name}.{os.getpid()}")
        subprocess.run(["cc", "-O2", "-o", str(tmp), str(src)], check=True)
        tmp.replace(out)
    return str(out)


def tune_client_ns(ns: str) -> None:
    """The connection-rate cases open tens of thousands of connections in
    seconds: all ports, and TIME_WAIT ports reused as Linux allows."""
    for key, value in (("net.ipv4.ip_local_port_range", "1024 65535"),
                       ("net.ipv4.tcp_tw_reuse", "1")):
        subprocess.run(["ip", "netns", "exec", ns, "sysctl", "-qw", f"{key}={value}"],
                       check=True)


# Linux gives a connect() the first local port whose 4-tuple is free, scanning half the ephemeral
# range; once earlier connections from the same proxy to the same sink ip:port hold that half in
# TIME_WAIT, every connect() scans it all (measured in sing-box's namespace: 5 ms instead of 0.02 ms)
# and the faster a proxy's client-closing case was, the more its origin-closing case collapsed (~300
# conn/s). So the origin-closing case goes to its own sink, at this offset from the case's port.
ORIGIN_CLOSE_PORT_OFFSET = 1000


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU time of every thread of a process so far."""
    ticks = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:  # a thread that just ended
            continue
        ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def measure(ns: str, proxy: str, pport: int, dst: str, dport: int, secs: float,
            mbytes: int, concurrency: int = 32,
            origin_close_dport: int | None = None,
            cpu_pid: int | None = None) -> dict[str, float]:
    """Bulk throughput with 1 and 8 streams, then connections per second
    with the client closing first and with the origin closing first (to
    origin_close_dport; by default dport + ORIGIN_CLOSE_PORT_OFFSET).

    With cpu_pid (the proxy's process, e.g. VPP) also its CPU time per
    connection in each rate case, in µs ("cps_cpu_us", ...). On a box shared
    with other work the rate is the CPU share the proxy gets divided by what
    a connection costs it, and that share moves between cases; the CPU per
    connection does not, so its ratio is the steadier figure. It includes
    the kernel's work in the proxy's context: with af_packet veths, the
    peers' own TCP processing of what VPP sends (bench/vpp/README.md)."""
    if origin_close_dport is None:
        origin_close_dport = dport + ORIGIN_CLOSE_PORT_OFFSET
    out: dict[str, float] = {}
    for streams in (1, 8):
        r = run_json(ns, *PYTHON_LOADGEN, "bulk", proxy, str(pport), dst, str(dport),
                     str(streams), str(mbytes), str(secs))
        out[f"gbps_{streams}"] = r["bytes"] * 8 / r["seconds"] / 1e9
    for close, key, port in (("client", "cps", dport),
                             ("origin", "cps_origin_close", origin_close_dport)):
        cpu0 = process_cpu_seconds(cpu_pid) if cpu_pid else 0.0
        r = run_json(ns, cpsload_binary(), "cps", proxy, str(pport), dst, str(port),
                     str(concurrency), str(secs), close)
        out[key] = r["connections"] / r["seconds"]
        out[f"{key}_errors"] = r["errors"]
        if cpu_pid:
            out[f"{key}_cpu_us"] = ((process_cpu_seconds(cpu_pid) - cpu0)
                                    / max(r["connections"], 1) * 1e6)
    return out


def add_rx_mode_option(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("--rx-mode", choices=("polling", "interrupt", "adaptive"), default="polling",
                    help="VPP's interface rx mode: polling keeps a core busy even when idle, which on "
                    "a small box is taken from sing-box, the load generators and the kernel")


def set_rx_mode(vpp: Any, interfaces: tuple[str, ...], mode: str) -> None:
    for ifname in interfaces:
        vpp.cli(f"set interface rx-mode {ifname} {mode}")


def row(name: str, r: dict[str, float]) -> str:
    return (f"  {name:<24} 1 stream {r['gbps_1']:6.2f} Gbit/s   8 streams {r['gbps_8']:6.2f} "
            f"Gbit/s   {r['cps']:6.0f} conn/s, origin closing {r['cps_origin_close']:6.0f} "
            f"({int(r['cps_errors'] + r['cps_origin_close_errors'])} errors)"
            + (f", CPU {r['cps_cpu_us']:.0f} / {r['cps_origin_close_cpu_us']:.0f} us/conn"
               if "cps_cpu_us" in r else ""))


def ratio_row(name: str, a: dict[str, float], b: dict[str, float]) -> str:
    def x(key: str) -> str:
        # VPP's hs_apps proxy completed no origin-closing connection here: the origin's FIN never reached the client
        return f"x{a[key] / b[key]:5.2f}" if b[key] else "  n/a"

    cpu = (f", CPU per conn {x('cps_cpu_us')} / {x('cps_origin_close_cpu_us')}"
           if "cps_cpu_us" in a and "cps_cpu_us" in b else "")
    return (f"  {name:<22} 1 stream {x('gbps_1')}   8 streams {x('gbps_8')}   conn/s "
            f"{x('cps')}, origin closing {x('cps_origin_close')}{cpu}")


def bulk_stream(proxy: str, pport: int, dst: str, dport: int, nbytes: int,
                deadline: float) -> int:
    fam = socket.AF_INET6 if ":" in (dst if proxy == "-" else proxy) else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_STREAM)
    s.settimeout(30)
    if proxy == "-":
        s.connect((dst, dport))
    elif os.environ.get("CPSLOAD_HTTP") == "1":  # HTTP CONNECT instead of SOCKS5 (bench_http.py)
        s.connect((proxy, pport))
        host = f"[{dst}]" if ":" in dst else dst
        s.sendall(f"CONNECT {host}:{dport} HTTP/1.1\r\nHost: {host}:{dport}\r\n\r\n".encode())
        head = b""
        while not head.endswith(b"\r\n\r\n"):  # byte by byte: nothing past the response is read
            b = s.recv(1)
            assert b, head
            head += b
        assert head.startswith(b"HTTP/1.") and head[9:10] == b"2", head
    else:
        s.connect((proxy, pport))
        s.sendall(GREETING)
        head = b""
        while len(head) < 2:
            head += s.recv(2 - len(head))
        s.sendall(socks_request(dst, dport))
        while len(head) < 12:
            head += s.recv(12 - len(head))
        assert head[1] == 0 and head[3] == 0, head.hex()
    chunk = b"\0" * (256 << 10)
    sent = 0
    while sent < nbytes and time.monotonic() < deadline:
        sent += s.send(chunk)
    s.close()
    return sent


def bulk(proxy: str, pport: int, dst: str, dport: int, streams: int, mbytes: int,
         secs: float) -> None:
    import concurrent.futures

    t0 = time.monotonic()
    deadline = t0 + secs
    share = (mbytes << 20) // streams
    with concurrent.futures.ThreadPoolExecutor(streams) as ex:
        sent = sum(ex.map(lambda _: bulk_stream(proxy, pport, dst, dport, share, deadline),
                          range(streams)))
    print(json.dumps({"bytes": sent, "seconds": time.monotonic() - t0}))


async def idle(proxy: str, pport: int, dst: str, dport: int, n: int) -> None:
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, n + 100)), hard))
    # a bounded number of handshakes in flight, like a client pool would
    gate = asyncio.Semaphore(64)

    async def one() -> asyncio.StreamWriter | None:
        async with gate:
            try:
                _r, w = await asyncio.wait_for(open_via(proxy, pport, dst, dport), 30)
                return w
            except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError,
                    ConnectionError):
                return None

    writers = await asyncio.gather(*(one() for _ in range(n)))
    opened = [w for w in writers if w is not None]
    print(json.dumps({"open": len(opened), "errors": n - len(opened)}), flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    for w in opened:
        w.close()
    await asyncio.gather(*(w.wait_closed() for w in opened), return_exceptions=True)
    print(json.dumps({"closed": len(opened)}), flush=True)


def main() -> None:
    mode, *a = sys.argv[1:]
    if mode == "bulk":
        bulk(a[0], int(a[1]), a[2], int(a[3]), int(a[4]), int(a[5]), float(a[6]))
    elif mode == "idle":
        asyncio.run(idle(a[0], int(a[1]), a[2], int(a[3]), int(a[4])))
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main()

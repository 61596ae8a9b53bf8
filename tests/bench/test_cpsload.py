# SPDX-License-Identifier: Apache-2.0
# Copyright (c) 2026 vpp-singbox authors
"""bench/vpp/cpsload.c, the connection-rate prober and sink the VPP
benchmarks use, on loopback: its numbers are only worth something if it
counts a full SOCKS5 exchange as a success and anything else as an error."""

from __future__ import annotations

import asyncio
import json
import socket
import struct
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench" / "vpp"
sys.path.insert(0, str(BENCH))
from loadgen import cpsload_binary  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def cpsload() -> str:
    return cpsload_binary()


@pytest.fixture
def sink(cpsload: str) -> Iterator[int]:
    port = free_port()
    p = subprocess.Popen([cpsload, "sink", "127.0.0.1", str(port)])
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                threading.Event().wait(0.02)
        yield port
    finally:
        p.kill()
        p.wait()


class Socks5:
    """A minimal SOCKS5 CONNECT relay (no auth, IPv4) on its own loop, or
    one that refuses every request with the given REP code."""

    def __init__(self, refuse: int = 0) -> None:
        self.refuse = refuse
        self.port = free_port()
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        self.ready.wait(5)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.server = self.loop.run_until_complete(
            asyncio.start_server(self._client, "127.0.0.1", self.port))
        self.ready.set()
        self.loop.run_forever()

    async def _client(self, r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        try:
            await r.readexactly(3)
            w.write(b"\x05\x00")
            req = await r.readexactly(10)
            bnd = b"\x01\x00\x00\x00\x00\x00\x00"
            if self.refuse:
                w.write(bytes([5, self.refuse, 0]) + bnd)
                await w.drain()
                return
            dst = socket.inet_ntoa(req[4:8]), struct.unpack("!H", req[8:10])[0]
            ur, uw = await asyncio.open_connection(*dst)
            w.write(b"\x05\x00\x00" + bnd)

            async def pipe(a: asyncio.StreamReader, b: asyncio.StreamWriter) -> None:
                while data := await a.read(65536):
                    b.write(data)
                    await b.drain()
                b.write_eof()

            await asyncio.gather(pipe(r, uw), pipe(ur, w))
            uw.close()
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            w.close()

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


def probe(cpsload: str, *args: str, close: str = "client") -> dict[str, float]:
    r = subprocess.run([cpsload, "cps", *args, "4", "0.5", close], capture_output=True,
                       text=True, timeout=30, check=True)
    return dict(json.loads(r.stdout))


@pytest.mark.parametrize("close", ["client", "origin"])
def test_direct_exchanges_count(cpsload: str, sink: int, close: str) -> None:
    r = probe(cpsload, "-", "0", "127.0.0.1", str(sink), close=close)
    assert r["connections"] > 10 and r["errors"] == 0, r


@pytest.mark.parametrize("close", ["client", "origin"])
def test_socks5_exchanges_count(cpsload: str, sink: int, close: str) -> None:
    proxy = Socks5()
    try:
        r = probe(cpsload, "127.0.0.1", str(proxy.port), "127.0.0.1", str(sink), close=close)
    finally:
        proxy.close()
    assert r["connections"] > 10 and r["errors"] == 0, r


def test_origin_close_waits_for_the_eof(cpsload: str) -> None:
    """An origin that echoes but never closes: with close=origin no exchange
    completes (the prober waits for the EOF), with close=client all do."""
    port = free_port()
    srv = socket.create_server(("127.0.0.1", port), backlog=64)
    held: list[socket.socket] = []

    def serve() -> None:
        while True:
            try:
                c, _ = srv.accept()
            except OSError:
                return
            c.sendall(c.recv(1))
            held.append(c)

    threading.Thread(target=serve, daemon=True).start()
    try:
        stuck = probe(cpsload, "-", "0", "127.0.0.1", str(port), close="origin")
        ok = probe(cpsload, "-", "0", "127.0.0.1", str(port), close="client")
    finally:
        srv.close()
        for c in held:
            c.close()
    assert stuck["connections"] == 0, stuck
    assert ok["connections"] > 0 and ok["errors"] == 0, ok


def test_refused_connect_is_an_error(cpsload: str, sink: int) -> None:
    proxy = Socks5(refuse=5)
    try:
        r = probe(cpsload, "127.0.0.1", str(proxy.port), "127.0.0.1", str(sink))
    finally:
        proxy.close()
    assert r["connections"] == 0 and r["errors"] > 0, r


def test_no_listener_is_an_error(cpsload: str) -> None:
    r = probe(cpsload, "-", "0", "127.0.0.1", str(free_port()))
    assert r["connections"] == 0 and r["errors"] > 0, r

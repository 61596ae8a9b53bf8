# SPDX-License-Identifier: Apache-2.0
# Copyright (c) 2026 vpp-singbox authors
"""bench/vpp/connect_timeline.py, the packet timeline of client-mode connects:
its capture must see each packet of a connection once (loopback included)
with its flags and payload length, and its labelling must name each packet
by connection and direction, so that a timeline line means what it says."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench" / "vpp"
sys.path.insert(0, str(BENCH))
import connect_timeline as ct  # noqa: E402

SYN, ACK, PSH, FIN = 0x02, 0x10, 0x08, 0x01

# a connect + 1-byte exchange through a proxy on port 1090 (bench_client.SB_PORT), sink port 5205
C, V, O = "198.18.1.2", "198.18.2.1", "198.18.2.2"
SAMPLE: list[ct.Packet] = [
    (10.0000, "client", C, 40000, O, 5205, SYN, 0),
    (10.0008, "client", O, 5205, C, 40000, SYN | ACK, 0),
    (10.0010, "origin", V, 9000, O, 1090, SYN, 0),
    (10.0011, "origin", O, 1090, V, 9000, SYN | ACK, 0),
    (10.0012, "origin", V, 9001, O, 1090, SYN, 0),  # a pool refill: never carries the byte
    (10.0020, "origin", V, 9000, O, 1090, ACK | PSH, 30),
    (10.0021, "origin", O, 1090, V, 9000, ACK | PSH, 2),
    (10.0022, "origin", O, 1090, V, 9000, ACK | PSH, 2),
    (10.0023, "origin", O, 41000, O, 5205, SYN, 0),
    (10.0030, "origin", V, 9000, O, 1090, ACK | PSH, 1),
    (10.0031, "origin", O, 5205, O, 41000, ACK | PSH, 1),
    (10.0040, "client", O, 5205, C, 40000, ACK | PSH, 1),
    (10.0041, "origin", O, 7, O, 8, ACK, 0),  # not the sample's: ignored
]


def test_label_sample_names_connections_directions_and_repeats() -> None:
    got = ct.label_sample(SAMPLE, 5205, C)
    assert got == pytest.approx({
        "client client   -> S": 0.0,
        "client client   <- S.": 0.8,
        "origin upstream -> S": 1.0,
        "origin upstream <- S.": 1.1,
        "origin refill   -> S": 1.2,
        "origin upstream -> P.  len 30": 2.0,
        "origin upstream <- P.  len 2": 2.1,
        "origin upstream <- P.  len 2 #2": 2.2,
        "origin sink     -> S": 2.3,
        "origin upstream -> P.  len 1": 3.0,
        "origin sink     <- P.  len 1": 3.1,
        "client client   <- P.  len 1": 4.0,
    })


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("ip"),
                    reason="needs root and iproute2 (a private network namespace)")
def test_capture_sees_each_loopback_packet_once_with_flags_and_length(tmp_path: Path) -> None:
    ns = f"sbt{uuid.uuid4().hex[:8]}"
    out = tmp_path / "cap.jsonl"
    subprocess.run(["ip", "netns", "add", ns], check=True)
    try:
        subprocess.run(["ip", "netns", "exec", ns, "ip", "link", "set", "lo", "up"], check=True)
        cap = subprocess.Popen(["ip", "netns", "exec", ns, sys.executable, str(BENCH / "connect_timeline.py"),
                                "--capture", str(out)], stdout=subprocess.PIPE, text=True)
        assert cap.stdout is not None and cap.stdout.readline().strip() == "ready"
        # a listener that echoes one byte, a client that sends it: 3-way handshake, 2 data segments
        echo = ("import socket\n"
                "l = socket.create_server(('127.0.0.1', 0)); port = l.getsockname()[1]\n"
                "c = socket.create_connection(('127.0.0.1', port)); s, _ = l.accept()\n"
                "c.sendall(b'x'); s.sendall(s.recv(1)); assert c.recv(1) == b'x'\n"
                "print(c.getsockname()[1], port)\n")
        r = subprocess.run(["ip", "netns", "exec", ns, sys.executable, "-c", echo],
                           capture_output=True, text=True, check=True, timeout=30)
        cport, sport = map(int, r.stdout.split())
        time.sleep(0.3)
        cap.terminate()
        cap.wait(10)
    finally:
        subprocess.run(["ip", "netns", "del", ns], check=False)
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    mine = [r for r in rows if {r[2], r[4]} == {cport, sport}]
    syns = [r for r in mine if r[5] & SYN]
    assert [(r[2], r[4], r[5] & (SYN | ACK)) for r in syns] == [
        (cport, sport, SYN), (sport, cport, SYN | ACK)]
    data = [(r[2], r[4], r[6]) for r in mine if r[6]]
    assert data == [(cport, sport, 1), (sport, cport, 1)]
    times = [r[0] for r in mine]
    assert times == sorted(times) and times[-1] - times[0] < 30

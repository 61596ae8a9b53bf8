"""sd_notify without libsystemd: the datagram systemd's Type=notify waits for, on a real socket."""

from __future__ import annotations

import asyncio
import os
import socket
import time
from pathlib import Path

from singbox_agent.mgmt import systemd


def test_ready_reaches_a_path_socket(tmp_path: Path, monkeypatch: object) -> None:
    path = tmp_path / "notify"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(str(path))
        os.environ["NOTIFY_SOCKET"] = str(path)
        try:
            assert systemd.notify_ready("listening on 0.0.0.0:830")
        finally:
            del os.environ["NOTIFY_SOCKET"]
        message = sock.recv(4096).decode()
    assert message.splitlines() == ["READY=1", f"MAINPID={os.getpid()}", "STATUS=listening on 0.0.0.0:830"]


def test_abstract_socket_and_no_socket() -> None:
    name = f"sbxnotify{os.getpid()}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind("\0" + name)
        assert systemd.notify("STOPPING=1", environ={"NOTIFY_SOCKET": "@" + name})
        assert sock.recv(100) == b"STOPPING=1"
    assert not systemd.notify("READY=1", environ={})
    assert not systemd.notify("READY=1", environ={"NOTIFY_SOCKET": "relative"})
    assert not systemd.notify("READY=1", environ={"NOTIFY_SOCKET": "/nonexistent/socket"})  # logged, not raised


def test_watchdog_period_follows_systemds_variables() -> None:
    assert systemd.watchdog_period({}) is None
    assert systemd.watchdog_period({"WATCHDOG_USEC": "180000000"}) == 45.0  # a quarter of WatchdogSec=3min
    assert systemd.watchdog_period({"WATCHDOG_USEC": "180000000", "WATCHDOG_PID": str(os.getpid())}) == 45.0
    assert systemd.watchdog_period({"WATCHDOG_USEC": "180000000", "WATCHDOG_PID": "1"}) is None  # another process's
    assert systemd.watchdog_period({"WATCHDOG_USEC": "0"}) is None


def test_heartbeat_is_sent_from_the_loop_and_stops_while_it_is_blocked() -> None:
    """The asyncio daemons' heartbeat (systemd.watchdog) is a task of their event loop: a loop blocked by anything
    (here a blocking sleep standing for a call that hangs) sends nothing, so systemd's watchdog fires."""
    name = f"sbxwatchdog{os.getpid()}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind("\0" + name)
        sock.setblocking(False)

        def received() -> list[bytes]:
            out = []
            while True:
                try:
                    out.append(sock.recv(100))
                except BlockingIOError:
                    return out

        async def scenario() -> tuple[list[bytes], list[bytes], list[bytes]]:
            # fewer than the socket's queue holds (net.unix.max_dgram_qlen, 10) between two reads
            heartbeat = systemd.Heartbeat(0.05, environ={"NOTIFY_SOCKET": "@" + name})
            task = asyncio.ensure_future(systemd.watchdog(heartbeat))
            await asyncio.sleep(0.2)
            before = received()
            time.sleep(1.0)  # the loop blocked for 20 periods
            during = received()
            await asyncio.sleep(0.2)
            after = received()
            task.cancel()
            return before, during, after

        before, during, after = asyncio.run(scenario())
    assert before and set(before) == {b"WATCHDOG=1"}
    assert during == []
    assert after and set(after) == {b"WATCHDOG=1"}


def test_heartbeat_at_most_once_a_period_and_none_without_a_watchdog() -> None:
    now = [100.0]
    name = f"sbxbeat{os.getpid()}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind("\0" + name)
        heartbeat = systemd.Heartbeat(environ={"NOTIFY_SOCKET": "@" + name, "WATCHDOG_USEC": "4000000"},
                                      clock=lambda: now[0])
        assert heartbeat.period == 1.0
        assert heartbeat.beat() and not heartbeat.beat()  # a busy loop turning fast sends one per period
        now[0] += 1.0
        assert heartbeat.beat()
        assert sock.recv(100) == b"WATCHDOG=1" and sock.recv(100) == b"WATCHDOG=1"
    assert not systemd.Heartbeat(environ={"NOTIFY_SOCKET": "@" + name}).beat()


def test_status_line_sends_ready_once_then_changes_only() -> None:
    name = f"sbxstatus{os.getpid()}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind("\0" + name)
        sock.setblocking(False)
        os.environ["NOTIFY_SOCKET"] = "@" + name
        try:
            status = systemd.StatusLine()
            assert status.update("waiting for a listen address")  # before READY: STATUS= alone
            assert status.update("listening on 0.0.0.0:830", ready=True)
            assert not status.update("listening on 0.0.0.0:830", ready=True)
            assert status.update("listening on 198.51.100.2:8830")
        finally:
            del os.environ["NOTIFY_SOCKET"]
        messages = [sock.recv(4096).decode() for _ in range(3)]
    assert messages == ["STATUS=waiting for a listen address",
                        f"READY=1\nMAINPID={os.getpid()}\nSTATUS=listening on 0.0.0.0:830",
                        "STATUS=listening on 198.51.100.2:8830"]

"""sd_notify without libsystemd: the datagram systemd's Type=notify waits for, on a real socket."""

from __future__ import annotations

import os
import socket
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

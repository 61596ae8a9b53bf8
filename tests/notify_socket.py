"""A stand-in for systemd's $NOTIFY_SOCKET: an abstract datagram socket collecting what daemons send (READY=1,
STATUS=, WATCHDOG=1), line by line."""

from __future__ import annotations

import os
import socket
import time


class Notifications:
    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.name = f"@sbx-notify-{os.urandom(6).hex()}"  # the value for NOTIFY_SOCKET
        self.sock.bind("\0" + self.name[1:])
        self.sock.setblocking(False)
        self.lines: list[str] = []

    def drain(self) -> list[str]:
        """The lines received since the last look (also appended to `lines`)."""
        new: list[str] = []
        while True:
            try:
                new += self.sock.recv(4096).decode().splitlines()
            except BlockingIOError:
                self.lines += new
                return new

    def wait(self, want: str, timeout: float = 30) -> str:
        """The first line received so far (in `lines`) or within `timeout` that contains `want`."""
        deadline = time.monotonic() + timeout
        while True:
            self.drain()
            for line in self.lines:
                if want in line:
                    return line
            if time.monotonic() > deadline:
                raise AssertionError(f"no notification with {want!r}: {self.lines[-20:]}")
            time.sleep(0.02)

    def close(self) -> None:
        self.sock.close()

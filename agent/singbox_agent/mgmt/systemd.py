"""systemd's readiness protocol (sd_notify(3)) without libsystemd: one datagram to `$NOTIFY_SOCKET`.

The units are `Type=notify`: each daemon calls `notify_ready()` once it serves (listening sockets bound, sysrepo
subscriptions in place), so a unit ordered after it starts only then. Outside systemd (`make run`, tests) there is
no `$NOTIFY_SOCKET` and nothing is sent.

`StatusLine` keeps `systemctl status` following the daemon's state (READY=1 with the first line, STATUS= on each
change). `Heartbeat`/`watchdog` answer the unit's `WatchdogSec=` (WATCHDOG_USEC): WATCHDOG=1 from the loop that
does the daemon's work, so that a loop wedged for longer than WatchdogSec= gets the process killed and restarted.
"""

from __future__ import annotations

import asyncio
import os
import socket
import time
from collections.abc import Callable, Mapping

import structlog

log = structlog.get_logger("systemd")

# A datagram to a manager whose queue is full waits for room: at most this long (the event loop sends them), then
# it is dropped and logged. systemd reads its notify socket at once; a test's socket nobody drains would block.
SEND_TIMEOUT_S = 2.0


def notify(state: str, *, environ: Mapping[str, str] | None = None) -> bool:
    """Send `state` (e.g. "READY=1\\nSTATUS=...") to the service manager; False when there is none to tell.

    `$NOTIFY_SOCKET` is a filesystem path or, starting with "@", an abstract socket name. A failure to send is
    logged and not raised: systemd then times the start out, which says more than a crash here would.
    """
    address = (os.environ if environ is None else environ).get("NOTIFY_SOCKET", "")
    if not address or address[0] not in "/@":
        return False
    target = "\0" + address[1:] if address[0] == "@" else address
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.settimeout(SEND_TIMEOUT_S)
            sock.sendto(state.encode(), target)
    except OSError as exc:
        log.error("cannot notify the service manager", socket=address, error=str(exc))
        return False
    return True


def notify_ready(status: str = "") -> bool:
    """Tell systemd the service is ready (READY=1), with a one-line STATUS= shown by `systemctl status`."""
    line = status.replace("\n", " ")
    return notify("READY=1\nMAINPID=%d" % os.getpid() + (f"\nSTATUS={line}" if line else ""))


def notify_status(status: str) -> bool:
    """Tell systemd what the service does now (STATUS=, one line): for a change after READY=1, so that `systemctl
    status` does not keep showing the state of the start."""
    return notify("STATUS=" + status.replace("\n", " "))


def notify_stopping() -> bool:
    """Tell systemd the service is stopping (STOPPING=1): `systemctl status` says so during a slow shutdown."""
    return notify("STOPPING=1")


class StatusLine:
    """What `systemctl status` shows, kept current: `update(status, ready=True)` sends READY=1 with the first status,
    then STATUS= only when the line changes (a caller may update on every look at its state). Before, each daemon
    sent its status at start only, and it stayed after the state changed ("VPP absent" after VPP came, "listening
    on" an address the endpoint had left)."""

    def __init__(self) -> None:
        self.ready = False
        self.current: str | None = None

    def update(self, status: str, *, ready: bool = False) -> bool:
        line = status.replace("\n", " ")
        if ready and not self.ready:
            self.ready = True
            self.current = line
            return notify_ready(line)
        if line == self.current:
            return False
        self.current = line
        return notify_status(line)


def watchdog_period(environ: Mapping[str, str] | None = None) -> float | None:
    """Seconds between WATCHDOG=1 messages when systemd watches this process (WATCHDOG_USEC, and WATCHDOG_PID if
    set names this process, as sd_watchdog_enabled(3)): a quarter of its timeout, so that the loop may be busy for
    three quarters of it without a miss. None when there is no watchdog."""
    env = os.environ if environ is None else environ
    usec, pid = env.get("WATCHDOG_USEC", ""), env.get("WATCHDOG_PID", "")
    if not usec.isdigit() or int(usec) == 0 or (pid and pid != str(os.getpid())):
        return None
    return int(usec) / 4e6


class Heartbeat:
    """WATCHDOG=1 at most every `period` seconds, sent by `beat()`, which the daemon's loop calls on each turn (at
    least once a `period` when idle): a loop that stops turning stops the heartbeat. No watchdog, no message."""

    def __init__(self, period: float | None = None, *, clock: Callable[[], float] = time.monotonic,
                 environ: Mapping[str, str] | None = None) -> None:
        self.period = watchdog_period(environ) if period is None else period
        self.clock = clock
        self.environ = environ
        self._next = float("-inf")

    def beat(self, *, force: bool = False) -> bool:
        if self.period is None:
            return False
        now = self.clock()
        if now < self._next and not force:
            return False
        self._next = now + self.period
        return notify("WATCHDOG=1", environ=self.environ)


async def watchdog(heartbeat: Heartbeat | None = None) -> None:
    """The heartbeat of an asyncio daemon: a task beating every period on the running loop, until cancelled. When
    anything blocks the loop (a sysrepo call made on it, a busy callback) the task does not run and systemd's
    watchdog fires after WatchdogSec=. Returns at once without a watchdog."""
    heartbeat = heartbeat or Heartbeat()
    if heartbeat.period is None:
        return
    while True:
        heartbeat.beat(force=True)  # the sleep may end a hair before the period by the clock
        await asyncio.sleep(heartbeat.period)

"""systemd's readiness protocol (sd_notify(3)) without libsystemd: one datagram to `$NOTIFY_SOCKET`.

The units are `Type=notify`: each daemon calls `notify_ready()` once it serves (listening sockets bound, sysrepo
subscriptions in place), so a unit ordered after it starts only then. Outside systemd (`make run`, tests) there is
no `$NOTIFY_SOCKET` and nothing is sent.
"""

from __future__ import annotations

import os
import socket

import structlog

log = structlog.get_logger("systemd")


def notify(state: str, *, environ: dict[str, str] | None = None) -> bool:
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

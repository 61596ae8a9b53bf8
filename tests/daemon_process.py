"""A daemon under test started as its own process: wait for a line in its log, stop it as systemd does."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path


def wait_for_log(proc: subprocess.Popen[bytes], log: Path, what: str, timeout: float = 60) -> str:
    """The daemon's log once it holds `what`, the daemon still running (a bounded wait)."""
    deadline = time.monotonic() + timeout
    while True:
        text = log.read_text()
        if what in text:
            return text
        assert proc.poll() is None, f"the daemon exited ({proc.returncode}):\n{text[-4000:]}"
        assert time.monotonic() < deadline, f"no {what!r} in the log:\n{text[-4000:]}"
        time.sleep(0.1)


def stop(proc: subprocess.Popen[bytes], grace: float = 30) -> int:
    """SIGTERM, as systemd stops a unit, then SIGKILL after `grace` seconds; its exit status (-9 when it had to be
    killed)."""
    if proc.poll() is not None:
        return int(proc.returncode)
    proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        return -9

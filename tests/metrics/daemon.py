"""singbox-exporterd as a subprocess over an isolated sysrepo instance: settings, users, start, readiness."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from collections.abc import Callable
from typing import Any

from metricsdata import ADMIN
from singbox_agent.repository import SysrepoInstance


def set_settings(instance: SysrepoInstance, **settings: object) -> None:
    script = (
        "import sysrepo, json, sys\n"
        "with sysrepo.SysrepoConnection() as c:\n"
        "  s = c.start_session('running')\n"
        "  s.replace_config(json.loads(sys.argv[1]), 'vpp-singbox-metrics')\n"
        "  s.stop()\n"
    )
    top = {"metrics-exporter": {"enabled": settings.get("enabled", True),
                                "listen": {"address": settings.get("address", "127.0.0.1"),
                                           "port": settings.get("port", 0)}}}
    subprocess.run([sys.executable, "-c", script, json.dumps(top)], env={**os.environ, **instance.env}, check=True,
                   capture_output=True, timeout=60)


def bootstrap_admin(instance: SysrepoInstance, state: Path) -> None:
    pw = state / "admin.pw"
    pw.write_text(ADMIN[1] + "\n")
    subprocess.run([sys.executable, "-m", "singbox_agent.mgmt", "bootstrap-admin", "--user", ADMIN[0],
                    "--password-file", str(pw)], env={**os.environ, **instance.env}, check=True, capture_output=True,
                   timeout=60)


def wait_ready(ready: Path, proc: subprocess.Popen[bytes], log: Path, want: object, timeout: float = 30) -> dict[str, Any]:
    """The ready file's content once `want(content)` holds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"exporter exited {proc.returncode}:\n{log.read_text()}"
        if ready.exists():
            info = json.loads(ready.read_text())
            if want(info):  # type: ignore[operator]
                return info  # type: ignore[no-any-return]
        time.sleep(0.05)
    raise AssertionError(f"exporter not ready as wanted:\n{log.read_text()}")


def start_daemon(instance: SysrepoInstance, state: Path, stats_socket: Path) -> tuple[subprocess.Popen[bytes], Path,
                                                                                      Path]:
    """The daemon with `state` as its state directory: (process, ready file, log)."""
    ready, log = state / "ready.json", state / "exporter.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "singbox_agent.metrics", "--state-dir", str(state),
                                 "--ready-file", str(ready), "--vpp-stats-socket", str(stats_socket)],
                                env={**os.environ, **instance.env}, stdout=out, stderr=subprocess.STDOUT)
    return proc, ready, log


class ExporterProcess:
    """singbox-exporterd over `state` (its ready file and log there), started and serving; `preexec` runs in the
    child before it starts (resource limits)."""

    def __init__(self, instance: SysrepoInstance, state: Path, *extra: str, notify: str = "",
                 preexec: Callable[[], None] | None = None) -> None:
        self.ready, self.log = state / "ready.json", state / "exporter.log"
        with open(self.log, "wb") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "singbox_agent.metrics", "--state-dir", str(state), "--ready-file",
                 str(self.ready), "--vpp-stats-socket", str(state / "no-vpp.sock"), *extra],
                env={**os.environ, **instance.env, "NOTIFY_SOCKET": notify}, stdout=out, stderr=subprocess.STDOUT,
                preexec_fn=preexec)
        info = wait_ready(self.ready, self.proc, self.log, lambda i: i.get("port"))
        self.url: str = info["metrics_url"]
        self.ca = Path(info["ca_certificate"]) if info["ca_certificate"] else None

    def current_url(self) -> str:
        """The URL the ready file gives now (the port stays while the settings do)."""
        return str(json.loads(self.ready.read_text())["metrics_url"])

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        assert self.proc.wait(timeout=30) == 0, self.log.read_text()[-3000:]
        assert "Traceback" not in self.log.read_text(), self.log.read_text()[-6000:]

"""singbox-exporterd as systemd and its clients see it over time: `systemctl status` (STATUS= to $NOTIFY_SOCKET)
follows the settings, not only the state of the start; and a certificate the RESTCONF server makes again (a new
host name or address, expiry: a new CA) is served without a restart of the exporter."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
from daemon import bootstrap_admin, set_settings, wait_ready
from metricsdata import ADMIN
from singbox_agent.restconf.tls import ensure_certificate


def start(instance, state: Path, notify: str) -> tuple[subprocess.Popen[bytes], Path, Path]:  # type: ignore[no-untyped-def]
    ready, log = state / "ready.json", state / "exporter.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "singbox_agent.metrics", "--state-dir", str(state),
                                 "--ready-file", str(ready), "--vpp-stats-socket", str(state / "no-vpp.sock")],
                                env={**os.environ, **instance.env, "NOTIFY_SOCKET": notify}, stdout=out,
                                stderr=subprocess.STDOUT)
    return proc, ready, log


def statuses(sock: socket.socket) -> list[str]:
    """The STATUS= lines received so far."""
    out: list[str] = []
    while True:
        try:
            message = sock.recv(4096).decode()
        except BlockingIOError:
            return out
        out += [line.removeprefix("STATUS=") for line in message.splitlines() if line.startswith("STATUS=")]


def wait_status(sock: socket.socket, seen: list[str], want: str, timeout: float = 30) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        seen += statuses(sock)
        for status in seen:
            if want in status:
                return status
        time.sleep(0.05)
    raise AssertionError(f"no STATUS with {want!r}: {seen}")


def test_status_follows_the_settings(sysrepo_instance_factory, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    instance = sysrepo_instance_factory()
    state = tmp_path / "state"
    state.mkdir()
    bootstrap_admin(instance, state)
    set_settings(instance, port=0)
    name = f"@sbx-notify-{os.urandom(4).hex()}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind("\0" + name[1:])
        sock.setblocking(False)
        proc, ready, log = start(instance, state, name)
        try:
            info = wait_ready(ready, proc, log, lambda i: i.get("port"))
            seen: list[str] = []
            # the address it listens on, as RESTCONF says it ("serving https://0.0.0.0:443"), not a loopback URL
            assert wait_status(sock, seen, "serving") == f"serving https://127.0.0.1:{info['port']}/metrics"
            seen.clear()
            set_settings(instance, enabled=False)
            wait_ready(ready, proc, log, lambda i: i.get("enabled") is False)
            assert "disabled" in wait_status(sock, seen, "not listening")  # was: "serving ..." still
            seen.clear()
            set_settings(instance, enabled=True, port=0)
            info = wait_ready(ready, proc, log, lambda i: i.get("enabled") and i.get("port"))
            assert wait_status(sock, seen, "serving") == f"serving https://127.0.0.1:{info['port']}/metrics"
        finally:
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=30) == 0, log.read_text()[-3000:]


def test_a_certificate_made_again_is_served_without_a_restart(sysrepo_instance_factory, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    instance = sysrepo_instance_factory()
    state = tmp_path / "state"
    state.mkdir()
    bootstrap_admin(instance, state)
    set_settings(instance, port=0)
    proc, ready, log = start(instance, state, "")
    try:
        info = wait_ready(ready, proc, log, lambda i: i.get("port"))
        ca = Path(info["ca_certificate"])
        assert httpx.get(info["metrics_url"], verify=str(ca), auth=ADMIN, timeout=30).status_code == 200
        old_ca = ca.read_bytes()
        # what the RESTCONF server does on its next start when the host got a name its certificate lacks
        ensure_certificate(state, ["renamed.example"])
        assert ca.read_bytes() != old_ca  # a new CA: clients that copied it trust only the new certificate
        deadline = time.monotonic() + 90  # the exporter looks at the files every 10 s
        while True:
            try:
                url = json.loads(ready.read_text())["metrics_url"]  # port 0: a new bind, a new port
                got = httpx.get(url, verify=str(ca), auth=ADMIN, timeout=30)
                break
            except (httpx.TransportError, ValueError, KeyError) as exc:  # still the old certificate (or rebinding)
                if time.monotonic() > deadline:
                    raise AssertionError(f"still serving the old certificate:\n{log.read_text()[-3000:]}") from exc
                time.sleep(0.5)
        assert got.status_code == 200
        assert "TLS certificate files changed" in log.read_text()
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0, log.read_text()[-3000:]
    assert "Traceback" not in log.read_text()

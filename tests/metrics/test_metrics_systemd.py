"""singbox-exporterd as systemd and its clients see it over time: `systemctl status` (STATUS= to $NOTIFY_SOCKET)
follows the settings, not only the state of the start; and a certificate the RESTCONF server makes again (a new
host name or address, renewal; the same CA) is served without a restart of the exporter."""

from __future__ import annotations

import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import time
from pathlib import Path

import httpx
from cryptography import x509
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


def served_names(url: str, ca: Path) -> list[x509.GeneralName]:
    """The names of the certificate served at `url`, verified against `ca`."""
    host, port = url.split("//")[1].split("/")[0].rsplit(":", 1)
    ctx = ssl.create_default_context(cafile=str(ca))
    with socket.create_connection((host, int(port)), timeout=30) as raw, \
            ctx.wrap_socket(raw, server_hostname=host) as sock:
        der = sock.getpeercert(binary_form=True)
    assert der is not None
    cert = x509.load_der_x509_certificate(der)
    return list(cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value)


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
        # what the RESTCONF server does when the host got a name its certificate lacks (at its start, or on its
        # hourly look): a new certificate from the same CA — clients' ca.pem goes on trusting it
        ensure_certificate(state, ["renamed.example"])
        assert ca.read_bytes() == old_ca
        deadline = time.monotonic() + 90  # the exporter looks at the files every 10 s
        while True:
            try:
                url = json.loads(ready.read_text())["metrics_url"]  # port 0: a new bind, a new port
                if x509.DNSName("renamed.example") in served_names(url, ca):
                    got = httpx.get(url, verify=str(ca), auth=ADMIN, timeout=30)
                    break
            except (OSError, ValueError, KeyError) as exc:  # rebinding
                if time.monotonic() > deadline:
                    raise AssertionError(f"not serving:\n{log.read_text()[-3000:]}") from exc
            if time.monotonic() > deadline:
                raise AssertionError(f"still serving the old certificate:\n{log.read_text()[-3000:]}")
            time.sleep(0.5)
        assert got.status_code == 200
        assert "TLS certificate files changed" in log.read_text()
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0, log.read_text()[-3000:]
    assert "Traceback" not in log.read_text()

"""singbox-exporterd's certificate on an appliance that runs for years, against the running daemon over real TLS
with real files: a renewed pair goes to new connections while the open ones (Prometheus' keep-alive scrape
connection) keep working; the generated certificate is renewed by the exporter itself when RESTCONF does not run;
the two daemons' renewals and reads are serialised by the directory's lock, so a half-renewed pair is never served;
an operator's certificate is never replaced, only warned about (log and STATUS=)."""

from __future__ import annotations

import datetime
import fcntl
import os
import shutil
import socket
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from cryptography import x509
from daemon import ExporterProcess, bootstrap_admin, set_settings
from singbox_agent.mgmt.hostnames import server_names
from singbox_agent.repository import SysrepoInstance
from singbox_agent.restconf import tls
from tlsclient import KeepAlive, lock_waiters, names, served_certificate, wait_for

CHECK_S = "0.2"  # the renewal's look (and the files' follow-up): often, so that the tests wait little


def Daemon(instance: SysrepoInstance, state: Path, *extra: str, notify: str = "") -> ExporterProcess:
    return ExporterProcess(instance, state, "--tls-check-s", CHECK_S, *extra, notify=notify)


@pytest.fixture
def state(sysrepo_instance_factory, tmp_path: Path) -> Iterator[tuple[SysrepoInstance, Path]]:  # type: ignore[no-untyped-def]
    instance = sysrepo_instance_factory()
    state = tmp_path / "state"
    state.mkdir()
    bootstrap_admin(instance, state)
    set_settings(instance, port=0)
    yield instance, state


def served_when(daemon: ExporterProcess, ca: Path, what: str, want: Callable[[x509.Certificate], bool]) -> x509.Certificate:
    """The certificate new connections get, once `want` holds for it."""
    def check() -> x509.Certificate | None:
        cert = served_certificate(daemon.current_url(), ca)
        return cert if want(cert) else None
    got = wait_for(what, check, daemon.log)
    assert isinstance(got, x509.Certificate)
    return got


def pair_elsewhere(state: Path, scratch: Path, hostnames: list[str], now: datetime.datetime | None = None) -> Path:
    """A new server pair signed by `state`'s CA, made in `scratch` (as of `now`): its restconf/ directory."""
    (scratch / "restconf").mkdir(parents=True)
    for name in ("ca.pem", "ca.key"):
        shutil.copy(state / "restconf" / name, scratch / "restconf" / name)
    tls.ensure_certificate(scratch, hostnames, now=now)
    return scratch / "restconf"


def install(made: Path, state: Path) -> None:
    """What a renewal does with the pair: under the directory's lock, the key, then the certificate, by rename."""
    fd = os.open(state / "restconf" / tls.LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        os.replace(made / "server.key", state / "restconf" / "server.key")
        os.replace(made / "server.pem", state / "restconf" / "server.pem")
    finally:
        os.close(fd)


def test_a_keep_alive_scrape_connection_survives_a_renewal_and_new_connections_get_the_new_pair(
        state: tuple[SysrepoInstance, Path]) -> None:
    """The old exporter bound its listener again for new files: the scrape connection was dropped (and the
    port, when 0, changed)."""
    instance, directory = state
    daemon = Daemon(instance, directory)
    try:
        assert daemon.ca is not None
        scrape = KeepAlive(daemon.url, daemon.ca)
        assert scrape.get()[0] == 200
        first = scrape.certificate
        old_ca = daemon.ca.read_bytes()
        # RESTCONF makes the certificate again (the host got a new name): same CA
        tls.ensure_certificate(directory, ["renamed.example"])
        assert daemon.ca.read_bytes() == old_ca
        renewed = served_when(daemon, daemon.ca, "a new connection given the new certificate",
                              lambda c: x509.DNSName("renamed.example") in names(c))
        assert renewed.serial_number != first.serial_number
        status, body = scrape.get()  # the same socket, its handshake's certificate
        assert status == 200 and b"singbox_dataplane_up 0\n" in body
        assert scrape.certificate.serial_number == first.serial_number
        assert scrape.get()[0] == 200
        scrape.close()
        assert "serving them to new connections" in daemon.log.read_text()
    finally:
        daemon.stop()


def test_an_expiring_generated_certificate_is_renewed_by_the_exporter_without_restconf(
        state: tuple[SysrepoInstance, Path], tmp_path: Path) -> None:
    """No RESTCONF server runs. As if 800 days had passed since the certificate was made: it expires in 25 days.
    The old exporter followed the files only and served it until it expired, and after."""
    instance, directory = state
    daemon = Daemon(instance, directory)
    try:
        assert daemon.ca is not None
        old_ca = daemon.ca.read_bytes()
        scrape = KeepAlive(daemon.url, daemon.ca)
        assert scrape.get()[0] == 200
        past = tls.utcnow() - datetime.timedelta(days=800)
        made = pair_elsewhere(directory, tmp_path / "old", server_names("127.0.0.1"), now=past)
        expiring = x509.load_pem_x509_certificate((made / "server.pem").read_bytes())
        assert expiring.not_valid_after_utc < tls.utcnow() + tls.RENEW_BEFORE
        install(made, directory)
        now = tls.utcnow()
        renewed = served_when(daemon, daemon.ca, "the expiring certificate renewed and served",
                              lambda c: c.not_valid_after_utc > now + tls.RENEW_BEFORE and c.serial_number not in (
                                  expiring.serial_number, scrape.certificate.serial_number))
        assert daemon.ca.read_bytes() == old_ca  # the same CA: Prometheus' ca_file goes on working
        assert "expires " in daemon.log.read_text()  # the reason of the renewal
        assert scrape.get()[0] == 200
        # on disk: a whole pair, the one served
        pem = tls.read_pair(directory / "restconf" / "server.pem", directory / "restconf" / "server.key")
        assert x509.load_pem_x509_certificate(pem).serial_number == renewed.serial_number
    finally:
        daemon.stop()


def test_a_half_renewed_pair_is_never_served(state: tuple[SysrepoInstance, Path], tmp_path: Path) -> None:
    """A renewal in progress (here the test's, as RESTCONF's would be): it holds the directory's lock and has
    replaced the key, not yet the certificate. The exporter neither reads the pair nor renews it meanwhile (it
    waits for the lock: /proc/locks shows it), new connections get the old, whole pair, the scrape connection
    works; once the certificate is in place and the lock released, new connections get the new pair. The old
    exporter took no lock: with two writers, keys and certificates of different renewals could be paired."""
    instance, directory = state
    daemon = Daemon(instance, directory)
    try:
        assert daemon.ca is not None
        scrape = KeepAlive(daemon.url, daemon.ca)
        assert scrape.get()[0] == 200
        old = scrape.certificate
        made = pair_elsewhere(directory, tmp_path / "new", ["renamed.example"])
        lock = directory / "restconf" / tls.LOCK_NAME
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            os.replace(made / "server.key", directory / "restconf" / "server.key")
            wait_for("the exporter waiting for the renewal's lock", lambda: lock_waiters(lock), daemon.log)
            for _ in range(3):
                assert served_certificate(daemon.url, daemon.ca).serial_number == old.serial_number
            assert scrape.get()[0] == 200
            os.replace(made / "server.pem", directory / "restconf" / "server.pem")
        finally:
            os.close(fd)
        served_when(daemon, daemon.ca, "the new pair served", lambda c: x509.DNSName("renamed.example") in names(c))
        assert scrape.get()[0] == 200
        tls.read_pair(directory / "restconf" / "server.pem", directory / "restconf" / "server.key")
        assert "cannot serve" not in daemon.log.read_text()  # it never even tried the half pair
    finally:
        daemon.stop()


def statuses(sock: socket.socket) -> list[str]:
    out: list[str] = []
    while True:
        try:
            message = sock.recv(4096).decode()
        except BlockingIOError:
            return out
        out += [line.removeprefix("STATUS=") for line in message.splitlines() if line.startswith("STATUS=")]


def test_an_operators_certificate_near_expiry_is_warned_about_never_replaced(
        state: tuple[SysrepoInstance, Path], tmp_path: Path) -> None:
    """--cert expiring in 25 days: a warning in the log and in the status line, the files left as they are (checked
    every 0.2 s: one warning a day, not one a look). The old exporter said nothing."""
    instance, directory = state
    operator = tmp_path / "operator"
    tls.ensure_certificate(operator, ["metrics.example"], now=tls.utcnow() - datetime.timedelta(days=800))
    cert, key, ca = (operator / "restconf" / name for name in ("server.pem", "server.key", "ca.pem"))
    before = cert.read_bytes(), key.read_bytes()
    name = f"sbx-notify-{os.urandom(4).hex()}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind("\0" + name)
        sock.setblocking(False)
        daemon = Daemon(instance, directory, "--cert", str(cert), "--key", str(key), notify="@" + name)
        try:
            seen: list[str] = []

            def warned() -> str | None:
                seen.extend(statuses(sock))
                return next((s for s in seen if s.startswith("serving ") and "WARNING" in s), None)

            line = wait_for("a STATUS= with the warning", warned, daemon.log)
            assert isinstance(line, str) and "--cert" in line and "expires" in line, line
            served = served_certificate(daemon.url, ca)
            assert served.serial_number == x509.load_pem_x509_certificate(before[0]).serial_number
            assert (cert.read_bytes(), key.read_bytes()) == before
            assert daemon.log.read_text().count("expires soon") == 1
            assert not (directory / "restconf" / "server.pem").exists()  # nothing generated beside it
        finally:
            daemon.stop()

"""The generated RESTCONF certificate over an appliance's years without a restart: made again when it enters its
renewal window (or no longer names the host) while the server runs, signed by the same CA (clients' ca.pem keeps
working; every regeneration made a new CA before), served to new connections while open ones go on. An operator's
--cert is never replaced, only warned about once a day as it nears expiry."""

from __future__ import annotations

import datetime
import socket
import ssl
import time
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from rcserver import bootstrap_users, start_server, stop_server
from structlog.testing import capture_logs

from singbox_agent.mgmt.hostnames import server_names
from singbox_agent.repository import SysrepoInstance
from singbox_agent.restconf import tls

T0 = datetime.datetime(2027, 1, 1, tzinfo=datetime.UTC)


def _cert(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def test_renewal_keeps_the_ca(tmp_path: Path) -> None:
    d = tmp_path / "restconf"
    first = tls.ensure_certificate(tmp_path, ["host-a"], now=T0)
    ca_pem, ca_key = (d / "ca.pem").read_bytes(), (d / "ca.key").read_bytes()
    served = first.certfile.read_bytes()
    assert tls.ensure_certificate(tmp_path, ["host-a"], now=T0 + datetime.timedelta(days=700)) == first
    assert first.certfile.read_bytes() == served  # not due: untouched
    # a new host name, then the renewal window (825 days, renewed 30 days before): a new server certificate, the CA
    # clients hold still signs it
    for now, names in ((T0, ["host-b"]), (T0 + datetime.timedelta(days=800), ["host-b"])):
        tls.ensure_certificate(tmp_path, names, now=now)
        cert = _cert(first.certfile)
        assert first.certfile.read_bytes() != served
        served = first.certfile.read_bytes()
        assert (d / "ca.pem").read_bytes() == ca_pem and (d / "ca.key").read_bytes() == ca_key
        cert.verify_directly_issued_by(_cert(d / "ca.pem"))
        assert x509.DNSName("host-b") in cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        assert cert.not_valid_after_utc > now + datetime.timedelta(days=800)
    # a CA in its own renewal window (10 years) is replaced with it
    tls.ensure_certificate(tmp_path, ["host-b"], now=T0 + datetime.timedelta(days=3640))
    assert (d / "ca.pem").read_bytes() != ca_pem
    _cert(first.certfile).verify_directly_issued_by(_cert(d / "ca.pem"))


def test_renewal_check_is_periodic_and_never_replaces_an_operators_certificate(tmp_path: Path) -> None:
    now = [T0]
    files = tls.ensure_certificate(tmp_path, [], now=T0)
    generated = tls.Renewal(tmp_path, files.certfile, generated=True, clock=lambda: now[0])
    assert not generated.check()
    now[0] = T0 + datetime.timedelta(days=796)
    assert generated.check() and not generated.check()
    # an operator's certificate: the generated files stand for it here, made 825 days before T0 + 825 days
    own = tmp_path / "own.pem"
    own.write_bytes(files.certfile.read_bytes())
    not_after = _cert(own).not_valid_after_utc
    operator = tls.Renewal(tmp_path, own, generated=False, clock=lambda: now[0])
    with capture_logs() as logs:
        now[0] = not_after - datetime.timedelta(days=40)
        assert not operator.check()
        now[0] = not_after - datetime.timedelta(days=20)
        assert not operator.check()
        now[0] += datetime.timedelta(hours=1)
        assert not operator.check()  # warned today already
        now[0] += datetime.timedelta(days=1)
        assert not operator.check()
        now[0] = not_after + datetime.timedelta(days=1)
        assert not operator.check()
    warnings = [entry for entry in logs if entry["log_level"] == "warning"]
    assert [("expires soon" in w["event"], "has expired" in w["event"]) for w in warnings] == [
        (True, False), (True, False), (False, True)], logs
    assert own.read_bytes() == files.certfile.read_bytes()


def _expiring_soon(directory: Path, seconds: float, extra_name: str | None = None) -> None:
    """A server certificate from the generated CA that enters its renewal window `seconds` from now; `extra_name`:
    also named, as the exporter's renewal adds its own listen name."""
    ca = _cert(directory / "ca.pem")
    ca_key = serialization.load_pem_private_key((directory / "ca.key").read_bytes(), password=None)
    assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    names = list(_cert(directory / "server.pem").extensions.get_extension_for_class(x509.SubjectAlternativeName).value)
    if extra_name is not None:
        names.append(x509.DNSName(extra_name))
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
            .issuer_name(ca.subject).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + tls.RENEW_BEFORE + datetime.timedelta(seconds=seconds))
            .add_extension(x509.SubjectAlternativeName(names), critical=False)  # the names the server wants
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    (directory / "server.key").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    (directory / "server.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))


class Connection:
    """One kept-alive HTTPS/1.1 connection trusting ca.pem: the certificate it was served, and requests on it."""

    def __init__(self, port: int, ca: Path) -> None:
        ctx = ssl.create_default_context(cafile=str(ca))
        ctx.set_alpn_protocols(["http/1.1"])
        self.sock = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=30),
                                    server_hostname="127.0.0.1")
        der = self.sock.getpeercert(binary_form=True)
        assert der is not None
        self.cert = x509.load_der_x509_certificate(der)

    def status(self) -> int:
        self.sock.sendall(b"GET /.well-known/host-meta HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = self.sock.recv(4096)
            assert chunk, "connection closed"
            head += chunk
        length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                       if line.lower().startswith(b"content-length:")), 0)
        body = head.split(b"\r\n\r\n", 1)[1]
        while len(body) < length:
            body += self.sock.recv(4096)
        return int(head.split(b" ")[1])

    def close(self) -> None:
        self.sock.close()


def test_a_running_server_renews_and_serves_new_connections_without_dropping_open_ones(
        sysrepo_instance: SysrepoInstance, tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    bootstrap_users(sysrepo_instance, state)
    directory = state / "restconf"
    tls.ensure_certificate(state, server_names("127.0.0.1"))
    ca_pem = (directory / "ca.pem").read_bytes()
    # due 20 s from now: not at start; also naming the exporter's address (its renewals add it)
    _expiring_soon(directory, 20, extra_name="metrics.appliance.example")
    old = _cert(directory / "server.pem")
    server = start_server(sysrepo_instance, state, "--tls-check-s", "0.5")
    try:
        port = int(server.base_url.rsplit(":", 1)[1])
        before = Connection(port, directory / "ca.pem")
        assert before.cert.serial_number == old.serial_number, (before.cert.not_valid_after_utc, server.log()[-2000:])
        assert before.status() == 200
        deadline = time.monotonic() + 60
        while "serving the new TLS certificate" not in server.log():
            assert time.monotonic() < deadline, server.log()[-3000:]
            time.sleep(0.1)
        renewed = _cert(directory / "server.pem")
        assert renewed != old and (directory / "ca.pem").read_bytes() == ca_pem
        # the exporter's name survives RESTCONF's renewal: else the exporter's clients saw a certificate without it
        # until the exporter's next check, and the two daemons took turns dropping each other's names
        assert "metrics.appliance.example" in renewed.extensions.get_extension_for_class(
            x509.SubjectAlternativeName).value.get_values_for_type(x509.DNSName)
        after = Connection(port, directory / "ca.pem")  # the clients' ca.pem still verifies it
        assert after.cert == renewed and after.status() == 200
        assert before.status() == 200  # the open connection goes on, with its certificate
        before.close()
        after.close()
    finally:
        rc = stop_server(server)
    assert rc == 0, server.log()[-3000:]
    assert "Traceback" not in server.log()

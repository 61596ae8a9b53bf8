"""The server's TLS identity: a configured certificate, or a local CA and a server certificate made on first start.

Generated files live in `<state-dir>/restconf/` (0600 keys): `ca.pem` is what clients trust (the ready file names
it as `ca_certificate`), `server.pem` + `server.key` is what the server presents, for 127.0.0.1, ::1, localhost and
the names and addresses the caller gives (host names, listen addresses). The server certificate is made again when
it enters its renewal window (`RENEW_BEFORE` before it expires) or no longer covers those names — at start and, as
the server runs for years, on `Renewal.check` (hourly) — signed by the same CA (`ca.key`) while the CA itself is
outside that window: clients' copy of ca.pem keeps working. Each file is replaced by rename (the exporter follows
them). An operator's certificate (--cert) is never replaced: `Renewal.check` warns, once a day, as it nears expiry.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import ssl
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import structlog

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

log = structlog.get_logger("restconf.tls")

_CA_DAYS = 3650
_SERVER_DAYS = 825
# A generated certificate is made again this long before it expires (a CA: replaced), an operator's is warned about
RENEW_BEFORE = datetime.timedelta(days=30)
CHECK_S = 3600.0  # how often a running server looks at its certificate (`Renewal.check`)
WARN_EVERY = datetime.timedelta(days=1)  # an operator's certificate nearing expiry: one warning a day


def utcnow() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


@dataclass(frozen=True)
class TlsFiles:
    certfile: Path
    keyfile: Path
    ca_certificate: Path | None  # the CA that signed certfile, when we made it


def _write(path: Path, data: bytes, mode: int) -> None:
    """Replaces `path` by rename: a reader (the exporter, a restart) sees the old file or the new one, whole."""
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _write_private(path: Path, data: bytes) -> None:
    _write(path, data, 0o600)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())


def _alt_names(names: list[str]) -> list[x509.GeneralName]:
    """localhost, the loopback addresses and `names`: IP addresses as iPAddress, anything else as dNSName."""
    out: list[x509.GeneralName] = []
    for name in ["localhost", "127.0.0.1", "::1", *names]:
        try:
            entry: x509.GeneralName = x509.IPAddress(ipaddress.ip_address(name))
        except ValueError:
            entry = x509.DNSName(name)
        if entry not in out:
            out.append(entry)
    return out


def _covered(cert: x509.Certificate) -> set[x509.GeneralName]:
    try:
        return set(cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value)
    except x509.ExtensionNotFound:
        return set()


def _load_ca(directory: Path, now: datetime.datetime) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey] | None:
    """The CA in ca.pem with its key in ca.key, when both load, belong together and the CA is outside its renewal
    window; None: a new CA is needed."""
    try:
        ca = x509.load_pem_x509_certificate((directory / "ca.pem").read_bytes())
        key = serialization.load_pem_private_key((directory / "ca.key").read_bytes(), password=None)
    except (OSError, ValueError, TypeError):
        return None
    if not isinstance(key, ec.EllipticCurvePrivateKey) or key.public_key() != ca.public_key():
        return None
    if ca.not_valid_after_utc <= now + RENEW_BEFORE:
        return None
    return ca, key


def renewal_reason(directory: Path, names: list[x509.GeneralName], now: datetime.datetime) -> str | None:
    """Why the generated certificate in `directory` must be made again (None: it need not)."""
    try:
        cert = x509.load_pem_x509_certificate((directory / "server.pem").read_bytes())
        ca = x509.load_pem_x509_certificate((directory / "ca.pem").read_bytes())
        if not (directory / "server.key").exists():
            return "no key"
    except (OSError, ValueError) as exc:
        return f"missing or unreadable: {exc}"
    if cert.issuer != ca.subject:
        return "not signed by ca.pem"
    if cert.not_valid_after_utc <= now + RENEW_BEFORE:
        return f"expires {cert.not_valid_after_utc.isoformat()}"
    if ca.not_valid_after_utc <= now + RENEW_BEFORE:
        return f"its CA expires {ca.not_valid_after_utc.isoformat()}"
    missing = set(names) - _covered(cert)
    if missing:
        return "does not name " + ", ".join(sorted(str(getattr(n, "value", n)) for n in missing))
    return None


def _new_ca(now: datetime.datetime) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "vpp-singbox RESTCONF local CA")])
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=_CA_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False, content_commitment=False, key_encipherment=False, data_encipherment=False,
                key_agreement=False, key_cert_sign=True, crl_sign=True, encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    return ca_cert, ca_key


def ensure_certificate(state_dir: Path, hostnames: list[str] | None = None, *,
                       now: datetime.datetime | None = None) -> TlsFiles:
    """The generated CA + server certificate in `<state-dir>/restconf/`, made now if missing, in its renewal window,
    or not covering `hostnames` (names or addresses, e.g. from `singbox_agent.mgmt.hostnames.server_names`). The
    CA (ca.pem, ca.key) is kept while it is valid beyond the renewal window: only the server certificate changes."""
    files, _ = renew_certificate(state_dir, hostnames, now=now)
    return files


def renew_certificate(state_dir: Path, hostnames: list[str] | None = None, *,
                      now: datetime.datetime | None = None) -> tuple[TlsFiles, str | None]:
    """`ensure_certificate`, also saying why it made a new one (None: the files are as they were)."""
    now = now or utcnow()
    directory = state_dir / "restconf"
    directory.mkdir(parents=True, exist_ok=True)
    directory.chmod(0o700)
    ca_path, cert_path, key_path = directory / "ca.pem", directory / "server.pem", directory / "server.key"
    names = _alt_names(hostnames or [])
    reason = renewal_reason(directory, names, now)
    files = TlsFiles(cert_path, key_path, ca_path)
    if reason is None:
        return files, None

    kept = _load_ca(directory, now)
    if kept is None:
        ca_cert, ca_key = _new_ca(now)
    else:
        ca_cert, ca_key = kept
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(min(now + datetime.timedelta(days=_SERVER_DAYS), ca_cert.not_valid_after_utc))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    if kept is None:
        _write_private(directory / "ca.key", _key_pem(ca_key))
        _write(ca_path, ca_cert.public_bytes(serialization.Encoding.PEM), 0o644)
    # the key first: a reader pairing the new certificate with the old key fails to load and looks again
    _write_private(key_path, _key_pem(key))
    _write(cert_path, cert.public_bytes(serialization.Encoding.PEM), 0o644)
    log.info("TLS certificate made", certfile=str(cert_path), reason=reason, new_ca=kept is None,
             not_after=cert.not_valid_after_utc.isoformat())
    return files, reason


@dataclass
class Renewal:
    """What a running server does with its certificate every `CHECK_S`: `check()` makes the generated one again
    when `renew_certificate` finds it due (returns True: serve the files anew), and for an operator's (`generated`
    False) logs a warning once a day from `RENEW_BEFORE` before its expiry (returns False: never replaced)."""

    state_dir: Path
    certfile: Path
    generated: bool
    names: Callable[[], list[str]] = list
    clock: Callable[[], datetime.datetime] = utcnow
    _warned: datetime.datetime | None = field(default=None, init=False)

    def check(self) -> bool:
        now = self.clock()
        if self.generated:
            _, reason = renew_certificate(self.state_dir, self.names(), now=now)
            return reason is not None
        try:
            not_after = x509.load_pem_x509_certificate(self.certfile.read_bytes()).not_valid_after_utc
        except (OSError, ValueError) as exc:
            log.warning("cannot read the TLS certificate to check its expiry", certfile=str(self.certfile),
                        error=str(exc))
            return False
        if not_after > now + RENEW_BEFORE or (self._warned is not None and now - self._warned < WARN_EVERY):
            return False
        self._warned = now
        log.warning("the TLS certificate (--cert) expires soon: replace it and restart singbox-restconfd"
                    if not_after > now else "the TLS certificate (--cert) has expired: replace it and restart "
                    "singbox-restconfd", certfile=str(self.certfile), not_after=not_after.isoformat())
        return False


def reload_contexts(contexts: list[ssl.SSLContext], certfile: Path, keyfile: Path) -> None:
    """Serves `certfile`/`keyfile` from the live contexts: new connections get them, open ones keep theirs. Loaded
    in a context of its own first, so that a pair that cannot serve raises here and leaves the served one."""
    ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER).load_cert_chain(str(certfile), str(keyfile))
    for ctx in contexts:
        ctx.load_cert_chain(str(certfile), str(keyfile))

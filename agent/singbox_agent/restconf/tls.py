"""The server's TLS identity: a configured certificate, or a local CA and a server certificate made on first start.

Generated files live in `<state-dir>/restconf/` (0600 keys): `ca.pem` is what clients trust (the ready file names
it as `ca_certificate`), `server.pem` + `server.key` is what the server presents, for 127.0.0.1, ::1, localhost and
the names and addresses the caller gives (host names, listen addresses). The server certificate is made again when
it enters its renewal window (`RENEW_BEFORE` before it expires) or no longer covers those names — at start and, as
the server runs for years, on `Renewal.check` (hourly) — signed by the same CA (`ca.key`) while the CA itself is
outside that window: clients' copy of ca.pem keeps working. Each file is replaced by rename (the exporter follows
them). An operator's certificate (--cert) is never replaced: `Renewal.check` warns, once a day, as it nears expiry.

Two daemons renew these files (singbox-restconfd and singbox-exporterd, each on its own hourly look): a renewal
holds an exclusive flock on `<state-dir>/restconf/.renew.lock` from its look at the files to its last rename, and a
server reading the pair to serve it (`read_pair`) holds a shared one, so neither writer can interleave its key with
the other's certificate on disk and no reader pairs a new key with an old certificate.
"""

from __future__ import annotations

import contextlib
import datetime
import fcntl
import ipaddress
import os
import ssl
from collections.abc import Callable, Iterator
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
LOCK_NAME = ".renew.lock"  # in the generated certificate's directory: see the module's docstring


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


@contextlib.contextmanager
def _renewal_lock(directory: Path) -> Iterator[None]:
    """The exclusive lock a renewal holds from its look at the files to its last write (see the docstring)."""
    fd = os.open(directory / LOCK_NAME, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


@contextlib.contextmanager
def _reading_lock(directory: Path) -> Iterator[None]:
    """A shared lock on a generated pair's directory while it is read; no lock where no renewal ever ran (an
    operator's certificate: nothing of ours writes it, and the directory may not be ours to write in)."""
    try:
        fd = os.open(directory / LOCK_NAME, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        yield
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_SH)
        yield
    finally:
        os.close(fd)


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
                      now: datetime.datetime | None = None, keep_names: bool = False) -> tuple[TlsFiles, str | None]:
    """`ensure_certificate`, also saying why it made a new one (None: the files are as they were). `keep_names`: a
    new certificate also names what the current one names — for the second daemon sharing the files (the exporter,
    whose listen address differs from RESTCONF's), so that the two never take turns dropping each other's names."""
    now = now or utcnow()
    directory = state_dir / "restconf"
    directory.mkdir(parents=True, exist_ok=True)
    directory.chmod(0o700)
    with _renewal_lock(directory):
        return _renew_locked(directory, hostnames or [], now, keep_names)


def _renew_locked(directory: Path, hostnames: list[str], now: datetime.datetime,
                  keep_names: bool) -> tuple[TlsFiles, str | None]:
    ca_path, cert_path, key_path = directory / "ca.pem", directory / "server.pem", directory / "server.key"
    names = _alt_names(hostnames)
    reason = renewal_reason(directory, names, now)
    files = TlsFiles(cert_path, key_path, ca_path)
    if reason is None:
        return files, None

    if keep_names:
        try:
            current = x509.load_pem_x509_certificate(cert_path.read_bytes())
        except (OSError, ValueError):
            pass
        else:
            names += [n for n in _covered(current) if n not in names]
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
    False) logs a warning once a day from `RENEW_BEFORE` before its expiry (returns False: never replaced);
    `warning` is that warning while it holds (for the service's status line), else None. `keep_names`: see
    `renew_certificate`; `advice`: what the operator's warning tells them to do."""

    state_dir: Path
    certfile: Path
    generated: bool
    names: Callable[[], list[str]] = list
    clock: Callable[[], datetime.datetime] = utcnow
    keep_names: bool = False
    advice: str = "replace it and restart singbox-restconfd"
    warning: str | None = field(default=None, init=False)
    _warned: datetime.datetime | None = field(default=None, init=False)

    def check(self) -> bool:
        now = self.clock()
        if self.generated:
            _, reason = renew_certificate(self.state_dir, self.names(), now=now, keep_names=self.keep_names)
            return reason is not None
        try:
            not_after = x509.load_pem_x509_certificate(self.certfile.read_bytes()).not_valid_after_utc
        except (OSError, ValueError) as exc:
            log.warning("cannot read the TLS certificate to check its expiry", certfile=str(self.certfile),
                        error=str(exc))
            return False
        if not_after > now + RENEW_BEFORE:
            self.warning = None
            return False
        expired = not_after <= now
        self.warning = (f"the TLS certificate (--cert) {'expired' if expired else 'expires'} "
                        f"{not_after.isoformat()}: {self.advice}")
        if self._warned is not None and now - self._warned < WARN_EVERY:
            return False
        self._warned = now
        log.warning(f"the TLS certificate (--cert) {'has expired' if expired else 'expires soon'}: {self.advice}",
                    certfile=str(self.certfile), not_after=not_after.isoformat())
        return False


def read_pair(certfile: Path, keyfile: Path) -> bytes:
    """The certificate (chain) and its key as one PEM, read as one pair — under the renewal lock's shared side when
    the files are a generated pair — and checked to belong together (raises ssl.SSLError or OSError otherwise).
    Serving from these bytes instead of the paths means that a renewal after the check cannot slip a new key under
    the certificate just checked."""
    with _reading_lock(certfile.parent):
        pem = certfile.read_bytes().rstrip(b"\n") + b"\n" + keyfile.read_bytes()
    _load_pem(ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER), pem)
    return pem


def _load_pem(ctx: ssl.SSLContext, pem: bytes) -> None:
    """`ctx.load_cert_chain` from memory (the ssl module takes paths only): an anonymous memory file, so that the
    key is never written anywhere."""
    fd = os.memfd_create("tls-pair", os.MFD_CLOEXEC)
    try:
        os.write(fd, pem)
        ctx.load_cert_chain(f"/proc/self/fd/{fd}")
    finally:
        os.close(fd)


def load_pair(contexts: list[ssl.SSLContext], pem: bytes) -> None:
    """Serves `pem` (from `read_pair`) from the live contexts: new connections get it, open ones keep theirs."""
    for ctx in contexts:
        _load_pem(ctx, pem)


def reload_contexts(contexts: list[ssl.SSLContext], certfile: Path, keyfile: Path) -> None:
    """Serves `certfile`/`keyfile` from the live contexts: new connections get them, open ones keep theirs. Read
    and checked as one pair first (`read_pair`), so that a pair that cannot serve raises here and leaves the served
    one, and a renewal meanwhile cannot leave a context with a certificate and the other pair's key."""
    load_pair(contexts, read_pair(certfile, keyfile))

"""The server's TLS identity: a configured certificate, or a local CA and a server certificate made on first start.

Generated files live in `<state-dir>/restconf/` (0600 keys): `ca.pem` is what clients trust (the ready file names
it as `ca_certificate`), `server.pem` + `server.key` is what the server presents, for 127.0.0.1, ::1, localhost and
the names and addresses the caller gives (host names, listen addresses). They are reused on later starts while
valid for at least a day and covering those names, and regenerated otherwise.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

_CA_DAYS = 3650
_SERVER_DAYS = 825


@dataclass(frozen=True)
class TlsFiles:
    certfile: Path
    keyfile: Path
    ca_certificate: Path | None  # the CA that signed certfile, when we made it


def _write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)


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


def _still_valid(cert_path: Path, key_path: Path, ca_path: Path, names: list[x509.GeneralName]) -> bool:
    if not (cert_path.exists() and key_path.exists() and ca_path.exists()):
        return False
    try:
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        ca = x509.load_pem_x509_certificate(ca_path.read_bytes())
    except ValueError:
        return False
    soon = datetime.datetime.now(datetime.UTC) + datetime.timedelta(days=1)
    try:
        covered = set(cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value)
    except x509.ExtensionNotFound:
        covered = set()
    return (cert.not_valid_after_utc > soon and ca.not_valid_after_utc > soon and cert.issuer == ca.subject
            and set(names) <= covered)


def ensure_certificate(state_dir: Path, hostnames: list[str] | None = None) -> TlsFiles:
    """The generated CA + server certificate in `<state-dir>/restconf/`, made now if missing, expiring, or not
    covering `hostnames` (names or addresses, e.g. from `singbox_agent.mgmt.hostnames.server_names`)."""
    directory = state_dir / "restconf"
    directory.mkdir(parents=True, exist_ok=True)
    directory.chmod(0o700)
    ca_path, cert_path, key_path = directory / "ca.pem", directory / "server.pem", directory / "server.key"
    names = _alt_names(hostnames or [])
    if _still_valid(cert_path, key_path, ca_path, names):
        return TlsFiles(cert_path, key_path, ca_path)

    now = datetime.datetime.now(datetime.UTC)
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
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=_SERVER_DAYS))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    _write_private(directory / "ca.key", _key_pem(ca_key))
    _write_private(key_path, _key_pem(key))
    ca_path.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return TlsFiles(cert_path, key_path, ca_path)

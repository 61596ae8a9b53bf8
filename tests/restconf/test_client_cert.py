"""Client certificates mapped to users (RFC 8040 §2.5): the subject CN names a user of the shared user store."""

from __future__ import annotations

import datetime
import ssl
from pathlib import Path

import httpx
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from rcserver import ADMIN, bootstrap_users, start_server, stop_server

from singbox_agent.repository import SysrepoInstance


def _tls(ca: str | None, cert: tuple[str, str]) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=ca)
    context.load_cert_chain(*cert)
    return context


def _ca(directory: Path) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test client CA")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                         crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256()))
    path = directory / "client-ca.pem"
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return key, cert, path


def _client(directory: Path, cn: str, ca_key: ec.EllipticCurvePrivateKey, ca: x509.Certificate) -> tuple[str, str]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
            .issuer_name(ca.subject).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=1)).not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    cert_path, key_path = directory / f"{cn}.pem", directory / f"{cn}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return str(cert_path), str(key_path)


def test_client_certificate_names_the_user(sysrepo_instance: SysrepoInstance, tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    bootstrap_users(sysrepo_instance, state)
    ca_key, ca, ca_path = _ca(tmp_path)
    server = start_server(sysrepo_instance, state, "--client-ca", str(ca_path))
    try:
        bob = _client(tmp_path, "bob", ca_key, ca)
        admin = _client(tmp_path, "admin", ca_key, ca)
        ghost = _client(tmp_path, "ghost", ca_key, ca)
        nacm = "/restconf/data/ietf-netconf-acm:nacm"
        for http2 in (False, True):
            with httpx.Client(base_url=server.base_url, verify=_tls(server.ca, bob), http2=http2) as c:
                # no password: the certificate authenticates bob, and NACM treats him as bob
                assert c.get("/restconf/yang-library-version").status_code == 200
                assert c.get(nacm).status_code == 404
                r = c.put("/restconf/data/vpp-singbox:singbox/log-level", content=b'{"vpp-singbox:log-level":"debug"}',
                          headers={"content-type": "application/yang-data+json"})
                assert r.status_code == 403
            with httpx.Client(base_url=server.base_url, verify=_tls(server.ca, admin), http2=http2) as c:
                assert c.get(nacm).status_code == 200
        # a valid certificate for a user that does not exist authenticates nobody: Basic still decides
        with httpx.Client(base_url=server.base_url, verify=_tls(server.ca, ghost)) as c:
            assert c.get("/restconf/yang-library-version").status_code == 401
            assert c.get("/restconf/yang-library-version", auth=ADMIN).status_code == 200
        # no certificate: HTTP Basic as usual
        with httpx.Client(base_url=server.base_url, verify=server.ca or False) as c:
            assert c.get("/restconf/yang-library-version").status_code == 401
            assert c.get(nacm, auth=ADMIN).status_code == 200
    finally:
        assert stop_server(server) == 0, server.log()[-3000:]


def test_client_certificate_from_another_ca_is_refused(sysrepo_instance: SysrepoInstance, tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    bootstrap_users(sysrepo_instance, state)
    (tmp_path / "ours").mkdir()
    (tmp_path / "theirs").mkdir()
    _, _, ca_path = _ca(tmp_path / "ours")
    other_key, other_ca, _ = _ca(tmp_path / "theirs")
    server = start_server(sysrepo_instance, state, "--client-ca", str(ca_path))
    try:
        forged = _client(tmp_path / "theirs", "admin", other_key, other_ca)
        with httpx.Client(base_url=server.base_url, verify=_tls(server.ca, forged)) as c:
            try:
                r = c.get("/restconf/data/ietf-netconf-acm:nacm")
            except httpx.HTTPError:
                return  # the TLS handshake refused the certificate
            assert r.status_code == 401
    finally:
        assert stop_server(server) == 0, server.log()[-3000:]

"""Client certificates mapped to users (RFC 8040 §2.5) by RFC 7407 cert-to-name, with real TLS client certificates."""

from __future__ import annotations

import datetime
import hashlib
import ipaddress
import json
import ssl
from pathlib import Path

import httpx
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from rcserver import ADMIN, BOB, bootstrap_users, start_server, stop_server

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


def _client(
    directory: Path, label: str, ca_key: ec.EllipticCurvePrivateKey, ca: x509.Certificate, *, cn: str | None = None,
    sans: list[x509.GeneralName] | None = None,
) -> tuple[str, str]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn or label)])
    builder = (x509.CertificateBuilder().subject_name(subject)
               .issuer_name(ca.subject).public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - datetime.timedelta(minutes=1)).not_valid_after(now + datetime.timedelta(days=1))
               .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
               .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
               .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False))
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    cert = builder.sign(ca_key, hashes.SHA256())
    cert_path, key_path = directory / f"{label}.pem", directory / f"{label}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return str(cert_path), str(key_path)


def _fp(pem_path: str | Path, algorithm: str = "sha256") -> str:
    """RFC 6353 tls-fingerprint: HashAlgorithm octet (sha1 2, sha256 4), then the hash of the DER certificate."""
    der = x509.load_pem_x509_certificate(Path(pem_path).read_bytes()).public_bytes(serialization.Encoding.DER)
    octet = {"sha1": 2, "sha256": 4}[algorithm]
    return ":".join(f"{b:02X}" for b in bytes([octet]) + hashlib.new(algorithm, der).digest())


MAPPINGS = "/restconf/data/vpp-singbox-restconf-server:restconf-server/client-identity-mappings"
NACM = "/restconf/data/ietf-netconf-acm:nacm"
PROBE = "/restconf/yang-library-version"
JSON_H = {"content-type": "application/yang-data+json"}


def _entry(id_: int, fingerprint: str, map_type: str, name: str | None = None) -> dict[str, object]:
    entry: dict[str, object] = {"id": id_, "fingerprint": fingerprint, "map-type": f"ietf-x509-cert-to-name:{map_type}"}
    if name is not None:
        entry["name"] = name
    return entry


def _configure(admin: httpx.Client, *entries: dict[str, object]) -> None:
    """Replace the whole cert-to-name list, through RESTCONF itself."""
    body = {"vpp-singbox-restconf-server:client-identity-mappings": {"cert-to-name": list(entries)}}
    r = admin.put(MAPPINGS, content=json.dumps(body), headers=JSON_H)
    assert r.status_code in (201, 204), r.text


def _add_user(admin: httpx.Client, name: str) -> None:
    r = admin.post("/restconf/data/ietf-system:system/authentication", headers=JSON_H,
                   content=json.dumps({"ietf-system:user": [{"name": name}]}))
    assert r.status_code == 201, r.text


def test_cert_to_name_map_types_order_and_refusal(sysrepo_instance: SysrepoInstance, tmp_path: Path) -> None:
    """Every RFC 7407 map type through real TLS client certificates: the mapped name must be exactly the expected
    user (it authenticates only once that user exists), entries go by id, an entry whose map type yields nothing
    falls through to the next, and a certificate nothing maps gets 401 unless HTTP Basic is given."""
    state = tmp_path / "state"
    state.mkdir()
    bootstrap_users(sysrepo_instance, state)
    ca_key, ca, ca_path = _ca(tmp_path)
    (tmp_path / "other").mkdir()
    _, _, other_ca_path = _ca(tmp_path / "other")
    server = start_server(sysrepo_instance, state, "--client-ca", str(ca_path))
    certs = {
        "plain": _client(tmp_path, "plain", ca_key, ca, cn="erin"),
        "mail": _client(tmp_path, "mail", ca_key, ca, sans=[x509.RFC822Name("Carol@Example.COM")]),
        "dns": _client(tmp_path, "dns", ca_key, ca, sans=[x509.DNSName("Dave.Example.NET")]),
        "ip4": _client(tmp_path, "ip4", ca_key, ca, sans=[x509.IPAddress(ipaddress.ip_address("198.18.0.7"))]),
        "ip6": _client(tmp_path, "ip6", ca_key, ca, sans=[x509.IPAddress(ipaddress.ip_address("2001:db8::7"))]),
        "any": _client(tmp_path, "any", ca_key, ca, sans=[
            x509.UniformResourceIdentifier("https://ignored.example"), x509.DNSName("any.example.org"),
            x509.RFC822Name("not-first@example.org")]),
    }
    ca_fp = _fp(ca_path)
    clients: dict[str, httpx.Client] = {}
    try:
        for label, pair in certs.items():
            clients[label] = httpx.Client(base_url=server.base_url, verify=_tls(server.ca, pair), timeout=30,
                                          http2=label == "plain")
        admin = server.client()
        clients["admin"] = admin

        def status(label: str, path: str = PROBE, **kw: object) -> int:
            return clients[label].get(path, **kw).status_code  # type: ignore[arg-type]

        _add_user(admin, "erin")
        # nothing configured: a certificate maps nobody, even with a CN naming an existing user
        assert status("plain") == 401
        assert status("plain", auth=ADMIN) == 200 and status("plain", NACM, auth=ADMIN) == 200
        # common-name, through the CA's fingerprint (any certificate the CA issued)
        _configure(admin, _entry(10, ca_fp, "common-name"))
        assert status("plain") == 200 and status("plain", NACM) == 404  # erin, not an admin
        assert status("dns") == 401  # its CN "dns" is nobody
        # san-rfc822-name: the host part lower-cased, the local part kept
        _configure(admin, _entry(1, ca_fp, "san-rfc822-name"))
        assert status("mail") == 401
        _add_user(admin, "Carol@example.com")
        assert status("mail") == 200
        assert status("dns") == 401 and status("plain") == 401  # no rfc822Name: nothing maps them
        # san-dns-name, lower-cased
        _configure(admin, _entry(1, ca_fp, "san-dns-name"))
        assert status("dns") == 401
        _add_user(admin, "dave.example.net")
        assert status("dns") == 200 and status("mail") == 401
        # san-ip-address: dotted quad, and 32 lower-case hex digits for IPv6
        _configure(admin, _entry(1, ca_fp, "san-ip-address"))
        assert status("ip4") == 401 and status("ip6") == 401
        _add_user(admin, "198.18.0.7")
        _add_user(admin, "20010db8000000000000000000000007")
        assert status("ip4") == 200 and status("ip6") == 200 and status("dns") == 401
        # san-any: the first rfc822Name/dNSName/iPAddress in certificate order (the URI is skipped)
        _configure(admin, _entry(1, ca_fp, "san-any"))
        assert status("any") == 401
        _add_user(admin, "any.example.org")
        assert status("any") == 200 and status("dns") == 200 and status("ip4") == 200 and status("plain") == 401
        # specified, by the client certificate's own SHA-1 fingerprint
        _configure(admin, _entry(1, _fp(certs["plain"][0], "sha1"), "specified", "admin"))
        assert status("plain", NACM) == 200 and status("dns") == 401
        # order by id, not by position: the lower id wins
        _configure(admin, _entry(7, ca_fp, "specified", "admin"), _entry(5, _fp(certs["plain"][0]), "specified", "bob"))
        assert status("plain") == 200 and status("plain", NACM) == 404  # bob (id 5)
        assert status("dns", NACM) == 200  # only id 7 matches it: admin
        _configure(admin, _entry(7, ca_fp, "specified", "admin"), _entry(9, _fp(certs["plain"][0]), "specified", "bob"))
        assert status("plain", NACM) == 200  # now id 7 comes first: admin
        # an entry whose map type yields no name falls through to the next matching one
        _configure(admin, _entry(1, ca_fp, "san-dns-name"), _entry(2, ca_fp, "specified", "bob"))
        assert status("plain") == 200 and status("plain", NACM) == 404  # no dNSName -> entry 2: bob
        assert status("dns") == 200  # entry 1: dave.example.net
        # no entry matches (another CA's fingerprint): 401, Basic still decides
        _configure(admin, _entry(1, _fp(other_ca_path), "specified", "admin"))
        assert status("plain") == 401 and status("plain", NACM) == 401
        assert status("plain", NACM, auth=BOB) == 404 and status("plain", NACM, auth=ADMIN) == 200
        r = clients["plain"].get(PROBE)
        assert r.json()["ietf-restconf:errors"]["error"][0]["error-tag"] == "access-denied"
        # the mapping is configuration only an administrator may change
        bob = server.client(auth=BOB)
        clients["bob"] = bob
        r = bob.put(MAPPINGS, headers=JSON_H, content=json.dumps(
            {"vpp-singbox-restconf-server:client-identity-mappings": {"cert-to-name": [
                _entry(1, ca_fp, "specified", "admin")]}}))
        assert r.status_code == 403, r.text
        assert status("plain") == 401
    finally:
        for c in clients.values():
            c.close()
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
        with httpx.Client(base_url=server.base_url, verify=server.ca or False, auth=ADMIN) as admin:
            # even an entry that would map anything to admin cannot help a certificate TLS did not verify
            _configure(admin, _entry(1, _fp(forged[0]), "specified", "admin"))
        with httpx.Client(base_url=server.base_url, verify=_tls(server.ca, forged)) as c:
            try:
                r = c.get("/restconf/data/ietf-netconf-acm:nacm")
            except httpx.HTTPError:
                return  # the TLS handshake refused the certificate
            assert r.status_code == 401
    finally:
        assert stop_server(server) == 0, server.log()[-3000:]

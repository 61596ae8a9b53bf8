"""RFC 7407 cert-to-name as a pure function: tables of certificates, no server (the server test is in
test_client_cert.py)."""

from __future__ import annotations

import datetime
import hashlib
import ipaddress

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from singbox_agent.restconf.clientcert import MapEntry, PeerChain, map_certificate, parse_fingerprint

NOW = datetime.datetime.now(datetime.UTC)
CA_KEY = ec.generate_private_key(ec.SECP256R1())
CA = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ca")]))
      .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ca")])).public_key(CA_KEY.public_key())
      .serial_number(1).not_valid_before(NOW).not_valid_after(NOW + datetime.timedelta(days=1))
      .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True).sign(CA_KEY, hashes.SHA256()))
CA_DER = CA.public_bytes(serialization.Encoding.DER)


def leaf(cns: list[str], sans: list[x509.GeneralName]) -> bytes:
    builder = (x509.CertificateBuilder()
               .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn) for cn in cns]))
               .issuer_name(CA.subject).public_key(ec.generate_private_key(ec.SECP256R1()).public_key())
               .serial_number(x509.random_serial_number()).not_valid_before(NOW)
               .not_valid_after(NOW + datetime.timedelta(days=1)))
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    return builder.sign(CA_KEY, hashes.SHA256()).public_bytes(serialization.Encoding.DER)


def fp(der: bytes, algorithm: str = "sha256") -> bytes:
    octet = {"md5": 1, "sha1": 2, "sha224": 3, "sha256": 4, "sha384": 5, "sha512": 6}[algorithm]
    return bytes([octet]) + hashlib.new(algorithm, der).digest()


PLAIN = leaf(["ou-level", "erin"], [])
MAIL = leaf(["m"], [x509.RFC822Name("Carol@Example.COM"), x509.RFC822Name("second@example.com")])
DNS = leaf(["d"], [x509.DNSName("Dave.Example.NET")])
IP6 = leaf(["i"], [x509.IPAddress(ipaddress.ip_address("2001:DB8::7"))])
NET = leaf(["n"], [x509.IPAddress(ipaddress.ip_network("198.18.0.0/15"))])
ANY = leaf(["a"], [x509.UniformResourceIdentifier("https://x.example"), x509.IPAddress(ipaddress.ip_address("198.18.0.9")),
                   x509.DNSName("later.example")])


def chain(der: bytes) -> PeerChain:
    return PeerChain((der, CA_DER))


@pytest.mark.parametrize(
    ("cert", "entries", "expected"),
    [
        # by id, whatever order the list comes in
        (PLAIN, [MapEntry(9, fp(CA_DER), "specified", "late"), MapEntry(2, fp(PLAIN), "specified", "early")],
         ("early", 2)),
        (PLAIN, [MapEntry(2, fp(CA_DER), "specified", "ca-wide"), MapEntry(9, fp(PLAIN), "specified", "own")],
         ("ca-wide", 2)),
        # a map type that yields nothing falls through; a fingerprint that matches nothing is skipped
        (PLAIN, [MapEntry(1, fp(CA_DER), "san-dns-name"), MapEntry(2, fp(MAIL), "specified", "x"),
                 MapEntry(3, fp(CA_DER), "common-name")], ("erin", 3)),
        (PLAIN, [MapEntry(1, fp(MAIL), "specified", "x")], None),
        (PLAIN, [], None),
        # every hash algorithm of the registry; an unknown one matches nothing
        (PLAIN, [MapEntry(1, fp(PLAIN, "md5"), "specified", "m5")], ("m5", 1)),
        (PLAIN, [MapEntry(1, fp(PLAIN, "sha512"), "specified", "s5")], ("s5", 1)),
        (PLAIN, [MapEntry(1, fp(CA_DER, "sha224"), "specified", "s2")], ("s2", 1)),
        (PLAIN, [MapEntry(1, bytes([7]) + hashlib.sha256(PLAIN).digest(), "specified", "x")], None),
        (PLAIN, [MapEntry(1, fp(PLAIN)[:-1], "specified", "x")], None),
        # normalisations of RFC 7407 / RFC 6353
        (MAIL, [MapEntry(1, fp(CA_DER), "san-rfc822-name")], ("Carol@example.com", 1)),
        (DNS, [MapEntry(1, fp(CA_DER), "san-dns-name")], ("dave.example.net", 1)),
        (IP6, [MapEntry(1, fp(CA_DER), "san-ip-address")], ("20010db8000000000000000000000007", 1)),
        (NET, [MapEntry(1, fp(CA_DER), "san-ip-address"), MapEntry(2, fp(CA_DER), "san-any")], None),
        (ANY, [MapEntry(1, fp(CA_DER), "san-any")], ("198.18.0.9", 1)),
        (ANY, [MapEntry(1, fp(CA_DER), "san-dns-name")], ("later.example", 1)),
        (PLAIN, [MapEntry(1, fp(CA_DER), "common-name")], ("erin", 1)),  # the most specific CN
        (PLAIN, [MapEntry(1, fp(CA_DER), "specified", ""), MapEntry(2, fp(CA_DER), "some-other-module-type")], None),
    ],
)
def test_map_certificate(cert: bytes, entries: list[MapEntry], expected: tuple[str, int] | None) -> None:
    assert map_certificate(chain(cert), entries) == expected


def test_only_the_presented_chain_counts() -> None:
    assert map_certificate(PeerChain(()), [MapEntry(1, fp(CA_DER), "common-name")]) is None
    # the CA's entry applies only when the CA is in the verified chain
    assert map_certificate(PeerChain((PLAIN,)), [MapEntry(1, fp(CA_DER), "common-name")]) is None


def test_parse_fingerprint() -> None:
    assert parse_fingerprint("04:aB:00") == b"\x04\xab\x00"

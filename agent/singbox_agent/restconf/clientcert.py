"""Client certificates mapped to users (RFC 8040 §2.5) by RFC 7407 cert-to-name.

With `--client-ca FILE` the TLS layer asks for a client certificate and verifies it against FILE (optional, so HTTP
Basic still works). The mapping is configuration: `/vpp-singbox-restconf-server:restconf-server/
client-identity-mappings/cert-to-name` (RFC 7407's grouping, as ietf-netconf-server uses it). Entries are tried in
ascending id; an entry applies when its fingerprint (RFC 6353: one TLS HashAlgorithm octet, then the hash of the
DER certificate) is that of the presented certificate or of a CA certificate in its verified chain; the first
entry whose map-type yields a name decides. The name must be a user of the shared store. A certificate nothing maps
authenticates nobody (then HTTP Basic decides; without it, 401).

`map_certificate` is the pure part (tables of certificates in tests); `CertToName` keeps the configured entries,
reloaded after each commit of that module. Hypercorn verifies the certificate but does not put it in the ASGI
scope, so `install()` wraps its asyncio connection handler to remember each TLS connection's verified chain by the
connection's client address (unique while the connection lives), and `peer_chain(scope)` looks it up.
"""

from __future__ import annotations

import hashlib
import ipaddress
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import structlog
import sysrepo
from cryptography import x509
from cryptography.x509.oid import NameOID
from hypercorn.asyncio import tcp_server
from hypercorn.utils import parse_socket_addr
from sysrepo.session import SysrepoSession

log = structlog.get_logger("restconf")

MODULE = "vpp-singbox-restconf-server"
MAPPINGS_XPATH = f"/{MODULE}:restconf-server/client-identity-mappings"

# RFC 5246 §7.4.1.4.1 HashAlgorithm registry, the first octet of a tls-fingerprint (RFC 6353).
_HASHES: dict[int, Callable[[bytes], Any]] = {
    1: hashlib.md5,
    2: hashlib.sha1,
    3: hashlib.sha224,
    4: hashlib.sha256,
    5: hashlib.sha384,
    6: hashlib.sha512,
}


@dataclass(frozen=True)
class PeerChain:
    """A client's verified certificate chain, DER: the client's own certificate first, the trust anchor last."""

    certificates: tuple[bytes, ...]


@dataclass(frozen=True)
class MapEntry:
    """One cert-to-name list entry (RFC 7407)."""

    id: int
    fingerprint: bytes  # hash algorithm octet + digest
    map_type: str  # identity name without prefix: specified, san-rfc822-name, san-dns-name, san-ip-address, ...
    name: str | None = None  # map-type specified


def parse_fingerprint(text: str) -> bytes:
    """`04:AB:...` (yang:hex-string) -> bytes."""
    return bytes(int(octet, 16) for octet in text.split(":"))


def fingerprint(der: bytes, algorithm: int) -> bytes | None:
    """The tls-fingerprint of a DER certificate with the given HashAlgorithm; None for an unknown algorithm."""
    hasher = _HASHES.get(algorithm)
    return bytes([algorithm]) + hasher(der).digest() if hasher is not None else None


def _matches(entry: MapEntry, chain: PeerChain) -> bool:
    if len(entry.fingerprint) < 2:
        return False
    return any(fingerprint(der, entry.fingerprint[0]) == entry.fingerprint for der in chain.certificates)


def _sans(cert: x509.Certificate) -> list[x509.GeneralName]:
    try:
        ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        return []
    return list(ext.value)


def _rfc822(value: str) -> str:
    """RFC 7407 san-rfc822-name: the host part is lower-cased, the local part kept."""
    local, at, host = value.rpartition("@")
    return f"{local}@{host.lower()}" if at else value


def _ip(value: ipaddress.IPv4Address | ipaddress.IPv6Address | Any) -> str | None:
    """RFC 7407 san-ip-address: dotted quad for IPv4, 32 lower-case hex digits without colons for IPv6."""
    if isinstance(value, ipaddress.IPv4Address):
        return str(value)
    if isinstance(value, ipaddress.IPv6Address):
        return value.packed.hex()
    return None  # an iPAddress SAN holding a network (name constraints form) names nobody


def _san_name(general: x509.GeneralName) -> str | None:
    if isinstance(general, x509.RFC822Name):
        return _rfc822(general.value)
    if isinstance(general, x509.DNSName):
        return general.value.lower()
    if isinstance(general, x509.IPAddress):
        return _ip(general.value)
    return None


_SAN_TYPES: dict[str, type[x509.GeneralName]] = {
    "san-rfc822-name": x509.RFC822Name,
    "san-dns-name": x509.DNSName,
    "san-ip-address": x509.IPAddress,
}


def _name_by(entry: MapEntry, cert: x509.Certificate) -> str | None:
    """The name an entry's map-type gives the client certificate, or None (then the next entry is tried)."""
    if entry.map_type == "specified":
        return entry.name or None
    if entry.map_type in _SAN_TYPES:
        wanted = _SAN_TYPES[entry.map_type]
        # RFC 6353: the first subjectAltName of that type.
        for general in _sans(cert):
            if isinstance(general, wanted):
                return _san_name(general)
        return None
    if entry.map_type == "san-any":
        # RFC 6353: the first rfc822Name, dNSName or iPAddress, in the certificate's order.
        for general in _sans(cert):
            name = _san_name(general)
            if name is not None:
                return name
        return None
    if entry.map_type == "common-name":
        attrs = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
        return str(attrs[-1].value) if attrs else None  # the most specific CN
    return None  # a map type this server does not know (another module's identity) maps nothing


def map_certificate(chain: PeerChain, entries: list[MapEntry]) -> tuple[str, int] | None:
    """RFC 7407 cert-to-name: (name, id of the entry that gave it), or None when no entry maps the certificate."""
    if not chain.certificates:
        return None
    cert = x509.load_der_x509_certificate(chain.certificates[0])
    for entry in sorted(entries, key=lambda e: e.id):
        if not _matches(entry, chain):
            continue
        name = _name_by(entry, cert)
        if name:
            return name, entry.id
    return None


class CertToName:
    """The configured cert-to-name entries, read from running and reloaded after each commit of the module."""

    def __init__(self, connection: sysrepo.SysrepoConnection) -> None:
        self._conn = connection
        self._lock = threading.Lock()
        self._entries: list[MapEntry] | None = None
        self._session = connection.start_session("running")
        # sysrepo waits for done callbacks: the next request after a commit already sees the new list.
        self._session.subscribe_module_change_unsafe(
            MODULE, f"/{MODULE}:*", self._changed, passive=True, done_only=True
        )

    def _changed(self, session: SysrepoSession, event: str, req_id: int, private_data: Any) -> None:
        with self._lock:
            self._entries = None

    def entries(self) -> list[MapEntry]:
        with self._lock:
            if self._entries is not None:
                return self._entries
        loaded = self._load()
        with self._lock:
            self._entries = loaded
        return loaded

    def _load(self) -> list[MapEntry]:
        data = self._session.get_data(MAPPINGS_XPATH)
        mappings = data.get("restconf-server", {}).get("client-identity-mappings", {})
        out: list[MapEntry] = []
        for item in mappings.get("cert-to-name", []):
            map_type = str(item["map-type"]).rpartition(":")[2]
            try:
                fp = parse_fingerprint(str(item["fingerprint"]))
            except ValueError:
                continue  # the type's pattern makes this unreachable
            out.append(MapEntry(int(item["id"]), fp, map_type, item.get("name")))
        return out

    def close(self) -> None:
        self._session.stop()


_ENCODING_DER: int = getattr(ssl, "_ssl").ENCODING_DER  # not re-exported by ssl; Certificate.public_bytes wants it
_PEERS: dict[tuple[str, int], PeerChain] = {}
_installed = False


def install() -> None:
    global _installed
    if _installed:
        return
    original = tcp_server.TCPServer.run

    async def run(self: tcp_server.TCPServer) -> None:
        key: tuple[str, int] | None = None
        ssl_object = self.writer.get_extra_info("ssl_object")
        sock = self.writer.get_extra_info("socket")
        if ssl_object is not None and sock is not None:
            try:
                # Verified chain (leaf first): only certificates TLS checked against the client trust anchors.
                chain = _der_chain(ssl_object)
                address = parse_socket_addr(sock.family, sock.getpeername())
            except (OSError, ValueError, ssl.SSLError):
                log.warning("client certificate chain unavailable", exc_info=True)
                chain, address = (), None
            if chain and address:
                key = (str(address[0]), int(address[1]))
                _PEERS[key] = PeerChain(chain)
        try:
            await original(self)
        finally:
            if key is not None:
                _PEERS.pop(key, None)

    tcp_server.TCPServer.run = run  # type: ignore[method-assign]
    _installed = True


def _der_chain(ssl_object: Any) -> tuple[bytes, ...]:
    """The verified chain as DER. ssl.SSLObject (asyncio's) gives DER bytes; ssl.SSLSocket gives Certificate
    objects: accept both."""
    verified = ssl_object.get_verified_chain() or []
    return tuple(c if isinstance(c, bytes) else c.public_bytes(_ENCODING_DER) for c in verified)


def peer_chain(scope: dict[str, Any]) -> PeerChain | None:
    client = scope.get("client")
    if not client:
        return None
    return _PEERS.get((str(client[0]), int(client[1])))

"""Client certificates mapped to users (RFC 8040 §2.5, the common-name map type of RFC 7589's cert-to-name).

With `--client-ca FILE` the TLS layer asks for a client certificate and verifies it against FILE (optional, so
HTTP Basic still works). A verified certificate authenticates as the user named by its subject common name, if
that user exists in the shared user store; then NACM applies to that user as to any other.

Hypercorn verifies the certificate but does not put it in the ASGI scope, so `install()` wraps its asyncio
connection handler to remember each TLS connection's verified peer certificate by the connection's client
address (unique while the connection lives), and `peer_certificate(scope)` looks it up.
"""

from __future__ import annotations

from typing import Any

from hypercorn.asyncio import tcp_server
from hypercorn.utils import parse_socket_addr

_PEERS: dict[tuple[str, int], dict[str, Any]] = {}
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
                cert = ssl_object.getpeercert()
                address = parse_socket_addr(sock.family, sock.getpeername())
            except OSError:
                cert, address = None, None
            if cert and address:
                key = (str(address[0]), int(address[1]))
                _PEERS[key] = cert
        try:
            await original(self)
        finally:
            if key is not None:
                _PEERS.pop(key, None)

    tcp_server.TCPServer.run = run  # type: ignore[method-assign]
    _installed = True


def peer_certificate(scope: dict[str, Any]) -> dict[str, Any] | None:
    client = scope.get("client")
    if not client:
        return None
    return _PEERS.get((str(client[0]), int(client[1])))


def common_name(cert: dict[str, Any]) -> str | None:
    """The subject CN of a certificate as `ssl.SSLSocket.getpeercert()` returns it."""
    for rdn in cert.get("subject", ()):
        for key, value in rdn:
            if key == "commonName":
                return str(value)
    return None

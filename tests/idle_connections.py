"""Connections that hold a server's file descriptors without ever authenticating, from many loopback addresses
(127.0.0.0/8 is all ours: each address is a source of its own to the servers' connection limits), and what the
server did with them. Shared by the exporter's, the NETCONF server's and the RESTCONF server's attack tests."""

from __future__ import annotations

import resource
import socket
import ssl

FD_LIMIT = 128  # a daemon's RLIMIT_NOFILE in these tests (systemd's default soft limit is 1024: 8x the scale)


def few_descriptors() -> None:
    """A child's preexec: FD_LIMIT descriptors."""
    resource.setrlimit(resource.RLIMIT_NOFILE, (FD_LIMIT, FD_LIMIT))


def sources(prefix: str, count: int) -> list[str]:
    """`count` loopback addresses `prefix`.1 ... (prefix: three octets, "127.0.1")."""
    return [f"{prefix}.{i}" for i in range(1, count + 1)]


def open_idle(host: str, port: int, addresses: list[str], each: int, first: bytes = b"",
              tls: ssl.SSLContext | None = None) -> list[socket.socket]:
    """`each` connections from every address in `addresses`, left idle after sending `first` — over TLS when `tls`
    is given (the handshake completed), else as it is (b"": never a byte). Opening stops after a few that the
    server does not take."""
    out: list[socket.socket] = []
    failures = 0
    for source in addresses:
        for _ in range(each):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.settimeout(5)
            try:
                sock.bind((source, 0))
                sock.connect((host, port))
                if tls is not None:
                    sock = tls.wrap_socket(sock, server_hostname=host)
                if first:
                    sock.sendall(first)
            except OSError:  # a reset one may be, when the server closed it at accept
                sock.close()
                failures += 1
                if failures >= 3:
                    return out
                continue
            out.append(sock)
    return out


def closed_by_server(sock: socket.socket) -> bool:
    """Whether the server closed `sock` (what it sent before is read and dropped)."""
    sock.setblocking(False)
    try:
        while sock.recv(65536):
            pass
        return True
    except (BlockingIOError, ssl.SSLWantReadError):
        return False
    except OSError:
        return True

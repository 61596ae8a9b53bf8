"""Byte-exact HTTP/1.1 over real TLS, for requests no well-behaved client sends (cut-off bodies, bad framing)."""

from __future__ import annotations

import base64
import socket
import ssl
import urllib.parse
from dataclasses import dataclass

from rcserver import ADMIN, RestconfServer


@dataclass(frozen=True)
class RawResponse:
    status: int | None  # None: the server closed without a status line
    headers: dict[str, str]
    body: bytes


def basic(user: str, password: str | bytes) -> str:
    raw = user.encode() + b":" + (password if isinstance(password, bytes) else password.encode())
    return "Basic " + base64.b64encode(raw).decode()


ADMIN_AUTH = basic(*ADMIN)


def connect(server: RestconfServer, timeout: float = 30.0) -> socket.socket:
    url = urllib.parse.urlsplit(server.base_url)
    assert url.hostname is not None and url.port is not None
    sock = socket.create_connection((url.hostname, url.port), timeout=timeout)
    if url.scheme != "https":
        return sock
    ctx = ssl.create_default_context(cafile=server.ca) if server.ca else ssl._create_unverified_context()
    ctx.set_alpn_protocols(["http/1.1"])
    return ctx.wrap_socket(sock, server_hostname=url.hostname)


def head(method: str, path: str, headers: dict[str, str] | None = None, *, host: str = "localhost") -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def read_response(sock: socket.socket, *, head_only: bool = False) -> RawResponse:
    """One response: status, headers, and a Content-Length body (or what came until the close)."""
    data = b""
    try:
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    except (ConnectionResetError, ssl.SSLError, OSError):
        pass
    if b"\r\n\r\n" not in data:
        return RawResponse(None, {}, data)
    top, _, rest = data.partition(b"\r\n\r\n")
    status_line, *header_lines = top.decode("latin-1").split("\r\n")
    headers = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length", "0"))
    try:
        while not head_only and len(rest) < length:
            chunk = sock.recv(65536)
            if not chunk:
                break
            rest += chunk
    except (ConnectionResetError, ssl.SSLError, OSError):
        pass
    return RawResponse(int(status_line.split()[1]), headers, rest[:length])


def exchange(server: RestconfServer, raw: bytes, *, timeout: float = 30.0) -> RawResponse:
    """Send `raw` on a fresh connection and read one response (also when the server answered and closed before
    all of `raw` was sent, as it does for a head beyond its limit)."""
    with connect(server, timeout) as sock:
        try:
            sock.sendall(raw)
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError):
            pass
        return read_response(sock)


def send_and_leave(server: RestconfServer, raw: bytes, *, linger: float = 1.0) -> bytes:
    """Send `raw`, read what comes for `linger` seconds, then close; returns what was read.

    The reading matters: a socket closed with unread bytes (TLS 1.3 session tickets) is reset, not closed, and a
    reset makes the server's kernel drop what it had not yet read, so the server might never see the request.
    """
    received = b""
    with connect(server) as sock:
        sock.sendall(raw)
        sock.settimeout(linger)
        try:
            while chunk := sock.recv(65536):
                received += chunk
        except (TimeoutError, ssl.SSLError, OSError):
            pass
    return received


def h2_connect(server: RestconfServer, timeout: float = 30.0) -> tuple[socket.socket, "h2.connection.H2Connection"]:
    """A TLS connection that negotiated HTTP/2 (ALPN h2), with the client preface sent."""
    import h2.config
    import h2.connection

    url = urllib.parse.urlsplit(server.base_url)
    assert url.hostname is not None and url.port is not None
    ctx = ssl.create_default_context(cafile=server.ca) if server.ca else ssl._create_unverified_context()
    ctx.set_alpn_protocols(["h2"])
    sock = ctx.wrap_socket(socket.create_connection((url.hostname, url.port), timeout=timeout),
                           server_hostname=url.hostname)
    assert sock.selected_alpn_protocol() == "h2"
    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True, header_encoding="utf-8"))
    conn.initiate_connection()
    sock.sendall(conn.data_to_send())
    return sock, conn


def h2_response(sock: socket.socket, conn: "h2.connection.H2Connection", stream_id: int) -> RawResponse:
    """Read until stream `stream_id` ends (or is reset, or the connection closes)."""
    import h2.events

    status: int | None = None
    headers: dict[str, str] = {}
    body = b""
    while True:
        try:
            data = sock.recv(65536)
        except (TimeoutError, ssl.SSLError, OSError):
            break
        if not data:
            break
        for event in conn.receive_data(data):
            if isinstance(event, h2.events.ResponseReceived) and event.stream_id == stream_id:
                for name, value in event.headers:
                    name = name.decode() if isinstance(name, bytes) else name
                    value = value.decode() if isinstance(value, bytes) else value
                    if name == ":status":
                        status = int(value)
                    else:
                        headers[name] = value
            elif isinstance(event, h2.events.DataReceived) and event.stream_id == stream_id:
                body += event.data
                conn.acknowledge_received_data(event.flow_controlled_length, stream_id)
            elif isinstance(event, (h2.events.StreamEnded, h2.events.StreamReset)) and event.stream_id == stream_id:
                sock.sendall(conn.data_to_send())
                return RawResponse(status, headers, body)
        sock.sendall(conn.data_to_send())
    return RawResponse(status, headers, body)

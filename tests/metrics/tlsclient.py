"""Raw HTTPS clients for the exporter's tests: one keep-alive HTTP/1.1 connection whose reuse is certain (the same
socket), the certificate a new connection is given, the renewal lock's waiters in /proc/locks."""

from __future__ import annotations

import base64
import os
import socket
import ssl
import time
from pathlib import Path

from cryptography import x509
from metricsdata import ADMIN

AUTH = "Basic " + base64.b64encode(":".join(ADMIN).encode()).decode()


def host_port(url: str) -> tuple[str, int]:
    host, port = url.split("//")[1].split("/")[0].rsplit(":", 1)
    return host.strip("[]"), int(port)


def served_certificate(url: str, ca: Path) -> x509.Certificate:
    """The certificate a new connection to `url` is given, verified against `ca`."""
    host, port = host_port(url)
    ctx = ssl.create_default_context(cafile=str(ca))
    with socket.create_connection((host, port), timeout=30) as raw, ctx.wrap_socket(raw, server_hostname=host) as s:
        der = s.getpeercert(binary_form=True)
    assert der is not None
    return x509.load_der_x509_certificate(der)


def names(cert: x509.Certificate) -> list[x509.GeneralName]:
    return list(cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value)


class KeepAlive:
    """One TLS connection, HTTP/1.1 requests one after the other on it."""

    def __init__(self, url: str, ca: Path) -> None:
        self.host, port = host_port(url)
        ctx = ssl.create_default_context(cafile=str(ca))
        ctx.set_alpn_protocols(["http/1.1"])
        self.sock = ctx.wrap_socket(socket.create_connection((self.host, port), timeout=30),
                                    server_hostname=self.host)
        der = self.sock.getpeercert(binary_form=True)
        assert der is not None
        self.certificate = x509.load_der_x509_certificate(der)
        self.buffer = b""

    def get(self, path: str = "/metrics") -> tuple[int, bytes]:
        self.sock.sendall(f"GET {path} HTTP/1.1\r\nHost: {self.host}\r\nAuthorization: {AUTH}\r\n\r\n".encode())
        while b"\r\n\r\n" not in self.buffer:
            self._more()
        head, self.buffer = self.buffer.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        fields = {k.strip().lower(): v.strip() for k, v in (line.split(":", 1) for line in lines[1:])}
        length = int(fields["content-length"])
        while len(self.buffer) < length:
            self._more()
        body, self.buffer = self.buffer[:length], self.buffer[length:]
        return int(lines[0].split()[1]), body

    def _more(self) -> None:
        data = self.sock.recv(65536)
        if not data:
            raise ConnectionError("the server closed the connection")
        self.buffer += data

    def close(self) -> None:
        self.sock.close()


def lock_waiters(path: Path) -> int:
    """How many flock requests wait for `path` (/proc/locks' '->' lines on its inode)."""
    st = os.stat(path)
    count = 0
    for line in Path("/proc/locks").read_text().splitlines():
        fields = line.split()
        if "->" not in fields:
            continue
        for field in fields:
            parts = field.split(":")
            if len(parts) == 3 and parts[2].isdigit() and int(parts[2]) == st.st_ino:
                count += 1
    return count


def wait_for(what: str, check: object, log: Path, timeout: float = 60) -> object:
    """`check()`'s first true result (exceptions count as not yet), polled; the exporter's log on failure."""
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            got = check()  # type: ignore[operator]
            if got:
                return got
        except (OSError, ValueError, KeyError, ssl.SSLError) as exc:
            last = exc
        time.sleep(0.1)
    raise AssertionError(f"never {what} (last error: {last}):\n{log.read_text()[-4000:]}")

"""The exporter under attack from the monitoring network, over real sockets against the running exporter: framing
and smuggling attempts, huge heads, unexpected paths, what error answers say; idle and never-handshaking connections
(file descriptors), TLS renegotiation, HTTP/2 rapid reset."""

from __future__ import annotations

import os
import resource
import socket
import ssl
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import h2.config
import h2.connection
import h2.events
import httpx
import pytest
from daemon import ExporterProcess, bootstrap_admin, set_settings
from metricsdata import ADMIN, InProcessExporter, add_user, plugin_segment
from singbox_agent.metrics.segment import MemorySource, Segment
from singbox_agent.repository import SysrepoInstance
from tlsclient import AUTH, KeepAlive, host_port, wait_for


@pytest.fixture
def exporter(sysrepo_instance: SysrepoInstance, tmp_path: Path) -> Iterator[InProcessExporter]:
    add_user(*ADMIN)
    exp = InProcessExporter(plugin_segment(endpoints=2, sessions=7), tmp_path)
    try:
        yield exp
    finally:
        exp.close()


def tls_connect(exp: InProcessExporter, alpn: str = "http/1.1") -> ssl.SSLSocket:
    host, port = host_port(exp.url)
    ctx = ssl.create_default_context(cafile=exp.ca)
    ctx.set_alpn_protocols([alpn])
    return ctx.wrap_socket(socket.create_connection((host, port), timeout=30), server_hostname=host)


def exchange(exp: InProcessExporter, raw: bytes) -> bytes:
    """What the server sends back to `raw` until it closes or goes quiet after a response."""
    with tls_connect(exp) as sock:
        sock.sendall(raw)
        sock.settimeout(3)
        data = b""
        try:
            while True:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                data += chunk
        except (TimeoutError, ConnectionResetError, ssl.SSLError):
            pass
    return data


def req(method: str, path: str, *extra: str, auth: bool = True) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: localhost", *([f"Authorization: {AUTH}"] if auth else []), *extra]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


# Answered as they should be before these tests (kept so that it stays so): no smuggling (a body on a GET is read
# and dropped, not taken for a request), heads beyond h11's 16 KiB: 431 and closed, nothing but /metrics and /,
# 401 before the path is looked at, error texts without internals, gzip at level 1 of our own bounded output.
CORPUS: list[tuple[str, bytes, bytes]] = [
    ("body on a GET is not a request", req("GET", "/metrics", f"Content-Length: {len(req('GET', '/x'))}")
     + req("GET", "/x"), b"HTTP/1.1 200 "),
    ("huge header", req("GET", "/metrics", "X-Big: " + "a" * 200_000), b"HTTP/1.1 431 "),
    ("huge request line", req("GET", "/metrics?" + "a" * 200_000), b"HTTP/1.1 431 "),
    ("many headers", req("GET", "/metrics", *[f"X-{i}: {i}" for i in range(5000)]), b"HTTP/1.1 431 "),
    ("traversal", req("GET", "/metrics/../../etc/passwd"), b"HTTP/1.1 404 "),
    ("double slash", req("GET", "//metrics"), b"HTTP/1.1 404 "),
    ("absolute form elsewhere", req("GET", "https://localhost/etc/passwd"), b"HTTP/1.1 404 "),
    ("asterisk", req("OPTIONS", "*"), b"HTTP/1.1 404 "),
    ("path without credentials", req("GET", "/etc/passwd", auth=False), b"HTTP/1.1 401 "),
    ("bad credentials", req("GET", "/metrics", "Authorization: Basic !!!!", auth=False), b"HTTP/1.1 401 "),
    ("accept-encoding 2000 times", req("GET", "/metrics", "Accept-Encoding: " + ",".join(["gzip;q=0.5"] * 1000)),
     b"HTTP/1.1 200 "),
    ("not HTTP", b"\x16\x03\x01\x00\x00" * 100, b"HTTP/1.1 400 "),
]


@pytest.mark.parametrize("name,raw,answer", CORPUS, ids=[n for n, _, _ in CORPUS])
def test_corpus(exporter: InProcessExporter, name: str, raw: bytes, answer: bytes) -> None:
    got = exchange(exporter, raw)
    assert got.startswith(answer), got[:300]
    assert got.count(b"HTTP/1.1 ") == 1  # one request, one answer
    for secret in (b"Traceback", b"File \"", b"/src/", b"site-packages", b"singbox_agent/", ADMIN[1].encode()):
        assert secret not in got
    with httpx.Client(verify=exporter.ca, timeout=30, auth=ADMIN) as c:
        assert c.get(exporter.url).status_code == 200


def test_content_length_with_transfer_encoding_is_refused_and_the_connection_closed(exporter: InProcessExporter) -> None:
    """RFC 9112 §6.3. Before: answered (405) and what followed the chunked body's end on the connection was taken
    for the next request: a front end reading Content-Length would have passed it as body."""
    smuggled = req("GET", "/metrics")
    raw = req("POST", "/metrics", f"Content-Length: {5 + len(smuggled)}", "Transfer-Encoding: chunked") + b"0\r\n\r\n"
    got = exchange(exporter, raw + smuggled)
    assert got.startswith(b"HTTP/1.1 400 "), got[:300]
    assert got.count(b"HTTP/1.1 ") == 1, got


def test_renegotiation_is_refused(exporter: InProcessExporter) -> None:
    """A TLS 1.2 client asks to renegotiate (openssl s_client's R): refused ('no renegotiation'), the connection
    closed — a handshake's CPU at the client's pace otherwise. It already was (CPython's ssl sets
    OP_NO_RENEGOTIATION by default); the exporter's context now says so itself, and this keeps it."""
    host, port = host_port(exporter.url)
    done = subprocess.run(["openssl", "s_client", "-connect", f"{host}:{port}", "-tls1_2", "-CAfile", exporter.ca,
                           "-crlf", "-alpn", "http/1.1"],
                          input=b"R\n" + req("GET", "/").replace(b"\r\n", b"\n"), capture_output=True, timeout=60)
    out = done.stdout + done.stderr
    assert b"RENEGOTIATING" in out, out[-2000:]
    assert b"HTTP/1.1" not in out, out[-2000:]  # nothing served after the request to renegotiate
    with httpx.Client(verify=exporter.ca, timeout=30, auth=ADMIN) as c:
        assert c.get(exporter.url).status_code == 200


class GatedSource(MemorySource):
    """A source whose reads wait for `gate` (MemorySource counts them)."""

    def __init__(self, inner: MemorySource) -> None:
        super().__init__()
        self.__dict__.update(inner.__dict__)
        self.gate = threading.Event()
        self.entered = 0  # reads begun

    def read(self) -> Segment | None:
        self.entered += 1
        self.gate.wait(60)
        return super().read()


def test_http2_rapid_reset_reads_once(sysrepo_instance: SysrepoInstance, tmp_path: Path) -> None:
    """CVE-2023-44487: 200 scrape streams opened and reset at once on one HTTP/2 connection (no stream limit
    counts reset streams), then one scrape kept. Before, every reset stream queued a read and a rendering of its
    own (200 reads of the segment); now requests arriving while a read is under way share it."""
    add_user(*ADMIN)
    source = GatedSource(plugin_segment(endpoints=2))
    exp = InProcessExporter(source, tmp_path)
    try:
        sock = tls_connect(exp, "h2")
        assert sock.selected_alpn_protocol() == "h2"
        conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
        conn.initiate_connection()
        host, port = host_port(exp.url)
        headers = [(":method", "GET"), (":scheme", "https"), (":authority", f"{host}:{port}"), (":path", "/metrics"),
                   ("authorization", AUTH)]
        for _ in range(200):
            stream = conn.get_next_available_stream_id()
            conn.send_headers(stream, headers, end_stream=True)
            conn.reset_stream(stream)
        kept = conn.get_next_available_stream_id()
        conn.send_headers(kept, headers, end_stream=True)
        sock.sendall(conn.data_to_send())
        # every request is in (passed auth and waits for the segment), or, before, queued its own read
        wait_for("the requests waiting", lambda: source.entered >= 1 and exp.app.waiting >= 201
                 if hasattr(exp.app, "waiting") else source.entered >= 1 and exp.app.reader._work_queue.qsize()
                 >= 199, tmp_path / "none")
        source.gate.set()
        status, body = None, b""
        while True:
            data = sock.recv(65536)
            assert data, "connection closed"
            for event in conn.receive_data(data):
                if isinstance(event, h2.events.ResponseReceived) and event.stream_id == kept:
                    status = dict(event.headers)[b":status"]
                elif isinstance(event, h2.events.DataReceived) and event.stream_id == kept:
                    body += event.data
                    conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
                if isinstance(event, h2.events.StreamEnded) and event.stream_id == kept:
                    break
            else:
                sock.sendall(conn.data_to_send())
                continue
            break
        assert status == b"200" and b"singbox_dataplane_up 1" in body
        assert source.entered == 1, source.entered
        sock.close()
    finally:
        source.gate.set()
        exp.close()


# --- descriptors: connections left idle, never handshaking -----------------------------------------------------

FD_LIMIT = 128  # the daemon's RLIMIT_NOFILE here (systemd's default soft limit is 1024: the same at 8x the scale)


def few_descriptors() -> None:
    resource.setrlimit(resource.RLIMIT_NOFILE, (FD_LIMIT, FD_LIMIT))


@pytest.fixture
def small_daemon(sysrepo_instance_factory, tmp_path: Path) -> Iterator[ExporterProcess]:  # type: ignore[no-untyped-def]
    instance = sysrepo_instance_factory()
    state = tmp_path / "state"
    state.mkdir()
    bootstrap_admin(instance, state)
    set_settings(instance, port=0)
    daemon = ExporterProcess(instance, state, preexec=few_descriptors)
    try:
        yield daemon
    finally:
        daemon.stop()


def idle_connections(url: str, sources: list[str], each: int, kind: str = "tcp",
                     ca: Path | None = None) -> list[socket.socket]:
    """`each` connections from every source address, left as `kind` says: "tcp" never sends a byte (no
    ClientHello), "head" sends half a request head over TLS, "body" a whole request without credentials over TLS
    (answered 401) and then a part of the body it announced, which h11 waits for before the next request with no
    timer. Opening stops after a few that the server does not take."""
    host, port = host_port(url)
    ctx = ssl.create_default_context(cafile=str(ca)) if ca else None
    out: list[socket.socket] = []
    failures = 0
    for source in sources:
        for _ in range(each):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.settimeout(5)
            try:
                sock.bind((source, 0))
                sock.connect((host, port))
                if kind != "tcp":
                    assert ctx is not None
                    sock = ctx.wrap_socket(sock, server_hostname=host)
                    if kind == "head":
                        sock.sendall(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\nX-Slow: ")
                    else:
                        sock.sendall(req("POST", "/metrics", "Content-Length: 1000000", auth=False) + b"x" * 100)
            except OSError:
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


@pytest.mark.parametrize("kind", ["tcp", "head", "body"])
def test_idle_connections_from_many_sources_never_starve_a_scrape(small_daemon: ExporterProcess, kind: str) -> None:
    """200 connections from 100 addresses, against an exporter that may open 128 files: connections that never
    handshake, that trickle a request head (slowloris), that hold a request body open after their 401. Before, its
    descriptors ran out: accept() failed (EMFILE) and Prometheus' scrape waited for timeouts to free some (60 s for
    a handshake, 120 s for a head, none for a body). Now the oldest connections that never made an authenticated
    request are closed to make room, and a scraper's connection that did is kept."""
    assert small_daemon.ca is not None
    print("descriptors open before:", len(os.listdir(f"/proc/{small_daemon.proc.pid}/fd")))
    scraper = KeepAlive(small_daemon.url, small_daemon.ca)
    assert scraper.get()[0] == 200
    attack = idle_connections(small_daemon.url, [f"127.0.1.{i}" for i in range(1, 101)], 2, kind, small_daemon.ca)
    try:
        assert len(attack) >= 150, len(attack)
        with httpx.Client(verify=str(small_daemon.ca), timeout=20, auth=ADMIN) as c:
            for _ in range(3):
                assert c.get(small_daemon.url).status_code == 200
        assert scraper.get()[0] == 200  # it had authenticated: kept
        assert sum(closed_by_server(s) for s in attack) >= len(attack) - FD_LIMIT // 4
    finally:
        for s in attack:
            s.close()
        scraper.close()


def test_one_source_holds_at_most_16_connections(small_daemon: ExporterProcess) -> None:
    """40 idle connections from one address: 16 kept, the rest closed at once; another address is served."""
    attack = idle_connections(small_daemon.url, ["127.0.2.1"], 40)
    try:
        assert len(attack) == 40
        with httpx.Client(verify=str(small_daemon.ca), timeout=20, auth=ADMIN) as c:
            assert c.get(small_daemon.url).status_code == 200  # accepted after all 40: they were decided
        assert sum(closed_by_server(s) for s in attack) == 40 - 16
        assert "too many open connections" in small_daemon.log.read_text()
    finally:
        for s in attack:
            s.close()

"""HTTP framing attacks on the running RESTCONF server, byte-exact over real TLS: cut-off and malformed bodies,
bad Content-Length, huge headers, oversized bodies, slow clients. Each input gets a precise answer (or, when the
client went away, nothing is done), the server keeps serving, and the running datastore does not change."""

from __future__ import annotations

import json
import socket
import ssl
import time

import pytest
from helpers import JSON, running_config, running_json
from rawhttp import (ADMIN_AUTH, RawResponse, connect, exchange, h2_connect, h2_response, head, read_response,
                     send_and_leave)
from rcserver import RestconfServer, stop_server

SB = "/restconf/data/vpp-singbox:singbox"
LOG_LEVEL = f"{SB}/log-level"
DEBUG = b'{"vpp-singbox:log-level": "debug"}'
MAX_BODY = 4 * 1024 * 1024


def put_head(length: int | None = None, *, chunked: bool = False, **extra: str) -> bytes:
    headers = {"Authorization": ADMIN_AUTH, "Content-Type": JSON, **extra}
    if length is not None:
        headers["Content-Length"] = str(length)
    if chunked:
        headers["Transfer-Encoding"] = "chunked"
    return head("PUT", LOG_LEVEL, headers)


def chunk(data: bytes) -> bytes:
    return f"{len(data):x}\r\n".encode() + data + b"\r\n"


# Uploads that never arrive whole: the client sends part of the body and goes away.
CUT_OFF: list[tuple[str, bytes]] = [
    ("content-length 1000, 34-byte body", put_head(1000) + DEBUG),
    ("content-length one byte more", put_head(len(DEBUG) + 1) + DEBUG),
    ("content-length, half a body", put_head(len(DEBUG)) + DEBUG[:17]),
    ("chunked, no last chunk", put_head(chunked=True) + chunk(DEBUG)),
    ("chunked, last chunk cut", put_head(chunked=True) + chunk(DEBUG) + b"0\r\n"),
    ("chunked, chunk shorter than its size", put_head(chunked=True) + b"40\r\n" + DEBUG),
    ("chunked, body in pieces, no end", put_head(chunked=True) + b"".join(chunk(DEBUG[i:i + 5])
                                                                           for i in range(0, len(DEBUG), 5))),
    ("chunked, size line only", put_head(chunked=True) + b"22\r\n"),
    ("headers only, content-length", put_head(len(DEBUG))),
    ("headers only, chunked", put_head(chunked=True)),
]


@pytest.mark.parametrize("name,raw", CUT_OFF, ids=[n for n, _ in CUT_OFF])
def test_a_cut_off_upload_changes_nothing(restconf: RestconfServer, name: str, raw: bytes) -> None:
    """A request whose body did not arrive whole is dropped: Hypercorn reports the disconnect, the old server then
    applied what it had (log-level became debug)."""
    env = restconf.instance.env
    before = running_config(env)
    send_and_leave(restconf, raw)
    # The server still serves, and a complete request afterwards works.
    with restconf.client() as client:
        assert client.get("/restconf/yang-library-version").status_code == 200
    deadline = time.monotonic() + 20  # it saw the request and dropped it (the old server applied it instead)
    while "request dropped" not in restconf.log() and time.monotonic() < deadline:
        time.sleep(0.1)
    # Stopping the server waits for every request it had started: whatever it was going to do is done.
    assert stop_server(restconf) == 0
    assert running_config(env) == before, f"{name}: a cut-off upload was applied"
    assert "request dropped" in restconf.log()


def test_a_complete_upload_in_chunks_is_applied(restconf: RestconfServer) -> None:
    """Control: the same bytes, ended properly, are applied (chunked and Content-Length)."""
    pieces = b"".join(chunk(DEBUG[i:i + 5]) for i in range(0, len(DEBUG), 5))
    resp = exchange(restconf, put_head(chunked=True) + pieces + b"0\r\n\r\n")
    assert resp.status == 201, resp
    assert running_json(restconf.instance.env)["vpp-singbox:singbox"]["log-level"] == "debug"
    error = b'{"vpp-singbox:log-level": "error"}'
    resp = exchange(restconf, put_head(len(error)) + error)
    assert resp.status == 204, resp


# --- the framing corpus: (name, raw request, statuses that are the right answer) ---------------------------------
GET_HEAD = {"Authorization": ADMIN_AUTH}
FRAMING: list[tuple[str, bytes, frozenset[int]]] = []


def case(name: str, raw: bytes, *statuses: int) -> None:
    FRAMING.append((name, raw, frozenset(statuses)))


def put_with(headers: dict[str, str], body: bytes = DEBUG) -> bytes:
    return head("PUT", LOG_LEVEL, {"Authorization": ADMIN_AUTH, "Content-Type": JSON, **headers}) + body


for value in ("abc", "-1", "+34", "0x22", "3 4", "34.0", "1e2", "34,35", "\u00b3\u00b4", "34 34", "0034x", "-0",
              "34\tx"):
    case(f"content-length {value!r}", put_with({"Content-Length": value}), 400)
case("two different content-lengths", put_with({"Content-Length": "34\r\nContent-Length: 35"}), 400)
case("content-length and transfer-encoding (smuggling)",
     put_with({"Content-Length": "34", "Transfer-Encoding": "chunked"}, chunk(DEBUG) + b"0\r\n\r\n"), 400)
case("transfer-encoding and content-length 0",
     put_with({"Transfer-Encoding": "chunked", "Content-Length": "0"}, chunk(DEBUG) + b"0\r\n\r\n"), 400)
for value in ("gzip", "chunked, chunked", "identity", "compress", "deflate", "xchunked", "chunked, gzip", "br"):
    case(f"transfer-encoding {value!r}", put_with({"Transfer-Encoding": value}, chunk(DEBUG) + b"0\r\n\r\n"),
         400, 501)
for size_line in (b"zz", b"-1", b"0x22", b" 22", b"22 22", b"\xff", b"", b"g"):
    case(f"chunk size {size_line!r}", put_with({"Transfer-Encoding": "chunked"}, size_line + b"\r\n" + DEBUG
                                              + b"\r\n0\r\n\r\n"), 400)
case("chunk without its CRLF", put_with({"Transfer-Encoding": "chunked"}, b"22\r\n" + DEBUG + b"0\r\n\r\n"), 400)
case("chunk longer than its size", put_with({"Transfer-Encoding": "chunked"}, b"10\r\n" + DEBUG + b"\r\n0\r\n\r\n"),
     400)
for header in (b"X-A: a\0b", b"broken header", b"X-A : b", b": empty name", b"X A: b", b"X-A:\x01", b"\x7fX: a"):
    case(f"header line {header!r}", head("GET", SB, GET_HEAD).replace(b"\r\n\r\n", b"\r\n" + header + b"\r\n\r\n"),
         400)
for size in (17_000, 40_000, 100_000):
    case(f"one {size}-byte header", head("GET", SB, {**GET_HEAD, "X-A": "a" * size}), 431)
for count in (2_000, 5_000):
    case(f"{count} headers", head("GET", SB, {**GET_HEAD, **{f"X-{i}": "a" for i in range(count)}}), 431)
for size in (17_000, 60_000):
    case(f"{size}-byte query", head("GET", SB + "?" + "a" * size, GET_HEAD), 414)  # RFC 9112 §3: URI Too Long
    case(f"{size}-byte path", head("GET", SB + "/" + "a" * size, GET_HEAD), 414)
for name, raw in (
    ("HTTP/0.9 request", b"GET /restconf\r\n\r\n"),
    ("no Host", b"GET /restconf HTTP/1.1\r\nAuthorization: " + ADMIN_AUTH.encode() + b"\r\n\r\n"),
    ("two Hosts", head("GET", "/restconf", {**GET_HEAD, "Host": "b"})),
    ("control character in the method", head("G\x01T", "/restconf", GET_HEAD)),
    ("space in the target", b"GET /rest conf HTTP/1.1\r\nHost: x\r\n\r\n"),
    ("DEL in the target", b"GET /rest\x7fconf HTTP/1.1\r\nHost: x\r\n\r\n"),
    ("8-bit byte in the target", b"GET /rest\xffconf HTTP/1.1\r\nHost: x\r\n\r\n"),
    ("empty request", b"\r\n\r\n"),
    ("TLS record inside TLS", b"\x16\x03\x01\x00\xff" * 10 + b"\r\n\r\n"),
    ("no target", b"GET HTTP/1.1\r\nHost: x\r\n\r\n"),
):
    case(name, raw, 400)
case("Content-Length beyond any body we take", put_with({"Content-Length": str(10**12)}, b""), 413)
case("Content-Length of 20 digits", put_with({"Content-Length": "9" * 20}, b""), 413)


def test_framing_corpus(restconf: RestconfServer) -> None:
    """Each input on its own connection: the right status, and at the end the server serves and nothing changed."""
    env = restconf.instance.env
    assert len(FRAMING) >= 60, len(FRAMING)
    before = [running_config(env, m) for m in ("vpp-singbox", "ietf-system", "ietf-netconf-acm")]
    failures = []
    for name, raw, statuses in FRAMING:
        resp = exchange(restconf, raw, timeout=20)
        if resp.status not in statuses:
            failures.append(f"{name}: {resp.status} not in {sorted(statuses)} {resp.body[:200]!r}")
        elif resp.status in (413, 414, 431) and b"ietf-restconf:errors" not in resp.body and resp.body:
            failures.append(f"{name}: {resp.status} without an errors body: {resp.body[:200]!r}")
    with restconf.client() as client:
        assert client.get("/restconf/yang-library-version").status_code == 200
    assert not failures, f"{len(failures)} of {len(FRAMING)}:\n" + "\n".join(failures)
    assert [running_config(env, m) for m in ("vpp-singbox", "ietf-system", "ietf-netconf-acm")] == before
    assert restconf.process.poll() is None


def set_limits(restconf: RestconfServer, **leaves: int) -> None:
    with restconf.client() as client:
        body = json.dumps({"vpp-singbox-restconf-server:limits": leaves}).encode()
        resp = client.put("/restconf/data/vpp-singbox-restconf-server:restconf-server/limits", content=body,
                          headers={"content-type": JSON})
        assert resp.status_code in (201, 204), resp.text


def test_the_body_limit_is_configurable_and_answered_with_413(restconf: RestconfServer) -> None:
    """max-body-size: a body beyond it gets 413 too-big; one declared far beyond it before it is sent."""
    env = restconf.instance.env
    set_limits(restconf, **{"max-body-size": 2048})
    before = running_config(env)
    padded = b'{"vpp-singbox:log-level": "debug"' + b" " * 3000 + b"}"
    for raw in (put_head(len(padded)) + padded,
                put_head(chunked=True) + chunk(padded) + b"0\r\n\r\n",
                put_head(100_000) + b" " * 100_000):
        resp = exchange(restconf, raw)
        assert resp.status == 413, resp
        assert json.loads(resp.body)["ietf-restconf:errors"]["error"][0]["error-tag"] == "too-big"
        assert b"2048 bytes" in resp.body
    with connect(restconf) as sock:  # declared far beyond: answered before a byte of the body is sent
        sock.sendall(put_head(10**9))
        resp = read_response(sock)
        assert resp.status == 413
    assert running_config(env) == before
    resp = exchange(restconf, put_head(len(DEBUG)) + DEBUG)  # a body within the limit still works
    assert resp.status in (201, 204)


def test_a_stalled_body_is_answered_with_408(restconf: RestconfServer) -> None:
    """A client that sends its headers and part of the body, then nothing (slowloris), holds its connection only
    body-timeout seconds: then 408, nothing applied, and the server served others meanwhile."""
    env = restconf.instance.env
    set_limits(restconf, **{"body-timeout": 1})
    before = running_config(env)
    stalled = []
    for raw in (put_head(1000) + DEBUG[:10], put_head(chunked=True) + chunk(DEBUG), put_head(len(DEBUG))):
        sock = connect(restconf)
        sock.sendall(raw)
        stalled.append(sock)
    with restconf.client() as client:
        assert client.get("/restconf/yang-library-version").status_code == 200
    for sock in stalled:
        with sock:
            resp = read_response(sock)  # bounded by the socket's timeout (30 s)
            assert resp.status == 408, resp
            assert b"did not arrive within 1 s" in resp.body
    assert running_config(env) == before


def h2_put_headers(length: int | None = None) -> list[tuple[str, str]]:
    url = "localhost"
    headers = [(":method", "PUT"), (":scheme", "https"), (":authority", url), (":path", LOG_LEVEL),
               ("authorization", ADMIN_AUTH), ("content-type", JSON)]
    if length is not None:
        headers.append(("content-length", str(length)))
    return headers


def test_a_reset_http2_upload_changes_nothing(restconf: RestconfServer) -> None:
    """HTTP/2: a stream reset before its body ended (RST_STREAM, or the connection closed) is dropped like a cut-off
    HTTP/1.1 upload; a complete one on the same connection is applied."""
    import h2.errors

    env = restconf.instance.env
    before = running_config(env)
    sock, conn = h2_connect(restconf)
    with sock:
        conn.send_headers(1, h2_put_headers())
        conn.send_data(1, DEBUG)  # no END_STREAM
        sock.sendall(conn.data_to_send())
        time.sleep(1)  # (the server has the data before the reset: it would act on it if it did not wait for the end)
        conn.reset_stream(1, h2.errors.ErrorCodes.CANCEL)
        conn.send_headers(3, h2_put_headers(len(DEBUG) + 5))
        conn.send_data(3, DEBUG)  # short of its content-length, and never ended
        sock.sendall(conn.data_to_send())
        time.sleep(1)
    with restconf.client(http2=True) as client:
        assert client.get("/restconf/yang-library-version").status_code == 200
    deadline = time.monotonic() + 20
    while restconf.log().count("request dropped") < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert stop_server(restconf) == 0
    assert running_config(env) == before
    assert restconf.log().count("request dropped") == 2


def test_http2_head_limit_and_framing(restconf: RestconfServer) -> None:
    """Over HTTP/2 the head limit answers 431 the same way, and a body beyond its content-length is refused."""
    env = restconf.instance.env
    before = running_config(env)
    sock, conn = h2_connect(restconf)
    with sock:
        conn.send_headers(1, [*h2_put_headers(len(DEBUG)), *((f"x-{i}", "a" * 100) for i in range(300))])
        conn.send_data(1, DEBUG, end_stream=True)
        sock.sendall(conn.data_to_send())
        resp = h2_response(sock, conn, 1)
        assert resp.status == 431, resp
        conn.send_headers(3, h2_put_headers(5))
        conn.send_data(3, DEBUG, end_stream=True)  # 34 bytes against a content-length of 5
        sock.sendall(conn.data_to_send())
        resp = h2_response(sock, conn, 3)
        assert resp.status != 204 and resp.status != 201, resp
    with restconf.client(http2=True) as client:
        assert client.get("/restconf/yang-library-version").status_code == 200
    assert running_config(env) == before

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
from rawhttp import ADMIN_AUTH, RawResponse, connect, exchange, head, read_response, send_and_leave
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
    resp = exchange(restconf, put_head(len(b'{"vpp-singbox:log-level": "error"}')) + b'{"vpp-singbox:log-level": "error"}')
    assert resp.status == 204, resp

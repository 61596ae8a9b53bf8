"""A small reply leaves the server in one TCP segment (server.py, `remember_sockets` and the cork in `asgi`).

hypercorn writes a reply's head and body apart: two TLS records, two segments, the client woken for the head
alone. The client's socket counts the data segments it received (TCP_INFO)."""

from __future__ import annotations

import socket
import struct

from rawhttp import ADMIN_AUTH, connect, head, read_response
from rcserver import RestconfServer

_DATA_SEGS_IN = 152  # offset of tcpi_data_segs_in in Linux's struct tcp_info (since 4.6)


def data_segments_in(sock: socket.socket) -> int:
    info = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 256)
    return int(struct.unpack_from("I", info, _DATA_SEGS_IN)[0])


def test_each_small_reply_is_one_segment(restconf: RestconfServer) -> None:
    sock = connect(restconf)
    auth = {"Authorization": ADMIN_AUTH, "Accept": "application/yang-data+json"}
    requests = [("GET", "/restconf/data/ietf-netconf-acm:nacm", auth, 200),
                ("GET", "/restconf/data/ietf-netconf-acm:nacm", auth, 200),
                ("GET", "/restconf/data/no-such-module:nothing", auth, 400),  # an error body
                ("GET", "/restconf/data/ietf-netconf-acm:nacm", {}, 401)]  # refused before any sysrepo work
    sock.sendall(head("GET", "/restconf/yang-library-version", auth))  # TLS session tickets out of the way
    assert read_response(sock).status == 200
    for method, path, headers, status in requests:
        before = data_segments_in(sock)
        sock.sendall(head(method, path, headers))
        response = read_response(sock)
        assert response.status == status, (path, response.status, response.body[:200])
        assert data_segments_in(sock) - before == 1, (path, status)
    sock.close()

"""netconf/tcp_ack.py: a read of the SSH connection that brings the NETCONF channel nothing (a client's window
adjust) is acknowledged at once, so a request the client's Nagle holds behind it is not kept 40 ms (issue 17's
periodic stall). Real TCP sockets on loopback; the kernel's own ACK state (TCP_INFO's unacked count of the
client) is the observable — no timing."""

from __future__ import annotations

import socket
import struct
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest

from singbox_agent.netconf import server as server_mod

pytestmark = pytest.mark.skipif(not hasattr(socket, "TCP_QUICKACK"), reason="Linux TCP_QUICKACK")


def unacked(sock: socket.socket) -> int:
    """Segments the sender has out without an ACK (struct tcp_info: eight u8 fields, then rto, ato, snd_mss,
    rcv_mss, unacked as u32)."""
    info = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 104)
    return int(struct.unpack_from("I", info, 8 + 4 * 4)[0])


@pytest.fixture
def tcp_pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    """(client, server) connected on loopback, the server side in the kernel's delayed-ACK ("ping-pong") mode that
    a request/reply exchange puts it in; the client has Nagle on, as paramiko's socket."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        client = socket.create_connection(listener.getsockname())
        srv, _ = listener.accept()
    try:
        for _ in range(5):
            client.sendall(b"q" * 100)
            assert srv.recv(1000)
            srv.sendall(b"r" * 100)
            assert client.recv(1000)
        yield client, srv
    finally:
        client.close()
        srv.close()


class FakeConnection:
    """What the asyncio transport talks to (asyncssh's connection): `data_received`, found through the instance
    (and `send_packet`, which the server wraps too)."""

    def __init__(self, sock: socket.socket, on_data: Any = None) -> None:
        self.sock = sock
        self.on_data = on_data
        self.received: list[bytes] = []

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"socket": self.sock, "peername": self.sock.getpeername()}.get(name, default)

    def send_packet(self, pkttype: int, *args: bytes) -> None:
        pass

    def data_received(self, data: bytes, datatype: Any = None) -> None:
        self.received.append(data)
        if self.on_data is not None:
            self.on_data(data)


def ssh_server(conn: FakeConnection) -> server_mod._SSHServer:
    ssh = server_mod._SSHServer(SimpleNamespace(connections=set()), "default")  # type: ignore[arg-type]
    ssh.connection_made(conn)  # type: ignore[arg-type]
    return ssh


def test_the_kernel_delays_the_ack_without_it(tcp_pair: tuple[socket.socket, socket.socket]) -> None:
    """The premise: after a request/reply exchange an unanswered segment stays unacknowledged for now."""
    client, srv = tcp_pair
    client.sendall(b"w" * 64)
    assert srv.recv(1000) == b"w" * 64
    assert unacked(client) == 1


def test_a_read_that_brings_the_channel_nothing_is_acknowledged_at_once(
        tcp_pair: tuple[socket.socket, socket.socket]) -> None:
    client, srv = tcp_pair
    conn = FakeConnection(srv)
    ssh_server(conn)
    client.sendall(b"w" * 64)  # e.g. SSH_MSG_CHANNEL_WINDOW_ADJUST
    data = srv.recv(1000)
    conn.data_received(data)  # as asyncio's transport calls it
    assert conn.received == [data]  # asyncssh still gets it
    assert unacked(client) == 0


class FramedSession:
    """The NetconfSession the channel feeds, as far as acknowledgement goes: NETCONF 1.0 framing, the number of
    requests each read completed."""

    def __init__(self) -> None:
        self.buffer = b""

    def data_received(self, data: bytes) -> int:
        self.buffer += data
        done = self.buffer.count(b"]]>]]>")
        self.buffer = self.buffer.rsplit(b"]]>]]>", 1)[-1]
        return done


def channel_on(srv: socket.socket) -> tuple[FakeConnection, server_mod._SSHServer]:
    chan: list[server_mod._NetconfChannel] = []
    conn = FakeConnection(srv, on_data=lambda data: chan[0].data_received(data, None))
    ssh = ssh_server(conn)
    chan.append(ssh.session_requested())  # the channel asyncssh hands the request bytes to
    chan[0]._session = FramedSession()  # type: ignore[assignment]
    return conn, ssh


def test_a_read_that_completes_a_request_waits_for_the_reply_to_carry_its_ack(
        tcp_pair: tuple[socket.socket, socket.socket]) -> None:
    client, srv = tcp_pair
    conn, ssh = channel_on(srv)
    client.sendall(b"<rpc/>" * 10 + b"]]>]]>")
    conn.data_received(srv.recv(1000))
    assert unacked(client) == 1  # no extra packet per request: the reply acknowledges it
    assert ssh._acks is not None and ssh._acks.acks == 0


def test_a_read_with_part_of_a_request_is_acknowledged_at_once(
        tcp_pair: tuple[socket.socket, socket.socket]) -> None:
    """A large request comes in several SSH packets (paramiko: at most 32 KiB each, one segment each on loopback);
    the client's Nagle holds the short last one until the first is acknowledged, and no reply is coming to carry
    that ACK — the kernel's delayed ACK kept a 63 KB edit-config's last bytes ~40 ms."""
    client, srv = tcp_pair
    conn, ssh = channel_on(srv)
    client.sendall(b"<rpc>" + b"x" * 2000)
    conn.data_received(srv.recv(4000))
    assert unacked(client) == 0
    assert ssh._acks is not None and ssh._acks.acks == 1
    client.sendall(b"</rpc>]]>]]>")  # its end: the reply acknowledges it
    conn.data_received(srv.recv(4000))
    assert ssh._acks.acks == 1

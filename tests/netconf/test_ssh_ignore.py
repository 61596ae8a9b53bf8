"""A reply is one SSH packet (netconf/ssh_ignore.py): asyncssh put an SSH_MSG_IGNORE ahead of every packet, a
countermeasure for CBC ciphers only, which the client then had to read, decrypt and verify too (issue 17: paramiko
does that in Python). The client's asyncssh counts the packets it received (its receive sequence number)."""

from __future__ import annotations

import re

import asyncssh
import pytest

from tests.netconf.conftest import ADMIN, ADMIN_PASSWORD, ServerInfo
from tests.netconf.rawclient import CLIENT_HELLO_11, RawClient, errors_of

GET_CONFIG = "<get-config><source><running/></source><filter><netconf-state " \
    'xmlns="urn:ietf:params:xml:ns:yang:ietf-netconf-monitoring"/></filter></get-config>'


async def connect(server: ServerInfo, cipher: str) -> RawClient:
    conn = await asyncssh.connect(server.host, server.port, username=ADMIN, password=ADMIN_PASSWORD,
                                  known_hosts=None, client_keys=None, agent_path=None, encryption_algs=[cipher],
                                  mac_algs=["hmac-sha2-256"])
    writer, reader, _ = await conn.open_session(subsystem="netconf", encoding=None)
    client = RawClient(conn, writer, reader)
    client.server_hello = await client.recv(timeout=30)
    assert re.search(rb"<session-id>\d+</session-id>", client.server_hello)
    writer.write(client.framer.frame(CLIENT_HELLO_11))
    client.framer.switch_to_chunked()
    return client


@pytest.mark.parametrize("cipher", ["aes128-ctr", "chacha20-poly1305@openssh.com"])  # paramiko's, OpenSSH's
async def test_a_small_reply_is_one_ssh_packet(netconf_server: ServerInfo, cipher: str) -> None:
    client = await connect(netconf_server, cipher)
    try:
        assert client.conn.get_extra_info("recv_cipher") == cipher
        assert not errors_of(await client.rpc(GET_CONFIG, "warm"))
        for i in range(3):
            before = client.conn._recv_seq
            assert not errors_of(await client.rpc(GET_CONFIG, str(i)))
            assert client.conn._recv_seq - before == 1  # the channel data alone (was 2: an ignore packet first)
    finally:
        await client.close()

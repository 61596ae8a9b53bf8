"""A small reply leaves the server in one TCP segment (server.py, `_NetconfChannel._send`).

asyncssh writes each SSH packet on its own and puts an SSH_MSG_IGNORE before every data packet, so an uncorked
reply reached the client as two segments: the first woke the client for a packet it drops, and the sender waited
for the CPU back to send the rest. The client's socket counts the data segments it received (TCP_INFO)."""

from __future__ import annotations

import socket
import struct
from typing import Any

from tests.netconf.conftest import ADMIN, ADMIN_PASSWORD, SBX_NS, ServerInfo
from tests.netconf.rawclient import RawClient, errors_of

GET_CONFIG = "<get-config><source><running/></source></get-config>"
_DATA_SEGS_IN = 152  # offset of tcpi_data_segs_in in Linux's struct tcp_info (since 4.6)


def data_segments_in(sock: Any) -> int:
    info = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 256)
    return int(struct.unpack_from("I", info, _DATA_SEGS_IN)[0])


def edit(port: int) -> str:
    return (f'<edit-config><target><running/></target><config><singbox xmlns="{SBX_NS}"><client><endpoint>'
            f"<name>e1</name><address>198.18.0.1</address><port>{port}</port></endpoint></client></singbox>"
            "</config></edit-config>")


async def test_each_reply_is_one_segment(netconf_server: ServerInfo) -> None:
    client = await RawClient.connect(netconf_server.host, netconf_server.port, ADMIN, ADMIN_PASSWORD)
    sock = client.conn.get_extra_info("socket")
    assert not errors_of(await client.rpc(GET_CONFIG, "warm"))  # the hellos and the first reply out of the way
    requests = [("edit", edit(2000)), ("get-config", GET_CONFIG), ("edit", edit(2001)),  # worker, then inline
                ("get-config", GET_CONFIG),
                ("error", "<get-config><source><nowhere/></source></get-config>")]
    for i, (kind, body) in enumerate(requests):
        before = data_segments_in(sock)
        reply = await client.rpc(body, str(i))
        assert bool(errors_of(reply)) == (kind == "error"), (kind, errors_of(reply))
        assert data_segments_in(sock) - before == 1, kind
    await client.close()

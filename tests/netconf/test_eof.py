"""A client that sends its requests and then EOF (`printf ... | ssh -s -p 830 HOST netconf`, operators' scripts)
gets every complete request answered, in order, and then the session ends (RFC 6241/6242; netopeer2 does the same).
"""

from __future__ import annotations

import asyncio
import re

from tests.netconf.conftest import ADMIN, ADMIN_PASSWORD, ServerInfo
from tests.netconf.rawclient import NC, RawClient

GET_CONFIG = "<get-config><source><running/></source></get-config>"


async def _send_then_eof(server: ServerInfo, bodies: list[str], trailing: bytes = b"") -> tuple[list[bytes], bool]:
    """Send the rpcs (message-ids 1..n) and `trailing` raw bytes, then EOF; the replies read until the server closes
    the channel, and whether it did."""
    c = await RawClient.connect(server.host, server.port, ADMIN, ADMIN_PASSWORD)
    try:
        for i, body in enumerate(bodies, 1):
            c.send(f'<rpc xmlns="{NC}" message-id="{i}">{body}</rpc>'.encode())
        if trailing:
            c.send_raw(trailing)
        c.writer.write_eof()
        replies: list[bytes] = []
        while True:
            try:
                replies.append(await c.recv(timeout=60))
            except EOFError:
                return replies, True
            except TimeoutError:
                return replies, False
    finally:
        c.conn.close()


def _ids(replies: list[bytes]) -> list[str]:
    return [m.group(1).decode() if (m := re.search(rb'message-id="([^"]*)"', r)) else "" for r in replies]


def test_requests_then_eof_all_answered(netconf_server: ServerInfo) -> None:
    replies, closed = asyncio.run(_send_then_eof(netconf_server, [GET_CONFIG, "<close-session/>"]))
    assert _ids(replies) == ["1", "2"], replies
    assert b"<data" in replies[0] and b"rpc-error" not in replies[0], replies[0]
    assert b"<ok/>" in replies[1], replies[1]
    assert closed


def test_eof_without_close_session_answers_then_ends(netconf_server: ServerInfo) -> None:
    # an incomplete trailing chunk (no end-of-chunks) is not a request: dropped without an answer
    replies, closed = asyncio.run(_send_then_eof(netconf_server, [GET_CONFIG, GET_CONFIG], trailing=b"\n#40\n<rpc"))
    assert _ids(replies) == ["1", "2"], replies
    assert all(b"<data" in r and b"rpc-error" not in r for r in replies), replies
    assert closed, "the session did not end after the client's EOF"
    # the server goes on serving others
    replies, closed = asyncio.run(_send_then_eof(netconf_server, [GET_CONFIG]))
    assert _ids(replies) == ["1"] and closed

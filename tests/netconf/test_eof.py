"""A client that sends its requests and then EOF (`printf ... | ssh -s -p 830 HOST netconf`, operators' scripts)
gets every complete request answered, in order, and then the session ends (RFC 6241/6242; netopeer2 does the same).
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

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


@pytest.mark.skipif(shutil.which("ssh") is None, reason="needs OpenSSH's ssh client")
def test_openssh_client_piped_requests(netconf_server: ServerInfo, tmp_path: Path) -> None:
    """The README's `ssh -s -p PORT admin@HOST netconf` with its input piped and closed at once, as scripts do."""
    askpass = tmp_path / "askpass"
    askpass.write_text(f"#!/bin/sh\nprintf '%s\\n' '{ADMIN_PASSWORD}'\n")
    askpass.chmod(0o700)
    get = f'<rpc message-id="1" xmlns="{NC}">{GET_CONFIG}</rpc>'
    close = f'<rpc message-id="2" xmlns="{NC}"><close-session/></rpc>'
    hello = (f'<hello xmlns="{NC}"><capabilities><capability>urn:ietf:params:netconf:base:1.1</capability>'
             "</capabilities></hello>]]>]]>")
    session = hello + "".join(f"\n#{len(m)}\n{m}\n##\n" for m in (get, close))
    ssh = subprocess.run(
        ["ssh", "-s", "-p", str(netconf_server.port), "-o", "StrictHostKeyChecking=no", "-o",
         "UserKnownHostsFile=/dev/null", "-o", "PubkeyAuthentication=no", "-o", "BatchMode=no",
         f"{ADMIN}@{netconf_server.host}", "netconf"],
        input=session.encode(), capture_output=True, timeout=120,
        env={**os.environ, "SSH_ASKPASS": str(askpass), "SSH_ASKPASS_REQUIRE": "force", "DISPLAY": ":0"},
    )
    out = ssh.stdout
    assert b'message-id="1"' in out and b"<data" in out, out + ssh.stderr
    assert b'message-id="2"' in out and b"<ok/>" in out, out + ssh.stderr
    assert out.index(b'message-id="1"') < out.index(b'message-id="2"')
    assert ssh.returncode == 0, ssh.stderr

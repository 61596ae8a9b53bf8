"""A minimal NETCONF client over asyncssh for tests that need exact bytes on the wire (framing, pipelining,
malformed requests). It reuses the sans-IO framer of the server for its own receive side."""

from __future__ import annotations

import asyncio
import re
import xml.etree.ElementTree as ET
from typing import Any

import asyncssh

from singbox_agent.netconf.framing import Framer

NC = "urn:ietf:params:xml:ns:netconf:base:1.0"
CLIENT_HELLO_11 = (
    f'<hello xmlns="{NC}"><capabilities><capability>urn:ietf:params:netconf:base:1.0</capability>'
    "<capability>urn:ietf:params:netconf:base:1.1</capability></capabilities></hello>"
).encode()
CLIENT_HELLO_10 = (
    f'<hello xmlns="{NC}"><capabilities><capability>urn:ietf:params:netconf:base:1.0</capability>'
    "</capabilities></hello>"
).encode()


class RawClient:
    def __init__(self, conn: asyncssh.SSHClientConnection, writer: Any, reader: Any) -> None:
        self.conn = conn
        self.writer = writer
        self.reader = reader
        self.framer = Framer()
        self.server_hello: bytes = b""
        self.session_id = 0

    @classmethod
    async def connect(cls, host: str, port: int, user: str, password: str, *, base11: bool = True,
                      send_hello: bool = True) -> RawClient:
        conn = await asyncssh.connect(host, port, username=user, password=password, known_hosts=None,
                                      client_keys=None, agent_path=None)
        writer, reader, _ = await conn.open_session(subsystem="netconf", encoding=None)
        client = cls(conn, writer, reader)
        client.server_hello = await client.recv(timeout=30)
        m = re.search(rb"<session-id>(\d+)</session-id>", client.server_hello)
        client.session_id = int(m.group(1)) if m else 0
        if send_hello:
            writer.write(client.framer.frame(CLIENT_HELLO_11 if base11 else CLIENT_HELLO_10))
            if base11:
                client.framer.switch_to_chunked()
        return client

    def send_raw(self, data: bytes) -> None:
        self.writer.write(data)

    def send(self, message: bytes) -> None:
        self.writer.write(self.framer.frame(message))

    async def recv(self, timeout: float = 60) -> bytes:
        async def read() -> bytes:
            while True:
                message = self.framer.next_message()
                if message is not None:
                    return message
                data = await self.reader.read(65536)
                if not data:
                    raise EOFError("session closed by the server")
                self.framer.receive_data(data)

        return await asyncio.wait_for(read(), timeout)

    async def rpc(self, body: str, message_id: str = "1", timeout: float = 60) -> ET.Element:
        self.send(f'<rpc xmlns="{NC}" message-id="{message_id}">{body}</rpc>'.encode())
        return ET.fromstring(await self.recv(timeout))

    async def closed(self, timeout: float = 10) -> bool:
        """Whether the server closes the channel within `timeout` (replies read meanwhile are discarded)."""
        try:
            async with asyncio.timeout(timeout):
                while await self.reader.read(65536):
                    pass
            return True
        except TimeoutError:
            return False
        except (asyncssh.Error, ConnectionError):
            return True

    async def close(self) -> None:
        self.conn.close()
        try:
            await asyncio.wait_for(self.conn.wait_closed(), 5)
        except TimeoutError:
            pass


def errors_of(reply: ET.Element) -> list[dict[str, str]]:
    out = []
    for err in reply.iter(f"{{{NC}}}rpc-error"):
        entry = {child.tag.split("}")[1]: (child.text or "") for child in err}
        info = err.find(f"{{{NC}}}error-info")
        if info is not None:
            for child in info:
                entry["info:" + child.tag.split("}")[1]] = child.text or ""
        out.append(entry)
    return out

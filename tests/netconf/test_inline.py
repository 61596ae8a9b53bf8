"""Short operations run on the event loop (session.py): replies must still come in request order, and a session's
sysrepo work must stay consistent when inline and worker operations alternate."""

from __future__ import annotations

from tests.netconf.conftest import ADMIN, ADMIN_PASSWORD, SBX_NS, ServerInfo
from tests.netconf.rawclient import RawClient, errors_of

NC = "urn:ietf:params:xml:ns:netconf:base:1.0"
NCM = "urn:ietf:params:xml:ns:yang:ietf-netconf-monitoring"
GET_CONFIG = "<get-config><source><running/></source></get-config>"
GET_SCHEMA = f'<get-schema xmlns="{NCM}"><identifier>vpp-singbox</identifier></get-schema>'


def edit(name: str) -> str:
    return (f'<edit-config><target><running/></target><config><singbox xmlns="{SBX_NS}"><client><endpoint>'
            f"<name>{name}</name><address>198.18.0.1</address></endpoint></client></singbox></config></edit-config>")


async def test_worker_and_inline_replies_stay_in_order(netconf_server: ServerInfo) -> None:
    client = await RawClient.connect(netconf_server.host, netconf_server.port, ADMIN, ADMIN_PASSWORD)
    for i in range(5):  # let the session learn that get-config and edit-config are short
        await client.rpc(GET_CONFIG, f"warm{i}")
        await client.rpc(edit(f"w{i}"), f"warme{i}")
    # get-schema always goes to the worker and takes longer than a get-config, which could otherwise overtake it
    bodies = [GET_SCHEMA if i % 3 == 0 else GET_CONFIG if i % 3 == 1 else edit(f"p{i}") for i in range(60)]
    client.send_raw(b"".join(client.framer.frame(f'<rpc xmlns="{NC}" message-id="p{i}">{b}</rpc>'.encode())
                             for i, b in enumerate(bodies)))
    for i in range(60):
        reply = await client.recv(timeout=30)
        assert f'message-id="p{i}"'.encode() in reply, (i, reply[:200])
        assert b"rpc-error" not in reply, reply[:300]
        if i % 3 == 1:  # each get-config sees every edit sent before it
            assert all(f"<name>p{j}</name>".encode() in reply for j in range(2, i, 3)), i
    await client.close()


async def test_lock_taken_inline_excludes_other_sessions(netconf_server: ServerInfo) -> None:
    a = await RawClient.connect(netconf_server.host, netconf_server.port, ADMIN, ADMIN_PASSWORD)
    b = await RawClient.connect(netconf_server.host, netconf_server.port, ADMIN, ADMIN_PASSWORD)
    for i in range(4):  # lock and unlock become inline operations for a
        assert not errors_of(await a.rpc("<lock><target><running/></target></lock>", f"l{i}"))
        assert not errors_of(await a.rpc("<unlock><target><running/></target></unlock>", f"u{i}"))
    assert not errors_of(await a.rpc("<lock><target><running/></target></lock>", "L"))
    denied = errors_of(await b.rpc(edit("from-b"), "E"))
    assert denied and denied[0]["error-tag"] == "in-use"
    assert not errors_of(await a.rpc(edit("from-a"), "A"))
    assert not errors_of(await a.rpc("<unlock><target><running/></target></unlock>", "U"))
    assert not errors_of(await b.rpc(edit("from-b"), "E2"))
    await a.close()
    await b.close()

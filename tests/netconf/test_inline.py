"""Short operations run on the event loop (session.py): replies must still come in request order, and a session's
sysrepo work must stay consistent when inline and worker operations alternate."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from singbox_agent.repository import SysrepoInstance
from tests.netconf.conftest import ADMIN, ADMIN_PASSWORD, SBX_NS, ServerInfo, bootstrap, start_server, stop_server
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


@pytest.fixture
def generous_inline_server(sysrepo_instance: SysrepoInstance, tmp_path: Path) -> Iterator[ServerInfo]:
    """A server whose inline budget every short operation meets, even on a loaded machine."""
    env = {**os.environ, **sysrepo_instance.env, "SINGBOX_NETCONF_INLINE_BUDGET_MS": "1000"}
    bootstrap(env, tmp_path)
    info = start_server(env, tmp_path)
    try:
        yield info
    finally:
        stop_server(info)


async def test_other_sessions_served_while_an_edit_waits_for_a_subscriber(
        generous_inline_server: ServerInfo) -> None:
    """An edit waits for sysrepo's subscribers (the agent talking to VPP): never on the event loop, where every
    other session would stall with it. Session a's edit is held in the subscriber until b's get-config came back."""
    netconf_server = generous_inline_server
    import asyncio
    import threading
    import xml.etree.ElementTree as ET
    from typing import Any

    import sysrepo

    release = threading.Event()
    holding = threading.Event()
    hold = threading.Event()  # set: the subscriber blocks its next change until released

    def subscriber(event: str, req_id: int, changes: list[Any], private_data: Any) -> None:
        if event == "change" and hold.is_set():
            holding.set()
            release.wait(60)

    conn = sysrepo.SysrepoConnection()
    sub = conn.start_session("running")
    sub.subscribe_module_change("vpp-singbox", "/vpp-singbox:singbox", subscriber)
    a = await RawClient.connect(netconf_server.host, netconf_server.port, ADMIN, ADMIN_PASSWORD)
    b = await RawClient.connect(netconf_server.host, netconf_server.port, ADMIN, ADMIN_PASSWORD)
    try:
        for i in range(5):  # a's edits are short: the old code ran the next one on the event loop
            assert not errors_of(await a.rpc(edit(f"fast{i}"), f"f{i}"))
        await b.rpc(GET_CONFIG, "warm")
        hold.set()
        slow_edit = asyncio.ensure_future(a.rpc(edit("slow"), "slow", timeout=120))
        assert await asyncio.to_thread(holding.wait, 60), "the edit never reached the subscriber"
        # The old code served this only after sysrepo gave up on the subscriber (5 s), failing a's edit.
        reply = ET.tostring(await b.rpc(GET_CONFIG, "during", timeout=60))
        assert b"fast4" in reply and b"slow" not in reply
        assert not slow_edit.done()
        release.set()
        assert not errors_of(await slow_edit)
    finally:
        release.set()
        await a.close()
        await b.close()
        sub.stop()
        conn.disconnect()

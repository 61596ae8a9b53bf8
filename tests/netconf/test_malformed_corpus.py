"""≥200 malformed or invalid requests, each answered with the right rpc-error on a session that keeps working;
broken framing closes the session; the running datastore never changes and other sessions keep being served."""

from __future__ import annotations

import asyncio
import re
import xml.etree.ElementTree as ET
import pytest
import sysrepo

from tests.netconf.conftest import ADMIN, ADMIN_PASSWORD, ServerInfo
from tests.netconf.corpus import BROKEN_CHUNKED, SBX, corpus, nacm_probes
from tests.netconf.rawclient import NC, RawClient, errors_of

ERROR_TYPES = {"transport", "rpc", "protocol", "application"}
CASES = corpus()


def running_snapshot() -> str:
    with sysrepo.SysrepoConnection() as conn:
        sess = conn.start_session("running")
        with sess.get_data_ly("/*") as tree:
            return str(tree.print_mem("xml", with_siblings=True))


async def prepare(info: ServerInfo) -> None:
    client = await RawClient.connect(info.host, info.port, ADMIN, ADMIN_PASSWORD)
    reply = await client.rpc(
        f'<edit-config><target><running/></target><config><singbox xmlns="{SBX}"><client><endpoint><name>base'
        "</name><address>198.18.0.1</address></endpoint></client></singbox></config></edit-config>")
    assert reply.find(f"{{{NC}}}ok") is not None
    await client.close()


async def test_every_invalid_request_gets_its_rpc_error(netconf_server: ServerInfo) -> None:
    assert len(CASES) >= 280, len(CASES)
    await prepare(netconf_server)
    before = running_snapshot()
    client = await RawClient.connect(netconf_server.host, netconf_server.port, ADMIN, ADMIN_PASSWORD)
    observer = await RawClient.connect(netconf_server.host, netconf_server.port, ADMIN, ADMIN_PASSWORD)
    failures: list[str] = []
    for i, (name, message, tags) in enumerate(CASES):
        client.send(message or b" ")  # chunked framing cannot carry an empty message
        try:
            raw = await client.recv(timeout=30)
        except (TimeoutError, EOFError) as exc:
            pytest.fail(f"{name}: no reply ({exc!r}); earlier failures: {failures}")
        reply = ET.fromstring(raw)
        errs = errors_of(reply)
        mid = re.search(rb'message-id="([^"]*)"', message)
        if not errs:
            failures.append(f"{name}: no rpc-error: {raw[:300]!r}")
            continue
        err = errs[0]
        if err.get("error-tag") not in tags:
            failures.append(f"{name}: error-tag {err.get('error-tag')} not in {sorted(tags)}: "
                            f"{err.get('error-message')}")
        if err.get("error-type") not in ERROR_TYPES:
            failures.append(f"{name}: error-type {err.get('error-type')}")
        if not err.get("error-message"):
            failures.append(f"{name}: no error-message")
        if mid and reply.get("message-id") != mid.group(1).decode() and err.get("error-tag") != "malformed-message":
            failures.append(f"{name}: message-id not echoed")
        if i % 25 == 0:  # other sessions keep being served
            ok = await observer.rpc("<get-config><source><running/></source></get-config>", str(i))
            assert ok.find(f"{{{NC}}}data") is not None
    ok = await client.rpc("<get-config><source><running/></source></get-config>", "last")
    assert ok.find(f"{{{NC}}}data") is not None
    await client.close()
    await observer.close()
    assert not failures, f"{len(failures)} of {len(CASES)} cases wrong:\n" + "\n".join(failures)
    assert running_snapshot() == before


async def test_nacm_probes_reveal_nothing(netconf_server: ServerInfo) -> None:
    """A read-only user's filters that test a hidden password or login hash select nothing that depends on it."""
    from tests.netconf.test_nacm_filters import READER, READER_PASSWORD, SECRET, setup_reader_and_secret, \
        xpath_get_config

    setup_reader_and_secret()
    before = running_snapshot()
    reader = await RawClient.connect(netconf_server.host, netconf_server.port, READER, READER_PASSWORD)
    observer = await RawClient.connect(netconf_server.host, netconf_server.port, ADMIN, ADMIN_PASSWORD)
    leaks: list[str] = []
    for i, select in enumerate(nacm_probes()):
        raw = ET.tostring(await reader.rpc(xpath_get_config(select), str(i))).decode()
        if ">sec<" in raw or ">admin<" in raw or SECRET in raw or "$6$" in raw:
            leaks.append(select)
        if i % 25 == 0:
            ok = await observer.rpc("<get-config><source><running/></source></get-config>", f"o{i}")
            assert ok.find(f"{{{NC}}}data") is not None
    assert not leaks, leaks
    assert running_snapshot() == before
    await reader.close()
    await observer.close()


@pytest.mark.parametrize("frame", BROKEN_CHUNKED)
async def test_broken_framing_closes_only_that_session(netconf_server: ServerInfo, frame: bytes) -> None:
    other = await RawClient.connect(netconf_server.host, netconf_server.port, ADMIN, ADMIN_PASSWORD)
    client = await RawClient.connect(netconf_server.host, netconf_server.port, ADMIN, ADMIN_PASSWORD)
    client.send_raw(frame + b"\n#1\nx\n##\n" * 3)
    assert await client.closed(timeout=10)
    reply = await other.rpc("<get-config><source><running/></source></get-config>")
    assert reply.find(f"{{{NC}}}data") is not None
    await other.close()


async def test_bad_hellos_close_the_session(netconf_server: ServerInfo) -> None:
    bad = [
        b"<hello/>]]>]]>",
        f'<hello xmlns="{NC}"><capabilities><capability>urn:x</capability></capabilities></hello>]]>]]>'.encode(),
        f'<hello xmlns="{NC}"><capabilities><capability>urn:ietf:params:netconf:base:1.1</capability>'
        "</capabilities><session-id>4</session-id></hello>]]>]]>".encode(),
        b"not xml]]>]]>",
        f'<rpc xmlns="{NC}" message-id="1"><get/></rpc>]]>]]>'.encode(),
    ]
    for data in bad:
        client = await RawClient.connect(netconf_server.host, netconf_server.port, ADMIN, ADMIN_PASSWORD,
                                         send_hello=False)
        client.send_raw(data)
        assert await client.closed(timeout=10), data


async def test_byte_at_a_time_and_pipelined(netconf_server: ServerInfo) -> None:
    for base11 in (True, False):
        client = await RawClient.connect(netconf_server.host, netconf_server.port, ADMIN, ADMIN_PASSWORD,
                                         base11=base11)
        stream = b"".join(
            client.framer.frame(f'<rpc xmlns="{NC}" message-id="m{i}"><get-config><source><running/></source>'
                                f"</get-config></rpc>".encode())
            for i in range(5)
        )
        for b in stream:
            client.send_raw(bytes([b]))
            await asyncio.sleep(0)
        for i in range(5):
            reply = await client.recv(timeout=30)
            assert f'message-id="m{i}"'.encode() in reply, reply[:200]
        # pipelined: 50 rpcs in one write, answered in order
        burst: list[bytes] = []
        for i in range(50):
            body = ("<get-config><source><running/></source></get-config>" if i % 2 else
                    "<lock><target><startup/></target></lock>" if i % 4 == 0 else
                    "<unlock><target><startup/></target></unlock>")
            burst.append(client.framer.frame(f'<rpc xmlns="{NC}" message-id="p{i}">{body}</rpc>'.encode()))
        client.send_raw(b"".join(burst))
        for i in range(50):
            reply = await client.recv(timeout=30)
            assert f'message-id="p{i}"'.encode() in reply
            assert b"rpc-error" not in reply, reply[:300]
        await client.close()


@pytest.mark.slow
async def test_large_messages_both_framings(netconf_server: ServerInfo) -> None:
    entries = "".join(f"<endpoint><name>L{i:05d}</name><address>198.18.0.1</address></endpoint>" for i in range(20000))
    body = (f'<edit-config><target><running/></target><config><singbox xmlns="{SBX}"><client>{entries}</client>'
            "</singbox></config></edit-config>")
    for base11 in (False, True):
        client = await RawClient.connect(netconf_server.host, netconf_server.port, ADMIN, ADMIN_PASSWORD,
                                         base11=base11)
        reply = await client.rpc(body, timeout=120)
        assert reply.find(f"{{{NC}}}ok") is not None
        data = await client.rpc("<get-config><source><running/></source></get-config>", timeout=120)
        assert len([e for e in data.iter(f"{{{SBX}}}endpoint")]) == 20000
        await client.close()



async def test_nothing_runs_after_close_session(netconf_server: ServerInfo) -> None:
    client = await RawClient.connect(netconf_server.host, netconf_server.port, ADMIN, ADMIN_PASSWORD)
    edit = (f'<edit-config><target><running/></target><config><singbox xmlns="{SBX}"><client><endpoint>'
            "<name>after-close</name><address>198.18.0.1</address></endpoint></client></singbox></config>"
            "</edit-config>")
    client.send_raw(client.framer.frame(f'<rpc xmlns="{NC}" message-id="1"><close-session/></rpc>'.encode())
                    + client.framer.frame(f'<rpc xmlns="{NC}" message-id="2">{edit}</rpc>'.encode()))
    reply = await client.recv()
    assert b'message-id="1"' in reply and b"<ok/>" in reply
    assert await client.closed(timeout=10)
    assert "after-close" not in running_snapshot()


async def test_silent_client_is_dropped_after_hello_timeout(sysrepo_instance: object, tmp_path: object) -> None:
    import os
    from pathlib import Path

    from tests.netconf.conftest import bootstrap, start_server, stop_server

    env = {**os.environ, **sysrepo_instance.env}  # type: ignore[attr-defined]
    state = Path(str(tmp_path))
    bootstrap(env, state)
    info = start_server(env, state, ["--hello-timeout", "1"])
    try:
        silent = await RawClient.connect(info.host, info.port, ADMIN, ADMIN_PASSWORD, send_hello=False)
        assert await silent.closed(timeout=10)
        polite = await RawClient.connect(info.host, info.port, ADMIN, ADMIN_PASSWORD)
        await asyncio.sleep(1.5)
        reply = await polite.rpc("<get-config><source><running/></source></get-config>")
        assert reply.find(f"{{{NC}}}data") is not None
        await polite.close()
    finally:
        assert stop_server(info) == 0

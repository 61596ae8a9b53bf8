"""RFC 6470 netconf-config-change names who made the change: the NETCONF user and session-id, or the RESTCONF user
(session-id 0) — not the server process's user (root) and 0."""

from __future__ import annotations

import re
from pathlib import Path

import httpx

from singbox_agent.repository import SysrepoInstance
from tests.netconf.conftest import ADMIN, ADMIN_PASSWORD, SBX_NS, ServerInfo
from tests.netconf.rawclient import RawClient, errors_of
from tests.restconf.rcserver import start_server, stop_server

NCN = "urn:ietf:params:xml:ns:yang:ietf-netconf-notifications"
NOTIF = "urn:ietf:params:xml:ns:netconf:notification:1.0"


async def next_config_change(watcher: RawClient) -> str:
    for _ in range(20):
        message = (await watcher.recv(timeout=15)).decode()
        if "netconf-config-change" in message:
            return message
    raise AssertionError("no netconf-config-change")


def changed_by(message: str) -> tuple[str, str]:
    user = re.search(r"<username>([^<]*)</username>", message)
    sid = re.search(r"<session-id>([^<]*)</session-id>", message)
    assert user and sid, message
    return user.group(1), sid.group(1)


async def test_config_change_names_user_and_session(netconf_server: ServerInfo, sysrepo_instance: SysrepoInstance,
                                                    tmp_path: Path) -> None:
    watcher = await RawClient.connect(netconf_server.host, netconf_server.port, ADMIN, ADMIN_PASSWORD)
    reply = await watcher.rpc(f'<create-subscription xmlns="{NOTIF}"><filter type="subtree">'
                              f'<netconf-config-change xmlns="{NCN}"/></filter></create-subscription>')
    assert not errors_of(reply)
    editor = await RawClient.connect(netconf_server.host, netconf_server.port, ADMIN, ADMIN_PASSWORD)
    reply = await editor.rpc(f'<edit-config><target><running/></target><config><singbox xmlns="{SBX_NS}">'
                             "<log-level>debug</log-level></singbox></config></edit-config>")
    assert not errors_of(reply)
    assert changed_by(await next_config_change(watcher)) == (ADMIN, str(editor.session_id))
    await editor.close()

    state = tmp_path / "restconf"
    state.mkdir()
    restconf = start_server(sysrepo_instance, state)
    try:
        with httpx.Client(base_url=restconf.base_url, verify=restconf.ca or False, auth=(ADMIN, ADMIN_PASSWORD),
                          timeout=30) as client:
            r = client.put("/restconf/data/vpp-singbox:singbox/log-level",
                           content=b'{"vpp-singbox:log-level": "info"}',
                           headers={"Content-Type": "application/yang-data+json"})
            assert r.status_code in (201, 204), r.text
        assert changed_by(await next_config_change(watcher)) == (ADMIN, "0")
    finally:
        assert stop_server(restconf) == 0
    await watcher.close()

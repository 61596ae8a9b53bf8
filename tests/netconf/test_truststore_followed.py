"""The server follows the truststore (client keys, read per login) without a subscription: no truststore commit
waits for it (sysrepo waits for every done subscriber), and a commit by another client reaches the next login."""

from __future__ import annotations

from pathlib import Path

import sysrepo

from tests.netconf.conftest import ServerInfo
from tests.netconf.test_ssh_client_auth import TS, key_pair, login, public_key, users_config
from tests.sysrepo_state import sysrepo_state

NC = "urn:ietf:params:xml:ns:netconf:base:1.0"
BAG = "/ietf-truststore:truststore/public-key-bags/public-key-bag[name='ops']"


def _truststore_subscribers(pid: int) -> list[str]:
    found = sysrepo_state()
    cids = {c["cid"] for c in found["connection"] if c["pid"] == pid}
    assert cids
    return [sub.get("xpath", "") for m in found["module"] if m["name"] == "ietf-truststore"
            for sub in m.get("subscriptions", {}).get("change-sub", []) if sub.get("cid") in cids]


def test_truststore_commits_wait_for_no_netconf_subscriber(netconf_server: ServerInfo, tmp_path: Path) -> None:
    assert _truststore_subscribers(netconf_server.process.pid) == []
    key1, blob1 = key_pair(tmp_path, "o1")
    key2, blob2 = key_pair(tmp_path, "o2")
    with netconf_server.connect() as m:
        m.edit_config(target="running", config=(
            f'<config xmlns="{NC}"><truststore xmlns="{TS}"><public-key-bags><public-key-bag><name>ops</name>'
            f"{public_key('k', blob1)}</public-key-bag></public-key-bags></truststore></config>"))
        m.edit_config(target="running", config=users_config(
            "<user><name>op</name><public-keys><central-truststore-reference>ops"
            "</central-truststore-reference></public-keys></user>"))
    assert login(netconf_server, "op", key=key1)
    assert not login(netconf_server, "op", key=key2)
    # another client (sysrepo directly) swaps the bag's key: the next login sees it
    with sysrepo.SysrepoConnection() as conn:
        sess = conn.start_session("running")
        sess.set_item(f"{BAG}/public-key[name='k']/public-key", blob2)
        sess.apply_changes()
        sess.stop()
    assert login(netconf_server, "op", key=key2)
    assert not login(netconf_server, "op", key=key1)

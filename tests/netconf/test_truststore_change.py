"""A truststore change reaches the endpoints' users and nothing else (server.py `_truststore_changed`).

Only client keys come from the truststore (read again at the next login, test_ssh_client_auth.py); no listener
depends on it. The server used to re-read its listen settings and parse every host key after each change of any
public-key bag — with a host key that cannot be read, that shows as one more "listen settings not applied" line."""

from __future__ import annotations

import base64
import time

import asyncssh
import sysrepo

from singbox_agent.netconf.settings import HOST_KEY_NAME
from tests.netconf.conftest import ADMIN_PASSWORD, ServerInfo

NOT_APPLIED = "listen settings not applied"
BAG = "/ietf-truststore:truststore/public-key-bags/public-key-bag[name='bench']/public-key[name='k']"


def not_applied(server: ServerInfo) -> int:
    return (server.state_dir / "netconf.log").read_text(errors="replace").count(NOT_APPLIED)


def test_truststore_change_does_not_reread_listen_settings(netconf_server: ServerInfo) -> None:
    blob = base64.b64encode(asyncssh.generate_private_key("ssh-ed25519").public_data).decode()
    with sysrepo.SysrepoConnection() as conn:
        sess = conn.start_session("running")
        sess.set_item(f"/ietf-keystore:keystore/asymmetric-keys/asymmetric-key[name='{HOST_KEY_NAME}']"
                      "/cleartext-private-key", base64.b64encode(b"not a key").decode())
        sess.apply_changes()
        deadline = time.monotonic() + 30
        while not_applied(netconf_server) == 0 and time.monotonic() < deadline:  # the keystore change is re-read
            time.sleep(0.05)
        assert not_applied(netconf_server) == 1
        for i in range(3):
            sess.set_item(BAG + "/public-key-format", "ietf-crypto-types:ssh-public-key-format")
            sess.set_item(BAG + "/public-key", blob if i % 2 == 0 else base64.b64encode(b"x" * 51).decode())
            sess.apply_changes()
        sess.stop()
    time.sleep(3)  # the old code logged again within milliseconds of each bag change
    assert not_applied(netconf_server) == 1
    with netconf_server.connect(password=ADMIN_PASSWORD) as m:  # the listener it had still serves
        assert m.session_id

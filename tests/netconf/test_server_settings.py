"""The server's settings in sysrepo: SSH users and keys, host key, listen endpoints (RFC 9643)."""

from __future__ import annotations

import time
from typing import Any

import pytest
import sysrepo
from ncclient.operations.rpc import RPCError

from tests.netconf.conftest import ServerInfo

NC = "urn:ietf:params:xml:ns:netconf:base:1.0"
from tests.netconf.helpers import endpoint, running, endpoints


def test_wrong_password_and_public_key(netconf_server: ServerInfo, tmp_path: Any) -> None:
    import asyncssh
    from ncclient.transport.errors import AuthenticationError

    with pytest.raises(AuthenticationError):
        netconf_server.connect(password="wrong")
    key = asyncssh.generate_private_key("ssh-ed25519")
    key_path = tmp_path / "id_ed25519"
    key_path.write_bytes(key.export_private_key("openssh"))
    key_path.chmod(0o600)
    alg, data = key.export_public_key("openssh").decode().split()[:2]
    with sysrepo.SysrepoConnection() as conn:
        sess = conn.start_session("running")
        base = "/ietf-system:system/authentication/user[name='admin']/authorized-key[name='test']"
        sess.set_item(base + "/algorithm", alg)
        sess.set_item(base + "/key-data", data)
        sess.apply_changes()
    from ncclient import manager

    with manager.connect(host=netconf_server.host, port=netconf_server.port, username="admin",
                         key_filename=str(key_path), hostkey_verify=False, look_for_keys=False,
                         allow_agent=False, timeout=30) as m:
        assert m.get_config("running") is not None


def test_host_key_kept_and_endpoints_in_ietf_netconf_server(sysrepo_instance: Any, tmp_path: Any) -> None:
    import json
    import os
    import socket

    from ncclient import manager

    from tests.netconf.conftest import bootstrap, start_server, stop_server

    env = {**os.environ, **sysrepo_instance.env}
    bootstrap(env, tmp_path)
    first = start_server(env, tmp_path)
    assert stop_server(first) == 0
    key = tmp_path / "netconf" / "ssh_host_ed25519_key"
    assert key.stat().st_mode & 0o777 == 0o600
    # first start stored the endpoint and the host key in sysrepo (running and startup)
    with sysrepo.SysrepoConnection() as conn:
        for ds in ("running", "startup"):
            sess = conn.start_session(ds)
            listen = sess.get_data("/ietf-netconf-server:netconf-server/listen")
            (ep,) = list(listen["netconf-server"]["listen"]["endpoints"]["endpoint"])
            assert [b["local-address"] for b in ep["ssh"]["tcp-server-parameters"]["local-bind"]] == ["127.0.0.1"]
            keys = sess.get_data("/ietf-keystore:keystore")["keystore"]["asymmetric-keys"]["asymmetric-key"]
            assert [k["name"] for k in keys] == ["netconf-ssh-host-key"]
    second = start_server(env, tmp_path)
    try:
        assert second.fingerprint == first.fingerprint
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            free_port = probe.getsockname()[1]
        with second.connect() as m:
            # a second endpoint added over NETCONF is served at once, with the same keystore host key
            m.edit_config(target="running", config=(
                f'<config xmlns="{NC}"><netconf-server xmlns="urn:ietf:params:xml:ns:yang:ietf-netconf-server">'
                "<listen><endpoints><endpoint><name>extra</name><ssh><tcp-server-parameters><local-bind>"
                f"<local-address>127.0.0.1</local-address><local-port>{free_port}</local-port></local-bind>"
                "</tcp-server-parameters><ssh-server-parameters><server-identity><host-key><name>k</name>"
                "<public-key><central-keystore-reference>netconf-ssh-host-key</central-keystore-reference>"
                "</public-key></host-key></server-identity></ssh-server-parameters></ssh></endpoint></endpoints>"
                "</listen></netconf-server></config>"))
            deadline = time.monotonic() + 10
            extra = None
            while extra is None and time.monotonic() < deadline:
                try:
                    extra = manager.connect(host="127.0.0.1", port=free_port, username="admin",
                                            password="admin-secret", hostkey_verify=False, look_for_keys=False,
                                            allow_agent=False, timeout=10)
                except Exception:  # noqa: BLE001 - not listening yet
                    time.sleep(0.2)
            assert extra is not None and extra.connected
            extra.close_session()
            assert m.connected  # open sessions survive the reconfiguration
            # a reference to a missing key is rejected by the schema (leafref), nothing changes
            with pytest.raises(RPCError):
                m.edit_config(target="running", config=(
                    f'<config xmlns="{NC}"><netconf-server xmlns="urn:ietf:params:xml:ns:yang:ietf-netconf-server">'
                    "<listen><endpoints><endpoint><name>extra</name><ssh><ssh-server-parameters><server-identity>"
                    "<host-key><name>k</name><public-key><central-keystore-reference>nope"
                    "</central-keystore-reference></public-key></host-key></server-identity>"
                    "</ssh-server-parameters></ssh></endpoint></endpoints></listen></netconf-server></config>"))
        ready = json.loads((tmp_path / "netconf-ready.json").read_text())
        assert ready["host_key_fingerprint"] == first.fingerprint
    finally:
        assert stop_server(second) == 0

"""RFC 9643 client authentication of an SSH endpoint (ietf-ssh-server `client-authentication/users`, as netopeer2
reads it), through ncclient: inline keys, truststore key bags, hashed passwords, `none`, and precedence over the
shared RFC 7317 user list. The endpoint is the one the server seeded ("default")."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import asyncssh
import pytest
from ncclient.transport.errors import AuthenticationError

from singbox_agent.mgmt.crypt import hash_password
from tests.netconf.conftest import ADMIN_PASSWORD, ServerInfo

NC = "urn:ietf:params:xml:ns:netconf:base:1.0"
NCS = "urn:ietf:params:xml:ns:yang:ietf-netconf-server"
TS = "urn:ietf:params:xml:ns:yang:ietf-truststore"
CT = "urn:ietf:params:xml:ns:yang:ietf-crypto-types"


def key_pair(tmp: Path, name: str) -> tuple[Path, str]:
    """(private key file for ncclient, base64 RFC 4253 public key blob for the YANG binary)."""
    key = asyncssh.generate_private_key("ssh-ed25519")
    path = tmp / name
    path.write_bytes(key.export_private_key("openssh"))
    path.chmod(0o600)
    return path, base64.b64encode(key.public_data).decode()


def public_key(name: str, blob: str) -> str:
    return (f'<public-key><name>{name}</name><public-key-format xmlns:ct="{CT}">ct:ssh-public-key-format'
            f"</public-key-format><public-key>{blob}</public-key></public-key>")


def users_config(users_xml: str) -> str:
    return (f'<config xmlns="{NC}"><netconf-server xmlns="{NCS}"><listen><endpoints><endpoint><name>default</name>'
            f"<ssh><ssh-server-parameters><client-authentication><users>{users_xml}</users>"
            "</client-authentication></ssh-server-parameters></ssh></endpoint></endpoints></listen></netconf-server>"
            "</config>")


def login(server: ServerInfo, user: str, password: str | None = None, key: Path | None = None) -> bool:
    kw: dict[str, Any] = {"key_filename": str(key)} if key else {}
    try:
        with server.connect(user=user, password=password, **kw) as m:
            return bool(m.session_id)
    except AuthenticationError:
        return False


def test_endpoint_users_with_inline_keys_and_passwords(netconf_server: ServerInfo, tmp_path: Path) -> None:
    op_key, op_blob = key_pair(tmp_path, "operator")
    other_key, _ = key_pair(tmp_path, "other")
    assert not login(netconf_server, "operator", "op-secret")  # nobody knows "operator" yet
    with netconf_server.connect() as m:
        m.edit_config(target="running", config=users_config(
            f"<user><name>operator</name><public-keys><inline-definition>{public_key('k1', op_blob)}"
            f"</inline-definition></public-keys><password><hashed-password>{hash_password('op-secret')}"
            "</hashed-password></password></user>"))
    assert login(netconf_server, "operator", "op-secret")  # same listener: users change without a rebind
    assert not login(netconf_server, "operator", "wrong")
    assert login(netconf_server, "operator", key=op_key)
    assert not login(netconf_server, "operator", key=other_key)
    assert login(netconf_server, "admin", ADMIN_PASSWORD)  # not named by the endpoint: the shared list decides


def test_truststore_bag_reference(netconf_server: ServerInfo, tmp_path: Path) -> None:
    key1, blob1 = key_pair(tmp_path, "a1")
    key2, blob2 = key_pair(tmp_path, "a2")
    with netconf_server.connect() as m:
        m.edit_config(target="running", config=(
            f'<config xmlns="{NC}"><truststore xmlns="{TS}"><public-key-bags><public-key-bag><name>auditors</name>'
            f"{public_key('a1', blob1)}</public-key-bag></public-key-bags></truststore></config>"))
        m.edit_config(target="running", config=users_config(
            "<user><name>auditor</name><public-keys><central-truststore-reference>auditors"
            "</central-truststore-reference></public-keys></user>"))
        assert login(netconf_server, "auditor", key=key1)
        assert not login(netconf_server, "auditor", key=key2)
        assert not login(netconf_server, "auditor", "anything")  # no password configured for it here
        # a change of the bag alone reaches the endpoint
        m.edit_config(target="running", config=(
            f'<config xmlns="{NC}"><truststore xmlns="{TS}"><public-key-bags><public-key-bag><name>auditors</name>'
            f"{public_key('a2', blob2)}</public-key-bag></public-key-bags></truststore></config>"))
        assert login(netconf_server, "auditor", key=key2)


def test_endpoint_entry_takes_precedence_and_removal_restores(netconf_server: ServerInfo, tmp_path: Path) -> None:
    admin_key, admin_blob = key_pair(tmp_path, "admin")
    with netconf_server.connect() as m:
        m.edit_config(target="running", config=users_config(
            f"<user><name>admin</name><public-keys><inline-definition>{public_key('k', admin_blob)}"
            "</inline-definition></public-keys></user>"))
        assert not login(netconf_server, "admin", ADMIN_PASSWORD)  # this endpoint knows admin by key only
        assert login(netconf_server, "admin", key=admin_key)
        m.edit_config(target="running", config=users_config(
            f'<user xmlns:nc="{NC}" nc:operation="delete"><name>admin</name></user>'))
        assert login(netconf_server, "admin", ADMIN_PASSWORD)
        assert not login(netconf_server, "admin", key=admin_key)


def test_none_authentication(netconf_server: ServerInfo) -> None:
    with netconf_server.connect() as m:
        m.edit_config(target="running", config=users_config("<user><name>guest</name><none/></user>"))
    assert login(netconf_server, "guest", "whatever")
    assert not login(netconf_server, "guest2", "whatever")


def test_bad_key_in_configuration_keeps_the_server_serving(netconf_server: ServerInfo) -> None:
    with netconf_server.connect() as m:
        m.edit_config(target="running", config=users_config(
            f"<user><name>broken</name><public-keys><inline-definition>{public_key('k', 'AAAA')}"
            "</inline-definition></public-keys></user>"))
    assert login(netconf_server, "admin", ADMIN_PASSWORD)
    assert not login(netconf_server, "broken", "x")


@pytest.fixture(autouse=True)
def _quiet_paramiko() -> None:
    import logging

    logging.getLogger("paramiko").setLevel(logging.CRITICAL)


def test_clear_text_passwords_are_stored_hashed(netconf_server: ServerInfo) -> None:
    """RFC 7317 `$0$<clear>`: stored as a crypt hash, in the endpoint's users and in the shared ietf-system list."""
    sys_ns = "urn:ietf:params:xml:ns:yang:ietf-system"
    with netconf_server.connect() as m:
        m.edit_config(target="running", config=users_config(
            "<user><name>operator</name><password><hashed-password>$0$op-clear</hashed-password></password></user>"))
        m.edit_config(target="running", config=(
            f'<config xmlns="{NC}"><system xmlns="{sys_ns}"><authentication><user><name>carol</name>'
            "<password>$0$c-clear</password></user></authentication></system></config>"))
        stored = m.get_config("running").data_xml
    assert "op-clear" not in stored and "c-clear" not in stored
    assert stored.count("$6$") >= 3  # admin's (bootstrap), operator's, carol's
    assert login(netconf_server, "operator", "op-clear")
    assert login(netconf_server, "carol", "c-clear")
    assert not login(netconf_server, "carol", "$0$c-clear")

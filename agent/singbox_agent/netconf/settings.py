"""The server's own settings in sysrepo, the way netopeer2 keeps them: listen endpoints in ietf-netconf-server
(RFC 9643, `/netconf-server/listen/endpoints`), SSH host keys in the central keystore (RFC 9642,
`/keystore/asymmetric-keys`, private key as `cleartext-private-key` in OneAsymmetricKey/PKCS#8 DER, which
ietf-crypto-types marks `nacm:default-deny-all`).

On first start (no endpoint configured) the server seeds both from `--listen` and the host key of its state
directory; from then on running is authoritative and changes are applied while the server runs.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

import asyncssh
import sysrepo

LISTEN_XPATH = "/ietf-netconf-server:netconf-server/listen"
KEYS_XPATH = "/ietf-keystore:keystore/asymmetric-keys"
HOST_KEY_NAME = "netconf-ssh-host-key"
PUBLIC_KEY_FORMAT = "ietf-crypto-types:ssh-public-key-format"
PRIVATE_KEY_FORMAT = "ietf-crypto-types:one-asymmetric-key-format"


class SettingsError(ValueError):
    """The configured endpoints cannot be served (e.g. a host key that does not exist or cannot be read)."""


@dataclass(frozen=True)
class Endpoint:
    name: str
    address: str
    port: int
    host_keys: tuple[asyncssh.SSHKey, ...]


def _get(sess: Any, xpath: str) -> dict[str, Any]:
    try:
        return dict(sess.get_data(xpath))
    except sysrepo.SysrepoNotFoundError:
        return {}


def _private_key(entry: dict[str, Any], where: str) -> asyncssh.SSHKey:
    if entry.get("private-key-format") not in (PRIVATE_KEY_FORMAT, None) and "cleartext-private-key" in entry:
        raise SettingsError(f"{where}: private-key-format {entry.get('private-key-format')} is not supported")
    data = entry.get("cleartext-private-key")
    if not data:
        raise SettingsError(f"{where}: no cleartext-private-key (hidden and encrypted keys are not supported)")
    try:
        return asyncssh.import_private_key(base64.b64decode(data))
    except (asyncssh.KeyImportError, ValueError) as exc:
        raise SettingsError(f"{where}: cannot read the private key: {exc}") from None


def read_endpoints(sess: Any) -> list[Endpoint]:
    """The SSH listen endpoints of running, with their host keys resolved. Empty when none is configured."""
    listen = _get(sess, LISTEN_XPATH).get("netconf-server", {}).get("listen", {})
    keys = {k["name"]: k for k in _get(sess, KEYS_XPATH).get("keystore", {}).get("asymmetric-keys", {})
            .get("asymmetric-key", [])}
    out: list[Endpoint] = []
    for endpoint in listen.get("endpoints", {}).get("endpoint", []):
        ssh = endpoint.get("ssh")
        if ssh is None:
            continue  # TLS endpoints are not served (no :tls capability)
        host_keys: list[asyncssh.SSHKey] = []
        for hk in ssh.get("ssh-server-parameters", {}).get("server-identity", {}).get("host-key", []):
            public = hk.get("public-key", {})
            where = f"endpoint {endpoint['name']} host-key {hk['name']}"
            if "central-keystore-reference" in public:
                ref = public["central-keystore-reference"]
                if ref not in keys:
                    raise SettingsError(f"{where}: keystore has no asymmetric-key {ref!r}")
                host_keys.append(_private_key(keys[ref], where))
            elif "inline-definition" in public:
                host_keys.append(_private_key(public["inline-definition"], where))
        if not host_keys:
            raise SettingsError(f"endpoint {endpoint['name']}: no usable host key")
        for bind in ssh.get("tcp-server-parameters", {}).get("local-bind", []):
            out.append(Endpoint(endpoint["name"], bind["local-address"], int(bind.get("local-port", 830)),
                                tuple(host_keys)))
    return out


def seed(conn: sysrepo.SysrepoConnection, listens: list[tuple[str, int]], host_key: asyncssh.SSHKey) -> None:
    """First start: the state directory's host key into the keystore and one endpoint per `--listen`."""
    public_blob = host_key.export_public_key("openssh").split()[1].decode()
    private_der = base64.b64encode(host_key.export_private_key("pkcs8-der")).decode()
    keystore = {"keystore": {"asymmetric-keys": {"asymmetric-key": [{
        "name": HOST_KEY_NAME,
        "public-key-format": PUBLIC_KEY_FORMAT,
        "public-key": public_blob,
        "private-key-format": PRIVATE_KEY_FORMAT,
        "cleartext-private-key": private_der,
    }]}}}
    endpoints = [{
        "name": f"default-{i}" if i else "default",
        "ssh": {
            "tcp-server-parameters": {"local-bind": [{"local-address": host, "local-port": port}]},
            "ssh-server-parameters": {"server-identity": {"host-key": [
                {"name": "default", "public-key": {"central-keystore-reference": HOST_KEY_NAME}}]}},
        },
    } for i, (host, port) in enumerate(listens)]
    server = {"netconf-server": {"listen": {"endpoints": {"endpoint": endpoints}}}}
    sess = conn.start_session("running")
    try:
        sess.edit_batch(keystore, "ietf-keystore")
        sess.apply_changes()
        sess.edit_batch(server, "ietf-netconf-server")
        sess.apply_changes()
        startup = conn.start_session("startup")
        try:
            for module in ("ietf-keystore", "ietf-netconf-server"):
                startup.copy_config("running", module)
        finally:
            startup.stop()
    finally:
        sess.stop()

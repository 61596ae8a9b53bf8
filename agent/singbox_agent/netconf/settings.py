"""The server's own settings in sysrepo, the way netopeer2 keeps them: listen endpoints in ietf-netconf-server
(RFC 9643, `/netconf-server/listen/endpoints`), SSH host keys in the central keystore (RFC 9642,
`/keystore/asymmetric-keys`, private key as `cleartext-private-key` in OneAsymmetricKey/PKCS#8 DER, which
ietf-crypto-types marks `nacm:default-deny-all`).

On first start (no endpoint configured) the server seeds both from `--listen` and the host key of its state
directory; from then on running is authoritative and changes are applied while the server runs.

Client authentication, as netopeer2 reads it: an endpoint's RFC 9643 `ssh-server-parameters/client-authentication/
users/user` list (ietf-ssh-server) — `password/hashed-password` (crypt hash), `public-keys` inline or by
`central-truststore-reference` to a public-key bag of the RFC 9641 truststore, `none` — decides for the users it
names on that endpoint. Users it does not name fall back to the shared RFC 7317 list (`singbox_agent.mgmt.users`),
which RESTCONF uses too. `hostbased` is not supported (never accepted); certificates are not either.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

import asyncssh
import structlog
from asyncssh.public_key import decode_ssh_public_key
import sysrepo

from singbox_agent.mgmt.datastore import commit_and_persist
from singbox_agent.netconf import limits

log = structlog.get_logger("netconf.settings")

LISTEN_XPATH = "/ietf-netconf-server:netconf-server/listen"
KEYS_XPATH = "/ietf-keystore:keystore/asymmetric-keys"
TRUSTSTORE_XPATH = "/ietf-truststore:truststore/public-key-bags"
HOST_KEY_NAME = "netconf-ssh-host-key"
PUBLIC_KEY_FORMAT = "ietf-crypto-types:ssh-public-key-format"
PRIVATE_KEY_FORMAT = "ietf-crypto-types:one-asymmetric-key-format"


class SettingsError(ValueError):
    """The configured endpoints cannot be served (e.g. a host key that does not exist or cannot be read)."""


@dataclass(frozen=True)
class EndpointUser:
    """One user of an endpoint's ietf-ssh-server client-authentication list."""

    name: str
    password_hash: str | None = None
    public_keys: tuple[bytes, ...] = ()  # RFC 4253 public key blobs
    none: bool = False  # RFC 9643 `none`: this user needs no authentication on this endpoint


@dataclass(frozen=True)
class Endpoint:
    name: str
    address: str
    port: int
    host_keys: tuple[asyncssh.SSHKey, ...]

    def binding(self) -> tuple[str, str, int, tuple[bytes, ...]]:
        """What a listener depends on (users are looked up per login, a change of them needs no new listener)."""
        return (self.name, self.address, self.port, tuple(k.public_data for k in self.host_keys))


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


def _public_keys(entries: list[dict[str, Any]], where: str) -> list[bytes]:
    """The usable keys; one that cannot be used is left out with an error logged (a typo in one user's key must not
    hold back every other change of the listen settings)."""
    out: list[bytes] = []
    for entry in entries:
        name = entry.get("name")
        if entry.get("public-key-format") != PUBLIC_KEY_FORMAT:
            log.error("public key ignored: format not supported", where=where, key=name,
                      format=entry.get("public-key-format"))
            continue
        blob = base64.b64decode(entry.get("public-key", ""))
        try:
            decode_ssh_public_key(blob)
        except (asyncssh.KeyImportError, ValueError) as exc:
            log.error("public key ignored: cannot be read", where=where, key=name, error=str(exc))
            continue
        out.append(blob)
    return out


def _users(ssh_params: dict[str, Any], bags: dict[str, dict[str, Any]], endpoint: str) -> tuple[EndpointUser, ...]:
    out: list[EndpointUser] = []
    for user in ssh_params.get("client-authentication", {}).get("users", {}).get("user", []):
        where = f"endpoint {endpoint} user {user['name']}"
        keys: list[bytes] = []
        public = user.get("public-keys")
        if public is not None:
            if "central-truststore-reference" in public:
                ref = public["central-truststore-reference"]
                if ref not in bags:
                    log.error("public keys ignored: no such truststore bag", where=where, bag=ref)
                else:
                    keys = _public_keys(bags[ref].get("public-key", []), f"{where} bag {ref}")
            else:
                keys = _public_keys(public.get("inline-definition", {}).get("public-key", []), where)
        out.append(EndpointUser(user["name"], user.get("password", {}).get("hashed-password"), tuple(keys),
                                "none" in user))
    return tuple(out)


def read_limits(sess: Any) -> limits.Limits:
    """The request limits of running (`vpp-singbox-netconf-server`), the schema's defaults where unset."""
    with sess.get_ly_ctx() as ctx:
        defaults = limits.Limits.from_schema(ctx)
    try:
        config = _get(sess, limits.XPATH)
    except sysrepo.SysrepoError as exc:  # module not installed: the defaults
        log.warning("request limits not readable, using the defaults", error=str(exc))
        return defaults
    return defaults.with_config(config.get("netconf-server", {}).get("limits", {}))


def read_endpoint_users(sess: Any) -> dict[str, dict[str, EndpointUser]]:
    """Endpoint name -> user name -> its client-authentication entry, from running (keys resolved)."""
    listen = _get(sess, LISTEN_XPATH).get("netconf-server", {}).get("listen", {})
    bags = {b["name"]: b for b in _get(sess, TRUSTSTORE_XPATH).get("truststore", {}).get("public-key-bags", {})
            .get("public-key-bag", [])}
    out: dict[str, dict[str, EndpointUser]] = {}
    for endpoint in listen.get("endpoints", {}).get("endpoint", []):
        ssh = endpoint.get("ssh")
        if ssh is not None:
            users = _users(ssh.get("ssh-server-parameters", {}), bags, endpoint["name"])
            out[endpoint["name"]] = {u.name: u for u in users}
    return out


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
        commit_and_persist(conn, sess, [("ietf-keystore", keystore), ("ietf-netconf-server", server)])
    finally:
        sess.stop()

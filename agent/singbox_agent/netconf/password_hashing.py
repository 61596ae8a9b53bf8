"""`$0$<clear text>` passwords become `$6$` crypt hashes before they are stored (RFC 7317 `ianach:crypt-hash`).

RFC 7317 lets a client write a password as `$0$` followed by the clear text and has the server store a hash
instead. Both user lists this server authenticates against take that type: the shared RFC 7317 users
(`/system/authentication/user/password`, RESTCONF's too) and the per-endpoint ietf-ssh-server users
(`.../client-authentication/users/user/password/hashed-password`). sysrepo's `update` event lets a subscriber rewrite
a change before it is validated and stored, so the clear text never reaches a datastore; the agent does the same for
its SOCKS5 users.
"""

from __future__ import annotations

from typing import Any

import structlog
import sysrepo

from singbox_agent.mgmt import crypt

log = structlog.get_logger("netconf.password_hashing")

PASSWORD_LEAVES = (
    ("ietf-system", "/ietf-system:system/authentication/user/password"),
    ("ietf-netconf-server", "/ietf-netconf-server:netconf-server/listen/endpoints/endpoint/ssh/ssh-server-parameters"
                            "/client-authentication/users/user/password/hashed-password"),
)


def subscribe(sess: Any) -> None:
    """Hash `$0$` values of every password leaf this server reads, through `sess`'s subscriptions."""
    for module, xpath in PASSWORD_LEAVES:
        sess.subscribe_module_change_unsafe(module, xpath, _make_hasher(xpath), update=True)


def _make_hasher(xpath: str) -> Any:
    def on_update(session: Any, event: str, req_id: int, private_data: Any) -> None:
        if event != "update":
            return
        try:
            for change in session.get_changes(xpath):
                value = getattr(change, "value", None)
                if isinstance(change, sysrepo.ChangeCreated | sysrepo.ChangeModified) and isinstance(value, str) \
                        and value.startswith(crypt.CLEAR_TEXT_PREFIX):
                    session.set_item(change.xpath, crypt.hash_password(value[len(crypt.CLEAR_TEXT_PREFIX):]))
                    log.info("clear-text password stored as a hash", path=change.xpath)
        except Exception:  # noqa: BLE001 - sysrepo callbacks must not raise; the value then stays as written
            log.exception("hashing a $0$ password failed")

    return on_update

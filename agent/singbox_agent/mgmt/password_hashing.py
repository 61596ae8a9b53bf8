"""`$0$<clear text>` passwords become `$6$` crypt hashes before they are stored (RFC 7317 `ianach:crypt-hash`).

RFC 7317 lets a client write a password as `$0$` followed by the clear text and has the server store a hash
instead. The user lists the management servers authenticate against take that type: the shared RFC 7317 users
(`/system/authentication/user/password`) and the NETCONF endpoints' ietf-ssh-server users
(`.../client-authentication/users/user/password/hashed-password`). sysrepo's `update` event lets a subscriber
rewrite a change before it is validated and stored, so the clear text never reaches a datastore. Both servers
subscribe, so that the edit of any client is hashed while either of them runs (when both see the same `$0$` value,
the hash stored is one of theirs; each verifies).

A password that cannot be hashed (`crypt.password_problem`: a NUL, more than `crypt.MAX_PASSWORD_BYTES` bytes)
rejects the whole edit with a message saying why — never the value — and is never stored, hashed or not.
"""

from __future__ import annotations

from typing import Any

import structlog
import sysrepo

from singbox_agent.mgmt import crypt

log = structlog.get_logger("mgmt.password_hashing")

PASSWORD_LEAVES = (
    ("ietf-system", "/ietf-system:system/authentication/user/password"),
    ("ietf-netconf-server", "/ietf-netconf-server:netconf-server/listen/endpoints/endpoint/ssh/ssh-server-parameters"
                            "/client-authentication/users/user/password/hashed-password"),
)


def subscribe(sess: Any, *, priority: int = 0) -> None:
    """Hash `$0$` values of every password leaf the servers read, in running and startup, through `sess`'s
    subscriptions. sysrepo allows one `update` subscription per module, datastore and priority: each server passes
    its own (NETCONF 0, RESTCONF 1)."""
    datastore = sess.get_datastore()
    try:
        for ds in ("running", "startup"):  # candidate has no events: its edits are hashed when committed to running
            sess.switch_datastore(ds)
            for module, xpath in PASSWORD_LEAVES:
                # filter_origin: the writer's sysrepo matches `xpath` against the change and sends no update event
                # when it touches no password (without it every commit of the module waited for a callback that
                # only found nothing to do)
                sess.subscribe_module_change_unsafe(module, xpath, hasher(xpath), update=True,
                                                    priority=priority, filter_origin=True)
    finally:
        sess.switch_datastore(datastore)


def hasher(xpath: str) -> Any:
    """An update callback storing each '$0$' value written under `xpath` as its hash, or refusing the edit with
    the reason (`invalid-value`) — never storing the clear text. Shared by every subscriber of a password leaf."""
    def on_update(session: Any, event: str, req_id: int, private_data: Any) -> None:
        if event != "update":
            return
        for change in session.get_changes(xpath):
            value = getattr(change, "value", None)
            if not (isinstance(change, sysrepo.ChangeCreated | sysrepo.ChangeModified) and isinstance(value, str)
                    and value.startswith(crypt.CLEAR_TEXT_PREFIX)):
                continue
            try:
                hashed = crypt.stored_form(value)
            except crypt.PasswordError as exc:
                log.info("clear-text password refused", path=change.xpath, reason=str(exc))
                raise sysrepo.SysrepoInvalArgError(f"{change.xpath}: {exc}") from None
            except Exception:  # noqa: BLE001 - the edit must fail rather than store the clear text
                log.exception("hashing a $0$ password failed", path=change.xpath)
                raise sysrepo.SysrepoOperationFailedError(
                    f"{change.xpath}: the password could not be hashed") from None
            session.set_item(change.xpath, hashed)
            log.info("clear-text password stored as a hash", path=change.xpath)

    return on_update

"""Many editors at once: a valid edit is never refused because others are editing (sysrepo's lock timeouts are
waited out, `mgmt.datastore.retry_busy`), and no error text carries sysrepo's process internals."""

from __future__ import annotations

import asyncio
import re
import threading
import time
from typing import Any

import pytest
import sysrepo

from singbox_agent.mgmt.datastore import WouldWait, is_busy, no_waiting, retry_busy, scrub
from singbox_agent.mgmt.errors import MgmtException
from tests.netconf.conftest import ADMIN, ADMIN_PASSWORD, SBX_NS, ServerInfo
from tests.netconf.rawclient import RawClient, errors_of

EDITORS = 100
EDITS_EACH = 2
SUBSCRIBER_S = 0.05  # a subscriber that takes its time (as the agent talking to VPP), holding the module's lock
INTERNALS = re.compile(r"process \d+|CID \d+|sr_shmmod|/dev/shm")


@pytest.mark.slow
async def test_hundred_concurrent_editors_all_succeed(netconf_server: ServerInfo) -> None:
    conn = sysrepo.SysrepoConnection()
    sub = conn.start_session("running")

    def slow(event: str, req_id: int, changes: list[Any], private_data: Any) -> None:
        time.sleep(SUBSCRIBER_S)

    sub.subscribe_module_change("vpp-singbox", "/vpp-singbox:singbox", slow)
    clients = await asyncio.gather(*(RawClient.connect(netconf_server.host, netconf_server.port, ADMIN,
                                                       ADMIN_PASSWORD) for _ in range(EDITORS)))

    async def edit(client: RawClient, n: int) -> list[str]:
        refused: list[str] = []
        for k in range(EDITS_EACH):
            reply = await client.rpc(
                f'<edit-config><target><running/></target><config><singbox xmlns="{SBX_NS}"><client><endpoint>'
                f"<name>c{n}-{k}</name><address>198.18.0.1</address></endpoint></client></singbox></config>"
                "</edit-config>", f"{n}-{k}", timeout=120)
            refused.extend(f"{e.get('error-tag')}: {e.get('error-message')}" for e in errors_of(reply))
        return refused

    results = await asyncio.gather(*(edit(c, n) for n, c in enumerate(clients)))
    refused = [r for rs in results for r in rs]
    assert not refused, f"{len(refused)} valid edits refused, e.g. {refused[:3]}"
    sess = conn.start_session("running")
    data = sess.get_data("/vpp-singbox:singbox/client")
    sess.stop()
    sub.stop()
    conn.disconnect()
    assert len(data["singbox"]["client"]["endpoint"]) == EDITORS * EDITS_EACH
    await asyncio.gather(*(c.close() for c in clients))


def test_a_queued_write_waits_while_others_get_through() -> None:
    """A write kept busy longer than `total_s` is not refused while other writes of the process succeed meanwhile
    (it is queued, not stuck: the old fixed 30 s refused the tail of 200 edits behind a slow subscriber); once
    nothing gets through for `total_s`, it is refused; and never later than `cap_s`."""
    message = "Locking a rwlock failed (sr_shmmod_lock: Connection timed out)"
    busy_until = time.monotonic() + 0.6
    others_done = threading.Event()

    def queued() -> str:
        if time.monotonic() < busy_until:
            raise sysrepo.SysrepoTimeOutError(message)
        return "applied"

    def others() -> None:  # the writes ahead of it, each getting through
        while not others_done.wait(0.05):
            retry_busy(lambda: None)

    thread = threading.Thread(target=others)
    thread.start()
    try:
        assert retry_busy(queued, total_s=0.2) == "applied"
        with pytest.raises(MgmtException):  # progress does not stretch the hard cap
            retry_busy(queued_busy, total_s=0.2, cap_s=0.3)
    finally:
        others_done.set()
        thread.join()
    started = time.monotonic()
    with pytest.raises(MgmtException):  # nobody gets through: refused after total_s
        retry_busy(queued_busy, total_s=0.2)
    assert time.monotonic() - started < 5


def queued_busy() -> str:
    raise sysrepo.SysrepoTimeOutError("Locking a rwlock failed (sr_shmmod_lock: Connection timed out)")


def test_busy_retried_then_in_use_without_internals() -> None:
    message = ("Locking a rwlock failed (sr_shmmod_lock: Connection timed out), read lock held by running process 6 "
               "(CID 5).")
    calls = []

    def busy_twice() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise sysrepo.SysrepoTimeOutError(message)
        return "done"

    assert is_busy(sysrepo.SysrepoTimeOutError(message))
    assert not is_busy(sysrepo.SysrepoTimeOutError("Callback timed out."))
    assert retry_busy(busy_twice) == "done" and len(calls) == 3

    def always_busy() -> None:
        raise sysrepo.SysrepoTimeOutError(message)

    with pytest.raises(MgmtException) as exc:
        retry_busy(always_busy, total_s=0.05)
    assert exc.value.errors[0].error_tag == "in-use"
    assert not INTERNALS.search(exc.value.errors[0].error_message)
    assert not INTERNALS.search(scrub(message)), scrub(message)
    # on the event loop nothing sleeps: the caller is told to run the request where it may wait
    calls.clear()
    with no_waiting(), pytest.raises(WouldWait):
        retry_busy(busy_twice)
    assert len(calls) == 1

"""A server-wide cap on concurrent heavy reads (mgmt/read_gate.py): whole datastores or top-level trees, at most
`max-concurrent-heavy-reads` at once; one more is refused at once (RESTCONF 503 + Retry-After, NETCONF
resource-denied), narrower reads go on. A read is held "in progress" by an operational-data subscriber of the test
that answers only when released (no timing involved)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import sysrepo
from helpers import SB, error_of
from rcserver import ADMIN, RestconfServer, start_service, stop_process

from singbox_agent.mgmt.read_gate import heavy

STATE = "/vpp-singbox:singbox/dataplane"


def test_heavy_reads() -> None:
    assert heavy("/*") and heavy("/vpp-singbox:singbox") and heavy("/a:b | /c:d/e") and heavy("//name")
    assert not heavy("/vpp-singbox:singbox/client") and not heavy("/vpp-singbox:singbox", max_depth=2)
    assert heavy("/vpp-singbox:singbox", max_depth=3) and not heavy(None)


@contextmanager
def blocking_state() -> Iterator[tuple[threading.Event, threading.Event]]:
    """A subscriber of /singbox/dataplane that signals `entered` and answers once `release` is set."""
    entered, release = threading.Event(), threading.Event()

    def answer(xpath: str, private_data: Any) -> dict[str, Any]:
        entered.set()
        release.wait(20)
        return {}

    conn = sysrepo.SysrepoConnection()
    sess = conn.start_session("operational")
    sess.subscribe_oper_data_request("vpp-singbox", STATE, answer)
    try:
        yield entered, release
    finally:
        release.set()
        sess.stop()
        conn.disconnect()


def set_limits(limit: int) -> None:
    with sysrepo.SysrepoConnection() as conn:
        sess = conn.start_session("running")
        for server in ("netconf", "restconf"):
            sess.set_item(f"/vpp-singbox-{server}-server:{server}-server/limits/max-concurrent-heavy-reads",
                          str(limit))
        sess.set_item("/vpp-singbox:singbox/log-level", "error")
        sess.apply_changes()
        sess.stop()


def test_one_heavy_read_at_a_time(restconf: RestconfServer) -> None:
    from ncclient import manager
    from ncclient.operations import RPCError

    set_limits(1)
    proc, info = start_service(restconf.instance, "singbox_agent.netconf", restconf.state_dir / "nc",
                               restconf.state_dir / "netconf-ready.json", restconf.state_dir / "netconf.log")
    results: dict[str, Any] = {}
    try:
        with blocking_state() as (entered, release), restconf.client() as rc:
            first = threading.Thread(target=lambda: results.update(rest=rc.get(
                "/restconf/data", headers={"Accept": "application/yang-data+json"})))
            first.start()
            assert entered.wait(20), "the whole-datastore read never reached the state subscriber"
            with restconf.client() as other:
                denied = other.get(f"{SB}", headers={"Accept": "application/yang-data+json"})
                assert denied.status_code == 503, denied.text
                assert error_of(denied)["error-tag"] == "resource-denied", denied.text
                assert denied.headers.get("retry-after") == "1"
                narrow = other.get("/restconf/ds/ietf-datastores:running/vpp-singbox:singbox/log-level",
                                   headers={"Accept": "application/yang-data+json"})
                assert narrow.status_code == 200, narrow.text  # not a whole tree: never held back
            release.set()
            first.join(30)
            assert results["rest"].status_code == 200, results["rest"].text

            entered.clear()
            release.clear()

            def connect() -> Any:
                return manager.connect(host=info["host"], port=info["port"], username=ADMIN[0], password=ADMIN[1],
                                       hostkey_verify=False, look_for_keys=False, allow_agent=False, timeout=60)

            with connect() as nc1, connect() as nc2:
                second = threading.Thread(target=lambda: results.update(nc=nc1.get()))
                second.start()
                assert entered.wait(20), "the full <get> never reached the state subscriber"
                with pytest.raises(RPCError) as refused:
                    nc2.get()
                assert refused.value.tag == "resource-denied", refused.value
                assert "max-concurrent-heavy-reads" in str(refused.value.message)
                nc2.get(filter=("subtree", '<singbox xmlns="urn:vpp-singbox:yang:vpp-singbox"><log-level/>'
                                           "</singbox>"))  # narrower: served
                release.set()
                second.join(30)
                assert "nc" in results
    finally:
        assert stop_process(proc) == 0

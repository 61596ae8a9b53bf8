"""<commit> with confirmed-commit 1.1 (RFC 6241 8.4): timeout rollback, persist."""

from __future__ import annotations

import time

import pytest
from ncclient.operations.rpc import RPCError

from tests.netconf.conftest import ServerInfo
from tests.netconf.helpers import cfg, endpoint, running, endpoints, sbx_filter


def test_confirmed_commit_timeout_rolls_back(netconf_server: ServerInfo) -> None:
    with netconf_server.connect() as m:
        m.edit_config(target="running", config=cfg(endpoint("keep")))
        m.edit_config(target="candidate", config=cfg(endpoint("temp")))
        m.commit(confirmed=True, timeout="1")
        assert endpoints() == ["keep", "temp"]
        deadline = time.monotonic() + 10
        while endpoints() != ["keep"] and time.monotonic() < deadline:
            time.sleep(0.1)
        assert endpoints() == ["keep"]
        # the rollback happens even while the issuing session holds running and candidate locked
        m.lock("running")
        m.lock("candidate")
        m.edit_config(target="candidate", config=cfg(endpoint("locked-temp")))
        m.commit(confirmed=True, timeout="1")
        assert "locked-temp" in endpoints()
        deadline = time.monotonic() + 10
        while endpoints() != ["keep"] and time.monotonic() < deadline:
            time.sleep(0.1)
        assert endpoints() == ["keep"]
        assert "locked-temp" not in m.get_config("candidate", filter=sbx_filter()).data_xml
        m.unlock("candidate")
        m.unlock("running")
        # confirmed then confirming commit keeps the change
        m.edit_config(target="candidate", config=cfg(endpoint("stay")))
        m.commit(confirmed=True, timeout="2")
        m.commit()
        time.sleep(2.5)
        assert endpoints() == ["keep", "stay"]
        # cancel-commit restores at once
        m.edit_config(target="candidate", config=cfg(endpoint("gone")))
        m.commit(confirmed=True, timeout="60")
        assert "gone" in endpoints()
        m.cancel_commit()
        assert endpoints() == ["keep", "stay"]
        with pytest.raises(RPCError):
            m.cancel_commit()


def test_confirmed_commit_persist_survives_session(netconf_server: ServerInfo) -> None:
    with netconf_server.connect() as m:
        m.edit_config(target="candidate", config=cfg(endpoint("p1")))
        m.commit(confirmed=True, timeout="60", persist="token-1")
    with netconf_server.connect() as m:
        assert endpoints() == ["p1"]
        with pytest.raises(RPCError):
            m.commit(persist_id="wrong")
        m.commit(persist_id="token-1")
    with netconf_server.connect() as m:
        m.edit_config(target="candidate", config=cfg(endpoint("p2")))
        m.commit(confirmed=True, timeout="60")
    # the issuing session ended without persist: rolled back
    assert endpoints() == ["p1"]

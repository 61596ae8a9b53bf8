"""The candidate (RFC 6241 8.3): lock, edit, commit, discard-changes."""

from __future__ import annotations

import pytest
from ncclient.operations.rpc import RPCError

from tests.netconf.conftest import ServerInfo
from tests.netconf.helpers import cfg, endpoint, endpoints, sbx_filter, error_tag


def test_candidate_lock_commit_discard(netconf_server: ServerInfo) -> None:
    with netconf_server.connect() as a, netconf_server.connect() as b:
        a.lock("candidate")
        with pytest.raises(RPCError) as exc:
            b.lock("candidate")
        assert error_tag(exc.value) == "lock-denied"
        assert exc.value.info and str(a.session_id) in exc.value.info
        with pytest.raises(RPCError) as exc:
            b.edit_config(target="candidate", config=cfg(endpoint("b1")))
        assert error_tag(exc.value) == "in-use"
        a.edit_config(target="candidate", config=cfg(endpoint("c1")))
        assert endpoints() == []
        a.commit()
        assert endpoints() == ["c1"]
        a.edit_config(target="candidate", config=cfg(endpoint("c2")))
        a.discard_changes()
        assert "c2" not in a.get_config("candidate", filter=sbx_filter()).data_xml
        a.edit_config(target="candidate", config=cfg(endpoint("c3")))
        with pytest.raises(RPCError) as exc:
            b.unlock("candidate")
        assert error_tag(exc.value) == "operation-failed"
        a.unlock("candidate")  # outstanding changes are discarded with the lock
        assert "c3" not in b.get_config("candidate", filter=sbx_filter()).data_xml
        # an unlocked candidate modified by one session cannot be locked by another
        b.edit_config(target="candidate", config=cfg(endpoint("c4")))
        with pytest.raises(RPCError) as exc:
            a.lock("candidate")
        assert error_tag(exc.value) == "lock-denied"
        b.commit()
        a.lock("candidate")
        a.unlock("candidate")
        assert endpoints() == ["c1", "c4"]

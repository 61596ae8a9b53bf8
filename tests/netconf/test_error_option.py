"""edit-config error-option (RFC 6241 7.2) through ncclient: stop-on-error keeps what precedes the failing edit,
continue-on-error skips failing edits, rollback-on-error keeps nothing — on running and candidate.

Names are chosen so that document order differs from libyang's (sorted) order: "zz…" is written first, "aa…" after
the failing entry, so a server applying in libyang's order would get these tests wrong.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
import sysrepo
from ncclient.operations.rpc import RPCError

from tests.netconf.conftest import ServerInfo
from tests.netconf.helpers import cfg, endpoint, endpoints, sbx_filter
from tests.netconf.test_notification_store import lost_notifications, replayed_config_changes


def existing(m: Any, names: list[str], target: str = "running") -> None:
    m.edit_config(target=target, config=cfg("".join(endpoint(n) for n in names)))


def one_client(*entries: str) -> str:
    """Endpoints inside ONE <client> (libyang sorts them by name there; separate <client> elements keep order)."""
    return cfg("<client>" + "".join(e.removeprefix("<client>").removesuffix("</client>") for e in entries)
               + "</client>")


def first_then_bad_then_after(bad: str, op: str) -> str:
    return one_client(endpoint("zz-first"), endpoint(bad, op=op), endpoint("aa-after"))


def rpc_errors(exc: RPCError) -> list[Any]:
    return list(exc.errors) if getattr(exc, "errors", None) else [exc]


def test_stop_on_error_keeps_edits_before_the_failing_one(netconf_server: ServerInfo) -> None:
    with netconf_server.connect() as m:
        existing(m, ["e1"])
        with pytest.raises(RPCError) as exc:
            m.edit_config(target="running", error_option="stop-on-error",
                          config=first_then_bad_then_after("e1", "create"))
        assert exc.value.tag == "data-exists"
        assert "endpoint[name='e1']" in str(exc.value.path), exc.value.path
        assert endpoints() == ["e1", "zz-first"]


def test_stop_on_error_with_data_missing(netconf_server: ServerInfo) -> None:
    with netconf_server.connect() as m:
        with pytest.raises(RPCError) as exc:
            m.edit_config(target="running", error_option="stop-on-error",
                          config=first_then_bad_then_after("gone", "delete"))
        assert exc.value.tag == "data-missing"
        assert "endpoint[name='gone']" in str(exc.value.path), exc.value.path
        assert endpoints() == ["zz-first"]


def test_without_error_option_a_refused_edit_changes_nothing(netconf_server: ServerInfo) -> None:
    """The product's rule (and what clients of netopeer2 expect): no error-option, no half-applied edit."""
    with netconf_server.connect() as m:
        with pytest.raises(RPCError) as exc:
            m.edit_config(target="running", config=first_then_bad_then_after("gone", "delete"))
        assert exc.value.tag == "data-missing"
        assert endpoints() == []


def test_continue_on_error_applies_every_edit_that_can_be(netconf_server: ServerInfo) -> None:
    with netconf_server.connect() as m:
        existing(m, ["e1"])
        edit = one_client(endpoint("zz-first"), endpoint("e1", op="create"), endpoint("mm-middle"),
                          endpoint("gone", op="delete"), endpoint("aa-after"))
        with pytest.raises(RPCError) as exc:
            m.edit_config(target="running", error_option="continue-on-error", config=edit)
        errors = rpc_errors(exc.value)
        assert [e.tag for e in errors] == ["data-exists", "data-missing"]
        assert "endpoint[name='e1']" in str(errors[0].path) and "endpoint[name='gone']" in str(errors[1].path)
        assert endpoints() == ["aa-after", "e1", "mm-middle", "zz-first"]


def test_rollback_on_error_applies_nothing(netconf_server: ServerInfo) -> None:
    with netconf_server.connect() as m:
        existing(m, ["e1"])
        with pytest.raises(RPCError) as exc:
            m.edit_config(target="running", error_option="rollback-on-error",
                          config=first_then_bad_then_after("e1", "create"))
        assert exc.value.tag == "data-exists"
        assert endpoints() == ["e1"]


def test_a_valid_edit_is_judged_as_a_whole(netconf_server: ServerInfo) -> None:
    """An interface written before the endpoint it names: valid as one edit, so stop-on-error applies it all."""
    with netconf_server.connect() as m:
        m.edit_config(target="running", error_option="stop-on-error", config=cfg(
            "<client><interface><name>host-x</name><endpoint>later</endpoint></interface></client>"
            + endpoint("later")))
        assert endpoints() == ["later"]


def test_stop_on_error_with_a_validation_failure_and_a_leaf(netconf_server: ServerInfo) -> None:
    """Units are list entries and leaves: the log-level before the dangling reference stays, the one after not."""
    with netconf_server.connect() as m:
        with pytest.raises(RPCError) as exc:
            m.edit_config(target="running", error_option="stop-on-error", config=cfg(
                endpoint("zz-first") + "<client><interface><name>host-x</name><endpoint>nope</endpoint>"
                "</interface><session-timeout>500</session-timeout></client>"))
        assert exc.value.tag == "data-missing"
        data = m.get_config("running", filter=sbx_filter()).data_xml
        assert "zz-first" in data and "host-x" not in data and "<session-timeout>" not in data


def test_stop_on_error_on_candidate(netconf_server: ServerInfo) -> None:
    with netconf_server.connect() as m:
        existing(m, ["e1"], target="candidate")
        with pytest.raises(RPCError) as exc:
            m.edit_config(target="candidate", error_option="stop-on-error",
                          config=first_then_bad_then_after("e1", "create"))
        assert exc.value.tag == "data-exists"
        data = m.get_config("candidate", filter=sbx_filter()).data_xml
        assert "zz-first" in data and "aa-after" not in data
        assert endpoints() == []
        m.commit()
        assert endpoints() == ["e1", "zz-first"]


def test_stop_on_error_with_an_agent_rejection(netconf_server: ServerInfo) -> None:
    """A subscriber (the agent) refusing one entry: its message reaches the client, earlier entries stay."""

    def reject(event: str, req_id: int, changes: Any, private_data: Any) -> None:
        if event == "change" and any("e-bad" in str(getattr(c, "xpath", "")) for c in changes):
            raise sysrepo.SysrepoValidationFailedError("endpoint e-bad: VPP refused the upstream (address in use)")

    with sysrepo.SysrepoConnection() as conn:
        sess = conn.start_session("running")
        sess.subscribe_module_change("vpp-singbox", "/vpp-singbox:singbox", reject)
        try:
            with netconf_server.connect() as m:
                edit = one_client(endpoint("zz-first"), endpoint("e-bad"), endpoint("aa-after"))
                with pytest.raises(RPCError) as exc:
                    m.edit_config(target="running", config=edit)
                assert "VPP refused the upstream" in str(exc.value.message)
                assert endpoints() == []  # no error-option: all or nothing
                with pytest.raises(RPCError) as exc:
                    m.edit_config(target="running", error_option="stop-on-error", config=edit)
                assert "VPP refused the upstream" in str(exc.value.message)
                assert endpoints() == ["zz-first"]
                with pytest.raises(RPCError) as exc:
                    m.edit_config(target="running", error_option="continue-on-error", config=edit)
                assert len(rpc_errors(exc.value)) == 1
                assert endpoints() == ["aa-after", "zz-first"]
        finally:
            sess.stop()


def _huge_change_then(m: Any, attempt: int, *after: Callable[[], Any]) -> float:
    """1,500 endpoints created, then deleted in one edit (a config-change of ~2 MB that starts and fills its
    second's replay file) with the requests `after` pipelined behind it (no round trip in between); every reply
    <ok/>. Returns when the huge change was sent."""
    names = [f"h{attempt}-{i:05d}" for i in range(1500)]
    entries = "".join(f"<endpoint><name>{n}</name><address>198.18.0.1</address><port>1081</port>"
                      "<connect-timeout>11</connect-timeout></endpoint>" for n in names)
    m.edit_config(target="running", config=cfg(f"<client>{entries}</client>"))
    deletes = "".join(f'<endpoint nc:operation="delete"><name>{n}</name></endpoint>' for n in names)
    sent_at = time.time()
    m.async_mode = True
    try:
        sent = [m.edit_config(target="running", config=cfg(f"<client>{deletes}</client>")), *(f() for f in after)]
        for rpc in sent:
            assert rpc.event.wait(120), "no reply"
            assert rpc.reply is not None and rpc.reply.ok, rpc.reply
    finally:
        m.async_mode = False
    return sent_at


def test_edit_right_after_a_huge_change_is_not_reported_as_failed(netconf_server: ServerInfo) -> None:
    """An edit right after a huge change (in its second, whose replay file that change filled) gets <ok/> and its
    config-change is stored: the write waits for the next second (`mgmt.datastore.wait_for_replay_room`). Before,
    sysrepo refused to store it (applied, delivered live, never replayable, counted lost), and this test depended
    on the edit landing in the huge change's second, which a loaded machine missed now and then."""
    log_file = netconf_server.state_dir / "netconf.log"
    with netconf_server.connect() as m:
        since = _huge_change_then(m, 0, lambda: m.edit_config(target="running", config=cfg(endpoint("right-after"))))
        assert "right-after" in endpoints()
        changes = replayed_config_changes(m, since - 1)
    assert changes[-2:] == [1500 * 13, 13], changes  # the huge delete's, then the small edit's (13 nodes)
    assert "not stored for replay" not in log_file.read_text()
    assert lost_notifications() == 0


def test_commit_right_after_a_huge_change_is_not_reported_as_failed(netconf_server: ServerInfo) -> None:
    """The same through <commit> (sysrepo's copy-config of candidate into running): the candidate edit and the
    commit pipelined behind the huge change (the candidate is edited after it, so the commit changes one
    endpoint); the commit's config-change is stored too."""
    log_file = netconf_server.state_dir / "netconf.log"
    with netconf_server.connect() as m:
        since = _huge_change_then(m, 0, lambda: m.edit_config(target="candidate", config=cfg(endpoint("committed"))),
                                  m.commit)
        assert "committed" in endpoints()
        changes = replayed_config_changes(m, since - 1)
    assert changes[-2:] == [1500 * 13, 13], changes
    assert "not stored for replay" not in log_file.read_text()
    assert lost_notifications() == 0

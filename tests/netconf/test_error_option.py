"""edit-config error-option (RFC 6241 7.2) through ncclient: stop-on-error keeps what precedes the failing edit,
continue-on-error skips failing edits, rollback-on-error keeps nothing — on running and candidate.

Names are chosen so that document order differs from libyang's (sorted) order: "zz…" is written first, "aa…" after
the failing entry, so a server applying in libyang's order would get these tests wrong.
"""

from __future__ import annotations

import time

from typing import Any

import pytest
import sysrepo
from ncclient.operations.rpc import RPCError

from tests.netconf.conftest import ServerInfo
from tests.netconf.helpers import cfg, endpoint, endpoints, sbx_filter


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


def test_edit_right_after_a_huge_change_is_not_reported_as_failed(netconf_server: ServerInfo) -> None:
    """sysrepo names replay files by the second and cannot store the next config-change notification right after
    one above its 1 MiB file limit (1,500 entries here); it still applies that change and says so. The client must
    get <ok/> (the edit happened), not an error that makes it retry an applied change.

    The small edit must come within the huge change's second, which a loaded machine often missed: the huge change
    deletes 1,500 entries (creating them made every later request slower), the small edit is pipelined behind it
    (no round trip in between) and each attempt starts so that the huge change's reply comes early in a second,
    from the time the attempt before took (see the commit's test)."""
    log_file = netconf_server.state_dir / "netconf.log"
    with netconf_server.connect() as m:
        lead = 0.0
        for attempt in range(5):
            names = [f"h{attempt}-{i:05d}" for i in range(1500)]
            entries = "".join(f"<endpoint><name>{n}</name><address>198.18.0.1</address><port>1081</port>"
                              "<connect-timeout>11</connect-timeout></endpoint>" for n in names)
            m.edit_config(target="running", config=cfg(f"<client>{entries}</client>"))
            deletes = "".join(f'<endpoint nc:operation="delete"><name>{n}</name></endpoint>' for n in names)
            time.sleep(1.1 - (time.time() + lead) % 1.0)
            started = time.monotonic()
            m.async_mode = True
            try:
                sent = [m.edit_config(target="running", config=cfg(f"<client>{deletes}</client>")),
                        m.edit_config(target="running", config=cfg(endpoint(f"right-after-{attempt}")))]
                for rpc in sent:
                    assert rpc.event.wait(60), "no reply"
                    assert rpc.reply is not None and rpc.reply.ok, rpc.reply
                    if rpc is sent[0]:
                        lead = time.monotonic() - started
            finally:
                m.async_mode = False
            assert f"right-after-{attempt}" in endpoints()
            if "not stored for replay" in log_file.read_text():
                break
    assert "not stored for replay" in log_file.read_text()  # else this test proved nothing


def test_commit_right_after_a_huge_change_is_not_reported_as_failed(netconf_server: ServerInfo) -> None:
    """The same through <commit> (sysrepo's copy-config of candidate into running).

    The commit's notification must come within the second of the huge change's, after which sysrepo has to start a
    new replay file. It often did not on a loaded machine: after the huge edit came its reply, the client, a
    candidate edit and the commit — a copy of the whole datastore, which grew by 1,500 entries with every attempt —
    and they took the rest of the second. Now the huge change deletes 1,500 entries (the commit copies a small
    datastore), the three requests are pipelined (the session runs each as soon as the one before is done, no round
    trip in between; the candidate is edited after the huge change, so it still mirrors running and the commit
    changes one endpoint), and each attempt starts so that the huge change's reply — right after its notification —
    comes early in a second, from the time the attempt before took."""
    log_file = netconf_server.state_dir / "netconf.log"
    with netconf_server.connect() as m:
        lead = 0.0  # from sending the huge change to its reply, as last seen
        for attempt in range(5):
            names = [f"h{attempt}-{i:05d}" for i in range(1500)]
            entries = "".join(f"<endpoint><name>{n}</name><address>198.18.0.1</address><port>1081</port>"
                              "<connect-timeout>11</connect-timeout></endpoint>" for n in names)
            m.edit_config(target="running", config=cfg(f"<client>{entries}</client>"))
            deletes = "".join(f'<endpoint nc:operation="delete"><name>{n}</name></endpoint>' for n in names)
            time.sleep(1.1 - (time.time() + lead) % 1.0)  # the reply due 0.1 s into a second
            started = time.monotonic()
            m.async_mode = True
            try:
                sent = [m.edit_config(target="running", config=cfg(f"<client>{deletes}</client>")),
                        m.edit_config(target="candidate", config=cfg(endpoint(f"committed-{attempt}"))),
                        m.commit()]
                for rpc in sent:
                    assert rpc.event.wait(60), "no reply"
                    assert rpc.reply is not None and rpc.reply.ok, rpc.reply
                    if rpc is sent[0]:
                        lead = time.monotonic() - started
            finally:
                m.async_mode = False
            assert f"committed-{attempt}" in endpoints()
            if "not stored for replay" in log_file.read_text():
                break
    assert "not stored for replay" in log_file.read_text()

"""The one error mapping (mgmt.errors + restconf.errors), without a server: tables of inputs."""

from __future__ import annotations

import sysrepo

from singbox_agent.mgmt.errors import MgmtError, from_exception
from singbox_agent.mgmt.xpath import quote, strip_predicates
from singbox_agent.restconf.errors import status_for, to_failure


def test_sysrepo_internals_never_reach_a_client() -> None:
    """Issue 15 item 10: no pid, connection id, lock owner or SHM name in an error text."""
    exc = sysrepo.SysrepoTimeOutError(
        "Locking a rwlock failed (sr_shmmod_lock: Connection timed out), read lock held by running process 6 "
        "(CID 5).")
    text = from_exception(exc)[0].error_message
    for internal in ("process 6", "CID", "sr_shmmod_lock", "lock held"):
        assert internal not in text, text
    assert "/dev/shm" not in from_exception(sysrepo.SysrepoError("cannot open /dev/shm/sbt1234_main"))[0].error_message


def test_one_status_table() -> None:
    """RFC 8040 §7, kept once (restconf/errors.py): operation-not-supported 405; a YANG constraint the client's data
    broke (operation-failed with an error-app-tag: must, unique, min/max-elements) 400, not 500."""
    assert status_for(MgmtError("protocol", "operation-not-supported")) == 405
    assert status_for(MgmtError("application", "operation-failed", "x", "must-violation")) == 400
    assert status_for(MgmtError("application", "operation-failed", "x")) == 500
    assert to_failure(ValueError("secret internals")).errors[0].error_message == "Internal error."


def test_xpath_quoting() -> None:
    """One quoting rule (issue 21): the other quote kind, concat() for both, refused in a data path."""
    assert quote("a") == "'a'"
    assert quote("it's") == '"it\'s"'
    assert quote("a'b\"c") == "concat('a', \"'\", 'b\"c')"
    try:
        quote("a'b\"c", in_path=True)
    except ValueError:
        pass
    else:
        raise AssertionError("a data path cannot name a value with both quotes")
    assert strip_predicates("/m:a/b[k='x]y'][j=\"[\"]/c") == "/m:a/b/c"

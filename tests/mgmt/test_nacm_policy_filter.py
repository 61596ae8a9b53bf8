"""NACM edits about nobody the policy answered for do not wait for it (issue 17): `NacmPolicy`'s done subscription
names only the members it follows (`nacm._subscription_xpath`), so sysrepo's writer, which evaluates a subscription's
XPath on the commit's diff, neither notifies nor waits for this process on a `user-name` change of anyone else —
every one-leaf NACM edit of a group member did (a round trip per commit). Whatever can alter an answer still reaches
it: a followed user's membership (also in a group created or deleted whole), a rule-list, enable-nacm (test_nacm_policy_changes.py has what the
answers then are)."""

from __future__ import annotations

from typing import Any

import pytest

from singbox_agent.repository import SysrepoInstance

GROUP = "/ietf-netconf-acm:nacm/groups/group[name='{}']"


def test_only_changes_that_can_alter_an_answer_reach_the_policy(sysrepo_instance: SysrepoInstance,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    import sysrepo

    from singbox_agent.mgmt import nacm

    events: list[str] = []
    on_change = nacm.NacmPolicy._on_change

    def counted(self: nacm.NacmPolicy, event: str, ev_sess: Any) -> None:
        events.append(event)
        on_change(self, event, ev_sess)

    monkeypatch.setattr(nacm.NacmPolicy, "_on_change", counted)  # before the policy subscribes its bound method

    def commit(sess: Any, path: str, value: str | None = None) -> int:
        """How many events the policy got for one commit."""
        before = len(events)
        if value is None:
            sess.delete_item(path)
        else:
            sess.set_item(path, value)
        sess.apply_changes()
        return len(events) - before

    with sysrepo.SysrepoConnection() as conn:
        sess = conn.start_session("running")
        sess.set_item(GROUP.format("g1") + "/user-name", "u1")
        sess.apply_changes()
        policy = nacm.NacmPolicy(conn)
        try:
            assert [g["name"] for g in policy.config("u1")["nacm"]["groups"]["group"]] == ["g1"]
            # a member nobody asked about, in and out: nothing to wait for
            assert commit(sess, GROUP.format("g1") + "/user-name", "stranger") == 0
            assert commit(sess, GROUP.format("g1") + "/user-name[.='stranger']") == 0
            # a group of strangers, created and deleted whole: its name decides nothing (the one-edit load of a
            # NACM list waited for the policy and moved every session's identity)
            assert commit(sess, GROUP.format("g2") + "/user-name", "o'neil") == 0
            assert commit(sess, GROUP.format("g2") + "/user-name[.=\"o'neil\"]") == 0
            assert commit(sess, GROUP.format("g3") + "/user-name", "other") == 0
            assert commit(sess, GROUP.format("g3")) == 0
            # a followed user's membership, a rule-list, enable-nacm
            assert commit(sess, GROUP.format("g2") + "/user-name", "u1") == 1
            assert [g["name"] for g in policy.config("u1")["nacm"]["groups"]["group"]] == ["g1", "g2"]
            assert commit(sess, "/ietf-netconf-acm:nacm/rule-list[name='r']/group", "g1") == 1
            assert commit(sess, "/ietf-netconf-acm:nacm/enable-nacm", "false") == 1
            # asked about now: followed from the search on
            assert policy.config("stranger")["nacm"]["groups"]["group"] == []
            assert commit(sess, GROUP.format("g1") + "/user-name", "stranger") == 1
            assert [g["name"] for g in policy.config("stranger")["nacm"]["groups"]["group"]] == ["g1"]
        finally:
            policy.close()
            sess.stop()


def test_the_writer_filters(sysrepo_instance: SysrepoInstance, monkeypatch: pytest.MonkeyPatch) -> None:
    """Only a subscription made with SR_SUBSCR_FILTER_ORIG is filtered by the writer (sysrepo's shm_sub.c); without
    it the writer wakes the subscriber's thread and waits while that thread finds nothing to call back for — the
    callbacks counted above would be the same."""
    import sysrepo
    from sysrepo.session import SysrepoSession

    from singbox_agent.mgmt import nacm

    made: list[tuple[str, str, dict[str, Any]]] = []
    subscribe = SysrepoSession.subscribe_module_change_unsafe

    def recorded(self: Any, module: str, xpath: str, *args: Any, **kwargs: Any) -> Any:
        made.append((module, xpath, kwargs))
        return subscribe(self, module, xpath, *args, **kwargs)

    monkeypatch.setattr(SysrepoSession, "subscribe_module_change_unsafe", recorded)
    with sysrepo.SysrepoConnection() as conn:
        policy = nacm.NacmPolicy(conn)
        try:
            policy.config("u1")
        finally:
            policy.close()
    mine = [(xpath, kwargs) for module, xpath, kwargs in made if module == "ietf-netconf-acm"]
    assert [xpath for xpath, _ in mine] == [nacm._subscription_xpath(frozenset()),
                                            nacm._subscription_xpath(frozenset({"u1"}))]
    assert all(kwargs.get("filter_origin") and kwargs.get("done_only") for _, kwargs in mine), mine

"""NacmPolicy follows NACM changes that can alter its answers, and only those (issue 17: per-edit cost)."""

from __future__ import annotations

from typing import Any

from singbox_agent.repository import SysrepoInstance

GROUP = "/ietf-netconf-acm:nacm/groups/group[name='{}']"


def _member(sess: Any, group: str, user: str, *, add: bool) -> None:
    path = GROUP.format(group) + "/user-name"
    if add:
        sess.set_item(path, user)
    else:
        sess.delete_item(f"{path}[.='{user}']")
    sess.apply_changes()


def test_membership_of_users_nobody_asked_for_changes_no_answer(sysrepo_instance: SysrepoInstance) -> None:
    """A user-name added to or removed from a group for a user the policy never answered for leaves `generation`
    (every session's NACM identity, RESTCONF's pooled sessions) as it is; the same change for a user it answered
    for moves it and the answer follows."""
    import sysrepo

    from singbox_agent.mgmt import nacm

    with sysrepo.SysrepoConnection() as conn:
        sess = conn.start_session("running")
        sess.set_item(GROUP.format("g1") + "/user-name", "u1")
        sess.set_item(GROUP.format("g2") + "/user-name", "u2")
        sess.apply_changes()
        policy = nacm.NacmPolicy(conn)
        try:
            assert policy.config("u1")["nacm"]["groups"]["group"] == [{"name": "g1", "user-name": ["u1"]}]
            before = policy.generation
            _member(sess, "g1", "stranger", add=True)
            _member(sess, "g2", "stranger", add=True)
            _member(sess, "g1", "stranger", add=False)
            assert policy.generation == before
            assert policy.config("u1")["nacm"]["groups"]["group"] == [{"name": "g1", "user-name": ["u1"]}]
            # asked for later: searched then, with what the changes left
            assert [g["name"] for g in policy.config("stranger")["nacm"]["groups"]["group"]] == ["g2"]
            # now it was answered for: its membership matters
            _member(sess, "g1", "stranger", add=True)
            assert policy.generation != before
            assert [g["name"] for g in policy.config("stranger")["nacm"]["groups"]["group"]] == ["g1", "g2"]
            moved = policy.generation
            _member(sess, "g2", "u1", add=True)
            assert policy.generation != moved
            assert [g["name"] for g in policy.config("u1")["nacm"]["groups"]["group"]] == ["g1", "g2"]
            # a rule-list always matters
            moved = policy.generation
            sess.set_item("/ietf-netconf-acm:nacm/rule-list[name='r']/group", "g1")
            sess.apply_changes()
            assert policy.generation != moved
        finally:
            policy.close()
            sess.stop()


def test_membership_change_during_the_search_is_not_lost(sysrepo_instance: SysrepoInstance) -> None:
    """A change of a user's membership committed while the policy searches that user's groups (the search read
    the datastore before it) is applied on the next answer: the user counts as asked from the search's start."""
    import sysrepo

    from singbox_agent.mgmt import nacm

    with sysrepo.SysrepoConnection() as conn:
        sess = conn.start_session("running")
        sess.set_item(GROUP.format("g1") + "/user-name", "late")
        sess.set_item(GROUP.format("g2") + "/user-name", "other")
        sess.apply_changes()
        policy = nacm.NacmPolicy(conn)
        real_read = policy._read
        committed: list[bool] = []

        def read_then_commit(xpath: str, max_depth: int = 0) -> dict[str, Any]:
            found = real_read(xpath, max_depth)
            if "user-name=" in xpath and not committed:  # the search of `late`: its result is now stale
                committed.append(True)
                _member(sess, "g2", "late", add=True)
            return found

        policy._read = read_then_commit  # type: ignore[method-assign]
        try:
            assert [g["name"] for g in policy.config("late")["nacm"]["groups"]["group"]] == ["g1"]
            assert committed
            assert [g["name"] for g in policy.config("late")["nacm"]["groups"]["group"]] == ["g1", "g2"]
        finally:
            policy.close()
            sess.stop()


def test_a_group_created_or_deleted_whole_moves_its_followed_members(sysrepo_instance: SysrepoInstance) -> None:
    """The policy follows groups only through the `user-name` nodes of the users it answered for (a group of
    strangers changes no answer): a group holding such a user, created or deleted as a whole (the list entry, the
    `groups` container, `nacm` itself, a replace of the module), still reaches it, and its answer follows."""
    import sysrepo

    from singbox_agent.mgmt import nacm

    def groups(policy: nacm.NacmPolicy, user: str) -> list[str]:
        return [g["name"] for g in policy.config(user)["nacm"]["groups"]["group"]]

    with sysrepo.SysrepoConnection() as conn:
        sess = conn.start_session("running")
        sess.set_item(GROUP.format("g1") + "/user-name", "u1")
        sess.apply_changes()
        policy = nacm.NacmPolicy(conn)
        try:
            assert groups(policy, "u1") == ["g1"]
            sess.set_item(GROUP.format("g2") + "/user-name", "u1")  # created whole, with its member
            sess.apply_changes()
            assert groups(policy, "u1") == ["g1", "g2"]
            sess.delete_item(GROUP.format("g2"))  # the list entry
            sess.apply_changes()
            assert groups(policy, "u1") == ["g1"]
            sess.delete_item("/ietf-netconf-acm:nacm/groups")  # the container holding it
            sess.apply_changes()
            assert groups(policy, "u1") == []
            sess.set_item(GROUP.format("g3") + "/user-name", "u1")
            sess.apply_changes()
            assert groups(policy, "u1") == ["g3"]
            sess.delete_item("/ietf-netconf-acm:nacm")
            sess.apply_changes()
            assert groups(policy, "u1") == []
            sess.set_item(GROUP.format("g4") + "/user-name", "u1")
            sess.apply_changes()
            assert groups(policy, "u1") == ["g4"]
            with conn.get_ly_ctx() as ly:  # sysrepo takes the tree
                replacement = ly.create_data_path(GROUP.format("g5") + "/user-name", value="other")
                sess.replace_config_ly(replacement, "ietf-netconf-acm")  # g4 gone with the rest
            assert groups(policy, "u1") == []
        finally:
            policy.close()
            sess.stop()

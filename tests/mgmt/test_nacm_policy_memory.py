"""NacmPolicy keeps what it needs for the users who asked, not the whole NACM group list (issue 17: RSS)."""

from __future__ import annotations

import gc
import tracemalloc

from singbox_agent.repository import SysrepoInstance

NACM_NS = "urn:ietf:params:xml:ns:yang:ietf-netconf-acm"
GROUPS = 3000


def test_policy_keeps_nothing_per_group(sysrepo_instance: SysrepoInstance) -> None:
    """With 3,000 groups, answering for a user leaves no Python memory per group behind (an index of every group
    kept ~350 bytes of Python objects per group, ~1 MB here), and the answers still follow membership changes."""
    import sysrepo

    from singbox_agent.mgmt import nacm

    body = "".join(f"<group><name>g{i:05d}</name><user-name>u{i:05d}</user-name></group>" for i in range(GROUPS))
    with sysrepo.SysrepoConnection() as conn:
        sess = conn.start_session("running")
        with conn.get_ly_ctx() as ctx:
            tree = ctx.parse_data_mem(f'<nacm xmlns="{NACM_NS}"><groups>{body}</groups></nacm>', "xml",
                                      parse_only=True, no_state=True, strict=True)
            sess.edit_batch_ly(tree, "merge")
            sess.apply_changes()
            tree.free()
        policy = nacm.NacmPolicy(conn)
        try:
            gc.collect()
            tracemalloc.start()
            try:
                before = tracemalloc.get_traced_memory()[0]
                assert policy.identity("u00007") == "u00007"  # in a group, no rule-list: restricted
                assert policy.identity("nobody") == nacm.UNGROUPED_USER
                gc.collect()
                kept = tracemalloc.get_traced_memory()[0] - before
            finally:
                tracemalloc.stop()
            assert kept < 100 * GROUPS, f"{kept} bytes kept for {GROUPS} groups"
            # the groups a change touches move in and out of the users asked so far
            sess.set_item("/ietf-netconf-acm:nacm/groups/group[name='g00009']/user-name", "nobody")
            sess.delete_item("/ietf-netconf-acm:nacm/groups/group[name='g00007']")
            sess.apply_changes()
            assert policy.identity("nobody") == "nobody"
            assert policy.identity("u00007") == nacm.UNGROUPED_USER
            assert policy.config("nobody")["nacm"]["groups"]["group"] == [{"name": "g00009", "user-name": ["nobody"]}]
        finally:
            policy.close()
            sess.stop()

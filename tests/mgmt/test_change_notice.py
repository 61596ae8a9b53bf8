"""change_notice.RunningStamps: when a module's running data changed, without a subscription anyone waits for."""

from __future__ import annotations

import time

from singbox_agent.repository import SysrepoInstance

BAG = "/ietf-truststore:truststore/public-key-bags/public-key-bag[name='b']/description"


def test_stamps_follow_commits_of_their_modules_only(sysrepo_instance: SysrepoInstance) -> None:
    import sysrepo

    from singbox_agent.mgmt import change_notice

    with sysrepo.SysrepoConnection() as conn:
        sess = conn.start_session("running")
        sess.set_item(BAG, "first")  # the module's running file exists once sysrepo stored it
        sess.apply_changes()
        stamps = change_notice.RunningStamps(["ietf-truststore", "sysrepo-monitoring"])
        try:
            assert stamps.unwatched == ["sysrepo-monitoring"]  # no configuration, no running file
            generation, latest = stamps.generation(), stamps.latest()
            assert stamps.generation() == generation  # looking changes nothing
            # no subscription: sysrepo-monitoring lists none on the module
            with conn.start_session("operational") as op, op.get_data_ly(
                    "/sysrepo-monitoring:sysrepo-state/module[name='ietf-truststore']/subscriptions") as subs:
                assert subs is None or not list(subs.find_all("//change-sub"))
            sess.set_item("/ietf-netconf-acm:nacm/groups/group[name='g']/user-name", "u")  # another module
            sess.apply_changes()
            assert stamps.generation() == generation
            before = time.time()
            time.sleep(0.05)
            for value in ("second", "third"):  # each look after a commit sees it, also within one clock tick
                sess.set_item(BAG, value)
                sess.apply_changes()
                assert stamps.generation() != generation
                generation = stamps.generation()
            assert latest < stamps.latest() and stamps.latest() >= before - 0.01  # (the kernel's coarse clock)
        finally:
            stamps.close()
            sess.stop()

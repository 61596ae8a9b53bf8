"""The dataplane's versions come from the agent's operational data (`/singbox/dataplane`): a real agent (over the
in-memory dataplane) in this process, a real sysrepo."""

from __future__ import annotations

from singbox_agent.agent.daemon import Agent
from singbox_agent.dataplane.memory import MemoryDataplane
from singbox_agent.metrics import render, snapshot
from singbox_agent.metrics.versions import AgentVersions
from singbox_agent.repository import SysrepoInstance


def test_versions_from_the_agent_and_kept_while_it_is_away(sysrepo_instance: SysrepoInstance) -> None:
    import sysrepo

    conn = sysrepo.SysrepoConnection()
    try:
        versions = AgentVersions(conn)
        versions.refresh()
        assert versions() is None  # no agent: nothing known, nothing invented
        agent = Agent(MemoryDataplane())
        agent.start()
        try:
            assert agent.wait_idle()
            versions.refresh()
            assert versions() == snapshot.Versions("26.06-memory", "1.0.0")
        finally:
            agent.stop()
        versions.refresh()  # the agent gone: the last versions stay
        assert versions() == snapshot.Versions("26.06-memory", "1.0.0")
        text = render.render(snapshot.build(None, agent_version="x", versions=versions()))
        assert 'singbox_dataplane_build_info{vpp_version="26.06-memory",plugin_version="1.0.0"} 1\n' in text
    finally:
        conn.disconnect()

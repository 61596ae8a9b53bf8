"""An agent over the test's sysrepo instance with the in-memory dataplane, and a client session to commit with."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from singbox_agent.agent.daemon import Agent
from singbox_agent.agent.resolve import Resolver
from singbox_agent.dataplane.memory import MemoryDataplane
from singbox_agent.repository import SysrepoInstance

TOP = "/vpp-singbox:singbox"


@dataclass
class Env:
    agent: Agent
    dp: MemoryDataplane
    sess: Any  # sysrepo.SysrepoSession (running)

    def commit(self, edits: dict[str, Any] | None = None, deletes: list[str] | None = None) -> None:
        for path in deletes or []:
            self.sess.delete_item(path)
        for path, value in (edits or {}).items():
            self.sess.set_item(path, value)
        try:
            self.sess.apply_changes()
        except Exception:
            self.sess.discard_changes()
            raise
        assert self.agent.wait_idle()

    def running(self) -> dict[str, Any]:
        data: dict[str, Any] = self.sess.get_data(TOP)
        return data

    def config_objects(self) -> dict[Any, Any]:
        return dict(self.dp.objects)


def start_env(dp: MemoryDataplane, priority: int = 0, resolver: Resolver | None = None) -> Iterator[Env]:
    import sysrepo

    agent = Agent(dp, change_priority=priority, resolver=resolver)
    agent.start()
    assert agent.wait_idle()
    conn = sysrepo.SysrepoConnection()
    sess = conn.start_session("running")
    try:
        yield Env(agent, dp, sess)
    finally:
        sess.stop()
        conn.disconnect()
        agent.stop()


@pytest.fixture
def env(sysrepo_instance: SysrepoInstance) -> Iterator[Env]:
    yield from start_env(MemoryDataplane())

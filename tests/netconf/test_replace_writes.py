"""The NETCONF writes that replace a whole datastore — <delete-config>, an edit-config replace with empty content,
the confirmed-commit rollback and its reset of the candidate — write as every other one does
(mgmt/datastore.replace_config and copy_config): room for the config-change first (running, startup), retried
while other clients hold sysrepo's locks, a fresh tree for each attempt (sysrepo spends it), the subscribers given
SUBSCRIBER_TIMEOUT_MS."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
import sysrepo

from singbox_agent.mgmt import datastore
from singbox_agent.netconf import confirmed
from singbox_agent.netconf.ops import delete_config, editing

BUSY = ("Locking a rwlock failed (sr_shmmod_lock: Connection timed out), read lock held by running process 6 "
        "(CID 5).")


class BusyOnce:
    """A sysrepo session whose first write fails because another client holds the datastore's lock."""

    def __init__(self, ds: str = "running") -> None:
        self.ds = ds
        self.calls: list[tuple[Any, ...]] = []
        self.busy = 1

    def get_datastore(self) -> str:
        return self.ds

    def switch_datastore(self, ds: str) -> None:
        self.ds = ds

    def _write(self, *call: Any) -> None:
        self.calls.append(call)
        if self.busy:
            self.busy -= 1
            raise sysrepo.SysrepoTimeOutError(BUSY)

    def replace_config_ly(self, tree: Any, module: str | None, timeout_ms: int = 0) -> None:
        self._write("replace", self.ds, tree, module, timeout_ms)

    def copy_config(self, source: str, module: str | None = None, timeout_ms: int = 0) -> None:
        self._write("copy", self.ds, source, module, timeout_ms)

    def discard_changes(self) -> None:
        pass


@pytest.fixture
def rooms(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    waited: list[int] = []
    monkeypatch.setattr(datastore, "wait_for_replay_room", lambda: waited.append(1))
    return waited


def op_context(sr: BusyOnce) -> Any:
    state = SimpleNamespace(holder=lambda ds: None)
    return SimpleNamespace(sr=sr, session=SimpleNamespace(id=7, server=SimpleNamespace(state=state)))


T = datastore.SUBSCRIBER_TIMEOUT_MS


def test_rollback_restore_retried_with_a_fresh_tree(rooms: list[int]) -> None:
    sr = BusyOnce()
    trees = iter(["tree-1", "tree-2"])
    confirmed._restore(sr, lambda: next(trees))  # fails on the old code: the busy error ended the rollback
    assert sr.calls == [("replace", "running", "tree-1", None, T), ("replace", "running", "tree-2", None, T)]
    assert rooms == [1]


def test_rollback_candidate_reset_retried() -> None:
    sr = BusyOnce()
    confirmed._reset_candidate(sr)
    assert sr.calls == [("copy", "candidate", "running", None, T)] * 2


def test_empty_replace_edit_retried(rooms: list[int]) -> None:
    sr = BusyOnce()
    editing.apply_edit(op_context(sr), "running", None, "replace")
    assert sr.calls == [("replace", "running", None, None, T)] * 2
    assert rooms == [1]
    sr = BusyOnce()
    editing.apply_edit(op_context(sr), "candidate", None, "replace")  # no config-change: no room to wait for
    assert sr.calls == [("replace", "candidate", None, None, T)] * 2 and rooms == [1]


def test_delete_config_retried(rooms: list[int], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(delete_config, "datastore_choice", lambda ctx, param, allowed: "startup")
    sr = BusyOnce()
    assert delete_config.handle(op_context(sr)) == "<ok/>"
    assert sr.calls == [("replace", "startup", None, None, T)] * 2
    assert rooms == [1]

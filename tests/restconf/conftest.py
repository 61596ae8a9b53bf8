"""A real RESTCONF server (subprocess) over a real, isolated sysrepo instance with an admin and a plain user."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from rcserver import RestconfServer, bootstrap_users, start_server, stop_server  # noqa: E402

from singbox_agent.repository import SysrepoInstance  # noqa: E402


@pytest.fixture
def restconf(sysrepo_instance: SysrepoInstance, tmp_path: Path) -> Iterator[RestconfServer]:
    """The server under test, on an ephemeral port with a generated CA; admin and bob exist."""
    state = tmp_path / "state"
    state.mkdir()
    bootstrap_users(sysrepo_instance, state)
    server = start_server(sysrepo_instance, state)
    try:
        yield server
    finally:
        rc = stop_server(server)
        assert rc == 0, f"server exit status {rc}:\n{server.log()[-4000:]}"

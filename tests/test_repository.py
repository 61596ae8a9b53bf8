"""The isolated-instance guard: values sysrepo would silently replace must be refused before use."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
import sysrepo

from singbox_agent.repository import InstanceConfigError, SysrepoInstance


@pytest.mark.parametrize(
    ("repo", "prefix", "why"),
    [
        (Path("/tmp/" + "x" * 200), "sbtok", "characters"),
        (Path("relative/repo"), "sbtok", "absolute"),
        (Path("/tmp/r"), "a/b", "letters or digits"),
        (Path("/tmp/r"), "", "letters or digits"),
        (Path("/tmp/r"), "p" * 17, "letters or digits"),
        (Path("/tmp/r"), "1abc", "letters or digits"),
    ],
)
def test_refuses_values_sysrepo_would_replace(repo: Path, prefix: str, why: str) -> None:
    with pytest.raises(InstanceConfigError, match=why):
        SysrepoInstance(repository=repo, shm_prefix=prefix)


def test_instance_is_isolated_and_has_project_modules(sysrepo_instance: SysrepoInstance) -> None:
    with sysrepo.SysrepoConnection() as conn:
        with conn.get_ly_ctx() as ctx:
            assert ctx.get_module("vpp-singbox").implemented()
        with conn.start_session("running") as sess:
            sess.set_item("/vpp-singbox:singbox/client/session-timeout", "77")
            sess.apply_changes()
    assert (sysrepo_instance.repository / "data").is_dir()
    assert any(Path("/dev/shm").glob(f"{sysrepo_instance.shm_prefix}_*"))


def test_two_instances_do_not_share_data(
    sysrepo_instance: SysrepoInstance,
    sysrepo_instance_factory: Callable[[], SysrepoInstance],
) -> None:
    with sysrepo.SysrepoConnection() as conn, conn.start_session("running") as sess:
        sess.set_item("/vpp-singbox:singbox/client/session-timeout", "77")
        sess.apply_changes()
    other = sysrepo_instance_factory()
    read = subprocess.run(
        ["sysrepocfg", "-X", "-d", "running", "-m", "vpp-singbox", "-f", "json"],
        env={**os.environ, **other.env},
        check=True,
        capture_output=True,
        text=True,
    )
    assert "77" not in read.stdout
    mine = subprocess.run(
        ["sysrepocfg", "-X", "-d", "running", "-m", "vpp-singbox", "-f", "json"],
        env={**os.environ, **sysrepo_instance.env},
        check=True,
        capture_output=True,
        text=True,
    )
    assert '"session-timeout": 77' in mine.stdout


def test_destroy_removes_every_trace(sysrepo_instance_factory: Callable[[], SysrepoInstance]) -> None:
    instance = sysrepo_instance_factory()
    subprocess.run(["sysrepocfg", "-X", "-m", "vpp-singbox"], env={**os.environ, **instance.env}, check=True)
    assert any(Path("/dev/shm").glob(f"{instance.shm_prefix}*"))
    instance.destroy()
    assert not instance.repository.exists()
    assert not list(Path("/dev/shm").glob(f"{instance.shm_prefix}*"))


def test_sync_installs_nothing_twice_and_updates_new_revisions(
    sysrepo_instance: SysrepoInstance, tmp_path: Path
) -> None:
    from singbox_agent.repository import installed_modules, project_yang_dirs, project_yang_files

    top = Path(__file__).resolve().parent.parent
    assert sysrepo_instance.sync_modules(project_yang_files(top), project_yang_dirs(top)) == []

    current = next(f for f in project_yang_files(top) if f.name.startswith("vpp-singbox@"))
    old_revision = current.stem.partition("@")[2]
    newer = tmp_path / "vpp-singbox@2099-01-01.yang"
    newer.write_text(
        current.read_text().replace(
            f"revision {old_revision} {{",
            f'revision 2099-01-01 {{\n    description "test revision";\n  }}\n  revision {old_revision} {{',
            1,
        )
    )
    assert sysrepo_instance.sync_modules([newer], [tmp_path, *project_yang_dirs(top)]) == ["vpp-singbox"]
    assert installed_modules(env=sysrepo_instance.env)["vpp-singbox"] == "2099-01-01"

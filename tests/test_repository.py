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


def test_package_sync_gives_group_access_and_records_what_it_installed(tmp_path: Path) -> None:
    """What the Debian package's postinst runs (`sync --group --permissions --record -`) on an empty instance, as
    the daemons' group: every module it installs gets that group and mode, an earlier install with sysrepo's
    defaults is corrected, and only the modules installed now are printed (purge uninstalls those)."""
    import grp
    import secrets
    import sys

    from singbox_agent.repository import installed_module_info, project_yang_dirs

    top = Path(__file__).resolve().parent.parent
    try:  # Debian's sysrepo gives every module to this group; sysrepoctl then keeps it
        group = grp.getgrnam("sysrepo").gr_name
    except KeyError:
        group = grp.getgrgid(os.getgid()).gr_name
    instance = SysrepoInstance(repository=tmp_path / "sr", shm_prefix="sbtpkg" + secrets.token_hex(3))
    env = {**os.environ, **instance.env}
    dirs = [str(d) for d in project_yang_dirs(top)]
    try:
        first = subprocess.run([sys.executable, "-m", "singbox_agent.repository", "sync", "--record", "-", *dirs],
                               env=env, check=True, capture_output=True, text=True)
        assert "vpp-singbox" in first.stdout.split()
        assert installed_module_info(env=instance.env)["vpp-singbox"].permissions == "600"  # sysrepo's default
        again = subprocess.run([sys.executable, "-m", "singbox_agent.repository", "sync", "--group", group,
                                "--permissions", "660", "--record", "-", *dirs],
                               env=env, check=True, capture_output=True, text=True)
        assert again.stdout == ""  # nothing newly installed: nothing a purge may take that it did not install
        assert "vpp-singbox" in again.stderr  # but its access rights were corrected
        info = installed_module_info(env=instance.env)
        for name in first.stdout.split():
            assert info[name].permissions == "660" and info[name].owner.endswith(f":{group}"), (name, info[name])
        record = tmp_path / "record"
        record.write_text("sysrepo-monitoring\n")
        subprocess.run([sys.executable, "-m", "singbox_agent.repository", "sync", "--record", str(record), *dirs],
                       env=env, check=True, capture_output=True, text=True)
        assert record.read_text() == "sysrepo-monitoring\n"
    finally:
        instance.destroy()

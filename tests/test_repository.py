"""The isolated-instance guard: values sysrepo would silently replace must be refused before use."""

from __future__ import annotations

import os
import re
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


def _sysrepoctl_listing(env: dict[str, str]) -> dict[str, tuple[str, str, str, frozenset[str]]]:
    """`sysrepoctl -l` of an instance (the environment has sysrepo 3.7's tools; the product does not use them):
    module -> revision, owner, startup permissions, enabled features, of the installed modules."""
    listing = subprocess.run(["sysrepoctl", "-l"], env={**os.environ, **env}, check=True, capture_output=True,
                             text=True).stdout
    cells = [[c.strip() for c in line.split("|")] for line in listing.splitlines()]
    return {c[0]: (c[1], c[3], c[4], frozenset(c[6].split())) for c in cells if len(c) > 6 and "I" in c[2]}


def _no_sysrepo_tools(tmp_path: Path) -> dict[str, str]:
    """An environment whose PATH has no sysrepo tool (as on an appliance installed from today's trixie-backports,
    where sysrepoctl and sysrepocfg are sysrepo 5's and not installable next to libsysrepo7)."""
    empty = tmp_path / "bin"
    empty.mkdir(exist_ok=True)
    return {**os.environ, "PATH": str(empty)}


def test_module_listing_is_what_sysrepoctl_lists(sysrepo_instance: SysrepoInstance) -> None:
    """The listing through libsysrepo (revisions, owner, permissions, features) against sysrepoctl's own."""
    from singbox_agent.repository import installed_module_info

    mine = {name: (m.revision, m.owner, m.permissions, m.features)
            for name, m in installed_module_info(env=sysrepo_instance.env).items()}
    assert mine == _sysrepoctl_listing(sysrepo_instance.env)
    assert "on-change" in mine["ietf-yang-push"][3] and "vpp-singbox" in mine


def test_postinst_sync_needs_no_sysrepo_tools(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The package's postinst command, and an update to a new revision, with no sysrepoctl on PATH: modules
    installed with every feature, the group and permissions asked for, sysrepo's subscription modules with their
    features; what was done checked with sysrepoctl afterwards."""
    import grp
    import secrets
    import sys

    from singbox_agent.repository import installed_module_info, project_yang_dirs, project_yang_files

    top = Path(__file__).resolve().parent.parent
    try:
        group = grp.getgrnam("sysrepo").gr_name
    except KeyError:
        group = grp.getgrgid(os.getgid()).gr_name
    instance = SysrepoInstance(repository=tmp_path / "sr", shm_prefix="sbtnot" + secrets.token_hex(3))
    bare = {**_no_sysrepo_tools(tmp_path), **instance.env}
    dirs = [str(d) for d in project_yang_dirs(top)]
    try:
        sync = [sys.executable, "-m", "singbox_agent.repository", "sync", "--group", group, "--permissions", "660"]
        first = subprocess.run([*sync, "--record", "-", *dirs], env=bare, capture_output=True, text=True)
        assert first.returncode == 0, first.stderr
        assert "vpp-singbox" in first.stdout.split()
        listed = _sysrepoctl_listing(instance.env)
        for name in first.stdout.split():
            assert listed[name][1].endswith(f":{group}") and listed[name][2] == "660", (name, listed[name])
        vpp_singbox = next(f for f in project_yang_files(top) if f.name.startswith("vpp-singbox@"))
        assert listed["vpp-singbox"][0] == vpp_singbox.stem.partition("@")[2]
        assert {"udp-associate"} <= listed["vpp-singbox"][3]  # every feature of ours
        assert {"replay", "subtree", "xpath", "encode-xml", "encode-json"} <= listed["ietf-subscribed-notifications"][3]
        assert listed["ietf-yang-push"][3] == {"on-change"}  # only what subscriptions need

        newer = tmp_path / "yang" / "vpp-singbox@2099-01-01.yang"
        newer.parent.mkdir()
        old_revision = vpp_singbox.stem.partition("@")[2]
        newer.write_text(vpp_singbox.read_text().replace(
            f"revision {old_revision} {{", f'revision 2099-01-01 {{\n    description "test";\n  }}\n'
                                           f"  revision {old_revision} {{", 1))
        for f in project_yang_files(top):
            if not f.name.startswith("vpp-singbox@"):
                (newer.parent / f.name).symlink_to(f)
        again = subprocess.run([*sync, str(newer.parent)], env=bare, capture_output=True, text=True)
        assert again.returncode == 0, again.stderr
        assert again.stdout.strip() == "installed or updated: vpp-singbox"
        assert _sysrepoctl_listing(instance.env)["vpp-singbox"][0] == "2099-01-01"
        listing = subprocess.run([sys.executable, "-m", "singbox_agent.repository", "list"], env=bare,
                                 capture_output=True, text=True)
        assert listing.returncode == 0, listing.stderr
        assert re.search(r"^vpp-singbox +\| 2099-01-01 +\| \S+:" + group + r" +\| 660 +\| .*udp-associate",
                         listing.stdout, re.M), listing.stdout
        monkeypatch.setenv("PATH", bare["PATH"])  # the library's own calls on another instance (a child process)
        assert installed_module_info(env=instance.env)["vpp-singbox"].revision == "2099-01-01"
    finally:
        instance.destroy()


def test_features_enabled_where_another_installed_the_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """sysrepo's ietf-yang-push installed by someone else without on-change (netopeer2 installs it so): the
    product enables the feature and touches nothing else — with no sysrepoctl on PATH."""
    import secrets

    from singbox_agent.repository import sysrepo_modules

    instance = SysrepoInstance(repository=tmp_path / "sr", shm_prefix="sbtfea" + secrets.token_hex(3))
    try:
        (subscribed, sn_features), (push, _) = sysrepo_modules()
        instance.install_modules([], with_features=[(subscribed, sn_features), (push, [])])
        assert _sysrepoctl_listing(instance.env)["ietf-yang-push"][3] == frozenset()
        monkeypatch.setenv("PATH", _no_sysrepo_tools(tmp_path)["PATH"])
        assert instance.sync_features(sysrepo_modules()) == ["ietf-yang-push:on-change"]
        assert instance.sync_features(sysrepo_modules()) == []
        monkeypatch.undo()
        listed = _sysrepoctl_listing(instance.env)
        assert listed["ietf-yang-push"][3] == {"on-change"}
        assert listed["ietf-subscribed-notifications"][3] == frozenset(sn_features)
    finally:
        instance.destroy()


def test_another_instance_is_changed_not_the_one_this_process_uses(
    sysrepo_instance: SysrepoInstance, sysrepo_instance_factory: Callable[[], SysrepoInstance], tmp_path: Path
) -> None:
    """libsysrepo ties a process to the first instance it uses: a change asked for another instance (`env`) must
    reach that one — not a fork of this process still tied to its own."""
    from singbox_agent.repository import installed_modules, project_yang_dirs, project_yang_files

    with sysrepo.SysrepoConnection() as conn, conn.start_session("running") as sess:  # this process: its instance
        sess.set_item("/vpp-singbox:singbox/client/session-timeout", "77")
        sess.apply_changes()
    mine = installed_modules()["vpp-singbox"]
    other = sysrepo_instance_factory()
    top = Path(__file__).resolve().parent.parent
    current = next(f for f in project_yang_files(top) if f.name.startswith("vpp-singbox@"))
    newer = tmp_path / "vpp-singbox@2099-01-01.yang"
    newer.write_text(current.read_text().replace(
        f"revision {mine} {{", f'revision 2099-01-01 {{\n    description "test";\n  }}\n  revision {mine} {{', 1))
    assert other.sync_modules([newer], [tmp_path, *project_yang_dirs(top)]) == ["vpp-singbox"]
    assert installed_modules(env=other.env)["vpp-singbox"] == "2099-01-01"
    assert _sysrepoctl_listing(other.env)["vpp-singbox"][0] == "2099-01-01"
    assert installed_modules()["vpp-singbox"] == mine
    assert _sysrepoctl_listing(sysrepo_instance.env)["vpp-singbox"][0] == mine

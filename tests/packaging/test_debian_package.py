"""The Debian package an operator installs: built from the committed tree, unpacked, and its own code run.

Building takes about a minute and a half (dh-virtualenv resolves every dependency), so it runs once per session.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from singbox_agent.repository import SysrepoInstance, enabled_features, installed_modules

TOP = Path(__file__).resolve().parents[2]
VENV = "opt/venvs/vpp-singbox-agent"


@pytest.fixture(scope="module")
def agent_deb() -> Iterator[Path]:
    if subprocess.run(["git", "-C", str(TOP), "rev-parse", "HEAD"], capture_output=True).returncode != 0:
        pytest.skip("not a git checkout: the package is built from the committed tree")
    subprocess.run(
        [str(TOP / "packaging" / "build-deb")],
        env={**os.environ, "DEB_BUILD_PROFILES": "pkg.vpp-singbox.noplugin"},
        check=True,
        capture_output=True,
    )
    debs = list((TOP / "build" / "deb").glob("vpp-singbox-agent_*_amd64.deb"))
    assert len(debs) == 1, debs
    yield debs[0]


def _contents(deb: Path) -> set[str]:
    listing = subprocess.run(["dpkg-deb", "-c", str(deb)], check=True, capture_output=True, text=True).stdout
    return {line.split()[-1].removeprefix("./") for line in listing.splitlines() if "->" not in line}


def test_package_carries_services_modules_and_venv(agent_deb: Path) -> None:
    files = _contents(agent_deb)
    for unit in ("singbox-agent", "singbox-netconfd", "singbox-restconfd", "singbox-exporterd"):
        assert f"usr/lib/systemd/system/{unit}.service" in files
    assert any(f.startswith("usr/share/vpp-singbox/yang/vpp-singbox@") for f in files)
    assert any(f.startswith("usr/share/vpp-singbox/yang/vpp-singbox-metrics@") for f in files)
    assert "etc/default/vpp-singbox" in files
    assert any(f.startswith(f"{VENV}/lib/python3.13/site-packages/singbox_agent/") for f in files)
    assert any(f.startswith(f"{VENV}/lib/python3.13/site-packages/sysrepo/") for f in files)
    assert not any("__editable__" in f or f.endswith(".egg-link") for f in files)
    # every YANG module the code loads at run time (RESTCONF answered 500 without its own)
    site = f"{VENV}/lib/python3.13/site-packages/singbox_agent"
    for module in ("restconf/yang/ietf-restconf.yang", "restconf/yang/ietf-yang-patch.yang",
                   "metrics/grafana-dashboard.json"):
        assert f"{site}/{module}" in files
    assert not any("__pycache__" in f for f in files)
    assert not any(f.startswith(f"{VENV}/lib/python3.13/site-packages/cryptography/") for f in files)  # Debian's
    for page in ("singbox-agent", "singbox-netconfd", "singbox-restconfd", "singbox-exporterd", "singbox-admin"):
        assert f"usr/share/man/man8/{page}.8.gz" in files
    assert "usr/share/doc/vpp-singbox-agent/README.md" in files and "usr/share/doc/vpp-singbox-agent/copyright" in files


def test_every_command_has_a_man_page_and_etc_is_conffiles(agent_deb: Path) -> None:
    """What an operator expects of a Debian package: `man X` for every command it puts on PATH, and its files in /etc
    marked conffiles (dpkg keeps local changes on upgrade and asks; purge removes them)."""
    listing = subprocess.run(["dpkg-deb", "-c", str(agent_deb)], check=True, capture_output=True,
                             text=True).stdout
    paths = {line.split()[5].removeprefix("./") for line in listing.splitlines()}  # symlinks too (usr/sbin)
    commands = {Path(p).name for p in paths if re.fullmatch(r"usr/s?bin/[^/]+", p)}
    assert {"singbox-agent", "singbox-netconfd", "singbox-restconfd", "singbox-exporterd", "singbox-admin"} <= commands
    pages = {Path(p).name.split(".")[0] for p in paths if re.fullmatch(r"usr/share/man/man[18]/[^/]+\.[18]\.gz", p)}
    assert commands <= pages, f"commands without a man page: {sorted(commands - pages)}"
    etc = {"/" + p for p in paths if p.startswith("etc/") and not p.endswith("/")}
    conffiles = subprocess.run(["dpkg-deb", "-I", str(agent_deb), "conffiles"], check=True, capture_output=True,
                               text=True).stdout.split()
    assert etc and etc <= set(conffiles), (etc, conffiles)


def test_package_depends_on_the_sysrepo_it_was_built_for(agent_deb: Path) -> None:
    fields = subprocess.run(["dpkg-deb", "-f", str(agent_deb), "Depends"], check=True, capture_output=True, text=True)
    assert "libsysrepo7 (>= 3.7.11)" in fields.stdout
    assert "libyang3" in fields.stdout
    assert "python3-cryptography" in fields.stdout and "python3 (<< 3.14)" in fields.stdout
    # not sysrepo's tools: trixie-backports' package sysrepo is sysrepo 5 (libyang5 Breaks libyang3) since 2026-12
    names = {d.strip().split(" ")[0] for d in fields.stdout.split(",")}
    assert not names & {"sysrepo", "sysrepo-plugind", "libsysrepo8", "libyang5"}, fields.stdout
    assert "sysrepo-modules" in names  # the YANG files postinst installs from /usr/share/yang/modules/sysrepo


def _postrm_purge_program(deb: Path) -> str:
    postrm = subprocess.run(["dpkg-deb", "-I", str(deb), "postrm"], check=True, capture_output=True, text=True).stdout
    assert not re.search(r"^[^#]*\bsysrepo(ctl|cfg)\b", postrm, re.M), postrm  # no sysrepo tool is run
    found = re.search(r"^PURGE_PY='\n(.*?)^'$", postrm, re.M | re.S)
    assert found, "postrm has no libsysrepo program for purge"
    return found.group(1)


@pytest.mark.own_process
def test_postrm_purge_cleans_sysrepo_without_its_tools(agent_deb: Path, tmp_path: Path) -> None:
    """postrm's purge program (python3 and libsysrepo, as the venv is gone by then) on an instance the postinst
    sync filled, NACM rules and replay in place, with no sysrepo tool on PATH: our modules uninstalled, NACM
    empty in startup and running, replay off; sysrepo's subscription modules kept. Checked with sysrepoctl."""
    program = _postrm_purge_program(agent_deb)
    root = tmp_path / "root"
    subprocess.run(["dpkg-deb", "-x", str(agent_deb), str(root)], check=True)
    instance = SysrepoInstance(repository=tmp_path / "sr", shm_prefix="sbtprm" + os.urandom(3).hex())
    bare = tmp_path / "bin"
    bare.mkdir()
    env = {**os.environ, **instance.env, "PATH": str(bare)}
    try:
        sync = subprocess.run([str(root / VENV / "bin" / "python"), "-m", "singbox_agent.repository", "sync",
                               "--record", "-", str(root / "usr/share/vpp-singbox/yang")],
                              env={**env, "PYTHONPATH": ""}, capture_output=True, text=True)
        assert sync.returncode == 0, sync.stderr
        ours = sync.stdout.split()
        assert "vpp-singbox" in ours
        subprocess.run(["sysrepoctl", "-c", ":ALL", "-r", "on"], env={**os.environ, **instance.env}, check=True)
        subprocess.run(["sysrepocfg", "--edit", "-d", "startup", "-m", "ietf-netconf-acm", "-f", "xml"],
                       input='<nacm xmlns="urn:ietf:params:xml:ns:yang:ietf-netconf-acm"><groups><group>'
                             "<name>admin</name><user-name>admin</user-name></group></groups></nacm>",
                       env={**os.environ, **instance.env}, check=True, text=True)
        purge = subprocess.run(["/usr/bin/python3", "-c", program, *ours], env=env, capture_output=True, text=True)
        assert purge.returncode == 0, purge.stderr
        assert "ietf-netconf-notifications" in purge.stdout.split()  # replay turned off, named for its files
        listing = subprocess.run(["sysrepoctl", "-l"], env={**os.environ, **instance.env}, check=True,
                                 capture_output=True, text=True).stdout
        cells = ([x.strip() for x in line.split("|")] for line in listing.splitlines())
        rows = {c[0]: c for c in cells if len(c) > 6}
        assert not [m for m in ours if m in rows], listing
        assert "on-change" in rows["ietf-yang-push"][6].split()
        assert not [m for m, c in rows.items() if "R" in c[2]], listing
        nacm = subprocess.run(["sysrepocfg", "-X", "-d", "startup", "-m", "ietf-netconf-acm", "-f", "xml"],
                              env={**os.environ, **instance.env}, check=True, capture_output=True, text=True).stdout
        assert "admin" not in nacm, nacm
    finally:
        instance.destroy()


@pytest.mark.own_process
def test_postinst_installs_modules_with_the_packaged_code(agent_deb: Path, tmp_path: Path) -> None:
    """Runs what postinst runs, with the package's own venv and YANG files, against an empty sysrepo instance."""
    root = tmp_path / "root"
    subprocess.run(["dpkg-deb", "-x", str(agent_deb), str(root)], check=True)
    postinst = subprocess.run(["dpkg-deb", "-I", str(agent_deb), "postinst"], check=True, capture_output=True, text=True)
    assert "singbox_agent.repository sync" in postinst.stdout and "/usr/share/vpp-singbox/yang" in postinst.stdout
    assert "init-admin" in postinst.stdout

    instance = SysrepoInstance(repository=tmp_path / "sr", shm_prefix="sbtdeb" + os.urandom(3).hex())
    try:
        # The venv's python is a symlink to /usr/bin/python3 and finds its site-packages relative to itself.
        run = subprocess.run(
            [str(root / VENV / "bin" / "python"), "-m", "singbox_agent.repository", "sync",
             str(root / "usr/share/vpp-singbox/yang")],
            env={**os.environ, **instance.env, "PYTHONPATH": ""},
            check=True,
            capture_output=True,
            text=True,
        )
        assert "vpp-singbox" in run.stdout
        assert "vpp-singbox" in installed_modules(env=instance.env)
        # sysrepo's modules for subscriptions, with the features they need (srsn.MODULES)
        features = enabled_features(env=instance.env)
        assert {"replay", "subtree", "xpath", "encode-xml", "encode-json"} <= features["ietf-subscribed-notifications"]
        assert "on-change" in features["ietf-yang-push"]
        again = subprocess.run(
            [str(root / VENV / "bin" / "python"), "-m", "singbox_agent.repository", "sync",
             str(root / "usr/share/vpp-singbox/yang")],
            env={**os.environ, **instance.env},
            check=True,
            capture_output=True,
            text=True,
        )
        assert "nothing" in again.stdout
    finally:
        instance.destroy()

"""The plugin package, built against the VPP that VPP_PREFIX names (as `make deb VPP_PREFIX=...` does), checked by
lintian (packaging/build-deb fails on its errors), and its plugin loaded by that VPP from the unpacked package.

fd.io's VPP is no Debian package here, so apt cannot install the package (it Depends on that exact `vpp`): the test
unpacks it and points VPP's plugin path at it instead.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from singbox_agent.devvpp import DevVpp, VppInstall, VppUnavailable, find_install

TOP = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.vpp, pytest.mark.slow, pytest.mark.timeout(900)]


def _vpp_prefix() -> Path:
    prefix = os.environ.get("VPP_PREFIX")
    if not prefix or not (Path(prefix) / "include/vpp/app/version.h").is_file():
        pytest.skip("VPP is missing: set VPP_PREFIX to an installed VPP with its headers (include/vpp/app/version.h)")
    return Path(prefix)


@pytest.fixture(scope="module")
def plugin_deb() -> Iterator[Path]:
    prefix = _vpp_prefix()
    if subprocess.run(["git", "-C", str(TOP), "rev-parse", "HEAD"], capture_output=True).returncode != 0:
        pytest.skip("not a git checkout: the package is built from the committed tree")
    done = subprocess.run([str(TOP / "packaging/build-deb")], capture_output=True, text=True,
                          env={**os.environ, "VPP_PREFIX": str(prefix), "SINGBOX_DEB_OUT": "build/deb-plugin",
                               "DEB_BUILD_PROFILES": ""})
    assert done.returncode == 0, f"{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    debs = list((TOP / "build/deb-plugin").glob("vpp-singbox-plugin_*_amd64.deb"))
    assert len(debs) == 1, debs
    yield debs[0]


def test_headers_in_the_dev_package_where_the_manual_says(plugin_deb: Path, tmp_path: Path) -> None:
    """The product manual: "Headers: /usr/include/vpp_plugins/singbox/" — the API headers VPP's build makes, in a
    -dev package for the same VPP."""
    dev = list(plugin_deb.parent.glob("vpp-singbox-plugin-dev_*_amd64.deb"))
    assert len(dev) == 1, dev
    subprocess.run(["dpkg-deb", "-x", str(dev[0]), str(tmp_path)], check=True)
    headers = tmp_path / "usr/include/vpp_plugins/singbox"
    for name in ("singbox.api.h", "singbox.api_enum.h", "singbox.api_types.h"):
        assert (headers / name).is_file(), sorted(p.name for p in headers.glob("*"))
    assert (tmp_path / "usr/include/vapi/singbox.api.vapi.h").is_file()
    depends = subprocess.run(["dpkg-deb", "-f", str(dev[0]), "Depends"], check=True, capture_output=True,
                             text=True).stdout
    version = subprocess.run(["dpkg-deb", "-f", str(plugin_deb), "Version"], check=True, capture_output=True,
                             text=True).stdout.strip()
    assert f"vpp-singbox-plugin (= {version})" in depends and "vpp-dev (= " in depends, depends
    plugin_files = subprocess.run(["dpkg-deb", "-c", str(plugin_deb)], check=True, capture_output=True,
                                  text=True).stdout
    assert "usr/include" not in plugin_files


def test_depends_on_the_exact_vpp_it_was_built_against(plugin_deb: Path) -> None:
    header = (_vpp_prefix() / "include/vpp/app/version.h").read_text()
    version = header.split('VPP_BUILD_VER "', 1)[1].split('"', 1)[0]
    fields = subprocess.run(["dpkg-deb", "-f", str(plugin_deb), "Depends", "Breaks"], check=True,
                            capture_output=True, text=True).stdout
    assert f"vpp (= {version})" in fields and f"vpp-plugin-core (= {version})" in fields, fields
    assert "vpp-plugin-singbox" in fields  # the old name is replaced


def test_vpp_loads_the_packaged_plugin(plugin_deb: Path, tmp_path: Path) -> None:
    root = tmp_path / "root"
    subprocess.run(["dpkg-deb", "-x", str(plugin_deb), str(root)], check=True)
    assert (root / "usr/lib/x86_64-linux-gnu/vpp_plugins/singbox_plugin.so").is_file()
    # the manual's install location (a link to the multiarch directory fd.io's VPP loads from): loaded from there
    plugins = root / "usr/lib/vpp_plugins"
    assert (plugins / "singbox_plugin.so").is_symlink() and (plugins / "singbox_plugin.so").is_file()
    assert (root / "usr/share/vpp/api/plugins/singbox.api.json").is_file()
    try:
        found = find_install({"VPP_PREFIX": str(_vpp_prefix()), "SINGBOX_PLUGIN_DIR": str(plugins)})
    except VppUnavailable as exc:
        pytest.skip(f"VPP is missing: {exc}")
    vpp = DevVpp(VppInstall(found.prefix, found.builtin_plugins, plugins), tmp_path / "vpp")
    vpp.start()
    try:
        shown = subprocess.run([*vpp.vppctl.split(), "show", "plugins"], capture_output=True, text=True,
                               env={**os.environ, "LD_LIBRARY_PATH": found.library_path}, timeout=30).stdout
    finally:
        vpp.stop()
    assert "singbox_plugin.so" in shown, shown

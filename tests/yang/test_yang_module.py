"""The modules themselves: both linters silent, every node described, the documented tree current."""

from __future__ import annotations

import shutil
import subprocess

import pytest
from _libyang import lib
from yangmodel import (
    MODULE_NAME,
    SYSREPO_YANG_DIR,
    YANG_DIR,
    OUR_DIRS,
    documented_tree,
    module_file,
    new_context,
    our_modules,
)


def run(args: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=YANG_DIR, capture_output=True, text=True, timeout=120)


def test_pyang_strict_lint_is_silent() -> None:
    """Every module of ours, also the management plane's (vpp-singbox-replay-store, -restconf-server)."""
    search = ":".join(str(d) for d in OUR_DIRS)
    result = run(["pyang", "--strict", "--lint", "-p", search, *map(str, our_modules())])
    assert result.returncode == 0 and result.stdout + result.stderr == "", result.stdout + result.stderr


def test_yanglint_is_silent() -> None:
    if shutil.which("yanglint") is None:
        pytest.skip("yanglint not found (libyang3-tools; run inside scripts/in-env)")
    search = [a for d in [*OUR_DIRS, SYSREPO_YANG_DIR] for a in ("-p", str(d))]
    result = run(["yanglint", *search, *map(str, our_modules())])
    assert result.returncode == 0 and result.stdout + result.stderr == "", result.stdout + result.stderr


def test_make_check_lints_every_module_of_ours() -> None:
    """`make -C yang check` (what `make test` runs) names the same modules: none of ours escapes the linters."""
    result = run(["make", "-s", "--no-print-directory", "modules"])
    assert result.returncode == 0, result.stderr
    listed = {(YANG_DIR / name).resolve() for name in result.stdout.split()}
    assert listed == {f.resolve() for f in our_modules()}
    assert {f.name.partition("@")[0] for f in listed} >= {
        "vpp-singbox", "vpp-singbox-replay-store", "vpp-singbox-restconf-server"}


def test_tree_diagram_in_readme_is_current() -> None:
    result = run(["pyang", "-f", "tree", "-p", ".", module_file().name])
    assert result.returncode == 0, result.stderr
    assert documented_tree(YANG_DIR / "README.md") == result.stdout.rstrip("\n"), (
        "yang/README.md's tree diagram is out of date: run 'make -C yang tree'"
    )


def test_one_revision_matching_the_file_name() -> None:
    ctx = new_context()
    module = ctx.get_module(MODULE_NAME)
    revisions = [r.date() for r in module.revisions()]
    assert revisions == sorted(revisions, reverse=True), "revisions must be newest first"
    assert module_file().name == f"{MODULE_NAME}@{revisions[0]}.yang"


def test_every_node_typedef_identity_and_feature_is_described() -> None:
    ctx = new_context()
    module = ctx.get_module(MODULE_NAME)
    undescribed = []
    for top in module.children():
        for node in top.iter_tree(full=True):
            # input/output and the implicit case of a shorthand choice branch cannot carry a description.
            if node.keyword() in ("input", "output") or node.nodetype() == lib.LYS_CASE:
                continue
            if not (node.description() or "").strip():
                undescribed.append(node.schema_path())
    undescribed += [f"typedef {t.name()}" for t in module.typedefs() if not (t.description() or "").strip()]
    undescribed += [f"identity {i.name()}" for i in module.identities() if not (i.description() or "").strip()]
    undescribed += [f"feature {f.name()}" for f in module.features() if not (f.description() or "").strip()]
    assert undescribed == []
    # The walk must have seen the whole module, or the assertion above proves nothing.
    paths = {n.schema_path() for top in module.children() for n in top.iter_tree(full=True)}
    assert "/vpp-singbox:singbox/sessions/session/state" in paths
    assert "/vpp-singbox:test-endpoint/output/result" in paths
    assert "/vpp-singbox:session-limit-reached/limit" in paths


def test_every_password_is_denied_by_default_to_non_admin_users() -> None:
    ctx = new_context()
    module = ctx.get_module(MODULE_NAME)
    passwords = [
        node for top in module.children() for node in top.iter_tree(full=True) if node.name() == "password"
    ]
    assert {p.schema_path() for p in passwords} == {
        "/vpp-singbox:singbox/client/endpoint/password",
        "/vpp-singbox:singbox/server/authentication/user/password",
    }
    for node in passwords:
        extensions = {(e.module().name(), e.name()) for e in node.extensions()}
        assert ("ietf-netconf-acm", "default-deny-all") in extensions, node.schema_path()

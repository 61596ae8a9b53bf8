"""The modules in a real sysrepo: installed, every valid configuration committed, every invalid one refused.

sysrepo validates with its own libyang context, so this is what a NETCONF edit-config or a RESTCONF PUT will meet.
Documents whose values do not even parse (a port of 0, an unknown enum) are refused by that context's parser before
sysrepo's validation; the rest must be refused by sysrepo's commit with the stated error at the stated node.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import libyang
import pytest
import sysrepo
from yangmodel import MODULE_NAME, VALID_DIR, InvalidExample, doc_format, invalid_examples

CONFIG_DOCS = sorted([*VALID_DIR.glob("config-*.xml"), *VALID_DIR.glob("config-*.json")])
INVALID_CONFIGS = [e for e in invalid_examples() if e.kind == "config"]


def parse_for_sysrepo(conn: sysrepo.SysrepoConnection, path: Path) -> libyang.DNode:
    """Parse only (types, no constraints) in sysrepo's context, leaving validation to sysrepo."""
    with conn.get_ly_ctx() as ctx:
        tree = ctx.parse_data_mem(path.read_text(), doc_format(path), no_state=True, strict=True, parse_only=True)
    assert tree is not None
    return tree


def printed(tree: libyang.DNode) -> str:
    return tree.print_mem("json", with_siblings=True, trim_default_values=True)


def test_installed_with_features(sysrepo_instance: object) -> None:
    with sysrepo.SysrepoConnection() as conn, conn.get_ly_ctx() as ctx:
        module = ctx.get_module(MODULE_NAME)
        assert module.implemented()
        assert module.feature_state("udp-associate")
        assert [r.date() for r in ctx.get_module("iana-crypt-hash").revisions()] == ["2014-08-06"]


@pytest.mark.parametrize("path", CONFIG_DOCS, ids=lambda p: p.name)
def test_valid_configuration_commits_and_reads_back(sysrepo_instance: object, path: Path) -> None:
    with sysrepo.SysrepoConnection() as conn, conn.start_session("running") as sess:
        expected = printed(parse_for_sysrepo(conn, path))
        sess.replace_config_ly(parse_for_sysrepo(conn, path), MODULE_NAME)
        with sess.get_data_ly(f"/{MODULE_NAME}:singbox") as stored:
            assert printed(stored) == expected


@pytest.mark.parametrize("example", INVALID_CONFIGS, ids=lambda e: e.name)
def test_invalid_configuration_is_refused_for_its_stated_reason(
    sysrepo_instance: object, example: InvalidExample
) -> None:
    if not example.features:
        # The fixture installs every feature; take them away the way an appliance without them would have it.
        subprocess.run(["sysrepoctl", "-c", MODULE_NAME, "-d", "*"], check=True, capture_output=True, text=True)
    with sysrepo.SysrepoConnection() as conn, conn.start_session("running") as sess:
        try:
            tree = parse_for_sysrepo(conn, example.document)
        except libyang.LibyangError as err:
            first = err.errors[0]
            assert example.message in (first.msg or ""), f"{example.reason}: refused for another reason: {err}"
            assert (first.data_path or first.schema_path) == example.path
            return
        with pytest.raises(sysrepo.SysrepoValidationFailedError) as raised:
            sess.replace_config_ly(tree, MODULE_NAME)
        message = str(raised.value)
        assert example.message in message, f"{example.reason}: refused for another reason: {message}"
        assert f'(path "{example.path}")' in message
        with sess.get_data_ly(f"/{MODULE_NAME}:singbox") as stored:
            assert "endpoint" not in printed(stored) and "listen" not in printed(stored), "refused edit left data"

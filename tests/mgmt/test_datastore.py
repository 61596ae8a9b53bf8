"""Subtree filter → XPath conversion (RFC 6241 section 6) and with-defaults printing, against a bare libyang context."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import libyang
import pytest

from singbox_agent.mgmt import datastore

TOP = Path(__file__).resolve().parents[2]
SBX = "urn:vpp-singbox:yang:vpp-singbox"


@pytest.fixture(scope="module")
def ctx() -> libyang.Context:
    c = libyang.Context(f"{TOP / 'yang'}:/usr/share/yang/modules/sysrepo:/usr/share/yang/modules/libyang")
    c.load_module("ietf-netconf-with-defaults")
    c.load_module("vpp-singbox").feature_enable_all()
    return c


def xpaths(ctx: libyang.Context, inner: str) -> list[str]:
    root = ET.fromstring(f'<filter xmlns="urn:ietf:params:xml:ns:netconf:base:1.0">{inner}</filter>')
    return datastore.subtree_to_xpaths(ctx, list(root))


@pytest.mark.parametrize(
    "inner, expected",
    [
        (f'<singbox xmlns="{SBX}"/>', ["/vpp-singbox:singbox"]),
        (f'<singbox xmlns="{SBX}"><client/></singbox>', ["/vpp-singbox:singbox/client"]),
        (f'<singbox xmlns="{SBX}"><client><endpoint><name>e1</name></endpoint></client></singbox>',
         ["/vpp-singbox:singbox/client/endpoint[name='e1']"]),
        (f'<singbox xmlns="{SBX}"><client><endpoint><name>e1</name><address/><port/></endpoint></client></singbox>',
         ["/vpp-singbox:singbox/client/endpoint[name='e1']/name",
          "/vpp-singbox:singbox/client/endpoint[name='e1']/address",
          "/vpp-singbox:singbox/client/endpoint[name='e1']/port"]),
        (f'<singbox xmlns="{SBX}"><client><endpoint><name>it\'s</name></endpoint></client></singbox>',
         ["/vpp-singbox:singbox/client/endpoint[name=\"it's\"]"]),
        (f'<singbox xmlns="{SBX}"><log-level/><server/></singbox>',
         ["/vpp-singbox:singbox/log-level", "/vpp-singbox:singbox/server"]),
        (f'<singbox xmlns="{SBX}"/><other xmlns="urn:unknown"/>', ["/vpp-singbox:singbox"]),
        ('<other xmlns="urn:unknown"/>', []),
        ("", []),
    ],
)
def test_subtree_to_xpaths(ctx: libyang.Context, inner: str, expected: list[str]) -> None:
    assert xpaths(ctx, inner) == expected


def test_subtree_content_match_with_both_quotes(ctx: libyang.Context) -> None:
    """A content match holding both quote kinds becomes concat() in the filter's XPath (mgmt.xpath.quote)."""
    import xml.etree.ElementTree as ET

    el = ET.fromstring(f'<singbox xmlns="{SBX}"><client><endpoint><name>a\'b"c</name></endpoint></client></singbox>')
    (path,) = datastore.subtree_to_xpaths(ctx, [el])
    assert "[name=concat('a', \"'\", 'b\"c')]" in path, path


def test_with_defaults_printing(ctx: libyang.Context) -> None:
    tree = ctx.parse_data_mem(
        f'<singbox xmlns="{SBX}"><client><endpoint><name>e</name><address>198.18.0.1</address><port>1080</port>'
        "</endpoint></client></singbox>", "xml", strict=True, no_state=True)
    assert tree is not None
    try:
        explicit = datastore.print_xml(tree)
        assert "<port>1080</port>" in explicit and "connect-timeout" not in explicit
        assert "<port>1080</port>" not in datastore.print_xml(tree, "trim")
        assert "connect-timeout" in datastore.print_xml(tree, "report-all")
        tagged = datastore.print_xml(tree, "report-all-tagged")
        assert 'xmlns:ncwd="urn:ietf:params:xml:ns:netconf:default:1.0"' in tagged
        assert 'ncwd:default="true"' in tagged
        assert datastore.print_xml(None) == ""
    finally:
        tree.free()
    with pytest.raises(Exception):
        datastore.check_with_defaults("all")


def test_repeated_content_matches_are_kept_once(ctx: libyang.Context) -> None:
    """3,000 identical content matches beside a selection node made 3,001 paths of 3,000 predicates each."""
    inner = f'<singbox xmlns="{SBX}"><client><endpoint>{"<name>a</name>" * 3000}<address/></endpoint></client></singbox>'
    assert xpaths(ctx, inner) == ["/vpp-singbox:singbox/client/endpoint[name='a']/name",
                                  "/vpp-singbox:singbox/client/endpoint[name='a']/address"]


def test_scrub_removes_sysrepo_internals() -> None:
    message = ("Locking a rwlock failed (sr_shmmod_lock: Connection timed out), read lock held by running process 6 "
               "(CID 5).")
    cleaned = datastore.scrub(message)
    assert "process" not in cleaned and "CID" not in cleaned and "sr_shmmod" not in cleaned, cleaned
    assert datastore.scrub('Value "x" does not satisfy the constraint.') == 'Value "x" does not satisfy the constraint.'


@pytest.mark.parametrize(
    "xpath, needs",
    [
        ("/vpp-singbox:singbox/client/endpoint/name", False),
        ("/vpp-singbox:singbox/client/endpoint/password", False),
        ("//vpp-singbox:password", False),
        ("/vpp-singbox:singbox/client/endpoint[name='x']", True),
        ("/vpp-singbox:singbox/client/endpoint[starts-with(password,'a')]/name", True),
        ("/vpp-singbox:singbox/client/endpoint/password/..", True),
        ("/vpp-singbox:singbox/client/endpoint/password/parent::*", True),
        ("count(/vpp-singbox:singbox/client/endpoint)", True),
        ("/vpp-singbox:singbox/log-level | /vpp-singbox:singbox/client", False),
    ],
)
def test_which_filters_are_evaluated_on_pruned_data(xpath: str, needs: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    from singbox_agent.mgmt import filtered_read

    monkeypatch.setattr(filtered_read, "restricted", lambda sess: True)
    assert filtered_read.needs_pruned_evaluation(object(), xpath) is needs
    monkeypatch.setattr(filtered_read, "restricted", lambda sess: False)
    assert filtered_read.needs_pruned_evaluation(object(), xpath) is False


def test_scope_reads_the_modules_a_filter_names_or_everything(ctx: libyang.Context) -> None:
    from singbox_agent.mgmt import filtered_read

    assert filtered_read.scope(ctx, "/vpp-singbox:singbox/client/endpoint[starts-with(password,'a')]") == \
        "/vpp-singbox:singbox"
    for wandering in ("//vpp-singbox:password/..", "/vpp-singbox:singbox/../*", "/*[1]",
                      "/vpp-singbox:singbox/client/endpoint[deref(x)]", "/vpp-singbox:singbox/ancestor::*"):
        assert filtered_read.scope(ctx, wandering) == "/*", wandering


def test_nacm_policy_reads_what_decides_for_each_user(sysrepo_instance: object) -> None:
    """NacmPolicy answers from targeted reads exactly what the RFC 8341 rule order over the whole
    configuration gives (`nacm.unrestricted`), names with quotes included."""
    import sysrepo

    from singbox_agent.mgmt import nacm
    from singbox_agent.mgmt.bootstrap import bootstrap_admin

    users = ["admin", "bob", "carol", "o'neil", 'say "hi"', "nobody"]
    with sysrepo.SysrepoConnection() as conn:
        bootstrap_admin(conn, "admin", "pw")
        sess = conn.start_session("running")
        base = "/ietf-netconf-acm:nacm"
        sess.set_item(f"{base}/groups/group[name='ops']/user-name", "bob")
        sess.set_item(f"{base}/groups/group[name='ops']/user-name", "o'neil")
        sess.set_item(f"{base}/groups/group[name='all']/user-name", "carol")
        sess.set_item(f"{base}/groups/group[name='all']/user-name", 'say "hi"')
        sess.set_item(f"{base}/rule-list[name='empty']/group", "ops")  # no rule: skipped
        sess.set_item(f"{base}/rule-list[name='ops-all']/group", "ops")
        sess.set_item(f"{base}/rule-list[name='ops-all']/rule[name='any']/module-name", "*")
        sess.set_item(f"{base}/rule-list[name='ops-all']/rule[name='any']/access-operations", "*")
        sess.set_item(f"{base}/rule-list[name='ops-all']/rule[name='any']/action", "permit")
        sess.set_item(f"{base}/rule-list[name='all-read']/group", "all")
        sess.set_item(f"{base}/rule-list[name='all-read']/rule[name='r']/module-name", "*")
        sess.set_item(f"{base}/rule-list[name='all-read']/rule[name='r']/access-operations", "read")
        sess.set_item(f"{base}/rule-list[name='all-read']/rule[name='r']/action", "permit")
        sess.apply_changes()
        whole = dict(sess.get_data(base))
        policy = nacm.NacmPolicy(conn)
        try:
            for user in users:
                assert policy.unrestricted(user) == nacm.unrestricted(whole, user), user
                assert bool(nacm.groups_of(policy.config(user), user)) == bool(nacm.groups_of(whole, user)), user
            assert policy.identity("admin") is None and policy.identity("bob") == "bob"
            assert policy.identity("carol") == "carol" and policy.identity("nobody") == nacm.UNGROUPED_USER
            # ops' rule-list moved first: its permit-all rule now decides for bob and o'neil
            generation = policy.generation
            reordered = dict(sess.get_data(base))
            lists = list(reordered["nacm"]["rule-list"])
            lists.sort(key=lambda rl: rl["name"] != "ops-all")
            reordered["nacm"]["rule-list"] = lists
            sess.replace_config(reordered, "ietf-netconf-acm")
            assert policy.generation > generation
            whole = dict(sess.get_data(base))
            for user in users:
                assert policy.unrestricted(user) == nacm.unrestricted(whole, user), user
            assert policy.identity("bob") is None and policy.identity("o'neil") is None
            # membership follows each change (the index re-reads the groups a change touched)
            sess.delete_item(f"{base}/groups/group[name='ops']/user-name[.='bob']")
            sess.apply_changes()
            assert policy.identity("bob") == nacm.UNGROUPED_USER and policy.identity("o'neil") is None
            sess.set_item(f"{base}/groups/group[name='new']/user-name", "bob")
            sess.apply_changes()
            assert policy.identity("bob") == "bob"
            sess.delete_item(f"{base}/groups/group[name='new']")
            sess.delete_item(f"{base}/groups/group[name='ops']")
            sess.apply_changes()
            assert policy.identity("bob") == nacm.UNGROUPED_USER == policy.identity("o'neil")
            # one change touching more groups than are followed one by one, and the rule-lists: the whole index and
            # the rules are read again (u150's group gets a permit-all rule-list put first)
            config = dict(sess.get_data(base))
            config["nacm"]["groups"] = {"group": [{"name": f"g{i:03d}", "user-name": [f"u{i:03d}"]}
                                                  for i in range(300)] + [{"name": "gb", "user-name": ["bob"]}]}
            config["nacm"]["rule-list"] = [{"name": "big", "group": ["g150"], "rule": [
                {"name": "any", "module-name": "*", "access-operations": "*", "action": "permit"}]},
                *config["nacm"]["rule-list"]]
            assert policy.identity("u150") == nacm.UNGROUPED_USER
            sess.replace_config(config, "ietf-netconf-acm")
            assert policy.identity("bob") == "bob" and policy.identity("u150") is None
            sess.delete_item(f"{base}/groups")
            sess.apply_changes()
            assert policy.identity("admin") == nacm.UNGROUPED_USER == policy.identity("bob")
        finally:
            policy.close()
            sess.stop()

"""An edit-config of at least `datastore.BULK_NODES` nodes to running is written through a second connection of the
server without the running cache (mgmt/datastore.apply_bulk), with the session's identity: the same changed-by,
the same NACM user, and through the session itself while it holds the <lock>."""

from __future__ import annotations

import re
import time
from pathlib import Path

import libyang
import pytest
import sysrepo
from ncclient.operations.rpc import RPCError

from singbox_agent.mgmt import datastore
from singbox_agent.repository import SysrepoInstance
from tests.netconf.conftest import ADMIN, ADMIN_PASSWORD, SBX_NS, ServerInfo
from tests.netconf.helpers import cfg, endpoints, error_tag
from tests.netconf.rawclient import RawClient, errors_of
from tests.netconf.test_config_change import NCN, NOTIF, changed_by, next_config_change

# each endpoint is three nodes (entry, name, address): this many make a bulk edit
BULK_ENTRIES = datastore.BULK_NODES // 3 + 1


def many_endpoints(prefix: str, n: int = BULK_ENTRIES) -> str:
    return "<client>" + "".join(f"<endpoint><name>{prefix}{i:04d}</name><address>198.18.1.{i % 250 + 1}</address>"
                                "</endpoint>" for i in range(n)) + "</client>"


def connections_of(pid: int) -> int:
    """The sysrepo connections process `pid` holds (sysrepo-monitoring)."""
    with sysrepo.SysrepoConnection() as conn:
        sess = conn.start_session("operational")
        data = sess.get_data("/sysrepo-monitoring:sysrepo-state/connection")
    return sum(1 for c in data.get("sysrepo-state", {}).get("connection", []) if c.get("pid") == pid)


SMALL = cfg("<client><endpoint><name>small</name><address>198.18.0.1</address></endpoint></client>")


def test_large_edit_goes_through_a_connection_without_the_cache(netconf_server: ServerInfo) -> None:
    pid = netconf_server.process.pid
    with netconf_server.connect() as m:
        before = connections_of(pid)
        m.edit_config(target="running", config=cfg(many_endpoints("b")))
        # fails before apply_bulk: the server wrote everything through its one connection
        assert connections_of(pid) == before + 1
        m.edit_config(target="running", config=cfg(many_endpoints("c")))
        m.edit_config(target="running", config=SMALL)
        assert connections_of(pid) == before + 1  # one for the process, not one per edit
    names = endpoints()
    assert len(names) == 1 + 2 * BULK_ENTRIES and "b0000" in names and "small" in names


def test_a_small_edit_opens_the_bulk_connection(netconf_server: ServerInfo) -> None:
    """A write to running opens, in the background, the connection large edits go through: the first large edit
    does not open it in its own time (a sysrepo connect, up to a second on a loaded box)."""
    pid = netconf_server.process.pid
    with netconf_server.connect() as m:
        before = connections_of(pid)
        m.edit_config(target="running", config=SMALL)
        deadline = time.monotonic() + 60
        while connections_of(pid) == before and time.monotonic() < deadline:  # the old code never opens it here
            time.sleep(0.05)
        assert connections_of(pid) == before + 1
        m.edit_config(target="running", config=cfg(many_endpoints("b")))
        assert connections_of(pid) == before + 1  # the one opened before
    assert len(endpoints()) == 1 + BULK_ENTRIES


async def test_large_edit_names_user_and_session(netconf_server: ServerInfo) -> None:
    watcher = await RawClient.connect(netconf_server.host, netconf_server.port, ADMIN, ADMIN_PASSWORD)
    reply = await watcher.rpc(f'<create-subscription xmlns="{NOTIF}"><filter type="subtree">'
                              f'<netconf-config-change xmlns="{NCN}"/></filter></create-subscription>')
    assert not errors_of(reply)
    editor = await RawClient.connect(netconf_server.host, netconf_server.port, ADMIN, ADMIN_PASSWORD)
    reply = await editor.rpc(f'<edit-config><target><running/></target><config><singbox xmlns="{SBX_NS}">'
                             f"{many_endpoints('n')}</singbox></config></edit-config>")
    assert not errors_of(reply)
    assert changed_by(await next_config_change(watcher)) == (ADMIN, str(editor.session_id))
    await editor.close()
    await watcher.close()


def test_large_edit_obeys_nacm(netconf_server: ServerInfo) -> None:
    from singbox_agent.mgmt.users import hash_password

    with sysrepo.SysrepoConnection() as conn:
        sess = conn.start_session("running")
        sess.set_item("/ietf-system:system/authentication/user[name='oper']/password", hash_password("oper-pw"))
        sess.set_item("/ietf-netconf-acm:nacm/groups/group[name='operators']/user-name", "oper")
        sess.set_item("/ietf-netconf-acm:nacm/rule-list[name='operators']/group", "operators")
        base = "/ietf-netconf-acm:nacm/rule-list[name='operators']/rule[name='no-endpoints']"
        sess.set_item(base + "/module-name", "vpp-singbox")
        sess.set_item(base + "/path", "/vpp-singbox:singbox/client/endpoint")
        sess.set_item(base + "/access-operations", "create")
        sess.set_item(base + "/action", "deny")
        sess.apply_changes()
    with netconf_server.connect(user="oper", password="oper-pw") as oper:
        with pytest.raises(RPCError) as exc:
            oper.edit_config(target="running", config=cfg(many_endpoints("d")))
        assert error_tag(exc.value) == "access-denied"
    assert not any(re.fullmatch(r"d\d{4}", name) for name in endpoints())


def test_large_edit_while_holding_the_lock(netconf_server: ServerInfo) -> None:
    with netconf_server.connect() as m:
        m.lock("running")
        try:
            # through another sysrepo session the write would meet this session's sysrepo lock (in-use)
            m.edit_config(target="running", config=cfg(many_endpoints("l")))
        finally:
            m.unlock("running")
    assert sum(1 for name in endpoints() if name.startswith("l")) == BULK_ENTRIES


def test_bulk_threshold_counts_nodes(sysrepo_instance: SysrepoInstance, tmp_path: Path) -> None:
    with sysrepo.SysrepoConnection() as conn, conn.get_ly_ctx() as ly:
        def tree(n: int) -> str:
            return f'<singbox xmlns="{SBX_NS}">{many_endpoints("t", n)}</singbox>'

        small = ly.parse_data_mem(tree(10), "xml", no_state=True, parse_only=True)
        large = ly.parse_data_mem(tree(BULK_ENTRIES), "xml", no_state=True, parse_only=True)
        try:
            assert not datastore.is_bulk(small)
            assert datastore.is_bulk(large)
        finally:
            small.free()
            large.free()


def test_bulk_edit_is_copied_not_reparsed(sysrepo_instance: SysrepoInstance, monkeypatch: pytest.MonkeyPatch
                                          ) -> None:
    """The edit reaches the bulk connection's context as a copy (lyd_dup_siblings_to_ctx): printing and parsing it
    again cost 4x the copy at 10,000 entries (bench/netconf/README.md, session 11). Its opaque nodes come along: the
    emptied leaf of a removal, and the sibling after the first top node."""
    entries = many_endpoints("c").removesuffix("</client>")
    edit_xml = (f'<singbox xmlns="{SBX_NS}" xmlns:nc="urn:ietf:params:xml:ns:netconf:base:1.0">{entries}'
                '<endpoint nc:operation="remove"><name>never</name><port/></endpoint></client></singbox>')
    with sysrepo.SysrepoConnection(cache_running=True) as conn, conn.start_session("running") as sess:
        ly = sess.acquire_context()
        tree = ly.parse_data_mem(edit_xml, "xml", no_state=True, parse_only=True, opaq=True)
        try:
            assert datastore.is_bulk(tree)

            def reparsed(*_: object, **__: object) -> None:
                raise AssertionError("the bulk edit was printed and parsed again")

            with monkeypatch.context() as m:
                m.setattr(libyang.DNode, "print_mem", reparsed)
                m.setattr(libyang.Context, "parse_data_mem", reparsed)
                datastore.apply_bulk(sess, tree, "merge", ("admin", 7))
            assert tree.print_mem("xml", with_siblings=True).count("<endpoint>") == BULK_ENTRIES  # still the caller's
        finally:
            tree.free()
            sess.release_context()
        stored = sess.get_data("/vpp-singbox:singbox/client/endpoint")
        names = [e["name"] for e in stored["singbox"]["client"]["endpoint"]]
        assert sorted(names) == sorted(f"c{i:04d}" for i in range(BULK_ENTRIES))
    datastore.close_bulk()

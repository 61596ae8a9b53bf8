"""Every NETCONF operation and capability through ncclient against the real server and a real sysrepo."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
import sysrepo
from lxml import etree
from ncclient.operations.rpc import RPCError

from tests.netconf.conftest import SBX_NS, ServerInfo

NC = "urn:ietf:params:xml:ns:netconf:base:1.0"
NMDA = "urn:ietf:params:xml:ns:yang:ietf-netconf-nmda"


def cfg(inner: str) -> str:
    return f'<config xmlns="{NC}"><singbox xmlns="{SBX_NS}" xmlns:nc="{NC}">{inner}</singbox></config>'


def endpoint(name: str, extra: str = "", op: str = "") -> str:
    attr = f' nc:operation="{op}"' if op else ""
    return f"<client><endpoint{attr}><name>{name}</name><address>198.18.0.1</address>{extra}</endpoint></client>"


def running(xpath: str = "/vpp-singbox:singbox") -> dict[str, Any]:
    with sysrepo.SysrepoConnection() as conn:
        sess = conn.start_session("running")
        try:
            return dict(sess.get_data(xpath))
        except sysrepo.SysrepoNotFoundError:
            return {}


def endpoints() -> list[str]:
    data = running()
    return sorted(e["name"] for e in data.get("singbox", {}).get("client", {}).get("endpoint", []))


def sbx_filter(inner: str = "") -> tuple[str, str]:
    return ("subtree", f'<singbox xmlns="{SBX_NS}">{inner}</singbox>')


def error_tag(exc: RPCError) -> str:
    return str(exc.tag)


def test_hello_capabilities(netconf_server: ServerInfo) -> None:
    with netconf_server.connect() as m:
        caps = list(m.server_capabilities)
        assert int(m.session_id) >= 1
        for cap in (":base:1.1", ":candidate:1.0", ":confirmed-commit:1.1", ":validate:1.1", ":startup:1.0",
                    ":writable-running:1.0", ":rollback-on-error:1.0", ":xpath:1.0", ":notification:1.0",
                    ":interleave:1.0", "with-defaults:1.0?basic-mode=explicit"):
            assert any(cap in c for c in caps), cap
        sbx = [c for c in caps if c.startswith(SBX_NS + "?")]
        from pathlib import Path

        revision = next((Path(__file__).parents[2] / "yang").glob("vpp-singbox@*.yang")).stem.partition("@")[2]
        assert sbx and "module=vpp-singbox" in sbx[0] and f"revision={revision}" in sbx[0]
        assert "features=udp-associate" in sbx[0]
        assert any("yang-library:1.1?revision=2019-01-04&content-id=" in c for c in caps)
        ncap = [c for c in caps if "module=ietf-netconf&" in c][0]
        assert "candidate" in ncap and "confirmed-commit" in ncap


def test_edit_config_operations(netconf_server: ServerInfo) -> None:
    with netconf_server.connect() as m:
        m.edit_config(target="running", config=cfg(endpoint("e1") + "<log-level>debug</log-level>"))
        assert endpoints() == ["e1"]
        # create on existing -> data-exists, nothing changed
        with pytest.raises(RPCError) as exc:
            m.edit_config(target="running", config=cfg(endpoint("e1", op="create")))
        assert error_tag(exc.value) == "data-exists"
        m.edit_config(target="running", config=cfg(endpoint("e2", op="create")))
        assert endpoints() == ["e1", "e2"]
        # delete missing -> data-missing; remove missing -> ok
        with pytest.raises(RPCError) as exc:
            m.edit_config(target="running", config=cfg(endpoint("e9", op="delete")))
        assert error_tag(exc.value) == "data-missing"
        m.edit_config(target="running", config=cfg(endpoint("e9", op="remove")))
        m.edit_config(target="running", config=cfg(endpoint("e2", op="delete")))
        assert endpoints() == ["e1"]
        # replace on a list entry drops leaves not given
        m.edit_config(target="running", config=cfg(endpoint("e1", "<port>1081</port>")))
        m.edit_config(target="running", config=cfg(
            '<client><endpoint nc:operation="replace"><name>e1</name><address>198.18.0.2</address></endpoint></client>'))
        ep = running()["singbox"]["client"]["endpoint"]
        (e1,) = list(ep)
        assert e1["address"] == "198.18.0.2" and e1.get("port", 1080) == 1080
        # default-operation none: only explicit operations act
        m.edit_config(target="running", default_operation="none", config=cfg(
            '<log-level>error</log-level>' + endpoint("e3", op="create")))
        assert endpoints() == ["e1", "e3"]
        assert running()["singbox"]["log-level"] == "debug"
        # default-operation replace on the module replaces its whole tree
        m.edit_config(target="running", default_operation="replace", config=cfg(endpoint("e4")))
        assert endpoints() == ["e4"]
        assert "log-level" not in running()["singbox"] or running()["singbox"]["log-level"] == "info"


def test_test_option_and_error_option(netconf_server: ServerInfo) -> None:
    with netconf_server.connect() as m:
        m.edit_config(target="running", config=cfg(endpoint("e1")))
        m.edit_config(target="running", test_option="test-only", config=cfg(endpoint("t1")))
        assert endpoints() == ["e1"]
        m.edit_config(target="running", test_option="set", config=cfg(endpoint("t2")))
        assert endpoints() == ["e1", "t2"]
        # test-only reports validation errors too
        with pytest.raises(RPCError) as exc:
            m.edit_config(target="running", test_option="test-only",
                          config=cfg("<client><default-endpoint>nope</default-endpoint></client>"))
        assert error_tag(exc.value) == "data-missing"
        # rollback-on-error: one bad entry leaves nothing of the good ones
        for option in ("rollback-on-error", "stop-on-error", "continue-on-error"):
            with pytest.raises(RPCError):
                m.edit_config(target="running", error_option=option, config=cfg(
                    endpoint("ok1") + "<client><endpoint><name>bad</name><address>198.18.0.1</address>"
                    "<port>0</port></endpoint></client>"))
            assert endpoints() == ["e1", "t2"]


def test_get_config_filters_and_with_defaults(netconf_server: ServerInfo) -> None:
    with netconf_server.connect() as m:
        m.edit_config(target="running", config=cfg(endpoint("e1", "<port>1080</port>") + endpoint("e2")))
        # subtree: content match selects one entry; selection node picks a leaf
        data = m.get_config("running", filter=sbx_filter("<client><endpoint><name>e2</name></endpoint></client>"))
        xml = data.data_xml
        assert "<name>e2</name>" in xml and "<name>e1</name>" not in xml
        data = m.get_config("running", filter=sbx_filter("<client><endpoint><name>e1</name><address/></endpoint>"
                                                         "</client>"))
        assert "<address>198.18.0.1</address>" in data.data_xml
        # xpath filter with a namespace prefix declared in the message
        reply = m.dispatch(etree.fromstring(
            f'<get-config xmlns="{NC}"><source><running/></source><filter xmlns:s="{SBX_NS}" type="xpath" '
            f'select="/s:singbox/s:client/s:endpoint[s:name=\'e1\']"/></get-config>'))
        assert "<name>e1</name>" in reply.xml and "<name>e2</name>" not in reply.xml
        # with-defaults: e1's port was set explicitly (=default), e2's is a default
        explicit = m.get_config("running", filter=sbx_filter()).data_xml
        assert explicit.count("<port>1080</port>") == 1
        all_ = m.get_config("running", filter=sbx_filter(), with_defaults="report-all").data_xml
        assert all_.count("<port>1080</port>") == 2
        trim = m.get_config("running", filter=sbx_filter(), with_defaults="trim").data_xml
        assert "<port>1080</port>" not in trim
        tagged = m.get_config("running", filter=sbx_filter(), with_defaults="report-all-tagged").data_xml
        assert 'default="true"' in tagged and "urn:ietf:params:xml:ns:netconf:default:1.0" in tagged
        # empty filter selects nothing; unknown namespace selects nothing
        empty = m.dispatch(etree.fromstring(f'<get-config xmlns="{NC}"><source><running/></source>'
                                            '<filter type="subtree"/></get-config>'))
        assert "endpoint" not in empty.xml
        assert "endpoint" not in m.get_config("running", filter=("subtree", '<x xmlns="urn:nothing"/>')).data_xml


def test_candidate_lock_commit_discard(netconf_server: ServerInfo) -> None:
    with netconf_server.connect() as a, netconf_server.connect() as b:
        a.lock("candidate")
        with pytest.raises(RPCError) as exc:
            b.lock("candidate")
        assert error_tag(exc.value) == "lock-denied"
        assert exc.value.info and str(a.session_id) in exc.value.info
        with pytest.raises(RPCError) as exc:
            b.edit_config(target="candidate", config=cfg(endpoint("b1")))
        assert error_tag(exc.value) == "in-use"
        a.edit_config(target="candidate", config=cfg(endpoint("c1")))
        assert endpoints() == []
        a.commit()
        assert endpoints() == ["c1"]
        a.edit_config(target="candidate", config=cfg(endpoint("c2")))
        a.discard_changes()
        assert "c2" not in a.get_config("candidate", filter=sbx_filter()).data_xml
        a.edit_config(target="candidate", config=cfg(endpoint("c3")))
        with pytest.raises(RPCError) as exc:
            b.unlock("candidate")
        assert error_tag(exc.value) == "operation-failed"
        a.unlock("candidate")  # outstanding changes are discarded with the lock
        assert "c3" not in b.get_config("candidate", filter=sbx_filter()).data_xml
        # an unlocked candidate modified by one session cannot be locked by another
        b.edit_config(target="candidate", config=cfg(endpoint("c4")))
        with pytest.raises(RPCError) as exc:
            a.lock("candidate")
        assert error_tag(exc.value) == "lock-denied"
        b.commit()
        a.lock("candidate")
        a.unlock("candidate")
        assert endpoints() == ["c1", "c4"]


def test_running_lock_blocks_other_writers_and_kill_releases(netconf_server: ServerInfo) -> None:
    a = netconf_server.connect()
    with netconf_server.connect() as b:
        a.lock("running")
        with pytest.raises(RPCError) as exc:
            b.edit_config(target="running", config=cfg(endpoint("x")))
        assert error_tag(exc.value) == "in-use"
        with pytest.raises(RPCError) as exc:
            b.kill_session(b.session_id)
        assert error_tag(exc.value) == "invalid-value"
        b.kill_session(a.session_id)
        b.lock("running")  # the victim's lock is gone
        b.edit_config(target="running", config=cfg(endpoint("x")))
        b.unlock("running")
        assert endpoints() == ["x"]
    deadline = time.monotonic() + 5
    while a.connected and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not a.connected


def test_close_session_releases_locks(netconf_server: ServerInfo) -> None:
    a = netconf_server.connect()
    a.lock("startup")
    a.close_session()
    with netconf_server.connect() as b:
        b.lock("startup")
        b.unlock("startup")


def test_confirmed_commit_timeout_rolls_back(netconf_server: ServerInfo) -> None:
    with netconf_server.connect() as m:
        m.edit_config(target="running", config=cfg(endpoint("keep")))
        m.edit_config(target="candidate", config=cfg(endpoint("temp")))
        m.commit(confirmed=True, timeout="1")
        assert endpoints() == ["keep", "temp"]
        deadline = time.monotonic() + 10
        while endpoints() != ["keep"] and time.monotonic() < deadline:
            time.sleep(0.1)
        assert endpoints() == ["keep"]
        # the rollback happens even while the issuing session holds running and candidate locked
        m.lock("running")
        m.lock("candidate")
        m.edit_config(target="candidate", config=cfg(endpoint("locked-temp")))
        m.commit(confirmed=True, timeout="1")
        assert "locked-temp" in endpoints()
        deadline = time.monotonic() + 10
        while endpoints() != ["keep"] and time.monotonic() < deadline:
            time.sleep(0.1)
        assert endpoints() == ["keep"]
        assert "locked-temp" not in m.get_config("candidate", filter=sbx_filter()).data_xml
        m.unlock("candidate")
        m.unlock("running")
        # confirmed then confirming commit keeps the change
        m.edit_config(target="candidate", config=cfg(endpoint("stay")))
        m.commit(confirmed=True, timeout="2")
        m.commit()
        time.sleep(2.5)
        assert endpoints() == ["keep", "stay"]
        # cancel-commit restores at once
        m.edit_config(target="candidate", config=cfg(endpoint("gone")))
        m.commit(confirmed=True, timeout="60")
        assert "gone" in endpoints()
        m.cancel_commit()
        assert endpoints() == ["keep", "stay"]
        with pytest.raises(RPCError):
            m.cancel_commit()


def test_confirmed_commit_persist_survives_session(netconf_server: ServerInfo) -> None:
    with netconf_server.connect() as m:
        m.edit_config(target="candidate", config=cfg(endpoint("p1")))
        m.commit(confirmed=True, timeout="60", persist="token-1")
    with netconf_server.connect() as m:
        assert endpoints() == ["p1"]
        with pytest.raises(RPCError):
            m.commit(persist_id="wrong")
        m.commit(persist_id="token-1")
    with netconf_server.connect() as m:
        m.edit_config(target="candidate", config=cfg(endpoint("p2")))
        m.commit(confirmed=True, timeout="60")
    # the issuing session ended without persist: rolled back
    assert endpoints() == ["p1"]


def test_copy_delete_validate(netconf_server: ServerInfo) -> None:
    with netconf_server.connect() as m:
        m.edit_config(target="running", config=cfg(endpoint("s1")))
        m.copy_config(source="running", target="startup")
        assert "s1" in m.get_config("startup", filter=sbx_filter()).data_xml
        m.delete_config(target="startup")
        assert "s1" not in m.get_config("startup", filter=sbx_filter()).data_xml
        with pytest.raises(RPCError) as exc:
            m.delete_config(target="running")  # not even in ietf-netconf's schema for delete-config
        assert error_tag(exc.value) in ("operation-failed", "unknown-element")
        with pytest.raises(RPCError) as exc:
            m.copy_config(source="running", target="running")
        assert error_tag(exc.value) == "invalid-value"
        m.validate(source="running")
        m.validate(source=etree.fromstring(cfg(endpoint("v1"))))
        with pytest.raises(RPCError) as exc:
            m.validate(source=etree.fromstring(cfg("<client><default-endpoint>nope</default-endpoint></client>")))
        assert error_tag(exc.value) == "data-missing"
        m.copy_config(source="running", target="candidate")
        m.discard_changes()


def test_get_schema_monitoring_yang_library(netconf_server: ServerInfo) -> None:
    with netconf_server.connect() as m, netconf_server.connect() as other:
        text = m.get_schema("vpp-singbox").data
        assert text.startswith("module vpp-singbox {")
        yin = m.dispatch(etree.fromstring(
            '<get-schema xmlns="urn:ietf:params:xml:ns:yang:ietf-netconf-monitoring"><identifier>vpp-singbox'
            "</identifier><format>yin</format></get-schema>"))
        assert 'module name="vpp-singbox"' in yin.xml
        with pytest.raises(RPCError) as exc:
            m.get_schema("no-such-module")
        assert error_tag(exc.value) == "invalid-value"
        state = m.get(filter=("subtree", '<netconf-state xmlns="urn:ietf:params:xml:ns:yang:ietf-netconf-monitoring"/>'))
        xml = state.data_xml
        assert f"<session-id>{other.session_id}</session-id>" in xml
        assert "<identifier>vpp-singbox</identifier>" in xml and "<in-rpcs>" in xml
        lib = m.get(filter=("subtree", '<yang-library xmlns="urn:ietf:params:xml:ns:yang:ietf-yang-library"/>'))
        assert "<name>vpp-singbox</name>" in lib.data_xml


def test_nmda_get_data_edit_data(netconf_server: ServerInfo) -> None:
    with netconf_server.connect() as m:
        m.dispatch(etree.fromstring(
            f'<edit-data xmlns="{NMDA}" xmlns:ds="urn:ietf:params:xml:ns:yang:ietf-datastores">'
            f'<datastore>ds:candidate</datastore><config><singbox xmlns="{SBX_NS}">{endpoint("n1")}</singbox>'
            "</config></edit-data>"))
        reply = m.dispatch(etree.fromstring(
            f'<get-data xmlns="{NMDA}" xmlns:ds="urn:ietf:params:xml:ns:yang:ietf-datastores">'
            f'<datastore>ds:candidate</datastore><subtree-filter><singbox xmlns="{SBX_NS}"/></subtree-filter>'
            "</get-data>"))
        assert "<name>n1</name>" in reply.xml
        assert endpoints() == []
        m.commit()
        reply = m.dispatch(etree.fromstring(
            f'<get-data xmlns="{NMDA}" xmlns:ds="urn:ietf:params:xml:ns:yang:ietf-datastores">'
            f'<datastore>ds:running</datastore><xpath-filter xmlns:s="{SBX_NS}">/s:singbox/s:client</xpath-filter>'
            "<with-defaults>report-all</with-defaults></get-data>"))
        assert "<name>n1</name>" in reply.xml and "<port>1080</port>" in reply.xml
        reply = m.dispatch(etree.fromstring(
            f'<get-data xmlns="{NMDA}" xmlns:ds="urn:ietf:params:xml:ns:yang:ietf-datastores">'
            "<datastore>ds:operational</datastore><subtree-filter><netconf-state "
            'xmlns="urn:ietf:params:xml:ns:yang:ietf-netconf-monitoring"><sessions/></netconf-state>'
            "</subtree-filter></get-data>"))
        assert "<session-id>" in reply.xml
        with pytest.raises(RPCError):
            m.dispatch(etree.fromstring(
                f'<edit-data xmlns="{NMDA}" xmlns:ds="urn:ietf:params:xml:ns:yang:ietf-datastores">'
                f'<datastore>ds:operational</datastore><config/></edit-data>'))


def test_agent_rejection_message_reaches_client(netconf_server: ServerInfo) -> None:
    def reject(event: str, req_id: int, changes: Any, private_data: Any) -> None:
        if event == "change":
            raise sysrepo.SysrepoValidationFailedError("endpoint e-bad: VPP refused the upstream (address in use)")

    with sysrepo.SysrepoConnection() as conn:
        sess = conn.start_session("running")
        sess.subscribe_module_change("vpp-singbox", "/vpp-singbox:singbox", reject)
        with netconf_server.connect() as m:
            with pytest.raises(RPCError) as exc:
                m.edit_config(target="running", config=cfg(endpoint("e-bad")))
            assert "VPP refused the upstream (address in use)" in str(exc.value.message)
            assert error_tag(exc.value) == "operation-failed"
        sess.stop()
    assert endpoints() == []


def test_notifications_with_filter_and_interleave(netconf_server: ServerInfo) -> None:
    with netconf_server.connect() as m:
        m.create_subscription(filter=("subtree", f'<endpoint-down xmlns="{SBX_NS}"/>'))
        with pytest.raises(RPCError) as exc:
            m.create_subscription()
        assert error_tag(exc.value) == "in-use"
        with sysrepo.SysrepoConnection() as conn:
            sess = conn.start_session("running")
            with conn.get_ly_ctx() as ctx:
                mod = ctx.get_module("vpp-singbox")
                notif_names = [n.name() for n in mod.notifications()]
            assert "endpoint-down" in notif_names and "endpoint-up" in notif_names
            _send(sess, "endpoint-up", "up1")
            _send(sess, "endpoint-down", "down1")
        n = m.take_notification(timeout=10)
        assert n is not None and "endpoint-down" in n.notification_xml and "down1" in n.notification_xml
        assert "eventTime" in n.notification_xml
        # interleave: rpcs still work on the subscribed session
        m.get_config("running", filter=sbx_filter())
        assert m.take_notification(timeout=1) is None  # endpoint-up was filtered out


def _send(sess: Any, name: str, endpoint_name: str) -> None:
    with sess.get_ly_ctx() as ctx:
        snode = next(n for n in ctx.get_module("vpp-singbox").notifications() if n.name() == name)
        leaves = {c.name(): c for c in snode.children()}
    values: dict[str, Any] = {}
    if "name" in leaves:
        values["name"] = endpoint_name
    elif "endpoint" in leaves:
        values["endpoint"] = endpoint_name
    for leaf_name, node in leaves.items():
        if leaf_name in values:
            continue
        if getattr(node, "mandatory", lambda: False)():
            values[leaf_name] = _sample_value(node)
    sess.notification_send(f"/vpp-singbox:{name}", values)


def _sample_value(node: Any) -> Any:
    base = node.type().basename()
    if base in ("string",):
        return "x"
    if base.startswith("uint") or base.startswith("int"):
        return 1
    if base == "boolean":
        return True
    if base == "enumeration":
        return next(iter(node.type().enums()))[0]
    return "x"


@pytest.mark.slow
def test_many_concurrent_sessions_with_locks(netconf_server: ServerInfo) -> None:
    n = 20
    managers = [netconf_server.connect() for _ in range(n)]
    results: list[str] = [""] * n
    barrier = threading.Barrier(n)

    def worker(i: int) -> None:
        barrier.wait(timeout=30)
        try:
            managers[i].lock("running")
            results[i] = "locked"
        except RPCError as exc:
            results[i] = str(exc.tag)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert results.count("locked") == 1 and results.count("lock-denied") == n - 1
    winner = results.index("locked")
    managers[winner].unlock("running")

    def edit(i: int) -> None:
        managers[i].edit_config(target="running", config=cfg(endpoint(f"w{i:02d}")))

    threads = [threading.Thread(target=edit, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert endpoints() == [f"w{i:02d}" for i in range(n)]
    for mgr in managers:
        mgr.close_session()


@pytest.mark.slow
def test_ten_megabyte_edit(netconf_server: ServerInfo) -> None:
    entries = []
    i = 0
    size = 0
    while size < 10 * 1024 * 1024:
        e = (f"<endpoint><name>big{i:06d}</name><address>198.18.{i // 256 % 256}.{i % 256}</address>"
             f"<username>user{i:06d}</username><password>{'p' * 64}</password></endpoint>")
        entries.append(e)
        size += len(e)
        i += 1
    config = cfg("<client>" + "".join(entries) + "</client>")
    assert len(config) > 10 * 1024 * 1024
    with netconf_server.connect() as m:
        m.edit_config(target="running", config=config)
        data = running("/vpp-singbox:singbox/client/endpoint[name='big000000']")
        assert data["singbox"]["client"]["endpoint"]
        xml = m.get_config("running", filter=sbx_filter("<client><endpoint><name>" + f"big{i - 1:06d}" +
                                                         "</name></endpoint></client>")).data_xml
        assert f"big{i - 1:06d}" in xml


def test_nacm_for_non_admin_user(netconf_server: ServerInfo) -> None:
    from singbox_agent.mgmt.users import hash_password

    with sysrepo.SysrepoConnection() as conn:
        sess = conn.start_session("running")
        sess.set_item("/ietf-system:system/authentication/user[name='oper']/password", hash_password("oper-pw"))
        sess.apply_changes()
        sess.set_item("/ietf-netconf-acm:nacm/groups/group[name='operators']/user-name", "oper")
        sess.set_item("/ietf-netconf-acm:nacm/rule-list[name='operators']/group", "operators")
        base = "/ietf-netconf-acm:nacm/rule-list[name='operators']/rule[name='no-kill']"
        sess.set_item(base + "/module-name", "ietf-netconf")
        sess.set_item(base + "/rpc-name", "kill-session")
        sess.set_item(base + "/access-operations", "exec")
        sess.set_item(base + "/action", "deny")
        sess.apply_changes()
    with netconf_server.connect() as admin:
        admin.edit_config(target="running", config=cfg(endpoint("sec", "<username>u</username>"
                                                                "<password>upstream-secret</password>")))
        assert "upstream-secret" in admin.get_config("running", filter=sbx_filter()).data_xml
        with netconf_server.connect(user="oper", password="oper-pw") as oper:
            xml = oper.get_config("running").data_xml
            assert "<name>sec</name>" in xml
            assert "upstream-secret" not in xml  # nacm:default-deny-all
            assert "ietf-netconf-acm" not in xml  # /nacm is default-deny-all
            assert "$6$" not in xml  # login hashes hidden by the bootstrap rule
            assert "netconf-ssh-host-key" in xml and "cleartext-private-key" not in xml  # nacm:default-deny-all
            with pytest.raises(RPCError) as exc:
                oper.edit_config(target="running", config=cfg(endpoint("nope")))
            assert error_tag(exc.value) == "access-denied"
            with pytest.raises(RPCError) as exc:
                oper.kill_session(admin.session_id)
            assert error_tag(exc.value) == "access-denied"
    assert endpoints() == ["sec"]


def test_wrong_password_and_public_key(netconf_server: ServerInfo, tmp_path: Any) -> None:
    import asyncssh
    from ncclient.transport.errors import AuthenticationError

    with pytest.raises(AuthenticationError):
        netconf_server.connect(password="wrong")
    key = asyncssh.generate_private_key("ssh-ed25519")
    key_path = tmp_path / "id_ed25519"
    key_path.write_bytes(key.export_private_key("openssh"))
    key_path.chmod(0o600)
    alg, data = key.export_public_key("openssh").decode().split()[:2]
    with sysrepo.SysrepoConnection() as conn:
        sess = conn.start_session("running")
        base = "/ietf-system:system/authentication/user[name='admin']/authorized-key[name='test']"
        sess.set_item(base + "/algorithm", alg)
        sess.set_item(base + "/key-data", data)
        sess.apply_changes()
    from ncclient import manager

    with manager.connect(host=netconf_server.host, port=netconf_server.port, username="admin",
                         key_filename=str(key_path), hostkey_verify=False, look_for_keys=False,
                         allow_agent=False, timeout=30) as m:
        assert m.get_config("running") is not None


def test_host_key_kept_and_endpoints_in_ietf_netconf_server(sysrepo_instance: Any, tmp_path: Any) -> None:
    import json
    import os
    import socket

    from ncclient import manager

    from tests.netconf.conftest import bootstrap, start_server, stop_server

    env = {**os.environ, **sysrepo_instance.env}
    bootstrap(env, tmp_path)
    first = start_server(env, tmp_path)
    assert stop_server(first) == 0
    key = tmp_path / "netconf" / "ssh_host_ed25519_key"
    assert key.stat().st_mode & 0o777 == 0o600
    # first start stored the endpoint and the host key in sysrepo (running and startup)
    with sysrepo.SysrepoConnection() as conn:
        for ds in ("running", "startup"):
            sess = conn.start_session(ds)
            listen = sess.get_data("/ietf-netconf-server:netconf-server/listen")
            (ep,) = list(listen["netconf-server"]["listen"]["endpoints"]["endpoint"])
            assert [b["local-address"] for b in ep["ssh"]["tcp-server-parameters"]["local-bind"]] == ["127.0.0.1"]
            keys = sess.get_data("/ietf-keystore:keystore")["keystore"]["asymmetric-keys"]["asymmetric-key"]
            assert [k["name"] for k in keys] == ["netconf-ssh-host-key"]
    second = start_server(env, tmp_path)
    try:
        assert second.fingerprint == first.fingerprint
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            free_port = probe.getsockname()[1]
        with second.connect() as m:
            # a second endpoint added over NETCONF is served at once, with the same keystore host key
            m.edit_config(target="running", config=(
                f'<config xmlns="{NC}"><netconf-server xmlns="urn:ietf:params:xml:ns:yang:ietf-netconf-server">'
                "<listen><endpoints><endpoint><name>extra</name><ssh><tcp-server-parameters><local-bind>"
                f"<local-address>127.0.0.1</local-address><local-port>{free_port}</local-port></local-bind>"
                "</tcp-server-parameters><ssh-server-parameters><server-identity><host-key><name>k</name>"
                "<public-key><central-keystore-reference>netconf-ssh-host-key</central-keystore-reference>"
                "</public-key></host-key></server-identity></ssh-server-parameters></ssh></endpoint></endpoints>"
                "</listen></netconf-server></config>"))
            deadline = time.monotonic() + 10
            extra = None
            while extra is None and time.monotonic() < deadline:
                try:
                    extra = manager.connect(host="127.0.0.1", port=free_port, username="admin",
                                            password="admin-secret", hostkey_verify=False, look_for_keys=False,
                                            allow_agent=False, timeout=10)
                except Exception:  # noqa: BLE001 - not listening yet
                    time.sleep(0.2)
            assert extra is not None and extra.connected
            extra.close_session()
            assert m.connected  # open sessions survive the reconfiguration
            # a reference to a missing key is rejected by the schema (leafref), nothing changes
            with pytest.raises(RPCError):
                m.edit_config(target="running", config=(
                    f'<config xmlns="{NC}"><netconf-server xmlns="urn:ietf:params:xml:ns:yang:ietf-netconf-server">'
                    "<listen><endpoints><endpoint><name>extra</name><ssh><ssh-server-parameters><server-identity>"
                    "<host-key><name>k</name><public-key><central-keystore-reference>nope"
                    "</central-keystore-reference></public-key></host-key></server-identity>"
                    "</ssh-server-parameters></ssh></endpoint></endpoints></listen></netconf-server></config>"))
        ready = json.loads((tmp_path / "netconf-ready.json").read_text())
        assert ready["host_key_fingerprint"] == first.fingerprint
    finally:
        assert stop_server(second) == 0


def test_nacm_filters_notifications(netconf_server: ServerInfo) -> None:
    from singbox_agent.mgmt.users import hash_password

    with sysrepo.SysrepoConnection() as conn:
        sess = conn.start_session("running")
        sess.set_item("/ietf-system:system/authentication/user[name='mon']/password", hash_password("mon-pw"))
        sess.apply_changes()
        sess.set_item("/ietf-netconf-acm:nacm/groups/group[name='monitors']/user-name", "mon")
        sess.set_item("/ietf-netconf-acm:nacm/rule-list[name='monitors']/group", "monitors")
        base = "/ietf-netconf-acm:nacm/rule-list[name='monitors']/rule[name='no-down']"
        sess.set_item(base + "/module-name", "vpp-singbox")
        sess.set_item(base + "/notification-name", "endpoint-down")
        sess.set_item(base + "/access-operations", "read")
        sess.set_item(base + "/action", "deny")
        sess.apply_changes()
        with netconf_server.connect(user="mon", password="mon-pw") as m:
            m.create_subscription()
            _send(sess, "endpoint-down", "d1")
            _send(sess, "endpoint-up", "u1")
            n = m.take_notification(timeout=10)
            assert n is not None and "endpoint-up" in n.notification_xml, n.notification_xml if n else None
            assert m.take_notification(timeout=1) is None


def test_recovery_user_is_not_restricted(sysrepo_instance: Any, tmp_path: Any) -> None:
    import os

    from singbox_agent.mgmt.users import hash_password
    from tests.netconf.conftest import bootstrap, start_server, stop_server

    env = {**os.environ, **sysrepo_instance.env}
    bootstrap(env, tmp_path)
    with sysrepo.SysrepoConnection() as conn:
        sess = conn.start_session("running")
        for user in ("rescue", "plain"):
            sess.set_item(f"/ietf-system:system/authentication/user[name='{user}']/password", hash_password("pw"))
        sess.apply_changes()
    info = start_server(env, tmp_path, ["--recovery-user", "rescue"])
    try:
        with info.connect(user="rescue", password="pw") as m:  # in no NACM group, yet unrestricted
            assert "ietf-netconf-acm" in m.get_config("running").data_xml
            m.edit_config(target="running", config=cfg(endpoint("rescued")))
        with info.connect(user="plain", password="pw") as m:
            assert "ietf-netconf-acm" not in m.get_config("running").data_xml
            with pytest.raises(RPCError) as exc:
                m.edit_config(target="running", config=cfg(endpoint("nope")))
            assert error_tag(exc.value) == "access-denied"
    finally:
        assert stop_server(info) == 0
    assert endpoints() == ["rescued"]


def test_base_event_notifications(netconf_server: ServerInfo) -> None:
    with netconf_server.connect() as watcher:
        ncn = "urn:ietf:params:xml:ns:yang:ietf-netconf-notifications"
        watcher.dispatch(etree.fromstring(
            '<create-subscription xmlns="urn:ietf:params:xml:ns:netconf:notification:1.0"><filter type="subtree">'
            f'<netconf-session-start xmlns="{ncn}"/><netconf-session-end xmlns="{ncn}"/>'
            f'<netconf-confirmed-commit xmlns="{ncn}"/></filter></create-subscription>'))
        other = netconf_server.connect()
        other.edit_config(target="candidate", config=cfg(endpoint("ev")))
        other.commit(confirmed=True, timeout="30")
        other.commit()
        victim = netconf_server.connect()
        other.kill_session(victim.session_id)
        other.close_session()
        seen: list[str] = []
        deadline = time.monotonic() + 15
        while len(seen) < 6 and time.monotonic() < deadline:
            n = watcher.take_notification(timeout=2)
            if n is not None:
                seen.append(n.notification_xml)
        kinds = [next(k for k in ("session-start", "session-end", "confirmed-commit") if k in x) for x in seen]
        assert kinds.count("session-start") == 2 and kinds.count("session-end") == 2, seen
        commits = [x for x in seen if "confirmed-commit" in x]
        assert "<confirm-event>start</confirm-event>" in commits[0] and "<timeout>30</timeout>" in commits[0]
        assert "<confirm-event>complete</confirm-event>" in commits[1]
        ends = [x for x in seen if "session-end" in x]
        assert any(f"<killed-by>{other.session_id}</killed-by>" in x and "killed" in x for x in ends), ends
        assert any("<termination-reason>closed</termination-reason>" in x for x in ends), ends


def test_capabilities_list_deviations(sysrepo_instance: Any, tmp_path: Any) -> None:
    import os
    import subprocess

    from tests.netconf.conftest import bootstrap, start_server, stop_server

    deviation = tmp_path / "sbx-deviations@2026-11-22.yang"
    deviation.write_text(
        "module sbx-deviations {\n  yang-version 1.1;\n  namespace \"urn:test:sbx-deviations\";\n  prefix sd;\n"
        "  import vpp-singbox { prefix sbx; }\n  description \"test\";\n  revision 2026-11-22 { description \"t\"; }\n"
        "  deviation /sbx:singbox/sbx:log-level { deviate not-supported; }\n}\n")
    env = {**os.environ, **sysrepo_instance.env}
    subprocess.run(["sysrepoctl", "-i", str(deviation)], env=env, check=True, capture_output=True)
    bootstrap(env, tmp_path)
    info = start_server(env, tmp_path)
    try:
        with info.connect() as m:
            sbx = [c for c in m.server_capabilities if c.startswith(SBX_NS + "?")][0]
            assert "deviations=sbx-deviations" in sbx, sbx
            with pytest.raises(RPCError) as exc:
                m.edit_config(target="running", config=cfg("<log-level>debug</log-level>"))
            assert error_tag(exc.value) == "unknown-element"
    finally:
        assert stop_server(info) == 0


def test_rpc_without_output_answers_ok_and_rpc_errors_pass_through(netconf_server: ServerInfo) -> None:
    """Operations the agent serves: no output → <ok/>; the subscriber's error text → rpc-error."""
    calls: list[str] = []

    def clear(xpath: str, input_params: dict[str, Any], event: str, private_data: Any) -> None:
        calls.append(xpath)

    def disconnect(xpath: str, input_params: dict[str, Any], event: str, private_data: Any) -> None:
        raise sysrepo.SysrepoNotFoundError("no session 42")

    with sysrepo.SysrepoConnection() as conn:
        sess = conn.start_session("running")
        sess.subscribe_rpc_call("/vpp-singbox:clear-statistics", clear)
        sess.subscribe_rpc_call("/vpp-singbox:disconnect-session", disconnect)
        with netconf_server.connect() as m:
            reply = m.dispatch(etree.fromstring(f'<clear-statistics xmlns="{SBX_NS}"/>'))
            assert reply.ok and "<ok/>" in reply.xml
            assert calls == ["/vpp-singbox:clear-statistics"]
            with pytest.raises(RPCError) as failed:
                m.dispatch(etree.fromstring(f'<disconnect-session xmlns="{SBX_NS}"><id>42</id></disconnect-session>'))
            assert "no session 42" in str(failed.value)
        sess.stop()

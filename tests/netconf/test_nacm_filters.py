"""RFC 8341 3.4.5: a filter never reveals a node NACM hides — not through an XPath predicate, a function, a subtree
content match, get-data's filters, nor a replayed notification the user may not read."""

from __future__ import annotations

import time
import sysrepo

from singbox_agent.mgmt.users import hash_password
from tests.netconf.conftest import ADMIN, ADMIN_PASSWORD, SBX_NS, ServerInfo
from tests.netconf.rawclient import RawClient, errors_of

SECRET = "abcdefghijklmnopqrstuvw"  # a 23-character upstream password
SYS_NS = "urn:ietf:params:xml:ns:yang:ietf-system"
NMDA = "urn:ietf:params:xml:ns:yang:ietf-netconf-nmda"
DS = "urn:ietf:params:xml:ns:yang:ietf-datastores"
NOTIF = "urn:ietf:params:xml:ns:netconf:notification:1.0"
READER = "reader"
READER_PASSWORD = "reader-pw"


def setup_reader_and_secret(extra_rules: list[tuple[str, dict[str, str]]] = ()) -> None:  # type: ignore[assignment]
    """A user `reader` in a group with no rule of its own (NACM defaults: read permit, write deny) and an endpoint
    whose password is `SECRET` (nacm:default-deny-all)."""
    with sysrepo.SysrepoConnection() as conn:
        sess = conn.start_session("running")
        sess.set_item(f"/ietf-system:system/authentication/user[name='{READER}']/password",
                      hash_password(READER_PASSWORD))
        sess.set_item("/ietf-netconf-acm:nacm/groups/group[name='readers']/user-name", READER)
        sess.set_item("/ietf-netconf-acm:nacm/rule-list[name='readers']/group", "readers")
        for name, leaves in extra_rules:
            for leaf, value in leaves.items():
                sess.set_item(f"/ietf-netconf-acm:nacm/rule-list[name='readers']/rule[name='{name}']/{leaf}", value)
        ep = "/vpp-singbox:singbox/client/endpoint[name='sec']"
        sess.set_item(f"{ep}/address", "198.18.0.1")
        sess.set_item(f"{ep}/username", "u")
        sess.set_item(f"{ep}/password", SECRET)
        sess.apply_changes()
        sess.stop()


def xpath_get_config(select: str, extra_ns: str = "") -> str:
    return (f'<get-config><source><running/></source><filter type="xpath" xmlns:sbx="{SBX_NS}" '
            f'xmlns:sys="{SYS_NS}"{extra_ns} select="{select}"/></get-config>')


async def data_of(client: RawClient, body: str) -> str:
    from xml.etree import ElementTree as ET

    reply = await client.rpc(body)
    assert not errors_of(reply), errors_of(reply)
    return ET.tostring(reply).decode()


EP = "/sbx:singbox/sbx:client/sbx:endpoint"
# Each probe selects the endpoint's name only when a condition on its hidden password holds for the real value.
PROBES = [
    f"{EP}[starts-with(sbx:password,'a')]/sbx:name",
    f"{EP}[sbx:password='{SECRET}']/sbx:name",
    f"{EP}[string-length(sbx:password)=23]/sbx:name",
    f"{EP}[count(sbx:password)=1]/sbx:name",
    f"{EP}[boolean(sbx:password)]/sbx:name",
    f"{EP}[contains(sbx:password,'klm')]/sbx:name",
    f"{EP}[substring(sbx:password,1,1)='a']/sbx:name",
    f"{EP}[sbx:password!='']/sbx:name",
    f"{EP}[sbx:password]/sbx:name",
    f"/sbx:singbox[count(sbx:client/sbx:endpoint/sbx:password)>0]/sbx:log-level",
    f"{EP}[translate(sbx:password,'abc','xyz')='xyzdefghijklmnopqrstuvw']/sbx:name",
    f"{EP}/sbx:password/..",
    f"//sbx:password/../sbx:name",
    f"//*[starts-with(.,'abc')]",
]


async def test_xpath_predicates_never_see_hidden_values(netconf_server: ServerInfo) -> None:
    setup_reader_and_secret()
    reader = await RawClient.connect(netconf_server.host, netconf_server.port, READER, READER_PASSWORD)
    admin = await RawClient.connect(netconf_server.host, netconf_server.port, ADMIN, ADMIN_PASSWORD)
    leaks = []
    for select in PROBES:
        text = await data_of(reader, xpath_get_config(select))
        if ">sec<" in text or SECRET in text:
            leaks.append(select)
    assert not leaks, f"hidden password decides the result of: {leaks}"
    # the same filters still work for an unrestricted user, and on what the reader may see
    assert ">sec<" in await data_of(admin, xpath_get_config(PROBES[0]))
    assert ">sec<" in await data_of(reader, xpath_get_config(f"{EP}[starts-with(sbx:address,'198.')]/sbx:name"))
    assert ">sec<" in await data_of(reader, xpath_get_config(f"{EP}[not(sbx:password)]/sbx:name"))
    # get and get-data take the same path
    body = f'<get><filter type="xpath" xmlns:sbx="{SBX_NS}" select="{PROBES[0]}"/></get>'
    assert ">sec<" not in await data_of(reader, body)
    body = (f'<get-data xmlns="{NMDA}" xmlns:ds="{DS}" xmlns:sbx="{SBX_NS}"><datastore>ds:running</datastore>'
            f"<xpath-filter>{PROBES[0]}</xpath-filter></get-data>")
    assert ">sec<" not in await data_of(reader, body)
    body = (f'<get-data xmlns="{NMDA}" xmlns:ds="{DS}" xmlns:sbx="{SBX_NS}"><datastore>ds:operational</datastore>'
            f"<xpath-filter>{PROBES[0]}</xpath-filter><with-origin/></get-data>")
    assert ">sec<" not in await data_of(reader, body)
    await reader.close()
    await admin.close()


async def test_subtree_content_match_on_hidden_leaf(netconf_server: ServerInfo) -> None:
    setup_reader_and_secret()
    reader = await RawClient.connect(netconf_server.host, netconf_server.port, READER, READER_PASSWORD)

    def subtree(password: str) -> str:
        return (f'<get-config><source><running/></source><filter type="subtree"><singbox xmlns="{SBX_NS}"><client>'
                f"<endpoint><password>{password}</password><name/></endpoint></client></singbox></filter>"
                "</get-config>")

    assert ">sec<" not in await data_of(reader, subtree(SECRET))
    body = (f'<get-data xmlns="{NMDA}" xmlns:ds="{DS}"><datastore>ds:running</datastore><subtree-filter>'
            f'<singbox xmlns="{SBX_NS}"><client><endpoint><password>{SECRET}</password><name/></endpoint></client>'
            "</singbox></subtree-filter></get-data>")
    assert ">sec<" not in await data_of(reader, body)
    # a content match on a visible leaf still selects
    visible = subtree("x").replace("<password>x</password>", "<address>198.18.0.1</address>")
    assert ">sec<" in await data_of(reader, visible)
    await reader.close()


async def test_login_hashes_not_probed_by_filters(netconf_server: ServerInfo) -> None:
    setup_reader_and_secret()
    reader = await RawClient.connect(netconf_server.host, netconf_server.port, READER, READER_PASSWORD)
    users = "/sys:system/sys:authentication/sys:user"
    for select in (f"{users}[starts-with(sys:password,'$6$')]/sys:name", f"{users}[sys:password]/sys:name",
                   f"{users}[string-length(sys:password)>10]/sys:name"):
        text = await data_of(reader, xpath_get_config(select))
        assert f">{ADMIN}<" not in text and "$6$" not in text, select
    await reader.close()


async def test_replay_does_not_deliver_notifications_nacm_denies(netconf_server: ServerInfo) -> None:
    """sysrepo replays stored notifications with no NACM check; the server checks each one."""
    from tests.netconf.helpers import _send

    setup_reader_and_secret([("no-down", {"module-name": "vpp-singbox", "notification-name": "endpoint-down",
                                          "access-operations": "read", "action": "deny"})])
    start = time.time() - 1
    with sysrepo.SysrepoConnection() as conn:
        sess = conn.start_session("running")
        _send(sess, "endpoint-down", "hidden-down")
        _send(sess, "endpoint-up", "visible-up")
        sess.stop()
    time.sleep(1.1)
    import datetime

    when = datetime.datetime.fromtimestamp(start, datetime.UTC).isoformat().replace("+00:00", "Z")
    reader = await RawClient.connect(netconf_server.host, netconf_server.port, READER, READER_PASSWORD)
    reply = await reader.rpc(f'<create-subscription xmlns="{NOTIF}"><startTime>{when}</startTime>'
                             "</create-subscription>")
    assert not errors_of(reply)
    got: list[bytes] = []
    while not any(b"replayComplete" in g for g in got):
        got.append(await reader.recv(timeout=60))
    joined = b"".join(got)
    assert b"visible-up" in joined
    assert b"hidden-down" not in joined
    await reader.close()

"""Resource limits (`/vpp-singbox-netconf-server:netconf-server/limits`): a request beyond one gets `too-big` or
`resource-denied` naming the limit, nothing changes, and the session and the server go on serving."""

from __future__ import annotations

import time
import xml.etree.ElementTree as ET

import pytest
import sysrepo
from lxml import etree
from ncclient.operations.rpc import RPCError

from tests.netconf.conftest import ADMIN, ADMIN_PASSWORD, SBX_NS, ServerInfo
from tests.netconf.rawclient import NC, RawClient, errors_of

LIMITS = "/vpp-singbox-netconf-server:netconf-server/limits"
GET_CONFIG = "<get-config><source><running/></source></get-config>"


def set_limits(**values: int) -> None:
    with sysrepo.SysrepoConnection() as conn:
        sess = conn.start_session("running")
        for name, value in values.items():
            sess.set_item(f"{LIMITS}/{name.replace('_', '-')}", value)
        sess.apply_changes()
        sess.stop()


def xpath_rpc(select: str) -> str:
    return (f'<get-config><source><running/></source><filter type="xpath" xmlns:sbx="{SBX_NS}" select="{select}"/>'
            "</get-config>")


def subtree_rpc(inner: str) -> str:
    return (f'<get-config><source><running/></source><filter type="subtree"><singbox xmlns="{SBX_NS}"><client>'
            f"<endpoint>{inner}</endpoint></client></singbox></filter></get-config>")


async def still_serving(client: RawClient) -> None:
    reply = await client.rpc(GET_CONFIG, "alive")
    assert reply.find(f"{{{NC}}}data") is not None, ET.tostring(reply)


def only_error(reply: ET.Element) -> dict[str, str]:
    errs = errors_of(reply)
    assert len(errs) == 1, errs
    return errs[0]


async def test_thirty_thousand_predicates_refused(netconf_server: ServerInfo) -> None:
    """As the report: `/sbx:singbox[1][1]...` 30,000 times grew the process to 3 GB and killed it."""
    client = await RawClient.connect(netconf_server.host, netconf_server.port, ADMIN, ADMIN_PASSWORD)
    err = only_error(await client.rpc(xpath_rpc("/sbx:singbox" + "[1]" * 30000), timeout=30))
    assert err["error-tag"] == "resource-denied" and "max-xpath-predicates" in err["error-message"], err
    for select, limit in (("/sbx:singbox" + "[" * 100 + "1" + "]" * 100, "max-xpath-nesting"),
                          ("/sbx:singbox[" + "(" * 100 + "1" + ")" * 100 + "]", "max-xpath-nesting"),
                          ("/sbx:singbox/sbx:log-level" + " or 1" * 60000, "max-xpath-length")):
        err = only_error(await client.rpc(xpath_rpc(select), timeout=30))
        assert err["error-tag"] == "resource-denied" and limit in err["error-message"], err
    # get-data's xpath-filter and create-subscription's filter are checked the same way
    body = ('<get-data xmlns="urn:ietf:params:xml:ns:yang:ietf-netconf-nmda" '
            'xmlns:ds="urn:ietf:params:xml:ns:yang:ietf-datastores" '
            f'xmlns:sbx="{SBX_NS}"><datastore>ds:running</datastore>'
            f"<xpath-filter>/sbx:singbox{'[1]' * 30000}</xpath-filter></get-data>")
    assert only_error(await client.rpc(body, timeout=30))["error-tag"] == "resource-denied"
    body = ('<create-subscription xmlns="urn:ietf:params:xml:ns:netconf:notification:1.0">'
            f'<filter type="xpath" xmlns:sbx="{SBX_NS}" select="/sbx:endpoint-down{"[1]" * 30000}"/>'
            "</create-subscription>")
    assert only_error(await client.rpc(body, timeout=30))["error-tag"] == "resource-denied"
    await still_serving(client)
    await client.close()


async def test_subtree_filter_node_count_and_repeated_content_matches(netconf_server: ServerInfo) -> None:
    client = await RawClient.connect(netconf_server.host, netconf_server.port, ADMIN, ADMIN_PASSWORD)
    err = only_error(await client.rpc(subtree_rpc("<name>a</name>" * 30000), timeout=30))
    assert err["error-tag"] == "resource-denied" and "max-subtree-filter-nodes" in err["error-message"], err
    # 3,000 identical content matches (1.6 GB and 20 s of CPU before): the same as one
    reply = await client.rpc(subtree_rpc("<name>a</name>" * 3000 + "<address/>"), timeout=30)
    assert not errors_of(reply) and reply.find(f"{{{NC}}}data") is not None
    # 3,000 different content matches beside selection nodes: the derived XPath is refused, not evaluated
    inner = "".join(f"<name>a{i}</name>" for i in range(3000)) + "".join(f"<address/><port/><username/>" * 100)
    err = only_error(await client.rpc(subtree_rpc(inner), timeout=30))
    assert err["error-tag"] == "resource-denied" and "subtree filter" in err["error-message"], err
    await still_serving(client)
    await client.close()


async def test_message_size_depth_and_element_limits_are_configurable(netconf_server: ServerInfo) -> None:
    set_limits(max_message_size=65536, max_xml_depth=32, max_elements=2000, max_xpath_predicates=10)
    for base11 in (True, False):
        client = await RawClient.connect(netconf_server.host, netconf_server.port, ADMIN, ADMIN_PASSWORD,
                                         base11=base11)
        # too big: dropped unread, answered too-big with its message-id, the session goes on
        big = f"<get-config><source><running/></source><!-- {'x' * 70000} --></get-config>"
        reply = await client.rpc(big, "big")
        err = only_error(reply)
        assert err["error-tag"] == "too-big" and "max-message-size" in err["error-message"], err
        assert reply.get("message-id") == "big"
        await still_serving(client)
        nested = "<a>" * 40 + "</a>" * 40
        reply = await client.rpc(f"<get-config><source><running/></source>{nested}</get-config>", "deep")
        err = only_error(reply)
        assert err["error-tag"] == "resource-denied" and "max-xml-depth" in err["error-message"], err
        assert reply.get("message-id") == "deep"
        entries = "".join(f"<endpoint><name>e{i}</name><address>198.18.0.1</address></endpoint>" for i in range(700))
        edit = (f'<edit-config><target><running/></target><config><singbox xmlns="{SBX_NS}"><client>{entries}'
                "</client></singbox></config></edit-config>")
        err = only_error(await client.rpc(edit, "many"))
        assert err["error-tag"] == "resource-denied" and "max-elements" in err["error-message"], err
        err = only_error(await client.rpc(xpath_rpc("/sbx:singbox" + "[1]" * 11)))
        assert "max-xpath-predicates" in err["error-message"], err
        assert not errors_of(await client.rpc(xpath_rpc("/sbx:singbox" + "[1]" * 10)))
        await still_serving(client)
        await client.close()
    # a reply over max-reply-size becomes too-big
    client = await RawClient.connect(netconf_server.host, netconf_server.port, ADMIN, ADMIN_PASSWORD)
    entries = "".join(f"<endpoint><name>r{i:04d}</name><address>198.18.0.1</address></endpoint>" for i in range(600))
    reply = await client.rpc(f'<edit-config><target><running/></target><config><singbox xmlns="{SBX_NS}"><client>'
                             f"{entries}</client></singbox></config></edit-config>")
    assert not errors_of(reply)
    set_limits(max_reply_size=4096)
    err = only_error(await client.rpc(subtree_rpc("")))
    assert err["error-tag"] == "too-big" and "max-reply-size" in err["error-message"], err
    # back to the defaults: the same requests pass
    with sysrepo.SysrepoConnection() as conn:
        sess = conn.start_session("running")
        sess.delete_item(LIMITS)
        sess.apply_changes()
        sess.stop()
    assert not errors_of(await client.rpc(xpath_rpc("/sbx:singbox" + "[1]" * 11)))
    assert not errors_of(await client.rpc(subtree_rpc("")))
    await still_serving(client)
    await client.close()


async def test_subscription_periods_beyond_sysrepo(netconf_server: ServerInfo) -> None:
    """A period or dampening-period RFC 8641's uint32 of centiseconds allows but sysrepo's timers cannot hold is
    invalid-value naming the leaf: past 2^32 ms it was operation-failed from the C call's conversion, just below
    that it was established and its end hung in sysrepo's timer."""
    sn, yp = "urn:ietf:params:xml:ns:yang:ietf-subscribed-notifications", "urn:ietf:params:xml:ns:yang:ietf-yang-push"
    ds = (f'<datastore xmlns="{yp}" xmlns:ds="urn:ietf:params:xml:ns:yang:ietf-datastores">ds:running</datastore>')
    client = await RawClient.connect(netconf_server.host, netconf_server.port, ADMIN, ADMIN_PASSWORD)
    for trigger, leaf in ((f'<periodic xmlns="{yp}"><period>4294967295</period></periodic>', "period"),
                          (f'<periodic xmlns="{yp}"><period>429496728</period></periodic>', "period"),
                          (f'<on-change xmlns="{yp}"><dampening-period>4294967295</dampening-period></on-change>',
                           "dampening-period")):
        rpc = f'<establish-subscription xmlns="{sn}">{ds}{trigger}</establish-subscription>'
        err = only_error(await client.rpc(rpc))
        assert err["error-tag"] == "invalid-value" and err["error-path"].endswith(leaf), err
    await still_serving(client)
    await client.close()


async def test_xml_attributes_per_element(netconf_server: ServerInfo) -> None:
    """libyang parses an element's attributes and namespace declarations in quadratic time: more than
    max-xml-attributes on one element are resource-denied before it parses; nothing changes."""
    client = await RawClient.connect(netconf_server.host, netconf_server.port, ADMIN, ADMIN_PASSWORD)
    decls = " ".join(f'xmlns:p{i}="urn:example:{i}"' for i in range(2000))
    edit = (f'<edit-config><target><running/></target><config><singbox xmlns="{SBX_NS}" {decls}><client><endpoint>'
            "<name>m</name><address>198.18.0.1</address></endpoint></client></singbox></config></edit-config>")
    err = only_error(await client.rpc(edit))
    assert err["error-tag"] == "resource-denied" and "max-xml-attributes" in err["error-message"], err
    reply = await client.rpc(subtree_rpc("<name>m</name>"))
    assert reply.find(f"{{{NC}}}data/{{{SBX_NS}}}singbox") is None, ET.tostring(reply)
    set_limits(max_xml_attributes=3000)
    assert not errors_of(await client.rpc(edit))
    await still_serving(client)
    await client.close()


SN = "urn:ietf:params:xml:ns:yang:ietf-subscribed-notifications"


def _subscriptions(m: object) -> list[str]:
    """The ids of `/subscriptions` in operational (RFC 8639 subscriptions of every session)."""
    reply = m.dispatch(etree.fromstring(  # type: ignore[attr-defined]
        '<get-data xmlns="urn:ietf:params:xml:ns:yang:ietf-netconf-nmda" '
        'xmlns:ds="urn:ietf:params:xml:ns:yang:ietf-datastores"><datastore>ds:operational</datastore>'
        f'<xpath-filter xmlns:sn="{SN}">/sn:subscriptions</xpath-filter></get-data>'))
    return [e.text or "" for e in ET.fromstring(reply.xml).iter(f"{{{SN}}}id")]


def test_subscriptions_of_all_sessions_within_max_subscriptions(netconf_server: ServerInfo) -> None:
    """Each subscription holds sysrepo subscriptions and threads: past max-subscriptions (create-subscription and
    establish-subscription together, whatever sessions made them) one more is resource-denied naming the limit and
    leaves nothing behind; one ending makes room; a session's second create-subscription is still in-use."""
    set_limits(max_subscriptions=2)
    establish = etree.fromstring(f'<establish-subscription xmlns="{SN}"><stream>NETCONF</stream>'
                                 "</establish-subscription>")
    with netconf_server.connect() as first, netconf_server.connect() as second:
        first.create_subscription()
        with pytest.raises(RPCError) as exc:  # RFC 5277 2.1.1: one per session, whatever room there is
            first.create_subscription()
        assert exc.value.tag == "in-use"
        sub_id = ET.fromstring(first.dispatch(establish).xml).findtext(f".//{{{SN}}}id")
        assert sub_id is not None and _subscriptions(first) == [sub_id]
        for attempt in (second.create_subscription, lambda: second.dispatch(establish),
                        lambda: first.dispatch(establish)):
            with pytest.raises(RPCError) as exc:
                attempt()
            assert exc.value.tag == "resource-denied" and "max-subscriptions" in str(exc.value.message), exc.value
        assert _subscriptions(second) == [sub_id]  # the refused establish left no subscription
        first.dispatch(etree.fromstring(f'<delete-subscription xmlns="{SN}"><id>{sub_id}</id>'
                                        "</delete-subscription>"))
        deadline = time.monotonic() + 30  # the subscription's thread ends it in sysrepo within its poll
        while True:
            try:
                second.create_subscription()  # the refused one left no subscription on `second` (not in-use)
                break
            except RPCError as err:
                assert err.tag == "resource-denied" and time.monotonic() < deadline, err
                time.sleep(0.2)
        with pytest.raises(RPCError) as exc:
            second.create_subscription()
        assert exc.value.tag == "in-use"
    with netconf_server.connect() as third:  # the sessions that held both are gone: room again
        deadline = time.monotonic() + 30
        while True:
            try:
                third.create_subscription()
                break
            except RPCError as err:
                assert err.tag == "resource-denied" and time.monotonic() < deadline, err
                time.sleep(0.2)

"""Conformance to the letter of RFC 6241 / RFC 6470 / RFC 6022 on points an earlier audit found wrong: each test
names the clause it checks and failed on the code before its fix."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest
from ncclient.operations.rpc import RPCError

from tests.netconf.conftest import ADMIN, ADMIN_PASSWORD, SBX_NS, ServerInfo
from tests.netconf.helpers import cfg, endpoint, endpoints, running
from tests.netconf.rawclient import NC, RawClient, errors_of

MON = "urn:ietf:params:xml:ns:yang:ietf-netconf-monitoring"
NOTIF_NS = "urn:ietf:params:xml:ns:netconf:notification:1.0"


def test_persist_id_on_a_commit_given_no_persist_is_invalid_value(netconf_server: ServerInfo) -> None:
    """RFC 6241 8.4.5.1 (commit) and 8.4.4.1 (cancel-commit): persist-id "must be equal to the value given in the
    <persist> parameter"; otherwise "the operation fails with an 'invalid-value' error". A confirmed commit given
    no persist has no value any persist-id could equal (the issuing session's cancel-commit with a made-up
    persist-id rolled running back and answered <ok/>, its commit with one confirmed it)."""
    with netconf_server.connect() as m:
        m.edit_config(target="candidate", config=cfg(endpoint("held")))
        m.commit(confirmed=True, timeout="120")
        for attempt in (lambda: m.cancel_commit(persist_id="made-up"), lambda: m.commit(persist_id="made-up")):
            with pytest.raises(RPCError) as exc:
                attempt()
            assert exc.value.tag == "invalid-value"
            assert endpoints() == ["held"]  # neither rolled back nor confirmed
        m.cancel_commit()  # the commit was still pending: the plain cancel-commit of its session rolls it back
        assert endpoints() == []


def test_follow_up_confirmed_commit_of_a_persistent_one_needs_persist_id(netconf_server: ServerInfo) -> None:
    """RFC 6241 8.4.1: "If the <persist> element is given in the confirmed <commit> operation, a follow-up commit
    and the confirming commit ... MUST include a <persist-id> element with a value equal to the given value of the
    <persist> element." A follow-up confirmed commit without it (from any session, the issuing one included) was
    accepted and extended the timeout."""
    with netconf_server.connect() as m:
        m.edit_config(target="candidate", config=cfg(endpoint("p")))
        m.commit(confirmed=True, timeout="120", persist="tok")
        with netconf_server.connect() as other:
            for session in (m, other):
                with pytest.raises(RPCError) as exc:
                    session.commit(confirmed=True, timeout="300")
                assert exc.value.tag == "invalid-value"
        m.commit(confirmed=True, timeout="300", persist_id="tok")  # the follow-up done right
        m.commit(persist_id="tok")  # and the confirming commit
    assert endpoints() == ["p"]


async def test_in_rpcs_counts_only_correct_rpc_messages(netconf_server: ServerInfo) -> None:
    """RFC 6022 (ietf-netconf-monitoring): in-rpcs is the "Number of correct <rpc> messages received", in-bad-rpcs
    the number of messages "that were not correct <rpc> messages ... XML parse errors and errors on the rpc layer".
    A bad message was counted in both."""
    import re

    client = await RawClient.connect(netconf_server.host, netconf_server.port, ADMIN, ADMIN_PASSWORD)
    try:
        assert not errors_of(await client.rpc("<get-config><source><running/></source></get-config>", "1"))
        client.send(f'<rpc xmlns="{NC}" message-id="2"><get-config>'.encode())  # not well-formed
        assert errors_of(ET.fromstring(await client.recv()))[0]["error-tag"] == "malformed-message"
        reply = await client.rpc("<get-config><source><running/></source><bogus/></get-config>", "3")
        assert errors_of(reply)[0]["error-tag"] == "unknown-element"
        reply = await client.rpc(f'<get><filter type="subtree"><netconf-state xmlns="{MON}"><sessions/>'
                                 "<statistics/></netconf-state></filter></get>", "4")
        text = ET.tostring(reply).decode()
        counters = {name: [int(v) for v in re.findall(rf"<(?:\w+:)?{name}>(\d+)<", text)]
                    for name in ("in-rpcs", "in-bad-rpcs")}
        # this session's entry, then the server's statistics (this is the server's only session): the two correct
        # get-config and get, the two bad ones
        assert counters == {"in-rpcs": [2, 2], "in-bad-rpcs": [2, 2]}, text
    finally:
        await client.close()


@pytest.mark.parametrize("window", ["past", "open"])
async def test_create_subscription_reply_comes_before_its_notifications(netconf_server: ServerInfo,
                                                                       window: str) -> None:
    """RFC 5277 2.1.1/2.2: the server answers create-subscription with <ok/>, and "once the subscription has been
    set up" sends its notifications. The replay of stored ones (and with a stopTime already past, replayComplete
    and notificationComplete too) went out from sysrepo's thread before the reply: a client reading the reply got a
    <notification>."""
    import datetime
    import time

    def stamp(t: float) -> str:
        return datetime.datetime.fromtimestamp(t, datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")

    start = time.time() - 60
    with netconf_server.connect() as m:  # its session-start and config-changes are stored for replay
        for n in range(5):
            m.edit_config(target="running", config=cfg(endpoint(f"e{n}")))
    time.sleep(1.1)
    stop = f"<stopTime>{stamp(time.time())}</stopTime>" if window == "past" else ""
    client = await RawClient.connect(netconf_server.host, netconf_server.port, ADMIN, ADMIN_PASSWORD)
    try:
        client.send(f'<rpc xmlns="{NC}" message-id="9"><create-subscription xmlns="{NOTIF_NS}">'
                    f"<startTime>{stamp(start)}</startTime>{stop}</create-subscription></rpc>".encode())
        first = ET.fromstring(await client.recv())
        assert first.tag == f"{{{NC}}}rpc-reply" and first.find(f"{{{NC}}}ok") is not None, ET.tostring(first)
        kinds = []
        while "replayComplete" not in kinds:
            message = ET.fromstring(await client.recv())
            assert message.tag == f"{{{NOTIF_NS}}}notification"
            kinds.append(message[1].tag.rpartition("}")[2])
        assert kinds.count("netconf-config-change") >= 5, kinds  # ours, after those of the bootstrap
        if window == "past":
            message = ET.fromstring(await client.recv())
            assert message[1].tag.endswith("}notificationComplete")
    finally:
        await client.close()


async def test_subscription_modified_follows_the_modify_reply(netconf_server: ServerInfo) -> None:
    """RFC 8639 2.4.3/2.7.2 with RFC 8640 2.1: a dynamic subscription's state change notifications follow the rpc-reply
    of the operation that caused them, as its notifications follow establish-subscription's reply. The
    subscription-modified was sent before modify-subscription's <ok/>."""
    sn = "urn:ietf:params:xml:ns:yang:ietf-subscribed-notifications"
    yp = "urn:ietf:params:xml:ns:yang:ietf-yang-push"
    ds = "urn:ietf:params:xml:ns:yang:ietf-datastores"
    select = f'<datastore-xpath-filter xmlns="{yp}" xmlns:nacm="urn:ietf:params:xml:ns:yang:ietf-netconf-acm">' \
             "/nacm:nacm</datastore-xpath-filter>"

    def periodic(period_cs: int) -> str:
        return (f'<datastore xmlns="{yp}" xmlns:ds="{ds}">ds:running</datastore>{select}'
                f'<periodic xmlns="{yp}"><period>{period_cs}</period></periodic>')

    client = await RawClient.connect(netconf_server.host, netconf_server.port, ADMIN, ADMIN_PASSWORD)
    try:
        reply = await client.rpc(f'<establish-subscription xmlns="{sn}">{periodic(6000)}</establish-subscription>')
        assert not errors_of(reply), errors_of(reply)
        sub_id = reply.findtext(f"{{{sn}}}id")
        first_push = ET.fromstring(await client.recv())  # a periodic subscription pushes at once, then each minute
        assert first_push.tag == f"{{{NOTIF_NS}}}notification"
        client.send(f'<rpc xmlns="{NC}" message-id="2"><modify-subscription xmlns="{sn}"><id>{sub_id}</id>'
                    f"{periodic(9000)}</modify-subscription></rpc>".encode())
        answer = ET.fromstring(await client.recv())
        assert answer.tag == f"{{{NC}}}rpc-reply" and answer.find(f"{{{NC}}}ok") is not None, ET.tostring(answer)
        modified = ET.fromstring(await client.recv())
        assert modified[1].tag == f"{{{sn}}}subscription-modified", ET.tostring(modified)
    finally:
        await client.close()


async def test_get_data_config_filter_selects_by_config_property(netconf_server: ServerInfo) -> None:
    """RFC 8526 3.1.1: config-filter "true" selects only 'config true' nodes, "false" only 'config false' ones. The
    filter was never applied (its boolean compared as text): running answered config-filter false with its
    configuration, operational mixed state into config-filter true."""
    nmda = "urn:ietf:params:xml:ns:yang:ietf-netconf-nmda"
    ds = "urn:ietf:params:xml:ns:yang:ietf-datastores"
    with netconf_server.connect() as m:
        m.edit_config(target="running", config=cfg(endpoint("cf")))
    client = await RawClient.connect(netconf_server.host, netconf_server.port, ADMIN, ADMIN_PASSWORD)

    async def get_data(datastore: str, select: str, config: str) -> str:
        reply = await client.rpc(f'<get-data xmlns="{nmda}" xmlns:ds="{ds}"><datastore>ds:{datastore}</datastore>'
                                 f"{select}<config-filter>{config}</config-filter></get-data>")
        assert not errors_of(reply), errors_of(reply)
        return ET.tostring(reply, encoding="unicode")

    try:
        sbx = f'<subtree-filter><singbox xmlns="{SBX_NS}"/></subtree-filter>'
        assert "cf" in await get_data("running", sbx, "true")
        assert "cf" not in await get_data("running", sbx, "false")  # running holds configuration only
        # operational: this server's own state (netconf-state is config false) and the NACM configuration
        both = (f'<subtree-filter><netconf-state xmlns="{MON}"><sessions/></netconf-state>'
                '<nacm xmlns="urn:ietf:params:xml:ns:yang:ietf-netconf-acm"><enable-nacm/></nacm></subtree-filter>')
        state_only = await get_data("operational", both, "false")
        assert "session-id" in state_only and "enable-nacm" not in state_only
        config_only = await get_data("operational", both, "true")
        assert "enable-nacm" in config_only and "session-id" not in config_only
    finally:
        await client.close()


def test_two_cases_of_one_choice_are_bad_element(netconf_server: ServerInfo) -> None:
    """RFC 7950 8.3.1: "If data for more than one case branch of a choice is present, the server MUST reply with an
    'rpc-error' with the 'error-tag' 'bad-element'." An edit holding both upstream cases of an interface was
    answered operation-failed (or data-missing for a leafref of the other case); an rpc naming two datastores in
    one <target> choice (copy-config to startup and candidate) was carried out on one of them. Switching cases in
    one edit, the old one deleted, stays allowed."""
    group = ("<endpoint-group><name>g</name><member><endpoint>a</endpoint></member></endpoint-group>")
    with netconf_server.connect() as m:
        m.edit_config(target="running", config=cfg(endpoint("a") + group.join(("<client>", "</client>"))))
        for both in ("<interface><name>i</name><endpoint>a</endpoint><endpoint-group>g</endpoint-group></interface>",
                     "<default-endpoint>a</default-endpoint><default-endpoint-group>g</default-endpoint-group>"):
            with pytest.raises(RPCError) as exc:
                m.edit_config(target="running", config=cfg(f"<client>{both}</client>"))
            assert (exc.value.tag, exc.value.type) == ("bad-element", "application"), exc.value.xml
            assert exc.value.path.startswith("/vpp-singbox:singbox/client/")
        m.edit_config(target="running", config=cfg("<client><interface><name>i</name><endpoint>a</endpoint>"
                                                   "</interface></client>"))
        m.edit_config(target="running", config=cfg('<client><interface><name>i</name><endpoint nc:operation="delete"/>'
                                                   "<endpoint-group>g</endpoint-group></interface></client>"))
        assert "<endpoint-group>g</endpoint-group></interface>" in m.get_config(
            "running", filter=("subtree", f'<singbox xmlns="{SBX_NS}"><client><interface/></client></singbox>')).xml
        from lxml import etree

        with pytest.raises(RPCError) as exc:
            m.dispatch(etree.fromstring(f'<copy-config xmlns="{NC}"><target><startup/><candidate/></target>'
                                        "<source><running/></source></copy-config>"))
        assert exc.value.tag == "bad-element"


@pytest.mark.parametrize("body, tag, element", [
    ("<kill-session/>", "missing-element", "session-id"),
    (f'<get-schema xmlns="{MON}"/>', "missing-element", "identifier"),
    ("<kill-session><session-id>77</session-id><session-id>78</session-id></kill-session>", "bad-element",
     "session-id"),
    ("<commit><confirmed/><confirm-timeout>5</confirm-timeout><confirm-timeout>900</confirm-timeout></commit>",
     "bad-element", "confirm-timeout"),
    ("<get-config><source><running/></source><source><candidate/></source></get-config>", "bad-element", "source"),
    (f'<create-subscription xmlns="{NOTIF_NS}"><stream>NETCONF</stream><stream>NETCONF</stream>'
     "</create-subscription>", "bad-element", "stream"),
])
async def test_operation_input_is_validated(netconf_server: ServerInfo, body: str, tag: str, element: str) -> None:
    """RFC 7950 7.14.2/8.3.1 with RFC 6241 Appendix A: an operation's mandatory parameter missing is
    missing-element, a parameter given twice bad-element, each naming the element in error-info; nothing is done.
    libyang's parse of an <rpc> validates none of this: kill-session without session-id looked for session 0, a
    second confirm-timeout or source was ignored, get-schema without identifier looked for the schema ""."""
    client = await RawClient.connect(netconf_server.host, netconf_server.port, ADMIN, ADMIN_PASSWORD)
    try:
        found = errors_of(await client.rpc(body))
        assert [(e["error-tag"], e.get("info:bad-element")) for e in found] == [(tag, element)], found
        # and the session is fine: nothing was started (no confirmed commit is pending, no subscription made)
        found = errors_of(await client.rpc(f'<create-subscription xmlns="{NOTIF_NS}"/>', "2"))
        assert not found, found
        assert errors_of(await client.rpc("<cancel-commit/>", "3"))[0]["error-tag"] == "operation-failed"
    finally:
        await client.close()


@pytest.mark.parametrize("attribute", ['foo="bar"', f'xmlns:b="{NC}" b:foo="bar"'])
async def test_unexpected_attribute_on_an_operation_is_unknown_attribute(netconf_server: ServerInfo,
                                                                          attribute: str) -> None:
    """RFC 6241 Appendix A, unknown-attribute: "An unexpected attribute is present", error-info bad-attribute and
    bad-element. An attribute of no YANG annotation on a parameter element was malformed-message (unqualified) or
    invalid-value (in the base namespace)."""
    client = await RawClient.connect(netconf_server.host, netconf_server.port, ADMIN, ADMIN_PASSWORD)
    try:
        found = errors_of(await client.rpc(f"<get-config><source {attribute}><running/></source></get-config>"))
        assert [(e["error-tag"], e["info:bad-attribute"], e["info:bad-element"]) for e in found] == [
            ("unknown-attribute", "foo", "source")], found
    finally:
        await client.close()


def test_default_tag_on_a_value_that_is_not_the_default_is_invalid_value(netconf_server: ServerInfo) -> None:
    """RFC 6243 4.5.2: a leaf sent with the 'default' attribute true whose value is not the schema default gets
    'invalid-value' (it was stored as an explicit value). What report-all-tagged printed can be sent back as it is."""
    wd = "urn:ietf:params:xml:ns:netconf:default:1.0"
    select = ("subtree", f'<singbox xmlns="{SBX_NS}"><client><endpoint><name>t</name></endpoint></client></singbox>')
    with netconf_server.connect() as m:
        m.edit_config(target="running", config=cfg(endpoint("t", "<port>1081</port>")))
        with pytest.raises(RPCError) as exc:
            m.edit_config(target="running", config=cfg(endpoint("t", f'<port xmlns:wd="{wd}" wd:default="true">'
                                                                      "1090</port>")))
        assert (exc.value.tag, exc.value.path) == ("invalid-value", "/vpp-singbox:singbox/client/endpoint/port")
        assert "<port>1081</port>" in m.get_config("running", filter=select).xml  # nothing changed
        tagged = m.get_config("running", filter=select, with_defaults="report-all-tagged").data_ele
        assert 'default="true">socks5</' in m.get_config("running", filter=select,
                                                          with_defaults="report-all-tagged").xml
        from lxml import etree

        config = etree.Element(f"{{{NC}}}config")
        config.extend(list(tagged))
        m.edit_config(target="running", config=config)  # every tagged leaf holds its default: accepted


async def test_parameter_whose_when_is_false_is_unknown_element(netconf_server: ServerInfo) -> None:
    """RFC 7950 8.3.1: "If data for a node tagged with 'when' is present, and the 'when' condition evaluates to
    'false', the server MUST reply with an 'unknown-element' error-tag", naming the element: get-data's with-origin
    applies to operational only (RFC 8526 3.1.1)."""
    nmda = "urn:ietf:params:xml:ns:yang:ietf-netconf-nmda"
    ds = "urn:ietf:params:xml:ns:yang:ietf-datastores"
    client = await RawClient.connect(netconf_server.host, netconf_server.port, ADMIN, ADMIN_PASSWORD)
    try:
        found = errors_of(await client.rpc(f'<get-data xmlns="{nmda}" xmlns:ds="{ds}"><datastore>ds:running'
                                           "</datastore><with-origin/></get-data>"))
        assert [(e["error-tag"], e["info:bad-element"]) for e in found] == [("unknown-element", "with-origin")], found
    finally:
        await client.close()


def test_error_path_prefixes_are_declared(netconf_server: ServerInfo) -> None:
    """RFC 6241 4.3, error-path: "The XPath expression is interpreted in the following context: ... The set of
    namespace declarations are those in scope on the <rpc-error> element." The server writes module names as the
    path's prefixes; they were declared nowhere, so the path named no node to a client that evaluates it."""
    from lxml import etree

    with netconf_server.connect() as m:
        m.edit_config(target="running", config=cfg(endpoint("a")))
        with pytest.raises(RPCError) as exc:
            m.edit_config(target="running", config=cfg(
                "<client><interface><name>i</name><endpoint>a</endpoint><endpoint-group>g</endpoint-group>"
                "</interface></client>"))
    error = exc.value.xml  # the <rpc-error> element as ncclient's parser read it
    path = error.find(f"{{{NC}}}error-path")
    shown = etree.tostring(error).decode()
    assert path is not None and path.text.startswith("/vpp-singbox:singbox/"), shown
    assert path.nsmap.get("vpp-singbox") == SBX_NS, shown
    # the path selects the node it names once its prefixes are the declared ones
    assert etree.XPath(path.text.strip(), namespaces={"vpp-singbox": SBX_NS}) is not None


@pytest.mark.parametrize("error_option", ["rollback-on-error", "stop-on-error", "continue-on-error"])
async def test_data_exists_and_data_missing_name_their_node(netconf_server: ServerInfo, error_option: str) -> None:
    """RFC 6241 Appendix A, data-exists ("create ... attempted on data that already exists") and data-missing
    ("delete ... on data that does not exist"): error-path "identifies the ... node". sysrepo names the node by its
    name only ('Node "endpoint" to be created already exists.'): the rpc-error carried no error-path (or, with
    stop-/continue-on-error, the whole unit's). Of two creates of one node type, the one refused is named; two
    refusals in one edit are two rpc-errors."""
    with netconf_server.connect() as m:
        m.edit_config(target="running", config=cfg(endpoint("a") + endpoint("b")))
    ep = "/vpp-singbox:singbox/client/endpoint"
    client = await RawClient.connect(netconf_server.host, netconf_server.port, ADMIN, ADMIN_PASSWORD)
    option = f"<error-option>{error_option}</error-option>"
    try:
        cases = [
            # a new endpoint and an existing one, both created: the existing one is refused
            (endpoint("new", op="create") + endpoint("b", "<port>1234</port>", op="create"),
             [("data-exists", f"{ep}[name='b']")]),
            # two endpoints that are not there deleted
            (endpoint("gone", op="delete") + endpoint("away", op="delete"),
             [("data-missing", f"{ep}[name='gone']"), ("data-missing", f"{ep}[name='away']")]),
            # a leaf of an existing endpoint deleted that is not there (an empty element: an opaque node)
            ('<client><endpoint><name>a</name><port nc:operation="delete"/></endpoint></client>',
             [("data-missing", f"{ep}[name='a']/port")]),
        ]
        for n, (edit, expected) in enumerate(cases):
            reply = await client.rpc(f"<edit-config><target><running/></target>{option}{cfg(edit)}</edit-config>",
                                     str(n + 1))
            found = [(e["error-tag"], e.get("error-path")) for e in errors_of(reply)]
            if error_option == "stop-on-error":
                expected = expected[:1]
            assert found == expected, ET.tostring(reply).decode()
        # the refused create changed nothing of the existing node (sysrepo stored the edit's children of it)
        stored = {e["name"]: e for e in running()["singbox"]["client"]["endpoint"]}
        assert "port" not in stored["b"], stored
    finally:
        await client.close()


def test_trim_leaves_out_a_leaf_set_to_its_default(netconf_server: ServerInfo) -> None:
    """RFC 6243 3.2 (trim): a leaf whose value is its schema default is not reported, set explicitly or not; a filter
    selecting exactly that leaf selects nothing (the answer RESTCONF's 404 for the same leaf matches)."""
    select = ("subtree", f'<singbox xmlns="{SBX_NS}"><client><endpoint><name>t</name><port/></endpoint></client>'
                         "</singbox>")
    with netconf_server.connect() as m:
        m.edit_config(target="running", config=cfg(endpoint("t", "<port>1080</port>")))
        assert "<port>1080</port>" in m.get_config("running", filter=select).xml
        trimmed = m.get_config("running", filter=select, with_defaults="trim").xml
        assert "port" not in trimmed, trimmed


async def test_yang_library_lists_the_datastores_get_data_reads(netconf_server: ServerInfo) -> None:
    """RFC 8525: /yang-library/datastore lists each "datastore supported by this server"; RFC 8342 5.1.4 / RFC 8526:
    <intended> (read-only, the same as running without configuration transformations) is one the server serves.
    sysrepo's list left it out and get-data refused it ('Datastore "ietf-datastores:intended" is not supported');
    now every listed datastore is readable with get-data, intended answering as running does."""
    nmda = "urn:ietf:params:xml:ns:yang:ietf-netconf-nmda"
    yl = "urn:ietf:params:xml:ns:yang:ietf-yang-library"
    with netconf_server.connect() as m:
        m.edit_config(target="running", config=cfg(endpoint("yl")))
    client = await RawClient.connect(netconf_server.host, netconf_server.port, ADMIN, ADMIN_PASSWORD)
    try:
        reply = await client.rpc(f'<get-data xmlns="{nmda}" xmlns:ds="urn:ietf:params:xml:ns:yang:ietf-datastores">'
                                 f'<datastore>ds:operational</datastore><subtree-filter><yang-library xmlns="{yl}">'
                                 "<datastore/></yang-library></subtree-filter></get-data>")
        assert not errors_of(reply), errors_of(reply)
        listed = [n.text.strip().partition(":")[2] for n in reply.iter(f"{{{yl}}}name")]
        assert sorted(listed) == ["candidate", "intended", "operational", "running", "startup"], listed
        sbx = f'<subtree-filter><singbox xmlns="{SBX_NS}"><client/></singbox></subtree-filter>'
        bodies = {}
        for name in listed:
            reply = await client.rpc(f'<get-data xmlns="{nmda}" xmlns:ds="urn:ietf:params:xml:ns:yang:'
                                     f'ietf-datastores"><datastore>ds:{name}</datastore>{sbx}</get-data>')
            assert not errors_of(reply), (name, errors_of(reply))
            bodies[name] = ET.tostring(reply[0], encoding="unicode")
        assert "<ns1:name>yl</ns1:name>" in bodies["intended"].replace("ns0:", "ns1:") or "yl" in bodies["intended"]
        assert bodies["intended"] == bodies["running"]
    finally:
        await client.close()


async def test_subscription_errors_carry_their_rfc_8639_identities(netconf_server: ServerInfo) -> None:
    """RFC 8639 2.4.2 / RFC 8640 2.4.3: an establish-subscription to a stream the server does not have fails with
    the identity "stream-unavailable" as error-app-tag (it had none); RFC 8641 4.4.4: resync-subscription of no
    subscription of the session fails with "no-such-subscription-resync" (it was RFC 8639's no-such-subscription);
    delete-, kill- and modify-subscription keep no-such-subscription."""
    sn = "urn:ietf:params:xml:ns:yang:ietf-subscribed-notifications"
    yp = "urn:ietf:params:xml:ns:yang:ietf-yang-push"
    client = await RawClient.connect(netconf_server.host, netconf_server.port, ADMIN, ADMIN_PASSWORD)
    try:
        cases = [
            (f'<establish-subscription xmlns="{sn}"><stream>no-such</stream></establish-subscription>',
             "ietf-subscribed-notifications:stream-unavailable"),
            (f'<resync-subscription xmlns="{yp}"><id>4242</id></resync-subscription>',
             "ietf-yang-push:no-such-subscription-resync"),
            (f'<delete-subscription xmlns="{sn}"><id>4242</id></delete-subscription>',
             "ietf-subscribed-notifications:no-such-subscription"),
            (f'<kill-subscription xmlns="{sn}"><id>4242</id></kill-subscription>',
             "ietf-subscribed-notifications:no-such-subscription"),
        ]
        for n, (body, app_tag) in enumerate(cases):
            found = errors_of(await client.rpc(body, str(n + 1)))
            assert [(e["error-tag"], e.get("error-app-tag")) for e in found] == [("invalid-value", app_tag)], found
    finally:
        await client.close()


@pytest.mark.parametrize("body, attribute, element", [
    (f'<edit-config><target><running/></target>{cfg("<client><endpoint nc:operation=\"bogus\"><name>z</name>"
                                                     "</endpoint></client>")}</edit-config>', "operation", "endpoint"),
    ('<get><filter type="bogus"/></get>', "type", "filter"),
])
async def test_a_bad_attribute_value_is_bad_attribute(netconf_server: ServerInfo, body: str, attribute: str,
                                                      element: str) -> None:
    """RFC 6241 Appendix A, bad-attribute: "An attribute value is not correct; e.g., wrong type, out of range,
    pattern mismatch", error-info bad-attribute and bad-element. A value libyang refused in an attribute
    (nc:operation="bogus", a filter's type) was invalid-value naming the attribute as a path step."""
    client = await RawClient.connect(netconf_server.host, netconf_server.port, ADMIN, ADMIN_PASSWORD)
    try:
        found = errors_of(await client.rpc(body))
        assert [(e["error-tag"], e.get("info:bad-attribute"), e.get("info:bad-element")) for e in found] == [
            ("bad-attribute", attribute, element)], found
        assert "/@" not in found[0].get("error-path", ""), found
    finally:
        await client.close()


def test_timeout_rollback_is_not_credited_to_the_lock_holder(netconf_server: ServerInfo) -> None:
    """RFC 6470 netconf-config-change: changed-by names who caused the edits; a confirmed commit's timeout rollback
    (RFC 6241 8.4) is the server's doing. When the issuing session held the lock, the rollback ran on its sysrepo
    session, marked with its user and session-id, so the notification credited that session with undoing its own
    commit. The edits listed are exactly what the rollback changed."""
    from lxml import etree

    nn = "urn:ietf:params:xml:ns:yang:ietf-netconf-notifications"
    with netconf_server.connect() as m, netconf_server.connect() as watcher:
        watcher.create_subscription()
        m.lock("running")
        m.lock("candidate")
        m.edit_config(target="candidate", config=cfg(endpoint("rb")))
        m.commit(confirmed=True, timeout="1")
        changes = []
        for _ in range(6):  # the commit's config-change, the confirmed-commit start, the rollback's, timeout
            n = watcher.take_notification(timeout=30)
            assert n is not None
            event = etree.fromstring(n.notification_xml.encode())
            change = event.find(f"{{{nn}}}netconf-config-change")
            if change is not None:
                changes.append(change)
            if event.find(f"{{{nn}}}netconf-confirmed-commit/{{{nn}}}confirm-event") is not None and \
                    event.findtext(f"{{{nn}}}netconf-confirmed-commit/{{{nn}}}confirm-event") == "timeout":
                break
        assert len(changes) == 2, [etree.tostring(c) for c in changes]
        commit, rollback = changes
        assert commit.findtext(f"{{{nn}}}changed-by/{{{nn}}}session-id") == str(m.session_id)
        assert rollback.findtext(f"{{{nn}}}changed-by/{{{nn}}}session-id") == "0", etree.tostring(rollback)
        targets = [e.findtext(f"{{{nn}}}target") for e in rollback.iter(f"{{{nn}}}edit")]
        assert targets and all(":name='rb']" in t for t in targets), targets  # the rolled-back endpoint alone
        assert {e.findtext(f"{{{nn}}}operation") for e in rollback.iter(f"{{{nn}}}edit")} == {"delete"}
    assert endpoints() == []

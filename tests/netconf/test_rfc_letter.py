"""NETCONF to the letter of RFC 6241, RFC 7950 and RFC 8341 on points a fresh audit found wrong: each test names the
clause it checks and failed on the code before its fix."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from lxml import etree
from ncclient.operations.rpc import RPCError

from tests.netconf.conftest import ADMIN, ADMIN_PASSWORD, SBX_NS, ServerInfo, running_server
from tests.netconf.helpers import cfg, endpoint
from tests.netconf.rawclient import NC, RawClient, errors_of

ACM = "urn:ietf:params:xml:ns:yang:ietf-netconf-acm"
YANG = "urn:ietf:params:xml:ns:yang:1"


async def test_every_rpc_attribute_comes_back_with_its_xmlns(netconf_server: ServerInfo) -> None:
    """RFC 6241 4.1: "If additional attributes are present in an <rpc> element, a NETCONF peer MUST return them
    unmodified in the <rpc-reply> element. This includes any "xmlns" attributes." (4.2's example: xmlns:ex and
    ex:user-id come back as given). The reply declared the attribute's namespace under a prefix of its own (a0)
    and dropped the rpc's declarations."""
    client = await RawClient.connect(netconf_server.host, netconf_server.port, ADMIN, ADMIN_PASSWORD)
    try:
        client.send(f'<rpc message-id="101" xmlns="{NC}" xmlns:ex="http://example.net/content/1.0" '
                    f'ex:user-id="fred"><get-config><source><running/></source></get-config></rpc>'.encode())
        raw = (await client.recv()).decode()
        start = raw[:raw.index(">") + 1]
        assert 'xmlns:ex="http://example.net/content/1.0"' in start and 'ex:user-id="fred"' in start, start
        assert 'message-id="101"' in start
    finally:
        await client.close()


async def test_an_xml_lang_attribute_comes_back_as_xml_lang(netconf_server: ServerInfo) -> None:
    """RFC 6241 4.1 returns every <rpc> attribute; xml:lang came back as a0:lang with xmlns:a0 bound to the XML
    namespace, which Namespaces in XML forbids: no parser (lxml, hence ncclient) accepted the reply."""
    client = await RawClient.connect(netconf_server.host, netconf_server.port, ADMIN, ADMIN_PASSWORD)
    try:
        client.send(f'<rpc message-id="7" xml:lang="en" xmlns="{NC}"><get-config><source><running/></source>'
                    "</get-config></rpc>".encode())
        raw = await client.recv()
        reply = etree.fromstring(raw)  # well-formed and namespace-valid
        assert reply.get("{http://www.w3.org/XML/1998/namespace}lang") == "en" and reply.get("message-id") == "7"
    finally:
        await client.close()


def test_unqualified_subtree_filter_matches_every_namespace(netconf_server: ServerInfo) -> None:
    """RFC 6241 6.2.1: "If an element within the <filter> element is not qualified by a namespace (e.g.,
    xmlns=""), then the server MUST evaluate all the XML namespaces it supports". Such a filter selected nothing."""
    with netconf_server.connect() as m:
        m.edit_config(target="running", config=cfg(endpoint("wild")))
        data = m.get_config("running", filter=("subtree", '<singbox xmlns=""><client/></singbox>')).data_xml
        assert "<name>wild</name>" in data and SBX_NS in data
        # nested unqualified elements, and a second module's top-level node in the same filter
        data = m.get_config("running", filter=(
            f'<filter xmlns="{NC}" type="subtree"><singbox xmlns=""><client><endpoint><name>wild</name></endpoint></client>'
            '</singbox><nacm xmlns=""><enable-nacm/></nacm></filter>')).data_xml
        assert "<address>198.18.0.1</address>" in data and "<enable-nacm>true</enable-nacm>" in data


def _oper_user(m: object) -> None:
    rule = ("<rule><name>no-kill</name><module-name>ietf-netconf</module-name><rpc-name>kill-session</rpc-name>"
            "<access-operations>exec</access-operations><action>deny</action></rule>")
    m.edit_config(target="running", config=(  # type: ignore[attr-defined]
        f'<config xmlns="{NC}"><system xmlns="urn:ietf:params:xml:ns:yang:ietf-system"><authentication><user>'
        "<name>oper</name><password>$0$oper-pw</password></user></authentication></system>"
        f'<nacm xmlns="{ACM}"><groups><group><name>operators</name><user-name>oper</user-name></group></groups>'
        f"<rule-list><name>operators</name><group>operators</group>{rule}</rule-list></nacm></config>"))


def test_operation_denied_by_nacm_names_it_in_error_path(netconf_server: ServerInfo) -> None:
    """RFC 8341 3.4.4: an operation the user may not invoke is access-denied with "error-path: Identifies the
    requested protocol operation" (its example: /nc:rpc/nc:edit-config, nc the base namespace). There was no
    error-path."""
    with netconf_server.connect() as admin:
        _oper_user(admin)
        with netconf_server.connect(user="oper", password="oper-pw") as oper:
            with pytest.raises(RPCError) as exc:
                oper.kill_session(admin.session_id)
    assert exc.value.tag == "access-denied"
    xml = etree.tostring(exc.value.xml).decode()
    path = ET.fromstring(xml).find(f"{{{NC}}}error-path")
    assert path is not None, xml
    steps = re.fullmatch(r"/([\w.-]+):rpc/([\w.-]+):kill-session", (path.text or "").strip())
    assert steps is not None, path.text
    declared = re.findall(r'xmlns:([\w.-]+)="([^"]+)"', xml)
    assert (steps.group(1), NC) in declared and (steps.group(2), NC) in declared, xml


def _error_info(exc: RPCError) -> ET.Element:
    xml = etree.tostring(exc.xml).decode()
    info = ET.fromstring(xml).find(f"{{{NC}}}error-info")
    assert info is not None, xml
    return info


@pytest.mark.parametrize("content, tag, info", [
    # RFC 7950 8.3.1: a list entry without its key is missing-element; RFC 6241 Appendix A: <bad-element> names it
    (f'<singbox xmlns="{SBX_NS}"><client><endpoint><address>198.18.0.1</address></endpoint></client></singbox>',
     "missing-element", {"bad-element": "name"}),
    (f'<singbox xmlns="{SBX_NS}"><client><endpoint><name>q</name></endpoint></client></singbox>',
     "missing-element", {"bad-element": "address"}),
    (f'<singbox xmlns="{SBX_NS}"><bogus/></singbox>', "unknown-element", {"bad-element": "bogus"}),
    ('<foo xmlns="urn:example:unknown"/>', "unknown-namespace",
     {"bad-element": "foo", "bad-namespace": "urn:example:unknown"}),
    (f'<singbox xmlns="{SBX_NS}"><client><x:bogus xmlns:x="urn:example:unknown"/></client></singbox>',
     "unknown-namespace", {"bad-element": "bogus", "bad-namespace": "urn:example:unknown"}),
])
def test_mandatory_error_info_is_given(netconf_server: ServerInfo, content: str, tag: str,
                                       info: dict[str, str]) -> None:
    """RFC 6241 Appendix A lists the error-info each error-tag must carry: <bad-element> for missing-element and
    unknown-element, <bad-element> and <bad-namespace> for unknown-namespace. Errors from libyang's edit parse and
    validation carried none."""
    with netconf_server.connect() as m:
        with pytest.raises(RPCError) as exc:
            m.edit_config(target="running", config=f'<config xmlns="{NC}">{content}</config>')
    assert exc.value.tag == tag, etree.tostring(exc.value.xml)
    got = {child.tag.rpartition("}")[2]: child.text for child in _error_info(exc.value)}
    assert got == info


def test_unique_violation_lists_each_non_unique_leaf(netconf_server: ServerInfo) -> None:
    """RFC 7950 15.1: a "unique" violation is operation-failed, data-not-unique, and error-info holds
    "<non-unique>: Contains an instance identifier that points to a leaf that invalidates the "unique" constraint.
    This element is present once for each non-unique leaf", in the YANG namespace. There was no error-info."""
    listen = "<listen><name>{}</name><address>127.0.0.1</address></listen>"
    with netconf_server.connect() as m:
        with pytest.raises(RPCError) as exc:
            m.edit_config(target="running", config=cfg("<server>" + listen.format("l1") + listen.format("l2")
                                                       + "</server>"))
    assert (exc.value.tag, exc.value.app_tag) == ("operation-failed", "data-not-unique")
    xml = etree.tostring(exc.value.xml).decode()
    leaves = ET.fromstring(xml).findall(f"{{{NC}}}error-info/{{{YANG}}}non-unique")
    assert sorted((leaf.text or "").rpartition("/")[2] for leaf in leaves) == ["address", "port"], xml
    for leaf in leaves:  # an instance identifier of the entry the error-path names, its prefix declared
        assert (leaf.text or "").startswith("/vpp-singbox:singbox/server/listen[name='l"), leaf.text
    assert f'xmlns:vpp-singbox="{SBX_NS}"' in xml


def test_missing_mandatory_choice_names_it(netconf_server: ServerInfo) -> None:
    """RFC 7950 15.6: no data in a mandatory choice is data-missing, missing-choice, with error-info
    "<missing-choice>: Contains the name of the missing mandatory choice", in the YANG namespace (ietf-keystore's
    asymmetric key has the mandatory choice private-key-type). There was no error-info."""
    ks = "urn:ietf:params:xml:ns:yang:ietf-keystore"
    with netconf_server.connect() as m:
        with pytest.raises(RPCError) as exc:
            m.edit_config(target="running", config=f'<config xmlns="{NC}"><keystore xmlns="{ks}"><asymmetric-keys>'
                                                   "<asymmetric-key><name>k2</name></asymmetric-key>"
                                                   "</asymmetric-keys></keystore></config>")
    assert (exc.value.tag, exc.value.app_tag) == ("data-missing", "missing-choice")
    choice = _error_info(exc.value).find(f"{{{YANG}}}missing-choice")
    assert choice is not None and choice.text == "private-key-type"


def _nacm_edit(inner: str) -> str:
    return (f'<config xmlns="{NC}"><nacm xmlns="{ACM}" xmlns:yang="{YANG}">{inner}</nacm></config>')


def _rule_lists(m: object) -> list[str]:
    data = m.get_config("running", filter=("subtree", f'<nacm xmlns="{ACM}"><rule-list><name/></rule-list></nacm>'))  # type: ignore[attr-defined]
    return re.findall(r"<name>([^<]+)</name>", data.data_xml)


@pytest.mark.parametrize("error_option", [None, "stop-on-error"])
def test_insert_next_to_a_missing_entry_is_bad_attribute_missing_instance(netconf_server: ServerInfo,
                                                                         error_option: str | None) -> None:
    """RFC 7950 15.7: "If the "insert" and "key" or "value" attributes are used in an <edit-config> for a list or
    leaf-list node and the "key" or "value" refers to an instance that does not exist", the error is bad-attribute,
    error-app-tag missing-instance (it was data-missing with no error-path). NACM's rule-list is ordered by the
    user."""
    with netconf_server.connect() as m:
        before = _rule_lists(m)
        with pytest.raises(RPCError) as exc:
            m.edit_config(target="running", error_option=error_option, config=_nacm_edit(
                """<rule-list yang:insert="before" yang:key="[name='nosuch']"><name>new</name></rule-list>"""))
        assert (exc.value.tag, exc.value.app_tag) == ("bad-attribute", "missing-instance")
        assert exc.value.path == "/ietf-netconf-acm:nacm/rule-list[name='new']"
        got = {child.tag.rpartition("}")[2]: child.text for child in _error_info(exc.value)}
        assert got == {"bad-attribute": "key", "bad-element": "rule-list"}
        assert _rule_lists(m) == before
        # the same insert next to an entry that exists
        m.edit_config(target="running", config=_nacm_edit(
            f"""<rule-list yang:insert="before" yang:key="[name='{before[0]}']"><name>new</name></rule-list>"""))
        assert _rule_lists(m) == ["new", *before]


def test_insert_needs_its_key_and_an_ordered_by_user_list(netconf_server: ServerInfo) -> None:
    """RFC 7950 7.8.6: with insert "before" or "after" "the "key" attribute MUST also be used" (RFC 6241 Appendix A:
    missing-attribute; it was operation-failed); RFC 7950 8.3.1: insert attributes "in any element that is not a
    list whose "ordered-by" property is "user"" are unknown-attribute (NACM's groups are ordered by the system:
    the edit was applied and answered <ok/>)."""
    with netconf_server.connect() as m:
        with pytest.raises(RPCError) as exc:
            m.edit_config(target="running", config=_nacm_edit(
                '<rule-list yang:insert="after"><name>new</name></rule-list>'))
        assert exc.value.tag == "missing-attribute"
        assert {c.tag.rpartition("}")[2]: c.text for c in _error_info(exc.value)} == {
            "bad-attribute": "key", "bad-element": "rule-list"}
        with pytest.raises(RPCError) as exc:
            m.edit_config(target="running", config=_nacm_edit(
                '<groups><group yang:insert="first"><name>g</name></group></groups>'))
        assert exc.value.tag == "unknown-attribute"
        assert {c.tag.rpartition("}")[2]: c.text for c in _error_info(exc.value)} == {
            "bad-attribute": "insert", "bad-element": "group"}
        assert "<name>g</name>" not in m.get_config("running", filter=(
            "subtree", f'<nacm xmlns="{ACM}"><groups/></nacm>')).data_xml
        m.edit_config(target="running", config=_nacm_edit(  # insert first needs no key
            '<rule-list yang:insert="first"><name>first</name></rule-list>'))
        assert _rule_lists(m)[0] == "first"


def test_switching_cases_with_the_old_leaf_deleted_by_value(netconf_server: ServerInfo) -> None:
    """RFC 7950 8.3.1 / 8.2: a choice holds one case; an edit may switch cases, deleting the old one. Deleting the
    old case's leaf with its value (<endpoint nc:operation="delete">a</endpoint>, as a client that read it back
    sends it) failed with "Internal error." (the case check read the operation through a field the cffi
    declaration lacks); deleting it empty worked."""
    group = "<endpoint-group><name>g</name><member><endpoint>a</endpoint></member></endpoint-group>"
    with netconf_server.connect() as m:
        m.edit_config(target="running", config=cfg(endpoint("a") + f"<client>{group}<interface><name>i</name>"
                                                                  "<endpoint>a</endpoint></interface></client>"))
        m.edit_config(target="running", config=cfg(
            '<client><interface><name>i</name><endpoint nc:operation="delete">a</endpoint>'
            "<endpoint-group>g</endpoint-group></interface></client>"))
        data = m.get_config("running", filter=(
            "subtree", f'<singbox xmlns="{SBX_NS}"><client><interface/></client></singbox>')).data_xml
        assert "<endpoint-group>g</endpoint-group>" in data and "<endpoint>a</endpoint>" not in data


EXAMPLE_NS = "urn:example:letter"
EXAMPLE = f"""module letter {{
  yang-version 1.1;
  namespace "{EXAMPLE_NS}";
  prefix lt;
  revision 2026-01-01;
  container top {{
    leaf mode {{ type enumeration {{ enum a; enum b; }} default a; }}
    leaf only-b {{ when "../mode = 'b'"; type string; }}
    leaf-list order {{ type string; ordered-by user; }}
    leaf val {{ type int32 {{ range "1..10" {{ error-message "val out of range"; error-app-tag "val-range"; }} }} }}
    leaf code {{ type string {{ length "2..4" {{ error-app-tag "code-length"; }}
                               pattern "[a-z]+" {{ error-app-tag "code-lower"; }} }} }}
    list act-list {{
      key name;
      leaf name {{ type string; }}
      action reset {{ input {{ leaf delay {{ type uint8; }} }} }}
    }}
  }}
}}
"""


@pytest.fixture
def example_server(sysrepo_instance: Any, tmp_path: Path) -> Iterator[ServerInfo]:
    """The server with one more module installed: what the product's modules lack (type restrictions with an
    error-app-tag, a config "when", a leaf-list ordered by the user, an action). The server is generic over every
    module sysrepo holds."""
    module = tmp_path / "letter@2026-01-01.yang"
    module.write_text(EXAMPLE)
    sysrepo_instance.install_modules([module])
    with running_server(sysrepo_instance, tmp_path) as info:
        yield info


def _letter(inner: str) -> str:
    return f'<config xmlns="{NC}"><top xmlns="{EXAMPLE_NS}" xmlns:yang="{YANG}">{inner}</top></config>'


@pytest.mark.parametrize("content, app_tag, message", [
    ("<val>11</val>", "val-range", "val out of range"),  # the restriction's error-message and error-app-tag
    ("<code>abcdef</code>", "code-length", None),  # an error-app-tag without error-message: libyang's words
    ("<code>XY</code>", "code-lower", None),
])
def test_a_value_its_type_refuses_carries_the_restrictions_app_tag(example_server: ServerInfo, content: str,
                                                                   app_tag: str, message: str | None) -> None:
    """RFC 7950 8.3.1: a value that does not match its type's range, length or pattern is invalid-value "with the
    error-app-tag (Section 7.5.4.2) and error-message (Section 7.5.4.1) associated with the constraint, if any
    exist". The error-message came through, the error-app-tag never (libyang-python drops it)."""
    with example_server.connect() as m:
        with pytest.raises(RPCError) as exc:
            m.edit_config(target="running", config=_letter(content))
    assert (exc.value.tag, exc.value.app_tag) == ("invalid-value", app_tag), etree.tostring(exc.value.xml)
    if message is not None:
        assert exc.value.message == message


def test_two_actions_in_one_rpc_are_bad_element(example_server: ServerInfo) -> None:
    """RFC 7950 7.15.2: "If more than one action is present in the <rpc>, the server MUST reply with a
    "bad-element" <error-tag> in the <rpc-error>." It was invalid-value."""
    two = (f'<action xmlns="{YANG}"><top xmlns="{EXAMPLE_NS}"><act-list><name>n1</name><reset/></act-list>'
           "<act-list><name>n2</name><reset/></act-list></top></action>")
    with example_server.connect() as m:
        m.edit_config(target="running", config=_letter("<act-list><name>n1</name></act-list>"
                                                       "<act-list><name>n2</name></act-list>"))
        with pytest.raises(RPCError) as exc:
            m.dispatch(etree.fromstring(two))
    assert exc.value.tag == "bad-element"
    assert {c.tag.rpartition("}")[2]: c.text for c in _error_info(exc.value)} == {"bad-element": "reset"}


def test_when_false_and_leaf_list_insert_errors(example_server: ServerInfo) -> None:
    """RFC 7950 8.3.1: data whose "when" is false is unknown-element, naming it in <bad-element> (RFC 6241
    Appendix A; there was no error-info); 15.7 for a leaf-list: an insert whose "value" names no entry is
    bad-attribute / missing-instance naming the value attribute."""
    with example_server.connect() as m:
        with pytest.raises(RPCError) as exc:
            m.edit_config(target="running", config=_letter("<only-b>x</only-b>"))
        assert exc.value.tag == "unknown-element"
        assert {c.tag.rpartition("}")[2]: c.text for c in _error_info(exc.value)} == {"bad-element": "only-b"}
        m.edit_config(target="running", config=_letter("<order>a</order><order>b</order>"))
        with pytest.raises(RPCError) as exc:
            m.edit_config(target="running", config=_letter('<order yang:insert="before" yang:value="zz">c</order>'))
        assert (exc.value.tag, exc.value.app_tag) == ("bad-attribute", "missing-instance")
        assert {c.tag.rpartition("}")[2]: c.text for c in _error_info(exc.value)} == {
            "bad-attribute": "value", "bad-element": "order"}
        m.edit_config(target="running", config=_letter('<order yang:insert="after" yang:value="a">c</order>'))
        data = m.get_config("running", filter=("subtree", f'<top xmlns="{EXAMPLE_NS}"><order/></top>')).data_xml
        assert re.findall(r"<order>(\w)</order>", data) == ["a", "c", "b"]

"""RFC 8526 get-data on the operational datastore: origin-filter, negated-origin-filter, with-origin (ncclient).

Operational data with origin `or:learned` is pushed into sysrepo by this test's own session (as a routing daemon
would push learned entries); configuration from running has origin `or:intended`.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import sysrepo
from lxml import etree
from ncclient.operations.rpc import RPCError

from tests.netconf.conftest import SBX_NS, ServerInfo
from tests.netconf.helpers import cfg, endpoint

NMDA = "urn:ietf:params:xml:ns:yang:ietf-netconf-nmda"
OR_NS = "urn:ietf:params:xml:ns:yang:ietf-origin"
DS_NS = "urn:ietf:params:xml:ns:yang:ietf-datastores"
EP = "/vpp-singbox:singbox/client/endpoint"


def accept(event: str, req_id: int, changes: Any, private_data: Any) -> None:
    return None


@pytest.fixture
def learned(netconf_server: ServerInfo) -> Iterator[None]:
    """conf-ep configured (intended); learned-ep pushed into operational with origin learned."""
    with netconf_server.connect() as m:
        m.edit_config(target="running", config=cfg(endpoint("conf-ep")))
    with sysrepo.SysrepoConnection() as conn:
        # sysrepo shows a module's configuration in operational only while someone subscribes to its changes (the
        # agent, in the product)
        running = conn.start_session("running")
        running.subscribe_module_change("vpp-singbox", "/vpp-singbox:singbox", accept)
        sess = conn.start_session("operational")
        ctx: Any
        with conn.get_ly_ctx() as ctx:
            tree = ctx.create_data_path(f"{EP}[name='learned-ep']/address", value="198.18.0.9")
            tree.root().find_path(f"{EP}[name='learned-ep']").new_meta("ietf-origin:origin", "ietf-origin:learned")
            # The pusher only passes through /singbox: it says so, or sysrepo's default origin for pushed nodes
            # (or:unknown) would replace running's or:intended on that container and everything inheriting it.
            tree.root().new_meta("ietf-origin:origin", "ietf-origin:intended")
            sess.edit_batch_ly(tree.root(), "merge")
            sess.apply_changes()
            tree.root().free()
        try:
            yield  # pushed operational data lives as long as the session that pushed it
        finally:
            sess.stop()
            running.stop()


def get_data(m: Any, extra: str, datastore: str = "operational") -> str:
    reply = m.dispatch(etree.fromstring(
        f'<get-data xmlns="{NMDA}" xmlns:ds="{DS_NS}" xmlns:or="{OR_NS}"><datastore>ds:{datastore}</datastore>'
        f'<subtree-filter><singbox xmlns="{SBX_NS}"><client/></singbox></subtree-filter>{extra}</get-data>'))
    return str(reply.xml)


def entries(xml: str) -> dict[str, dict[str, str]]:
    """endpoint name -> {leaf: value, "@origin": origin attribute if any} from a get-data reply."""
    root = etree.fromstring(xml.encode())
    out: dict[str, dict[str, str]] = {}
    for ep in root.iter(f"{{{SBX_NS}}}endpoint"):
        leaves = {etree.QName(c).localname: (c.text or "") for c in ep}
        origin = ep.get(f"{{{OR_NS}}}origin")
        if origin is not None:
            leaves["@origin"] = origin
        out[leaves["name"]] = leaves
    return out


def test_origin_feature_is_advertised(netconf_server: ServerInfo) -> None:
    with netconf_server.connect() as m:
        nmda = [c for c in m.server_capabilities if c.startswith(NMDA + "?")]
        assert nmda and "origin" in nmda[0].split("features=")[1]


def test_without_origin_options_nothing_is_annotated(netconf_server: ServerInfo, learned: None) -> None:
    with netconf_server.connect() as m:
        xml = get_data(m, "")
        got = entries(xml)
        assert got == {"conf-ep": {"name": "conf-ep", "address": "198.18.0.1"},
                       "learned-ep": {"name": "learned-ep", "address": "198.18.0.9"}}
        assert OR_NS not in xml


def test_with_origin_annotates(netconf_server: ServerInfo, learned: None) -> None:
    with netconf_server.connect() as m:
        xml = get_data(m, "<with-origin/>")
        got = entries(xml)
        assert got["learned-ep"]["@origin"] == "or:learned", xml
        assert got["conf-ep"] == {"name": "conf-ep", "address": "198.18.0.1"}  # inherits (RFC 8342 5.3.4)
        assert "<port" not in xml  # defaults stay out in the basic mode, annotated or not
        root = etree.fromstring(xml.encode())
        (singbox,) = root.iter(f"{{{SBX_NS}}}singbox")
        assert singbox.get(f"{{{OR_NS}}}origin") == "or:intended"


def test_origin_filter_keeps_matching_nodes_with_their_ancestors(netconf_server: ServerInfo, learned: None) -> None:
    with netconf_server.connect() as m:
        xml = get_data(m, "<origin-filter>or:learned</origin-filter>")
        got = entries(xml)
        assert got == {"learned-ep": {"name": "learned-ep", "address": "198.18.0.9"}}, xml
        assert "<singbox" in xml and "<client>" in xml  # the path to it


def test_negated_origin_filter(netconf_server: ServerInfo, learned: None) -> None:
    with netconf_server.connect() as m:
        xml = get_data(m, "<negated-origin-filter>or:learned</negated-origin-filter>")
        got = entries(xml)
        assert got == {"conf-ep": {"name": "conf-ep", "address": "198.18.0.1"}}, xml
        assert OR_NS not in xml  # filtered, but not annotated without with-origin


def test_several_origin_filter_values_match_any(netconf_server: ServerInfo, learned: None) -> None:
    with netconf_server.connect() as m:
        got = entries(get_data(m, "<origin-filter>or:intended</origin-filter><origin-filter>or:learned"
                                  "</origin-filter>"))
        assert got == {"conf-ep": {"name": "conf-ep", "address": "198.18.0.1"},
                       "learned-ep": {"name": "learned-ep", "address": "198.18.0.9"}}


def test_default_origin_with_defaults(netconf_server: ServerInfo, learned: None) -> None:
    """Default nodes carry or:default; they are selected when the with-defaults mode reports them."""
    with netconf_server.connect() as m:
        xml = get_data(m, "<origin-filter>or:default</origin-filter><with-defaults>report-all</with-defaults>")
        got = entries(xml)
        assert got["conf-ep"]["port"] == "1080" and "address" not in got["conf-ep"], xml
        assert "learned-ep" not in got
        assert entries(get_data(m, "<origin-filter>or:default</origin-filter>")) == {}


def test_origin_options_refused_on_conventional_datastores(netconf_server: ServerInfo) -> None:
    with netconf_server.connect() as m:
        for extra in ("<with-origin/>", "<origin-filter>or:intended</origin-filter>"):
            with pytest.raises(RPCError) as exc:
                get_data(m, extra, datastore="running")
            assert exc.value.tag == "unknown-element"  # their "when" is false there: RFC 7950 8.3.1

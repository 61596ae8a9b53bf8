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


def test_xpath_literal_with_both_quotes() -> None:
    assert datastore._xpath_literal("a'b\"c") == "concat('a', \"'\", 'b\"c')"


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

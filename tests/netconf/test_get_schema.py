"""<get-schema> and ietf-netconf-monitoring (RFC 6022), ietf-yang-library."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from lxml import etree
from ncclient.operations.rpc import RPCError

from singbox_agent.repository import SysrepoInstance
from tests.netconf.conftest import SBX_NS, ServerInfo, running_server
from tests.netconf.helpers import error_tag

NCM = "urn:ietf:params:xml:ns:yang:ietf-netconf-monitoring"
YIN = "urn:ietf:params:xml:ns:yang:yin:1"


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


def test_errors_do_not_echo_a_huge_input(netconf_server: ServerInfo) -> None:
    """get-schema's error quoted the identifier whole (100 KB back for 100 KB in); errors quote at most a bounded
    part of what a client sent, libyang's own (an invalid 100 KB value) too, and say how long it was."""
    huge = "m" * 100_000
    ncm = "urn:ietf:params:xml:ns:yang:ietf-netconf-monitoring"
    with netconf_server.connect() as m:
        for inner in (f"<identifier>{huge}</identifier>",
                      f"<identifier>vpp-singbox</identifier><version>{huge}</version>",
                      f"<identifier>vpp-singbox</identifier><format>{huge}</format>"):
            with pytest.raises(RPCError) as exc:
                m.dispatch(etree.fromstring(f'<get-schema xmlns="{ncm}">{inner}</get-schema>'))
            assert error_tag(exc.value) == "invalid-value"
            size = len(etree.tostring(exc.value.xml))
            assert size < 2000 and "100000 characters" in str(exc.value.message), size
        config = (f'<config><singbox xmlns="{SBX_NS}"><client><endpoint><name>e</name><address>198.18.0.1</address>'
                  f"<port>{'9' * 100_000}</port></endpoint></client></singbox></config>")
        with pytest.raises(RPCError) as exc:
            m.edit_config(target="running", config=config)
        assert len(etree.tostring(exc.value.xml)) < 4000, etree.tostring(exc.value.xml)[:300]
        assert m.get_schema("vpp-singbox").data.startswith("module vpp-singbox {")


# Two revisions of one module in the context (gs-main@2026-02-01 implemented, gs-main@2026-01-01 import-only through
# gs-user's import), each with its own revision of the submodule gs-sub.
GS_NS = "urn:example:gs-main"
GS_FILES = {
    "gs-main@2026-01-01.yang": f"""module gs-main {{
  yang-version 1.1; namespace "{GS_NS}"; prefix gm;
  include gs-sub {{ revision-date 2026-01-01; }}
  revision 2026-01-01;
  container old {{ leaf a {{ type string; }} }}
}}
""",
    "gs-main@2026-02-01.yang": f"""module gs-main {{
  yang-version 1.1; namespace "{GS_NS}"; prefix gm;
  include gs-sub {{ revision-date 2026-02-01; }}
  revision 2026-02-01;
  revision 2026-01-01;
  container new {{ leaf b {{ type string; }} }}
}}
""",
    "gs-sub@2026-01-01.yang": """submodule gs-sub {
  yang-version 1.1; belongs-to gs-main { prefix gm; }
  revision 2026-01-01;
  leaf sub-old { type string; }
}
""",
    "gs-sub@2026-02-01.yang": """submodule gs-sub {
  yang-version 1.1; belongs-to gs-main { prefix gm; }
  revision 2026-02-01;
  revision 2026-01-01;
  leaf sub-new { type string; }
}
""",
    "gs-user@2026-01-01.yang": """module gs-user {
  yang-version 1.1; namespace "urn:example:gs-user"; prefix gu;
  import gs-main { prefix gm; revision-date 2026-01-01; }
  revision 2026-01-01;
  leaf u { type string; }
}
""",
}


@pytest.fixture
def gs_server(sysrepo_instance: SysrepoInstance, tmp_path: Path) -> Iterator[ServerInfo]:
    """The server over a context holding two revisions of a module and of its submodule."""
    yang = tmp_path / "yang"
    yang.mkdir()
    for name, text in GS_FILES.items():
        (yang / name).write_text(text)
    sysrepo_instance.install_modules([yang / "gs-main@2026-02-01.yang", yang / "gs-user@2026-01-01.yang"], [yang])
    with running_server(sysrepo_instance, tmp_path) as info:
        yield info


def _get_schema(m: object, identifier: str, version: str | None = None, fmt: str | None = None) -> etree._Element:
    inner = f"<identifier>{identifier}</identifier>"
    if version is not None:
        inner += f"<version>{version}</version>"
    if fmt is not None:
        inner += f"<format>{fmt}</format>"  # the default namespace: ietf-netconf-monitoring
    reply = m.dispatch(etree.fromstring(f'<get-schema xmlns="{NCM}">{inner}</get-schema>'))  # type: ignore[attr-defined]
    data = etree.fromstring(reply.xml.encode()).find(f"{{{NCM}}}data")
    assert data is not None, reply.xml
    return data


def _rpc_error(m: object, identifier: str, version: str | None = None, fmt: str | None = None) -> RPCError:
    with pytest.raises(RPCError) as exc:
        _get_schema(m, identifier, version, fmt)
    return exc.value


def test_yin_is_xml_content_of_data(netconf_server: ServerInfo) -> None:
    """format yin: the YIN document is the XML content of <data> (anyxml), not text escaped into it; YANG stays
    text. The reply had `&lt;module name=...` as <data>'s text."""
    with netconf_server.connect() as m:
        data = _get_schema(m, "vpp-singbox", fmt="yin")
        modules = list(data)
        assert len(modules) == 1 and modules[0].tag == f"{{{YIN}}}module", etree.tostring(data)[:300]
        assert modules[0].get("name") == "vpp-singbox" and not (data.text or "").strip()
        assert modules[0].find(f"{{{YIN}}}namespace").get("uri") == SBX_NS
        yang = _get_schema(m, "vpp-singbox", fmt="yang")
        assert len(yang) == 0 and (yang.text or "").startswith("module vpp-singbox {")
        assert _get_schema(m, "vpp-singbox").text == yang.text  # no format: YANG


def test_versions_and_submodules(gs_server: ServerInfo) -> None:
    """RFC 6022: a submodule is a schema (identifier its name, its module's namespace) served by get-schema and
    listed; an identifier with more than one version and no <version> is operation-failed/data-not-unique (the
    implemented revision was chosen silently); an unknown version or format is invalid-value."""
    with gs_server.connect() as m:
        with pytest.raises(RPCError) as exc:
            m.get_schema("gs-main")
        assert error_tag(exc.value) == "operation-failed" and exc.value.app_tag == "data-not-unique", exc.value.xml
        assert "2026-01-01" in str(exc.value.message) and "2026-02-01" in str(exc.value.message)
        new = m.get_schema("gs-main", version="2026-02-01").data
        old = m.get_schema("gs-main", version="2026-01-01").data
        assert "container new" in new and "container old" in old
        for version, leaf in (("2026-02-01", "sub-new"), ("2026-01-01", "sub-old")):
            text = m.get_schema("gs-sub", version=version).data
            assert text.startswith("submodule gs-sub {") and f"leaf {leaf}" in text
            yin = _get_schema(m, "gs-sub", version, "yin")
            assert [e.tag for e in yin] == [f"{{{YIN}}}submodule"] and yin[0].get("name") == "gs-sub"
        assert error_tag(_rpc_error(m, "gs-sub")) == "operation-failed"
        assert m.get_schema("gs-user").data.startswith("module gs-user {")  # one version: no <version> needed
        for identifier, version, fmt in (("gs-main", "2026-03-01", None), ("gs-sub", "2026-03-01", None),
                                         ("gs-main", "", None), ("gs-user", None, "rng"),
                                         ("gs-user", None, "xsd"), ("no-such", None, None)):
            assert error_tag(_rpc_error(m, identifier, version, fmt)) == "invalid-value", (identifier, version, fmt)

        state = m.get(filter=("subtree", f'<netconf-state xmlns="{NCM}"><schemas/></netconf-state>')).data_ele
        entries = {(e.findtext(f"{{{NCM}}}identifier"), e.findtext(f"{{{NCM}}}version"),
                    e.findtext(f"{{{NCM}}}format").split(":")[-1]): e
                   for e in state.iter(f"{{{NCM}}}schema")}
        for identifier in ("gs-main", "gs-sub"):
            for version in ("2026-01-01", "2026-02-01"):
                for fmt in ("yang", "yin"):
                    entry = entries[(identifier, version, fmt)]
                    assert entry.findtext(f"{{{NCM}}}namespace") == GS_NS  # a submodule: its module's namespace
                    assert entry.findtext(f"{{{NCM}}}location") == "NETCONF"
        # every listed schema is served, in the listed format
        for identifier, version, fmt in entries:
            data = _get_schema(m, identifier, version, fmt)
            assert (len(data) == 1) if fmt == "yin" else (data.text or "").lstrip().startswith(
                ("module ", "submodule ")), (identifier, version, fmt)

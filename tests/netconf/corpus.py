"""A generated corpus of malformed or invalid NETCONF requests, each with the rpc-error it must get.

Each case: (name, message bytes, acceptable error-tags). The expected tags follow RFC 6241 Appendix A (and RFC 7950
section 15 for YANG constraint violations); a set is given only where the RFCs leave the choice open.
"""

from __future__ import annotations

from collections.abc import Iterator

NC = "urn:ietf:params:xml:ns:netconf:base:1.0"
SBX = "urn:vpp-singbox:yang:vpp-singbox"
NCM = "urn:ietf:params:xml:ns:yang:ietf-netconf-monitoring"
NOTIF = "urn:ietf:params:xml:ns:netconf:notification:1.0"
NMDA = "urn:ietf:params:xml:ns:yang:ietf-netconf-nmda"

Case = tuple[str, bytes, frozenset[str]]

MALFORMED = frozenset({"malformed-message"})
UNKNOWN_EL = frozenset({"unknown-element"})
INVALID = frozenset({"invalid-value"})
MISSING_EL = frozenset({"missing-element"})


def rpc(body: str, mid: str = "101") -> bytes:
    return f'<rpc xmlns="{NC}" message-id="{mid}">{body}</rpc>'.encode()


def edit(inner: str, target: str = "running", extra: str = "") -> bytes:
    return rpc(f"<edit-config><target><{target}/></target>{extra}<config><singbox xmlns=\"{SBX}\" "
               f'xmlns:nc="{NC}">{inner}</singbox></config></edit-config>')


def ep(name: str = "c1", body: str = "<address>198.18.0.9</address>", attr: str = "") -> str:
    return f"<client><endpoint{attr}><name>{name}</name>{body}</endpoint></client>"


def malformed_xml() -> Iterator[Case]:
    good = rpc("<get-config><source><running/></source></get-config>").decode()
    for cut in range(5, len(good) - 1, max(1, len(good) // 25)):  # truncated at ~25 places
        yield f"truncated-{cut}", good[:cut].encode(), MALFORMED
    raw = [
        b"", b"   ", b"hello", b"<", b"<rpc", b"</rpc>", b"<rpc></rp>", b"<<rpc/>",
        b'<rpc xmlns="' + NC.encode() + b'" message-id="1"><get></rpc>',
        b'<rpc xmlns="' + NC.encode() + b'" message-id="1" message-id="2"><get/></rpc>',
        b'<rpc xmlns="' + NC.encode() + b'" message-id=1><get/></rpc>',
        b'<rpc xmlns="' + NC.encode() + b'" message-id="1"><get/></rpc><rpc/>',
        b'<rpc xmlns="' + NC.encode() + b'" message-id="1"><get/></rpc>trailing',
        b'<rpc xmlns="' + NC.encode() + b'" message-id="1"><x:get/></rpc>',
        b'<rpc xmlns="' + NC.encode() + b'" message-id="1"><get>\x00</get></rpc>',
        b'<rpc xmlns="' + NC.encode() + b'" message-id="1"><get>\xff\xfe</get></rpc>',
        b'<rpc xmlns="' + NC.encode() + b'" message-id="1"><get>&bogus;</get></rpc>',
        b'<rpc xmlns="' + NC.encode() + b'" message-id="1"><get>&#0;</get></rpc>',
        b'<?xml version="1.0"?><!DOCTYPE rpc [<!ENTITY a "b">]><rpc xmlns="' + NC.encode() + b'" message-id="1"/>',
        b'<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;">]><rpc>&lol2;</rpc>',
        b'<?xml version="1.0" encoding="bogus"?><rpc/>',
        b'<rpc xmlns="' + NC.encode() + b'" message-id="1"><get><![CDATA[x</get></rpc>',
        b'<rpc xmlns="' + NC.encode() + b'" message-id="1"><get><!-- x </get></rpc>',
        b'<rpc xmlns="' + NC.encode() + b'" message-id="1"><1get/></rpc>',
        b'<rpc xmlns="' + NC.encode() + b'" message-id="1"><get a=b/></rpc>',
        b'<rpc xmlns="' + NC.encode() + b'" message-id="1"><get a="1" a="2"/></rpc>',
        b'<rpc xmlns:="' + NC.encode() + b'" message-id="1"><get/></rpc>',
        b'<rpc xmlns="' + NC.encode() + b'" message-id="<"><get/></rpc>',
    ]
    for i, data in enumerate(raw):
        yield f"xml-{i}", data, MALFORMED


def envelope() -> Iterator[Case]:
    yield "no-message-id", f'<rpc xmlns="{NC}"><get/></rpc>'.encode(), frozenset({"missing-attribute"})
    yield "no-message-id-2", f'<rpc xmlns="{NC}" other="1"><get-config/></rpc>'.encode(), frozenset(
        {"missing-attribute"})
    for root in ("hello", "rpc-reply", "notification", "foo", "config", "data"):
        yield f"root-{root}", f'<{root} xmlns="{NC}" message-id="1"><get/></{root}>'.encode(), MALFORMED
    for ns in ("", "urn:bogus", NC + "x", SBX):
        yield f"rpc-ns-{ns or 'none'}", f'<rpc xmlns="{ns}" message-id="1"><get/></rpc>'.encode(), frozenset(
            {"unknown-namespace", "malformed-message"})
    yield "unqualified-config", rpc(f'<edit-config><target><running/></target><config xmlns=""><singbox '
                                    f'xmlns="{SBX}"/></config></edit-config>'), frozenset({"unknown-namespace"})
    yield "no-op", rpc(""), MALFORMED
    yield "two-ops", rpc("<get/><get/>"), MALFORMED
    yield "text-in-rpc", rpc("hello<get/>"), MALFORMED


def unknown_operations() -> Iterator[Case]:
    for name in ("get-configs", "edit", "commit-all", "foo", "lock-all", "kill", "reboot", "shutdown",
                 "get-bulk", "delete", "GET", "Get-Config", "close", "subscribe", "validate-all"):
        yield f"op-{name}", rpc(f"<{name}/>"), frozenset({"operation-not-supported", "unknown-element"})
    for ns in ("urn:bogus", "urn:example:x", "http://example.com/ns", "urn:ietf:params:xml:ns:yang:ietf-nope"):
        yield f"op-ns-{ns}", rpc(f'<get xmlns="{ns}"/>'), frozenset({"unknown-namespace", "unknown-element",
                                                                       "operation-not-supported"})
    for name in ("no-such-rpc", "clear-stats", "test"):
        yield f"sbx-op-{name}", rpc(f'<{name} xmlns="{SBX}"/>'), frozenset({"operation-not-supported",
                                                                              "unknown-element"})


def bad_parameters() -> Iterator[Case]:
    yield "get-config-no-source", rpc("<get-config/>"), MISSING_EL
    yield "get-config-empty-source", rpc("<get-config><source/></get-config>"), MISSING_EL
    for ds in ("bogus", "operational", "intended", "Running"):
        yield f"get-config-src-{ds}", rpc(f"<get-config><source><{ds}/></source></get-config>"), UNKNOWN_EL
    yield "get-config-extra", rpc("<get-config><source><running/></source><x/></get-config>"), UNKNOWN_EL
    yield "get-extra", rpc("<get><source><running/></source></get>"), UNKNOWN_EL
    yield "get-filter-type", rpc('<get><filter type="regex">x</filter></get>'), frozenset(
        {"bad-attribute", "invalid-value"})
    yield "get-xpath-no-select", rpc('<get><filter type="xpath"/></get>'), frozenset(
        {"missing-attribute", "invalid-value"})
    for sel in ("///", "/bogus:x", "/sbx:singbox[", "count(", "/singbox/@@", "]]"):
        yield f"get-xpath-{sel}", rpc(f'<get><filter type="xpath" select="{sel}"/></get>'), INVALID
    for wd in ("all", "REPORT-ALL", "none", ""):
        yield f"with-defaults-{wd or 'empty'}", rpc(
            "<get-config><source><running/></source><with-defaults "
            f'xmlns="urn:ietf:params:xml:ns:yang:ietf-netconf-with-defaults">{wd}</with-defaults></get-config>'
        ), INVALID
    yield "edit-no-target", rpc(f'<edit-config><config><singbox xmlns="{SBX}"/></config></edit-config>'), MISSING_EL
    yield "edit-no-config", rpc("<edit-config><target><running/></target></edit-config>"), MISSING_EL
    yield "edit-target-bogus", rpc("<edit-config><target><bogus/></target><config/></edit-config>"), UNKNOWN_EL
    for opt, value in (("default-operation", "merge-all"), ("default-operation", "delete"),
                       ("test-option", "test"), ("test-option", ""), ("error-option", "ignore"),
                       ("error-option", "rollback")):
        yield f"edit-{opt}-{value or 'empty'}", edit(ep(), extra=f"<{opt}>{value}</{opt}>"), INVALID
    yield "edit-url", rpc("<edit-config><target><running/></target><url>file:///x</url></edit-config>"), frozenset(
        {"operation-not-supported", "unknown-element"})
    yield "copy-same", rpc("<copy-config><target><running/></target><source><running/></source></copy-config>"), \
        INVALID
    yield "copy-no-source", rpc("<copy-config><target><running/></target></copy-config>"), MISSING_EL
    yield "delete-running", rpc("<delete-config><target><running/></target></delete-config>"), frozenset(
        {"operation-failed", "unknown-element"})
    yield "delete-candidate", rpc("<delete-config><target><candidate/></target></delete-config>"), frozenset(
        {"operation-failed", "unknown-element"})
    yield "lock-bogus", rpc("<lock><target><bogus/></target></lock>"), UNKNOWN_EL
    yield "lock-none", rpc("<lock/>"), MISSING_EL
    yield "unlock-not-locked", rpc("<unlock><target><startup/></target></unlock>"), frozenset({"operation-failed"})
    for sid in ("abc", "-1", "1.5", "99999999999"):
        yield f"kill-{sid}", rpc(f"<kill-session><session-id>{sid}</session-id></kill-session>"), INVALID
    yield "kill-unknown", rpc("<kill-session><session-id>424242</session-id></kill-session>"), INVALID
    yield "commit-timeout-abc", rpc("<commit><confirmed/><confirm-timeout>abc</confirm-timeout></commit>"), INVALID
    yield "commit-timeout-0", rpc("<commit><confirmed/><confirm-timeout>0</confirm-timeout></commit>"), INVALID
    yield "commit-persist-id-none", rpc("<commit><persist-id>nothing</persist-id></commit>"), INVALID
    yield "cancel-commit-none", rpc("<cancel-commit/>"), frozenset({"operation-failed"})
    yield "validate-bogus", rpc("<validate><source><bogus/></source></validate>"), UNKNOWN_EL
    yield "get-schema-unknown", rpc(f'<get-schema xmlns="{NCM}"><identifier>nope</identifier></get-schema>'), \
        INVALID
    yield "get-schema-rev", rpc(f'<get-schema xmlns="{NCM}"><identifier>vpp-singbox</identifier>'
                                "<version>1999-01-01</version></get-schema>"), INVALID
    yield "get-schema-format", rpc(f'<get-schema xmlns="{NCM}"><identifier>vpp-singbox</identifier>'
                                   "<format>xsd</format></get-schema>"), INVALID
    yield "subscription-stream", rpc(f'<create-subscription xmlns="{NOTIF}"><stream>bogus</stream>'
                                     "</create-subscription>"), INVALID
    yield "subscription-time", rpc(f'<create-subscription xmlns="{NOTIF}"><startTime>yesterday</startTime>'
                                   "</create-subscription>"), INVALID
    yield "get-data-no-ds", rpc(f'<get-data xmlns="{NMDA}"/>'), frozenset({"missing-element", "invalid-value"})
    yield "get-data-bad-ds", rpc(f'<get-data xmlns="{NMDA}" xmlns:x="urn:x"><datastore>x:foo</datastore>'
                                 "</get-data>"), frozenset({"invalid-value"})
    yield "edit-data-operational", rpc(
        f'<edit-data xmlns="{NMDA}" xmlns:ds="urn:ietf:params:xml:ns:yang:ietf-datastores">'
        "<datastore>ds:operational</datastore><config/></edit-data>"), INVALID


def bad_data() -> Iterator[Case]:
    for i, name in enumerate(("bogus", "endpoints", "Client", "server-x", "log_level", "unknown", "x", "yy",
                              "state", "dataplanes")):
        yield f"data-unknown-{i}", edit(f"<{name}>1</{name}>"), UNKNOWN_EL
    yield "data-unknown-ns", edit(f'<client xmlns="urn:other"/>'), frozenset({"unknown-element",
                                                                              "unknown-namespace"})
    yield "data-unknown-top", rpc(f'<edit-config><target><running/></target><config><nothing xmlns="urn:no"/>'
                                  "</config></edit-config>"), frozenset({"unknown-element", "unknown-namespace"})
    for value in ("0", "65536", "-1", "abc", "1.5", "", "80 80", "0x50"):
        yield f"data-port-{value or 'empty'}", edit(ep(body=f"<address>198.18.0.9</address><port>{value}</port>")),\
            INVALID
    for value in ("verbose", "DEBUG", "", "5", "info debug"):
        yield f"data-log-level-{value or 'empty'}", edit(f"<log-level>{value}</log-level>"), INVALID
    for value in ("not an address!", "-", "a..b", "", "x y"):
        yield f"data-address-{value or 'empty'}", edit(ep(body=f"<address>{value}</address>")), INVALID
    for value in ("yes", "1", "TRUE", ""):
        yield f"data-bool-{value or 'empty'}", edit(
            f"<client><connection-pool><enabled>{value}</enabled></connection-pool></client>"), INVALID
    for value in ("socks4", "http", "sbx:bogus", "x:socks5"):
        yield f"data-protocol-{value}", edit(ep(body=f"<address>198.18.0.9</address><protocol>{value}</protocol>")), \
            INVALID
    for value in ("-5", "abc", "99999999999"):
        yield f"data-session-timeout-{value}", edit(f"<client><session-timeout>{value}</session-timeout></client>"), \
            INVALID
    yield "data-missing-key", edit("<client><endpoint><address>198.18.0.9</address></endpoint></client>"), \
        frozenset({"missing-element"})
    for op in ("bogus", "crate", "DELETE", "merge-all", ""):
        yield f"data-operation-{op or 'empty'}", edit(ep(attr=f' nc:operation="{op}"')), frozenset(
            {"bad-attribute", "invalid-value"})
    # attributes that libyang's parse of the whole <rpc> drops silently (the edit content is taken from that parse
    # when it is exact): an operation without its namespace must not become a merge, an unknown one is refused
    yield "data-operation-unprefixed", edit(ep(name="base", body="", attr=' operation="delete"')), frozenset(
        {"bad-attribute", "unknown-attribute", "invalid-value", "missing-attribute"})
    yield "data-attribute-unknown-ns", edit(ep(attr=' xmlns:x="urn:x" x:operation="delete"')), frozenset(
        {"bad-attribute", "unknown-attribute", "unknown-namespace", "invalid-value"})
    yield "data-attribute-nc-unknown", edit(ep(attr=' nc:frobnicate="1"')), frozenset(
        {"bad-attribute", "unknown-attribute", "invalid-value"})
    for i in range(10):
        yield f"data-delete-missing-{i}", edit(ep(name=f"missing{i}", body="", attr=' nc:operation="delete"')), \
            frozenset({"data-missing"})
    for i in range(5):
        yield f"data-create-existing-{i}", edit(ep(name="base", attr=' nc:operation="create"')), \
            frozenset({"data-exists"})
    for name in ("nope", "x", "missing-endpoint"):
        yield f"data-leafref-{name}", edit(f"<client><default-endpoint>{name}</default-endpoint></client>"), \
            frozenset({"data-missing"})
    yield "data-must-username-only", edit(ep(name="m1", body="<address>198.18.0.9</address><username>u</username>")), \
        frozenset({"operation-failed"})
    yield "data-must-password-only", edit(ep(name="m2", body="<address>198.18.0.9</address><password>p</password>")),\
        frozenset({"operation-failed"})
    yield "data-state-node", edit("<dataplane><connected>true</connected></dataplane>"), frozenset(
        {"unknown-element", "invalid-value"})
    yield "data-nested-garbage", edit(ep(body="<address>198.18.0.9</address><health-check><x/></health-check>")), \
        UNKNOWN_EL
    yield "data-mixed-good-bad", edit(ep(name="good1") + ep(name="bad1", body="<address>x y</address>")), INVALID
    yield "data-candidate-bad", edit(ep(body="<port>0</port>"), target="candidate"), INVALID
    yield "data-dup-key", edit("<client><endpoint><name>d</name><name>e</name><address>198.18.0.9</address>"
                               "</endpoint></client>"), frozenset({"invalid-value", "bad-element", "unknown-element",
                                                                   "operation-failed", "malformed-message"})


RESOURCE = frozenset({"resource-denied"})
TOO_BIG = frozenset({"too-big"})


def xpath_get(select: str) -> bytes:
    return rpc(f'<get-config><source><running/></source><filter type="xpath" xmlns:sbx="{SBX}" '
               f'select="{select}"/></get-config>')


def beyond_limits() -> Iterator[Case]:
    """Requests past the default limits of vpp-singbox-netconf-server (answered before libyang parses them)."""
    for n in (4097, 5000, 10000, 30000):
        yield f"xpath-predicates-{n}", xpath_get("/sbx:singbox" + "[1]" * n), RESOURCE
        yield f"xpath-predicates-get-{n}", rpc(f'<get><filter type="xpath" xmlns:sbx="{SBX}" '
                                               f'select="/sbx:singbox{"[1]" * n}"/></get>'), RESOURCE
        yield f"xpath-predicates-data-{n}", rpc(f'<get-data xmlns="{NMDA}" xmlns:ds="urn:ietf:params:xml:ns:yang:'
                                                f'ietf-datastores" xmlns:sbx="{SBX}"><datastore>ds:running</datastore>'
                                                f"<xpath-filter>/sbx:singbox{'[1]' * n}</xpath-filter></get-data>"),\
            RESOURCE
        yield f"xpath-predicates-notif-{n}", rpc(f'<create-subscription xmlns="{NOTIF}"><filter type="xpath" '
                                                 f'xmlns:sbx="{SBX}" select="/sbx:endpoint-down{"[1]" * n}"/>'
                                                 "</create-subscription>"), RESOURCE
    for n in (65, 100, 1000, 5000):
        yield f"xpath-nesting-brackets-{n}", xpath_get("/sbx:singbox" + "[" * n + "1" + "]" * n), RESOURCE
        yield f"xpath-nesting-parens-{n}", xpath_get("/sbx:singbox[" + "(" * n + "1" + ")" * n + "]"), RESOURCE
        yield f"xpath-nesting-functions-{n}", xpath_get("/sbx:singbox[" + "not(" * n + "1" + ")" * n + "]"), \
            RESOURCE
    for n in (262145, 300000, 1000000):
        yield f"xpath-length-{n}", xpath_get("/sbx:singbox/sbx:log-level" + " " * (n - 25)), RESOURCE
    for n in (10001, 20000, 30000):
        for leaf in ("name", "address", "password"):
            yield f"subtree-nodes-{leaf}-{n}", rpc(
                f'<get-config><source><running/></source><filter type="subtree"><singbox xmlns="{SBX}"><client>'
                f"<endpoint>{f'<{leaf}>a</{leaf}>' * n}</endpoint></client></singbox></filter></get-config>"), RESOURCE
    inner = "".join(f"<name>a{i}</name>" for i in range(3000)) + "<address/><port/><username/>" * 100
    yield "subtree-derived-xpath", rpc(f'<get-config><source><running/></source><filter type="subtree"><singbox '
                                       f'xmlns="{SBX}"><client><endpoint>{inner}</endpoint></client></singbox>'
                                       "</filter></get-config>"), RESOURCE
    for n in (65, 80, 200, 1000, 10000):
        yield f"xml-depth-{n}", rpc("<get-config><source><running/></source>" + "<a>" * n + "</a>" * n +
                                    "</get-config>"), RESOURCE
        yield f"xml-depth-edit-{n}", edit("<client>" + "<x>" * n + "</x>" * n + "</client>"), RESOURCE
    # any value is held to the same predicate and nesting limits: libyang compiles values of XPath types
    for n in (4097, 30000):
        yield f"nacm-path-predicates-{n}", rpc(
            '<edit-config><target><running/></target><config><nacm xmlns="urn:ietf:params:xml:ns:yang:ietf-netconf-'
            f'acm"><rule-list><name>x</name><group>g</group><rule><name>r</name><path>/sbx:singbox{"[1]" * n}</path>'
            "<action>deny</action></rule></rule-list></nacm></config></edit-config>"), RESOURCE
    for n in (65, 5000):
        yield f"value-nesting-{n}", edit(f"<log-level>{'(' * n}</log-level>"), RESOURCE
    for n in (1000001, 1100000):
        yield f"xml-elements-{n}", rpc("<get-config><source><running/></source><x>" + "<a/>" * n +
                                       "</x></get-config>"), RESOURCE


def schema_forbids() -> Iterator[Case]:
    """What the schema forbids, in one edit: a node twice, a list entry twice; an empty delete of what is not there."""
    dup = frozenset({"bad-element"})
    for first, second in (("debug", "error"), ("info", "info"), ("error", "debug")):
        yield f"dup-log-level-{first}-{second}", edit(f"<log-level>{first}</log-level><log-level>{second}</log-level>"),\
            dup
    for i in range(5):
        yield f"dup-entry-{i}", edit(ep(name=f"dup{i}") + ep(name=f"dup{i}", body="<address>198.18.0.2</address>")), dup
        yield f"dup-leaf-{i}", edit(ep(name=f"dl{i}", body=f"<address>198.18.0.1</address><port>{i + 1}</port>"
                                                         f"<port>{i + 2}</port>")), dup
    for leaf in ("port", "username", "password"):
        yield f"empty-delete-missing-{leaf}", edit(ep(name="base", body=f'<{leaf} nc:operation="delete"/>')), \
            frozenset({"data-missing"})
    yield "empty-delete-unknown", edit(ep(name="base", body='<bogus nc:operation="delete"/>')), UNKNOWN_EL
    yield "empty-merge-port", edit(ep(name="base", body='<port nc:operation="merge"/>')), INVALID
    yield "get-data-both-filters", rpc(f'<get-data xmlns="{NMDA}" xmlns:ds="urn:ietf:params:xml:ns:yang:ietf-'
                                       f'datastores"><datastore>ds:running</datastore><subtree-filter><singbox xmlns='
                                       f'"{SBX}"/></subtree-filter><xpath-filter>/vpp-singbox:singbox</xpath-filter>'
                                       "</get-data>"), frozenset({"bad-element", "invalid-value"})


def nacm_probes(secret_prefix_alphabet: str = "abcdefghijklmnopqrstuvwxyz0123456789$") -> list[str]:
    """XPath selects a read-only user could use to learn a hidden endpoint password or login hash one character at a
    time (RFC 8341 3.4.5): every one must select nothing that depends on the hidden value."""
    ep_path = "/sbx:singbox/sbx:client/sbx:endpoint"
    users = "/sys:system/sys:authentication/sys:user"
    out: list[str] = []
    for ch in secret_prefix_alphabet:
        out.append(f"{ep_path}[starts-with(sbx:password,'{ch}')]/sbx:name")
        out.append(f"{users}[starts-with(sys:password,'${ch}')]/sys:name")
    for n in range(1, 30, 3):
        out.append(f"{ep_path}[string-length(sbx:password)={n}]/sbx:name")
        out.append(f"{ep_path}[string-length(sbx:password)&gt;{n}]/sbx:name")
    out += [f"{ep_path}[sbx:password]/sbx:name", f"{ep_path}[count(sbx:password)=1]/sbx:name",
            f"{ep_path}/sbx:password/../sbx:name", f"//sbx:password/..", f"{users}[sys:password]/sys:name",
            f"{ep_path}[boolean(sbx:password)]/sbx:name", f"{ep_path}[sbx:password!='x']/sbx:name",
            f"{ep_path}[contains(sbx:password,'a')]/sbx:name", "/sbx:singbox[.//sbx:password]/sbx:log-level",
            f"{ep_path}[sbx:password/ancestor::sbx:endpoint]/sbx:name",
            f"{ep_path}[sbx:password/parent::*]/sbx:name"]
    return out


def corpus() -> list[Case]:
    cases = [*malformed_xml(), *envelope(), *unknown_operations(), *bad_parameters(), *bad_data(), *beyond_limits(),
             *schema_forbids()]
    names = [c[0] for c in cases]
    assert len(names) == len(set(names)), "case names must be unique"
    return cases


# Broken framing: the server must close the session (RFC 6242 section 4.2), sent after a base:1.1 hello.
BROKEN_CHUNKED: list[bytes] = [
    b"#4\n<rpc\n##\n", b"\n#0\n", b"\n#-4\n", b"\n#abc\n", b"\n##\n", b"\n#4294967296\n", b"garbage\n",
    b"\n#2\nabc\n##\n", b"\n# 4\n<rpc\n##\n", b"\r\n#4\n<rpc\n##\n", b"\n#012\n", b"\n#99999999999\n",
]

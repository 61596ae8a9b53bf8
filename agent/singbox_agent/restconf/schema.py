"""YANG schema resources (RFC 8040 §3.7) and the yang-library locations that point at them (RFC 8525, RFC 7895).

Every module and submodule in sysrepo's libyang context (implemented or import-only) is served as
`{+restconf}/yang/<name>[@<revision>]` (also with a `.yang` suffix) with media type `application/yang`, printed by
libyang. As rousette does, the revision is part of the name when the module has one (`ietf-system` alone is 404,
`ietf-system@2014-08-06` is the module), and the `location` leaves sysrepo reports (file paths on the appliance,
or `file://@internal`) are rewritten in every response to these URLs: a client follows them without learning
the appliance's file system. A `location` that NACM hides from the user stays hidden (only existing leaves are
rewritten). Who may not read a module's entry in ietf-yang-library gets 404 for its schema, like for a module
that does not exist. The lookup and the printing are NETCONF get-schema's (`mgmt.schemas`).
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote

import libyang
from _libyang import ffi, lib

from singbox_agent.mgmt import schemas, xpath
from singbox_agent.restconf.uri import SchemaName

YANG_MEDIA_TYPE = "application/yang"
YANG_LIBRARY = "ietf-yang-library"
_YANG_LIBRARY_TOP = ("yang-library", "modules-state")


def schema_uri(base_url: str, name: str, revision: str | None) -> str:
    """The absolute URL of a schema resource."""
    tail = quote(name, safe="") + (f"@{revision}" if revision else "")
    return f"{base_url}/restconf/yang/{tail}"


@dataclass(frozen=True)
class FoundSchema:
    module: str  # the module itself, or the module that includes the submodule (for the NACM check)
    submodule: str | None
    text: bytes


def find_schema(ctx: libyang.Context, wanted: SchemaName) -> FoundSchema | None:
    """The module or submodule `wanted` names in `ctx`, printed as YANG; None if there is none with exactly that
    revision (or without one when it has none)."""
    for candidate in _candidates(wanted):
        found = schemas.matching(ctx, candidate.name, candidate.revision or "")
        if found:
            schema = found[0]
            return FoundSchema(schema.module, schema.identifier if schema.submodule else None,
                               schemas.print_schema(schema, "yang").encode())
    return None


def _candidates(wanted: SchemaName) -> list[SchemaName]:
    """`x.yang` may be the file-name form of `x` or a module really named `x.yang`: try the literal name first."""
    out = [wanted]
    if wanted.revision is None and wanted.name.endswith(".yang") and len(wanted.name) > len(".yang"):
        out.append(SchemaName(wanted.name[: -len(".yang")], None))
    return out


def nacm_probe_xpath(found: FoundSchema) -> str:
    """What the user must be able to read in ietf-yang-library to get the schema: the module's (or submodule's)
    entry, in the module set or as an import-only module."""
    base = "/ietf-yang-library:yang-library/module-set"
    name = xpath.quote(found.module)
    if found.submodule is None:
        return f"{base}/module[name={name}] | {base}/import-only-module[name={name}]"
    sub = xpath.quote(found.submodule)
    return f"{base}/module[name={name}]/submodule[name={sub}] | {base}/import-only-module[name={name}]/submodule[name={sub}]"


def has_yang_library(tree: libyang.DNode | None) -> bool:
    """Whether a data tree holds ietf-yang-library data (the only data whose locations need rewriting)."""
    if tree is None:
        return False
    node: libyang.DNode | None = tree.root().first_sibling()
    while node is not None:
        if node.module().name() == YANG_LIBRARY and node.name() in _YANG_LIBRARY_TOP:
            return True
        node = node.next()
    return False


_LOCATIONS = (
    "/ietf-yang-library:yang-library/module-set/module",
    "/ietf-yang-library:yang-library/module-set/import-only-module",
    "/ietf-yang-library:yang-library/module-set/module/submodule",
    "/ietf-yang-library:yang-library/module-set/import-only-module/submodule",
)
_SCHEMAS = (
    "/ietf-yang-library:modules-state/module",
    "/ietf-yang-library:modules-state/module/submodule",
)


def rewrite_locations(tree: libyang.DNode, base_url: str) -> None:
    """Point every `location` (RFC 8525) and `schema` (RFC 7895) leaf in `tree` at this server's schema resource."""
    for path in _LOCATIONS:
        for entry in list(tree.find_all(path)):
            olds = [c for c in children(entry) if c.name() == "location"]
            if not olds:
                continue  # not reported (or hidden by NACM): not added either
            for old in olds:
                lib.lyd_free_tree(old.cdata)
            entry.context.create_data_path("location", parent=entry, value=_uri_of(entry, base_url))
    for path in _SCHEMAS:
        for entry in list(tree.find_all(path)):
            for old in [c for c in children(entry) if c.name() == "schema"]:
                lib.lyd_free_tree(old.cdata)
                entry.context.create_data_path("schema", parent=entry, value=_uri_of(entry, base_url))


def _uri_of(entry: libyang.DNode, base_url: str) -> str:
    name = revision = None
    seen = False
    for child in children(entry):
        if child.name() == "name":
            name = _term(child)
        elif child.name() == "revision":
            revision = _term(child) or None  # modules-state writes "" for no revision
            seen = True
    assert name is not None  # a list key
    if not seen:
        # the read selected the location without its entry's revision (`.../module=m/location`, fields=location):
        # the revision of the (sub)module in the context — it was left out, and the location then named no schema
        revision = schemas.revision_of(entry.context, name)
    return schema_uri(base_url, name, revision)


def children(node: libyang.DNode) -> list[libyang.DNode]:
    """Every child of `node`, straight from libyang's child list."""
    out: list[libyang.DNode] = []
    child = lib.lyd_child(node.cdata)
    while child != ffi.NULL:
        out.append(libyang.DNode.new(node.context, child))
        child = child.next
    return out


def _term(node: libyang.DNode) -> str:
    raw = lib.lyd_get_value(node.cdata)
    return ffi.string(raw).decode() if raw != ffi.NULL else ""

"""YANG schema resources (RFC 8040 §3.7) and the yang-library locations that point at them (RFC 8525, RFC 7895).

Every module and submodule in sysrepo's libyang context (implemented or import-only) is served as
`{+restconf}/yang/<name>[@<revision>]` (also with a `.yang` suffix) with media type `application/yang`, printed by
libyang. As rousette does, the revision is part of the name when the module has one (`ietf-system` alone is 404,
`ietf-system@2014-08-06` is the module), and the `location` leaves sysrepo reports (file paths on the appliance,
or `file://@internal`) are rewritten in every response to these URLs: a client follows them without learning
the appliance's file system. A `location` that NACM hides from the user stays hidden (only existing leaves are
rewritten). Who may not read a module's entry in ietf-yang-library gets 404 for its schema, like for a module
that does not exist.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import cffi
import libyang
from _libyang import ffi, lib
from libyang.util import ly_array_iter as _ly_array_iter

from singbox_agent.mgmt import xpath
from singbox_agent.restconf.uri import SchemaName

YANG_MEDIA_TYPE = "application/yang"
YANG_LIBRARY = "ietf-yang-library"
_YANG_LIBRARY_TOP = ("yang-library", "modules-state")

# libyang-python's cffi does not declare the submodule printer: the same libyang, reached through a cffi of our own,
# with pointers passed as addresses.
_own_ffi = cffi.FFI()
# lysp_include and the head of lysp_submodule as libyang 3 lays them out (tree_schema.h); libyang-python keeps
# them opaque. Sized arrays carry their uint64 count just before the first element.
_own_ffi.cdef(
    """
    struct lysp_revision { char date[11]; const char *dsc; const char *ref; void *exts; };
    struct lysp_include { void *submodule; const char *name; const char *dsc; const char *ref; void *exts;
                          char rev[11]; uint8_t injected; };
    struct lysp_submodule_head { void *mod; struct lysp_revision *revs; };
    int lys_print_submodule(void *out, const void *submodule, int format, size_t line_length, uint32_t options);
    """
)
_own_lib: Any = _own_ffi.dlopen("libyang.so.3")


def schema_uri(base_url: str, name: str, revision: str | None) -> str:
    """The absolute URL of a schema resource."""
    tail = quote(name, safe="") + (f"@{revision}" if revision else "")
    return f"{base_url}/restconf/yang/{tail}"


def _items(array: Any) -> Iterator[Any]:
    """Elements of a libyang sized array (LY_ARRAY); NULL is empty."""
    if array == ffi.NULL:
        return iter(())
    return iter(_ly_array_iter(array))  # type: ignore[no-untyped-call]


def _own_array(array: Any, ctype: str) -> list[Any]:
    """A libyang sized array seen through our own cffi: its elements (the count sits just before them)."""
    if array == _own_ffi.NULL:
        return []
    address = int(_own_ffi.cast("uintptr_t", array))
    count = int(_own_ffi.cast("uint64_t *", address - 8)[0])
    typed = _own_ffi.cast(ctype, address)
    return [typed[i] for i in range(count)]


def _includes(array: Any) -> list[Any]:
    """`includes` of a parsed module (libyang-python's pointer) as our own `struct lysp_include` values."""
    if array == ffi.NULL:
        return []
    return _own_array(_own_ffi.cast("void *", int(ffi.cast("uintptr_t", array))), "struct lysp_include *")


def _latest_revision(revs: Any) -> str | None:
    """Revision of a parsed (sub)module: libyang keeps the newest first."""
    for rev in _items(revs):
        return str(ffi.string(rev.date).decode())
    return None


@dataclass(frozen=True)
class FoundSchema:
    module: str  # the module itself, or the module that includes the submodule (for the NACM check)
    submodule: str | None
    text: bytes


def _print_module(module: libyang.Module) -> bytes:
    text = module.print_mem("yang")
    return text.encode() if isinstance(text, str) else text


def _print_submodule(submodule: Any) -> bytes:
    out = ffi.new("struct ly_out **")
    buf = ffi.new("char **")
    if lib.ly_out_new_memory(buf, 0, out) != lib.LY_SUCCESS:
        raise MemoryError("libyang could not open an output")
    try:
        address = int(ffi.cast("uintptr_t", out[0]))
        ret = _own_lib.lys_print_submodule(_own_ffi.cast("void *", address), submodule, int(lib.LYS_OUT_YANG), 0, 0)
        if ret != 0:
            raise RuntimeError(f"libyang could not print the submodule ({ret})")
        return bytes(ffi.string(buf[0])) if buf[0] != ffi.NULL else b""
    finally:
        lib.ly_out_free(out[0], ffi.NULL, True)


def find_schema(ctx: libyang.Context, wanted: SchemaName) -> FoundSchema | None:
    """The module or submodule `wanted` names in `ctx`, printed as YANG; None if there is none with exactly that
    revision (or without one when it has none)."""
    for candidate in _candidates(wanted):
        for module in ctx:
            parsed = module.cdata.parsed
            if module.name() == candidate.name:
                revision = _latest_revision(parsed.revs) if parsed != ffi.NULL else None
                if revision is None and module.cdata.revision != ffi.NULL:
                    revision = ffi.string(module.cdata.revision).decode()
                if revision == candidate.revision:
                    return FoundSchema(module.name(), None, _print_module(module))
            if parsed == ffi.NULL:
                continue
            for include in _includes(parsed.includes):
                if _own_ffi.string(include.name).decode() != candidate.name or include.submodule == _own_ffi.NULL:
                    continue
                head = _own_ffi.cast("struct lysp_submodule_head *", include.submodule)
                revs = _own_array(head.revs, "struct lysp_revision *")
                revision = _own_ffi.string(revs[0].date).decode() if revs else None
                if revision == candidate.revision:
                    return FoundSchema(module.name(), candidate.name, _print_submodule(include.submodule))
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
        revision = _context_revision(entry.context, name)
    return schema_uri(base_url, name, revision)


def _context_revision(ctx: libyang.Context, name: str) -> str | None:
    """The revision of the implemented module, else of the submodule, called `name` in `ctx` (None: none)."""
    for module in ctx:
        if module.name() == name and module.implemented():
            return ffi.string(module.cdata.revision).decode() if module.cdata.revision != ffi.NULL else None
    for module in ctx:
        parsed = module.cdata.parsed
        if parsed == ffi.NULL:
            continue
        for include in _includes(parsed.includes):
            if _own_ffi.string(include.name).decode() == name and include.submodule != _own_ffi.NULL:
                head = _own_ffi.cast("struct lysp_submodule_head *", include.submodule)
                revs = _own_array(head.revs, "struct lysp_revision *")
                return str(_own_ffi.string(revs[0].date).decode()) if revs else None
    return None


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

"""The schemas of sysrepo's libyang context, as NETCONF's get-schema and schema list (RFC 6022) and RESTCONF's schema
resource (RFC 8040 §3.7) serve them: one lookup and one printer for both servers.

A schema is a module or a submodule of the context, implemented or import-only, every revision the context holds
(RFC 6022's `schemas` list: "the list of data model schemas supported by the server"; a submodule's identifier is
its own name, its version its newest revision, its namespace "the namespace of the module to which the submodule
belongs"). `all_schemas(ctx)` lists them (modules before their submodules, each (identifier, version) once),
`matching(ctx, identifier, version)` finds those an identifier and version name (`version=None`: any version),
`print_schema(schema, fmt)` prints one as YANG or YIN (libyang's printers; submodules through `lys_print_submodule`,
which libyang-python does not declare: reached through a cffi of our own). A `Schema` holds pointers into the
context: use it only while the context is held.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import cffi
import libyang
from _libyang import ffi, lib
from libyang.util import ly_array_iter as _ly_array_iter

from singbox_agent.mgmt.datastore import module_namespace

NCM_MODULE = "ietf-netconf-monitoring"
FORMATS = ("yang", "yin")

_own_ffi = cffi.FFI()
# lysp_include and the head of lysp_submodule as libyang 3 lays them out (tree_schema.h); libyang-python keeps them
# opaque. Sized arrays carry their uint64 count just before the first element.
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


@dataclass(frozen=True)
class Schema:
    identifier: str  # the module's or submodule's name
    version: str  # its newest revision, "" without one (RFC 6022's version)
    namespace: str  # the module's (a submodule's: the module it belongs to)
    module: str  # the module itself, or the module the submodule belongs to
    submodule: bool
    implemented: bool  # the module (or the module the submodule belongs to) is implemented
    _module: libyang.Module = field(compare=False, repr=False)
    _sub: Any = field(default=None, compare=False, repr=False)  # our cffi's `struct lysp_submodule *`


def _items(array: Any) -> Iterator[Any]:
    """Elements of a libyang sized array (LY_ARRAY) through libyang-python's cffi; NULL is empty."""
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


def _module_revision(module: libyang.Module) -> str:
    """A module's newest revision (libyang keeps the newest first), "" without one."""
    parsed = module.cdata.parsed
    if parsed != ffi.NULL:
        for rev in _items(parsed.revs):
            return str(ffi.string(rev.date).decode())
    if module.cdata.revision != ffi.NULL:
        return str(ffi.string(module.cdata.revision).decode())
    return ""


def _submodules(module: libyang.Module) -> Iterator[tuple[str, str, Any]]:
    """(name, newest revision or "", pointer) of each submodule the module includes (YANG 1.0 submodules' own
    includes are injected into the module's list by libyang)."""
    parsed = module.cdata.parsed
    if parsed == ffi.NULL or parsed.includes == ffi.NULL:
        return
    includes = _own_ffi.cast("void *", int(ffi.cast("uintptr_t", parsed.includes)))
    for include in _own_array(includes, "struct lysp_include *"):
        if include.submodule == _own_ffi.NULL:
            continue
        head = _own_ffi.cast("struct lysp_submodule_head *", include.submodule)
        revs = _own_array(head.revs, "struct lysp_revision *")
        revision = str(_own_ffi.string(revs[0].date).decode()) if revs else ""
        yield str(_own_ffi.string(include.name).decode()), revision, include.submodule


def all_schemas(ctx: libyang.Context) -> list[Schema]:
    """Every module and submodule of `ctx` (each revision), modules first then their submodules, each
    (identifier, version) once (a submodule two revisions of its module include is listed with the first)."""
    modules: list[Schema] = []
    subs: list[Schema] = []
    seen: set[tuple[str, str]] = set()
    for module in ctx:
        name = module.name()
        namespace = module_namespace(module)
        implemented = bool(module.implemented())
        key = (name, _module_revision(module))
        if key not in seen:
            seen.add(key)
            modules.append(Schema(name, key[1], namespace, name, False, implemented, module))
        for sub_name, sub_rev, pointer in _submodules(module):
            subs.append(Schema(sub_name, sub_rev, namespace, name, True, implemented, module, pointer))
    out = list(modules)
    for sub in sorted(subs, key=lambda s: not s.implemented):  # a submodule's implemented module first
        if (sub.identifier, sub.version) not in seen:
            seen.add((sub.identifier, sub.version))
            out.append(sub)
    return out


def matching(ctx: libyang.Context, identifier: str, version: str | None = None) -> list[Schema]:
    """The schemas called `identifier` of revision `version` ("": without a revision; None: any revision),
    modules before submodules."""
    return [s for s in all_schemas(ctx)
            if s.identifier == identifier and (version is None or s.version == version)]


def revision_of(ctx: libyang.Context, name: str) -> str | None:
    """The revision of the schema called `name`: its implemented module's, else the first one's of the context
    (None: no such schema, or it has no revision)."""
    found = matching(ctx, name)
    if not found:
        return None
    best = next((s for s in found if s.implemented and not s.submodule), found[0])
    return best.version or None


def schema_format(value: str | None) -> str:
    """RFC 6022's `format` identityref as given ("ietf-netconf-monitoring:yin", or bare) → "yang" or "yin";
    None → "yang". Another schema-format (xsd, rng, rnc) or identity: ValueError."""
    if value is None:
        return "yang"
    module, _, name = value.rpartition(":")
    if module in ("", NCM_MODULE) and name in FORMATS:
        return name
    raise ValueError(value)


def print_schema(schema: Schema, fmt: str = "yang") -> str:
    """The schema's text as libyang prints it: YANG, or a YIN document (with its XML declaration)."""
    if fmt not in FORMATS:
        raise ValueError(fmt)
    if schema._sub is None:
        text = schema._module.print_mem(fmt)
        return text.decode() if isinstance(text, bytes) else str(text)
    out = ffi.new("struct ly_out **")
    buf = ffi.new("char **")
    if lib.ly_out_new_memory(buf, 0, out) != lib.LY_SUCCESS:
        raise MemoryError("libyang could not open an output")
    try:
        address = int(ffi.cast("uintptr_t", out[0]))
        out_format = int(lib.LYS_OUT_YANG if fmt == "yang" else lib.LYS_OUT_YIN)
        ret = _own_lib.lys_print_submodule(_own_ffi.cast("void *", address), schema._sub, out_format, 0, 0)
        if ret != 0:
            raise RuntimeError(f"libyang could not print the submodule ({ret})")
        return ffi.string(buf[0]).decode() if buf[0] != ffi.NULL else ""
    finally:
        lib.ly_out_free(out[0], ffi.NULL, True)


def without_xml_declaration(text: str) -> str:
    """A YIN document as XML content: without its `<?xml ...?>` declaration (not allowed inside an element)."""
    stripped = text.lstrip()
    if stripped.startswith("<?xml"):
        end = stripped.find("?>")
        if end >= 0:
            return stripped[end + 2:].lstrip()
    return text

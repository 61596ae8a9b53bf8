"""One mapping from every failure of the management plane to an RFC 6241 Appendix A error record.

NETCONF renders `MgmtError` as `<rpc-error>`, RESTCONF maps `error_tag` to an HTTP status (RFC 8040 section 7) and
renders the same fields. Sources: our own protocol errors (`MgmtException`), libyang parse/validation errors and
sysrepo errors, including the `SysrepoValidationFailedError` an agent raises in its change callback — that message is
what the operator needs to read, so it passes through unchanged.

An error never echoes a client's input unbounded (a 100 KB module name came back whole in get-schema's error):
`clip` shortens a value our errors quote (to `MAX_QUOTED` characters), and every `MgmtError` bounds its own
error-message and error-info values to `MAX_MESSAGE`, whoever wrote them (our code, libyang or sysrepo): a longer
message has its long quoted runs clipped, then itself.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import cffi
import libyang
import sysrepo
from _libyang import ffi as ly_ffi
from _libyang import lib as ly_lib

from singbox_agent.mgmt import xpath

# RFC 6241 Appendix A error-type values.
TRANSPORT = "transport"
RPC = "rpc"
PROTOCOL = "protocol"
APPLICATION = "application"

# An error's quote of a client's value and its whole error-message / error-info value, in characters.
MAX_QUOTED = 256
MAX_MESSAGE = 2048

_LONG_QUOTE = re.compile(r'"([^"]{%d,})"|\'([^\']{%d,})\'' % (MAX_QUOTED + 1, MAX_QUOTED + 1))


def clip(value: str, limit: int = MAX_QUOTED) -> str:
    """`value` as an error may quote it: its first `limit` characters and, when it is longer, how long it was."""
    if len(value) <= limit:
        return value
    return f"{value[:limit]}... ({len(value)} characters)"


def _bounded(message: str) -> str:
    """A message beyond MAX_MESSAGE with its long quoted runs clipped (libyang quotes the value it refuses), then
    itself clipped; shorter ones stay as they are."""
    if len(message) <= MAX_MESSAGE:
        return message
    message = _LONG_QUOTE.sub(lambda m: f'"{clip(m.group(1))}"' if m.group(1) is not None
                              else f"'{clip(m.group(2))}'", message)
    return clip(message, MAX_MESSAGE)


@dataclass(frozen=True)
class MgmtError:
    """One RFC 6241 rpc-error (RFC 8040 `error` has the same fields).

    `info` holds error-info children by local name in the base namespace (`bad-element`, `bad-attribute`,
    `bad-namespace`, `session-id`, `non-unique`, ...).
    """

    error_type: str
    error_tag: str
    error_message: str = ""
    error_app_tag: str | None = None
    error_path: str | None = None
    info: dict[str, str] = field(default_factory=dict)
    error_severity: str = "error"
    # error-info elements in the YANG namespace (RFC 7950 section 15: `non-unique`, which may repeat, and
    # `missing-choice`), as (local name, value) in order; a `non-unique` value is a data path.
    yang_info: tuple[tuple[str, str], ...] = ()
    # the error-path names a node the request itself gave (a node its edit created), not one read from a datastore:
    # `hide_unreadable` keeps it for a NACM-restricted user (it tells the user nothing the request did not)
    path_from_request: bool = False

    def __post_init__(self) -> None:
        """error-message and error-info bounded, however much of a request they quote."""
        message = _bounded(self.error_message)
        if message is not self.error_message:
            object.__setattr__(self, "error_message", message)
        if any(len(v) > MAX_MESSAGE for v in self.info.values()):
            object.__setattr__(self, "info", {k: clip(v, MAX_MESSAGE) for k, v in self.info.items()})
        if any(len(v) > MAX_MESSAGE for _, v in self.yang_info):
            object.__setattr__(self, "yang_info", tuple((k, clip(v, MAX_MESSAGE)) for k, v in self.yang_info))


def path_namespaces(path: str, ctx: libyang.Context) -> dict[str, str]:
    """The namespace of each module whose name is a prefix of `path`: an error-path's prefixes must be declared on
    it in XML (RFC 6241 section 4.3: the namespace declarations in scope on the rpc-error; RFC 8040 section 7.1: an
    instance-identifier, RFC 7950 section 9.13.2). Prefixes naming no module are left out."""
    out: dict[str, str] = {}
    for name in xpath.prefixes(path):
        try:
            module = ctx.get_module(name)
        except libyang.LibyangError:
            continue
        out[name] = str(ly_ffi.string(module.cdata.ns).decode())
    return out


class MgmtException(Exception):
    """An error our own code detected, already classified."""

    def __init__(self, *errors: MgmtError) -> None:
        super().__init__("; ".join(e.error_message or e.error_tag for e in errors))
        self.errors: tuple[MgmtError, ...] = errors

    @property
    def error(self) -> MgmtError:
        return self.errors[0]


# --- one helper per error-tag (netopeer2 src/common.h does the same) ------------------------------------------------


def in_use(message: str, error_type: str = PROTOCOL) -> MgmtException:
    return MgmtException(MgmtError(error_type, "in-use", message))


def invalid_value(message: str, path: str | None = None, error_type: str = PROTOCOL, app_tag: str | None = None) -> MgmtException:
    return MgmtException(MgmtError(error_type, "invalid-value", message, app_tag, path))


def too_big(message: str, error_type: str = TRANSPORT) -> MgmtException:
    return MgmtException(MgmtError(error_type, "too-big", message))


def missing_attribute(attribute: str, element: str, error_type: str = RPC, path: str | None = None) -> MgmtException:
    return MgmtException(
        MgmtError(error_type, "missing-attribute", f'Missing attribute "{attribute}" of element "{element}".',
                  error_path=path, info={"bad-attribute": attribute, "bad-element": element})
    )


def bad_attribute(attribute: str, element: str, message: str = "", error_type: str = PROTOCOL) -> MgmtException:
    return MgmtException(
        MgmtError(error_type, "bad-attribute", message or f'Invalid value of attribute "{attribute}".',
                  info={"bad-attribute": attribute, "bad-element": element})
    )


def missing_element(element: str, error_type: str = PROTOCOL, message: str = "") -> MgmtException:
    return MgmtException(
        MgmtError(error_type, "missing-element", message or f'Missing element "{element}".', info={"bad-element": element})
    )


def bad_element(element: str, message: str = "", error_type: str = PROTOCOL, path: str | None = None) -> MgmtException:
    return MgmtException(
        MgmtError(error_type, "bad-element", message or f'Invalid element "{element}".', error_path=path,
                  info={"bad-element": element})
    )


def lock_denied(holder_session_id: int, message: str = "") -> MgmtException:
    return MgmtException(
        MgmtError(PROTOCOL, "lock-denied", message or f"Lock is held by session {holder_session_id}.",
                  info={"session-id": str(holder_session_id)})
    )


def resource_denied(message: str, error_type: str = APPLICATION) -> MgmtException:
    return MgmtException(MgmtError(error_type, "resource-denied", message))


def operation_not_supported(message: str, error_type: str = PROTOCOL) -> MgmtException:
    return MgmtException(MgmtError(error_type, "operation-not-supported", message))


def operation_failed(message: str, error_type: str = APPLICATION, path: str | None = None) -> MgmtException:
    return MgmtException(MgmtError(error_type, "operation-failed", message, error_path=path))


def malformed_message(message: str) -> MgmtException:
    return MgmtException(MgmtError(RPC, "malformed-message", message))


# --- classification of library errors ------------------------------------------------------------------------------

# libyang messages (libyang 3.x, src/tree_data*.c, src/validation.c) -> (error-tag, error-app-tag, error-type).
_LY_RULES: tuple[tuple[re.Pattern[str], str, str | None, str], ...] = tuple(
    (re.compile(p), tag, app, etype)
    for p, tag, app, etype in (
        (r"Unknown XML prefix|Unknown \(or not implemented\) YANG module|No module .*namespace|No module with namespace",
         "unknown-namespace", None, PROTOCOL),
        (r'Node "[^"]*" not found|not found as a child|Unknown element|No (?:data|schema) node|Invalid .*element',
         "unknown-element", None, PROTOCOL),
        (r"List instance is missing its key|missing its key|Missing (?:key|list key)", "missing-element", None, PROTOCOL),
        (r"Duplicate instance|Unique data leaf", "operation-failed", "data-not-unique", APPLICATION),
        (r"Too many", "operation-failed", "too-many-elements", APPLICATION),
        (r"Too few", "operation-failed", "too-few-elements", APPLICATION),
        (r"Must condition", "operation-failed", "must-violation", APPLICATION),
        (r"Invalid leafref|required instance|Instance-identifier", "data-missing", "instance-required", APPLICATION),
        (r"Mandatory choice", "data-missing", "missing-choice", APPLICATION),
        (r"Mandatory node", "missing-element", None, APPLICATION),
        (r"When condition", "unknown-element", None, APPLICATION),
        (r"Invalid (?:attribute|metadata)|Unknown attribute|Unknown metadata|Invalid operation",
         "bad-attribute", None, PROTOCOL),
        (r"Invalid character|Unexpected character|XML|Invalid character sequence|Premature end", "malformed-message", None, RPC),
    )
)

_APP_TAG_IN_MESSAGE = re.compile(r'\(error-app-tag "?([^")]+)"?\)')


def from_libyang(exc: libyang.LibyangError) -> MgmtError:
    items = list(getattr(exc, "errors", ()) or ())
    message = str(exc)
    path: str | None = None
    if items:
        last = items[-1]
        message = last.msg or message
        path = last.data_path or None
    for pattern, tag, app, etype in _LY_RULES:
        if pattern.search(message):
            return mandatory_info(_of_attribute(MgmtError(etype, tag, message, app, path)))
    return _of_attribute(MgmtError(APPLICATION, "invalid-value", message, None, path))


YANG_NS = "urn:ietf:params:xml:ns:yang:1"
_NODE_NAMED = re.compile(r'^(?:Node|Mandatory node|List instance is missing its key) "([A-Za-z_][\w.-]*)"'
                         r'|missing its key "([A-Za-z_][\w.-]*)"')
_NAMESPACE_NAMED = re.compile(r'namespace "([^"]+)"')
_NOT_UNIQUE = re.compile(r'Unique data leaf\(s\) "([^"]+)" not satisfied in "[^"]+" and "([^"]+)"')
_CHOICE_NAMED = re.compile(r'Mandatory choice "([^"]+)"')


def mandatory_info(error: MgmtError) -> MgmtError:
    """`error` (classified from libyang's or sysrepo's text, which carries no error-info) with the error-info RFC 6241
    Appendix A makes mandatory for its tag — `bad-element` for missing-element, bad-element and unknown-element,
    `bad-namespace` and `bad-element` for unknown-namespace — and the YANG-namespace elements of RFC 7950 section 15:
    a `non-unique` data path for each leaf of a violated "unique" (15.1), `missing-choice` naming the choice (15.6).
    What its text does not tell is left out."""
    info = dict(error.info)
    message = error.error_message
    tag = error.error_tag
    named = _NODE_NAMED.search(message)
    node = next((g for g in named.groups() if g), None) if named else None
    if tag in ("missing-element", "bad-element", "unknown-element") and "bad-element" not in info:
        name = node or (_node_name(error.error_path) if error.error_path else None)
        if name:
            info["bad-element"] = name
    elif tag == "unknown-namespace":
        namespace = _NAMESPACE_NAMED.search(message)
        if namespace and "bad-namespace" not in info:
            info["bad-namespace"] = namespace.group(1)
        if "bad-element" not in info and error.error_path:
            info["bad-element"] = _node_name(error.error_path)
    yang_info = error.yang_info
    if not yang_info and error.error_app_tag == "data-not-unique":
        unique = _NOT_UNIQUE.search(message)
        if unique:
            yang_info = tuple(("non-unique", f"{unique.group(2)}/{leaf}") for leaf in unique.group(1).split())
    elif not yang_info and error.error_app_tag == "missing-choice":
        choice = _CHOICE_NAMED.search(message)
        if choice:
            yang_info = (("missing-choice", choice.group(1)),)
    if info == error.info and yang_info == error.yang_info:
        return error
    return replace(error, info=info, yang_info=yang_info)


def _of_attribute(error: MgmtError) -> MgmtError:
    """A value libyang refuses in an attribute (metadata: its path ends in `/@module:name`, such as
    nc:operation="bogus" or a filter's type) is RFC 6241 Appendix A's bad-attribute — "An attribute value is not
    correct" — with error-info bad-attribute and bad-element, the path the element's; libyang's words made it
    invalid-value. (An XPath in a filter's select that does not evaluate stays invalid-value.)"""
    path = error.error_path
    if error.error_tag != "invalid-value" or not path or "/@" not in path:
        return error
    element_path, _, attribute = path.rpartition("/@")
    element = _node_name(element_path) if element_path else ""
    if not element or "/" in attribute or attribute.endswith(":select"):
        return error  # a filter's select is an XPath expression: one that does not evaluate stays invalid-value
    return replace(error, error_tag="bad-attribute", error_path=element_path,
                   info={**error.info, "bad-attribute": attribute.rpartition(":")[2], "bad-element": element})


def _sysrepo_message(exc: sysrepo.SysrepoError) -> str:
    from singbox_agent.mgmt.datastore import scrub  # noqa: PLC0415 - datastore imports this module

    msg = getattr(exc, "msg", None) or str(exc)
    return scrub(str(msg))


def from_sysrepo(exc: sysrepo.SysrepoError) -> MgmtError:
    return mandatory_info(_from_sysrepo(exc))


def _from_sysrepo(exc: sysrepo.SysrepoError) -> MgmtError:
    message = _sysrepo_message(exc)
    if isinstance(exc, sysrepo.SysrepoValidationFailedError):
        # Either a YANG constraint (libyang's text, which we classify) or an agent's rejection (its own words).
        for pattern, tag, app, etype in _LY_RULES:
            if tag != "malformed-message" and pattern.search(message):
                return MgmtError(etype, tag, message, app, _path_in(message))
        return MgmtError(APPLICATION, "operation-failed", message, None, _path_in(message))
    if isinstance(exc, sysrepo.SysrepoCallbackFailedError):
        return MgmtError(APPLICATION, "operation-failed", message)
    if isinstance(exc, sysrepo.SysrepoExistsError):
        return MgmtError(APPLICATION, "data-exists", message, None, _path_in(message))
    if isinstance(exc, sysrepo.SysrepoNotFoundError):
        return MgmtError(APPLICATION, "data-missing", message, None, _path_in(message))
    if isinstance(exc, sysrepo.SysrepoLockedError):
        return MgmtError(PROTOCOL, "lock-denied", message, info=_lock_holder(message))
    if isinstance(exc, sysrepo.SysrepoUnauthorizedError):
        return _nacm_refusal(exc, message)
    if isinstance(exc, sysrepo.SysrepoUnsupportedError):
        return MgmtError(PROTOCOL, "operation-not-supported", message)
    if isinstance(exc, sysrepo.SysrepoInvalArgError | sysrepo.SysrepoLyError):
        for pattern, tag, app, etype in _LY_RULES:
            if pattern.search(message):
                return MgmtError(etype, tag, message, app, _path_in(message))
        return MgmtError(APPLICATION, "invalid-value", message, None, _path_in(message))
    if isinstance(exc, sysrepo.SysrepoTimeOutError):
        return MgmtError(APPLICATION, "operation-failed", message or "Operation timed out.")
    return MgmtError(APPLICATION, "operation-failed", message)


def _nacm_refusal(exc: sysrepo.SysrepoUnauthorizedError, message: str) -> MgmtError:
    """A write NACM refused, from sysrepo's NETCONF error record (`datastore._noting_denial` attaches it): error-type
    protocol, access-denied, error-path the refused node (RFC 8341 3.4.5: "error-tag ... access-denied"; netopeer2
    replies the same). Without the record (a refusal outside `mgmt.datastore`'s writes) the tag still is
    access-denied, error-type protocol, with no path."""
    from singbox_agent.mgmt.datastore import scrub  # noqa: PLC0415 - datastore imports this module

    for record, from_request in getattr(exc, "netconf_errors", ()):
        if record.error_tag == "access-denied":
            return MgmtError(record.error_type, record.error_tag, scrub(record.error_message) or message,
                             record.error_app_tag, record.error_path, dict(record.info),
                             path_from_request=from_request)
    return MgmtError(PROTOCOL, "access-denied", message, None, _path_in(message))


_PATH_IN_MESSAGE = re.compile(r'(?:Data location|[Pp]ath) "?(/[^"\s,)]+)')
_SESSION_IN_MESSAGE = re.compile(r"session (?:ID )?\"?(\d+)")


def _path_in(message: str) -> str | None:
    m = _PATH_IN_MESSAGE.search(message)
    return m.group(1) if m else None


def _lock_holder(message: str) -> dict[str, str]:
    m = _SESSION_IN_MESSAGE.search(message)
    return {"session-id": m.group(1) if m else "0"}


def from_exception(exc: BaseException, ctx: libyang.Context | None = None) -> list[MgmtError]:
    """Every error record for one failure; unknown exceptions become operation-failed without internals.

    `ctx` (the schema the request was checked against) lets a `must` failure carry its statement's error-app-tag:
    sysrepo passes on libyang's message and path but not the app tag (RFC 7950 §7.5.4.2 wants it).
    """
    if isinstance(exc, MgmtException):
        return list(exc.errors)
    if isinstance(exc, sysrepo.SysrepoError):
        error = from_sysrepo(exc)
        if ctx is not None and isinstance(exc, sysrepo.SysrepoValidationFailedError):
            error = must_violation(ctx, error) or error
        return [error]
    if isinstance(exc, libyang.LibyangError):
        error = from_libyang(exc)
        return [restriction_app_tag(ctx, error) if ctx is not None else error]
    return [MgmtError(APPLICATION, "operation-failed", "Internal error.")]


_LOCATION_SUFFIX = re.compile(r'\s*\((?:path|Data location|Schema location)\b[^()]*(?:\([^()]*\)[^()]*)*\)\.?\s*$')
_DEFAULT_MUST = re.compile(r'^Must condition "(?P<cond>.*)" not satisfied\.?$', re.DOTALL)


def must_violation(ctx: libyang.Context, error: MgmtError) -> MgmtError | None:
    """The error as RFC 7950 §7.5.4.2 words it when it is a `must` statement's failure at its error-path: tag
    operation-failed, the statement's error-app-tag (default must-violation) and its error-message; else None."""
    if not error.error_path:
        return None
    text = _LOCATION_SUFFIX.sub("", error.error_message).strip()
    try:
        snode = next(ctx.find_path(xpath.strip_predicates(error.error_path)), None)
    except libyang.LibyangError:
        return None
    if snode is None:
        return None
    default = _DEFAULT_MUST.match(text)
    for must in snode.musts():
        message = must.error_message()
        if message == text or (message is None and default is not None and default["cond"] == must.condition()):
            raw = must.cdata.eapptag
            app_tag = ly_ffi.string(raw).decode() if raw != ly_ffi.NULL else "must-violation"
            return MgmtError(APPLICATION, "operation-failed", text, app_tag, error.error_path)
    return None


# libyang's compiled range/length and pattern restrictions, which libyang-python declares opaque: their layout
# (libyang 3, tree_schema.h) for reading error-message and error-app-tag.
_restriction_abi = cffi.FFI()
_restriction_abi.cdef(
    """
    struct sbx_range { void *parts; const char *dsc; const char *ref; const char *emsg; const char *eapptag;
                       void *exts; };
    struct sbx_pattern { const char *expr; void *code; const char *dsc; const char *ref; const char *emsg;
                         const char *eapptag; void *exts; uint32_t bits; };
    """
)
_NUMERIC = frozenset(getattr(ly_lib, f"LY_TYPE_{n}") for n in (
    "INT8", "INT16", "INT32", "INT64", "UINT8", "UINT16", "UINT32", "UINT64"))
_UNSATISFIED = re.compile(r"^Unsatisfied (range|length|pattern)\b")


def _c_text(pointer: Any) -> str | None:
    return None if pointer == _restriction_abi.NULL else str(_restriction_abi.string(pointer).decode())


def _restrictions(leaf_type: Any) -> list[tuple[str, str | None, str | None, str | None]]:
    """(kind, error-message, error-app-tag, pattern) of each range, length and pattern restriction of a compiled
    leaf type (`struct lysc_type *`)."""
    base = leaf_type.basetype
    ranges: list[tuple[str, Any]] = []
    patterns: Any = ly_ffi.NULL
    if base in _NUMERIC:
        ranges.append(("range", ly_ffi.cast("struct lysc_type_num *", leaf_type).range))
    elif base == ly_lib.LY_TYPE_DEC64:
        ranges.append(("range", ly_ffi.cast("struct lysc_type_dec *", leaf_type).range))
    elif base == ly_lib.LY_TYPE_STRING:
        string = ly_ffi.cast("struct lysc_type_str *", leaf_type)
        ranges.append(("length", string.length))
        patterns = string.patterns
    elif base == ly_lib.LY_TYPE_BINARY:
        ranges.append(("length", ly_ffi.cast("struct lysc_type_bin *", leaf_type).length))
    out: list[tuple[str, str | None, str | None, str | None]] = []
    for kind, pointer in ranges:
        if pointer != ly_ffi.NULL:
            r = _restriction_abi.cast("struct sbx_range *", int(ly_ffi.cast("uintptr_t", pointer)))
            out.append((kind, _c_text(r.emsg), _c_text(r.eapptag), None))
    if patterns != ly_ffi.NULL:
        for i in range(int(ly_ffi.cast("uint64_t *", patterns)[-1])):  # a sized array: its count precedes it
            p = _restriction_abi.cast("struct sbx_pattern *", int(ly_ffi.cast("uintptr_t", patterns[i])))
            out.append(("pattern", _c_text(p.emsg), _c_text(p.eapptag), _c_text(p.expr)))
    return out


def restriction_app_tag(ctx: libyang.Context, error: MgmtError) -> MgmtError:
    """`error` with the error-app-tag of the type restriction (range, length, pattern) it reports — RFC 7950 8.3.1: a
    value its type refuses is invalid-value "with the error-app-tag (Section 7.5.4.2) and error-message (Section
    7.5.4.1) associated with the constraint, if any exist"; libyang-python drops libyang's app tag. The restriction
    is the one whose error-message is the error's, else the one of the kind libyang's own words name."""
    if error.error_tag != "invalid-value" or error.error_app_tag or not error.error_path or "/@" in error.error_path:
        return error
    try:
        snode = next(ctx.find_path(xpath.strip_predicates(error.error_path)), None)
    except libyang.LibyangError:
        return error
    if not isinstance(snode, libyang.SLeaf | libyang.SLeafList):
        return error
    text = _LOCATION_SUFFIX.sub("", error.error_message).strip()
    unsatisfied = _UNSATISFIED.match(text)
    kind_of = "struct lysc_node_leaf *" if isinstance(snode, libyang.SLeaf) else "struct lysc_node_leaflist *"
    for kind, emsg, app_tag, expr in _restrictions(ly_ffi.cast(kind_of, snode.cdata).type):
        if app_tag is None:
            continue
        if emsg == text or (emsg is None and unsatisfied is not None and unsatisfied.group(1) == kind
                            and (expr is None or f'"{expr}"' in text)):
            return replace(error, error_app_tag=app_tag)
    return error


# sysrepo's words (sr_apply_changes, sr_copy_config, sr_replace_config) when the change was committed but its
# netconf-config-change notification could not be stored for replay: its JSON notification files are named by the
# second, so right after a notification above the 1 MiB file limit (a change of ~1,000+ list entries) the next one
# in the same second has nowhere to go. The change did happen; reporting a failure would make clients retry it.
APPLIED_ANYWAY = "but changes were applied"


def applied_anyway(exc: BaseException) -> bool:
    """Whether `exc` is sysrepo reporting a committed change whose config-change notification was not stored."""
    return isinstance(exc, sysrepo.SysrepoOperationFailedError) and APPLIED_ANYWAY in str(exc)


def with_path(error: MgmtError, path: str | None) -> MgmtError:
    return error if error.error_path or path is None else replace(error, error_path=path)


# sysrepo's refusals of an edit node (sysrepo 3.7 src/edit_diff.c): create of an existing node, delete of a missing
# one, a node of operation "none" that is not there. They name the node by its name only, without a path.
_EDIT_REFUSAL = re.compile(r'Node "(?P<name>[^"]+)" (?P<what>to be created already exists|to be deleted does not '
                           r'exist|does not exist)\.')
_REFUSED_OPERATION = {"to be created already exists": "create", "to be deleted does not exist": "delete",
                      "does not exist": "none"}


def locate_in_edit(errors: Sequence[MgmtError], tree: libyang.DNode | None, default_operation: str = "merge",
                   exists: Callable[[str], bool] | None = None, *, subtree: bool = False) -> list[MgmtError]:
    """`errors` with sysrepo's data-exists / data-missing refusals of nodes of the edit `tree` each given the
    error-path of its node (RFC 6241 Appendix A: error-path "identifies the ... node"; RFC 8040 section 7.1):
    sysrepo names the node by its name only ('Node "endpoint" to be created already exists.') and reports several
    refusals of one edit as one message, which becomes one error per refusal. The node is the edit's node of that
    name carrying the refused operation (create, delete; "none" for a node that must exist); when several do,
    `exists(path)` (a read of the datastore the edit was for) tells which one was refused. `subtree`: the edit is
    `tree` and its descendants only (one unit of a larger edit, which holds its ancestors). Other errors pass as
    they are."""
    out: list[MgmtError] = []
    nodes: list[tuple[str, str, str, str]] | None = None
    taken: set[str] = set()
    for error in errors:
        refusals = (list(_EDIT_REFUSAL.finditer(error.error_message))
                    if error.error_tag in ("data-exists", "data-missing") and not error.error_path else [])
        if tree is None or not refusals:
            out.append(error)
            continue
        if nodes is None:
            nodes = _edit_nodes(tree, default_operation, subtree)
        located: list[MgmtError] = []
        for refusal in refusals:
            operation = _REFUSED_OPERATION[refusal["what"]]
            candidates = [path for name, op, path, _ in nodes
                          if name == refusal["name"] and op == operation and path not in taken]
            if len(candidates) > 1 and exists is not None:
                present = operation == "create"
                candidates = [path for path in candidates if exists(path) == present] or candidates
            path = candidates[0] if candidates else None
            if path is not None:
                taken.add(path)
            located.append(replace(error, error_message=refusal.group(0), error_path=path))
        # sysrepo also refuses each existing descendant of an existing node created (they inherit the create):
        # the node's own refusal says it all
        out.extend(e for e in located
                   if e.error_path is None or not any(e.error_path.startswith(f"{p}/") for p in taken))
    return out


# paths per existence read of `existing_creates`: an XPath union of this many
_CREATE_CHECK_BATCH = 256


def existing_creates(tree: libyang.DNode | None, sess: Any) -> list[MgmtError]:
    """data-exists, naming the node (RFC 6241 Appendix A), for each node of the edit `tree` created explicitly
    (ietf-netconf:operation "create") that exists in the datastore of the sysrepo session `sess`; one read per
    `_CREATE_CHECK_BATCH` of them. To be asked before sysrepo applies the edit: sysrepo 3.7 refuses such a create
    with data-exists but still stores the edit's children of the node (a <port> of an existing endpoint created
    with it changed the endpoint's port, the edit "failing"). A leaf holding only its schema default does not
    exist here (RFC 6243 4.5.2: its create succeeds). Blocking (sysrepo reads)."""
    if tree is None:
        return []
    # a non-presence container is left to sysrepo, which takes its create as a merge (whether it "exists" is a
    # question of its children)
    created = [path for path in _created(tree) if not _np_container(tree, path)]
    found: list[str] = []
    for i in range(0, len(created), _CREATE_CHECK_BATCH):
        batch = created[i : i + _CREATE_CHECK_BATCH]
        read = sess.get_data_ly(" | ".join(batch), max_depth=1)  # a context manager: the tree, freed on exit
        try:
            data = read.__enter__()
        except sysrepo.SysrepoNotFoundError:
            continue
        try:
            for path in batch:
                if any(not (n.cdata.flags & ly_lib.LYD_DEFAULT) for n in data.find_all(path)):
                    found.append(path)
        finally:
            read.__exit__(None, None, None)
    found = [p for p in found if not any(p.startswith(f"{q}/") for q in found)]  # a node's refusal covers its own
    return [MgmtError(APPLICATION, "data-exists", f'Node "{_node_name(p)}" to be created already exists.',
                      error_path=p) for p in found]


def _node_name(path: str) -> str:
    """The name of the node a data path ends at, without its module."""
    return xpath.strip_predicates(path).rpartition("/")[2].rpartition(":")[2]


def _created(tree: libyang.DNode) -> list[str]:
    """The data paths of the nodes of an edit that carry operation "create" themselves: a walk that touches each
    node's metadata only (a path is made for those nodes alone: 10,000 endpoints walk in milliseconds, not the
    second `_edit_nodes` takes). Opaque nodes (empty deletes) carry no create."""
    out: list[str] = []
    first = ly_ffi.cast("struct lyd_node *", tree.cdata)
    while first.prev != ly_ffi.NULL and first.prev.next != ly_ffi.NULL:
        first = first.prev
    todo = [first]
    while todo:
        node = todo.pop()
        while node != ly_ffi.NULL:
            if node.schema != ly_ffi.NULL and node.meta != ly_ffi.NULL and _own_operation(node) == "create":
                out.append(libyang.DNode.new(tree.context, node).path())
            elif node.schema == ly_ffi.NULL or node.schema.nodetype & _INNER:
                child = ly_lib.lyd_child(node)
                if child != ly_ffi.NULL:
                    todo.append(child)
            node = node.next
    return out


# node types that have children (a created node's own children are its create: not walked)
_INNER = ly_lib.LYS_CONTAINER | ly_lib.LYS_LIST | ly_lib.LYS_RPC | ly_lib.LYS_ACTION | ly_lib.LYS_NOTIF


def _np_container(tree: libyang.DNode, path: str) -> bool:
    """Whether `path` names a non-presence container of the schema."""
    try:
        snode = next(tree.context.find_path(xpath.strip_predicates(path)), None)
    except libyang.LibyangError:
        return False
    return isinstance(snode, libyang.SContainer) and not snode.presence()


def _edit_nodes(tree: libyang.DNode, default_operation: str, subtree: bool) -> list[tuple[str, str, str, str]]:
    """(name, effective operation, data path, own operation) of every node of an edit in document order: own is
    the node's ietf-netconf:operation (metadata, or an attribute of an opaque node: an empty leaf deleted) or "",
    the effective one its own, else its nearest ancestor's, else the default operation."""
    out: list[tuple[str, str, str, str]] = []
    first = ly_ffi.cast("struct lyd_node *", tree.cdata)
    inherited, parent_path = default_operation, ""
    if subtree:
        parent = ly_ffi.cast("struct lyd_node *", first.parent)
        if parent != ly_ffi.NULL:
            parent_path = libyang.DNode.new(tree.context, parent).path()
        while parent != ly_ffi.NULL and not _own_operation(parent):  # the nearest operation above, if any
            parent = ly_ffi.cast("struct lyd_node *", parent.parent)
        if parent != ly_ffi.NULL:
            inherited = _own_operation(parent)
    else:
        while first.prev != ly_ffi.NULL and first.prev.next != ly_ffi.NULL:  # the first sibling
            first = first.prev

    def walk(node: Any, inherited: str, parent_path: str, siblings: bool = True) -> None:  # pre-order
        while node != ly_ffi.NULL:
            own = _own_operation(node)
            if node.schema == ly_ffi.NULL:  # opaque: no schema, so no libyang path; its parent's module
                name = str(ly_ffi.string(ly_ffi.cast("struct lyd_node_opaq *", node).name.name).decode())
                path = f"{parent_path}/{name}"
            else:
                name = str(ly_ffi.string(node.schema.name).decode())
                path = libyang.DNode.new(tree.context, node).path()
            effective = own or inherited
            out.append((name, effective, path, own))
            walk(ly_lib.lyd_child(node), effective, path)
            node = node.next if siblings else ly_ffi.NULL

    walk(first, inherited, parent_path, not subtree)
    return out


def _own_operation(node: Any) -> str:
    """The ietf-netconf:operation a node carries itself, or ""."""
    if node.schema == ly_ffi.NULL:
        attr = ly_ffi.cast("struct lyd_node_opaq *", node).attr
        while attr != ly_ffi.NULL:
            if ly_ffi.string(attr.name.name) == b"operation" and attr.value != ly_ffi.NULL:
                return str(ly_ffi.string(attr.value).decode())
            attr = attr.next
        return ""
    meta = node.meta
    while meta != ly_ffi.NULL:
        if (ly_ffi.string(meta.name) == b"operation" and meta.annotation != ly_ffi.NULL
                and ly_ffi.string(meta.annotation.module.name) == b"ietf-netconf"):
            value = ly_lib.lyd_value_get_canonical(meta.annotation.module.ctx, ly_ffi.addressof(meta.value))
            return str(ly_ffi.string(value).decode()) if value != ly_ffi.NULL else ""
        meta = meta.next
    return ""


# A data path quoted in libyang's and sysrepo's texts ("/module:node[key='v']/leaf"), and a condition's text.
_QUOTED_PATH = re.compile(r'"(/[A-Za-z_][\w.-]*:[^"]*)"')
_CONDITION = re.compile(r'\b(Must|When) condition "(?:[^"\\]|\\.)*" (not satisfied)')
HIDDEN = "(a node you may not read)"


def hide_unreadable(errors: Sequence[MgmtError], readable: Callable[[str], bool]) -> list[MgmtError]:
    """`errors` as a user NACM restricts may see them (RFC 8341 3.4.5: no reply reveals what the user may not read):
    a `must`/`when` failure loses its condition's text (it names other nodes, readable or not), every quoted data
    path the user may not read — in the message, the error-path and the error-info (`non-unique`, ...) — gives way
    to a placeholder. `readable(path)` says whether the user may read a data path."""
    seen: dict[str, bool] = {}

    def ok(path: str) -> bool:
        if path not in seen:
            seen[path] = readable(path)
        return seen[path]

    out = []
    for error in errors:
        message = _CONDITION.sub(r"\1 condition \2", error.error_message)
        message = _QUOTED_PATH.sub(lambda m: m.group(0) if ok(m.group(1)) else f'"{HIDDEN}"', message)
        path = (error.error_path if error.error_path is None or error.path_from_request or ok(error.error_path)
                else None)
        info = {k: v for k, v in error.info.items() if not v.startswith("/") or ok(v)}
        yang_info = tuple((k, v) for k, v in error.yang_info if not v.startswith("/") or ok(v))
        out.append(replace(error, error_message=message, error_path=path, info=info, yang_info=yang_info))
    return out


def for_reader(errors: Sequence[MgmtError], sess: Any) -> list[MgmtError]:
    """`errors` for the user `sess` (a sysrepo session) acts for: unchanged when NACM does not restrict it, else
    through `hide_unreadable`, reading with `sess`. Blocking (sysrepo reads): not on an event loop."""
    from singbox_agent.mgmt import filtered_read  # noqa: PLC0415 - filtered_read imports datastore, which imports us

    if not filtered_read.restricted(sess):
        return list(errors)

    def readable(path: str) -> bool:
        try:
            return bool(sess.get_data(path, max_depth=1))
        except (sysrepo.SysrepoError, libyang.LibyangError):
            return False

    return hide_unreadable(errors, readable)

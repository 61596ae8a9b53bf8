"""The single dispatcher: envelope → schema validation (libyang) → NACM → handler → reply. Runs on a session's worker.

Like netopeer2's main.c: every operation has the same handler signature, unknown RPCs go to sysrepo
(`rpc_send`), and every failure becomes rpc-errors through `singbox_agent.mgmt.errors`. Each handler is
responsible for leaving nothing half-done (the edit handlers always discard pending changes).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import libyang
import structlog
from _libyang import ffi as ly_ffi
from _libyang import lib as ly_lib

from singbox_agent.mgmt import errors, nacm
from singbox_agent.mgmt.datastore import WouldWait, parse_netconf_rpc, scrub
from singbox_agent.mgmt.errors import MgmtError, MgmtException, for_reader
from singbox_agent.netconf import limits, messages
from singbox_agent.netconf.messages import Rpc, RpcParseError

if TYPE_CHECKING:
    from singbox_agent.netconf.session import NetconfSession

log = structlog.get_logger("netconf.dispatch")


@dataclass
class OpContext:
    session: NetconfSession
    rpc: Rpc
    op: libyang.DNode
    ly: libyang.Context
    close_after: bool = False

    @property
    def sr(self) -> Any:
        return self.session.sr


Handler = Callable[[OpContext], str]

# (namespace, name) -> handler; filled by singbox_agent.netconf.ops.
HANDLERS: dict[tuple[str, str], Handler] = {}

# Any other RPC or action (ops.generic_rpc: to its sysrepo subscriber).
FALLBACK: list[Handler] = []

# Run when a session ends, before its sysrepo session stops (an operation's own cleanup: its locks, its
# subscription); filled by singbox_agent.netconf.ops.
SESSION_END: list[Callable[[NetconfSession], None]] = []

# RFC 8341 section 3.2.8: close-session is always permitted.
_NACM_EXEMPT = {(messages.BASE_NS, "close-session")}


def register(namespace: str, name: str) -> Callable[[Handler], Handler]:
    def deco(fn: Handler) -> Handler:
        HANDLERS[(namespace, name)] = fn
        return fn

    return deco


_UNKNOWN_ATTRIBUTE = re.compile(r'Missing mandatory prefix for XML metadata "([^"]+)"'
                                r'|Annotation definition for attribute "([^"]+)" not found')


# libyang's words for a second operation in one <rpc> (two actions under <action>)
_SECOND_OPERATION = re.compile(r'^Unexpected (?:action|RPC|rpc) element "([^"]+)", \w+ "[^"]+" already parsed')


def _parse_errors(exc: libyang.LibyangError, rpc: Rpc, ly: libyang.Context) -> list[MgmtError]:
    """Schema errors of the operation element itself are protocol errors with the offending element named."""
    err = errors.from_libyang(exc)
    message = err.error_message
    if "Missing XML namespace" in message:
        bare = next((el.tag for el in rpc.op.iter() if not el.tag.startswith("{")), "?")
        return [MgmtError("protocol", "unknown-namespace",
                          f'Element "{bare}" has no XML namespace (NETCONF elements are in {messages.BASE_NS}, '
                          "data nodes in their module's namespace).",
                          info={"bad-element": bare, "bad-namespace": ""})]
    if "not found in the" in message and " module" in message:
        return [MgmtError("protocol", "operation-not-supported", f'Operation "{rpc.op_name}" is not supported.',
                          info={"bad-element": rpc.op_name})]
    if "No module with namespace" in message or "Unknown XML prefix" in message or "No module" in message:
        return [MgmtError("protocol", "unknown-namespace", message,
                          info={"bad-element": rpc.op_name, "bad-namespace": rpc.op_ns})]
    second = _SECOND_OPERATION.search(message)
    if second:
        # RFC 7950 7.15.2: "If more than one action is present in the <rpc>, the server MUST reply with a
        # "bad-element" <error-tag>" (it was invalid-value)
        return [MgmtError("protocol", "bad-element", message, error_path=err.error_path,
                          info={"bad-element": second.group(1)})]
    if message.startswith("Missing the operation node"):
        # an <action> naming no action: the operation it must hold is missing (RFC 6241 Appendix A)
        return [MgmtError("protocol", "missing-element", f'"{rpc.op_name}" holds no operation to invoke.',
                          info={"bad-element": rpc.op_name})]
    unknown_attribute = _UNKNOWN_ATTRIBUTE.search(message)
    if unknown_attribute:
        # RFC 6241 Appendix A: "An unexpected attribute is present" (libyang's words made it malformed-message or
        # invalid-value); error-info names the attribute and its element
        name = next(g for g in unknown_attribute.groups() if g).rpartition(":")[2]
        owner = next((el.tag.rpartition("}")[2] for el in rpc.op.iter()
                      if any(key.rpartition("}")[2] == name for key in el.keys())), rpc.op_name)
        return [MgmtError("protocol", "unknown-attribute", f'Unexpected attribute "{name}" of element "{owner}".',
                          error_path=err.error_path, info={"bad-attribute": name, "bad-element": owner})]
    if err.error_tag == "unknown-element":
        bad = message.split('"')[1] if message.count('"') >= 2 else rpc.op_name
        return [MgmtError("protocol", "unknown-element", message, error_path=err.error_path,
                          info={"bad-element": bad})]
    if err.error_tag == "malformed-message":
        return [MgmtError("rpc", "malformed-message", message)]
    return [MgmtError("protocol", "invalid-value" if err.error_tag == "operation-failed" else err.error_tag, message,
                      err.error_app_tag, err.error_path, err.info)]


# Operations whose input libyang validates before their handler runs (the rpc parse checks types only): those of
# ietf-netconf, -nmda, -netconf-monitoring and RFC 5277 reference no data (no leafref, when or must on a datastore).
# Other modules' operations go to sysrepo, which validates them (or, RFC 8639's, check their own input).
_VALIDATED_NS = frozenset({messages.BASE_NS, messages.NOTIF_NS, "urn:ietf:params:xml:ns:yang:ietf-netconf-nmda",
                           "urn:ietf:params:xml:ns:yang:ietf-netconf-monitoring"})
_QUOTED = re.compile(r'"([^"]+)"')


def _invalid_input(op: libyang.DNode, rpc: Rpc, ly: libyang.Context) -> list[MgmtError] | None:
    """RFC 7950 8.3.1 and 7.14: a mandatory parameter missing is missing-element, a parameter given twice or two
    cases of one choice bad-element (kill-session without session-id killed 'session 0', a second confirm-timeout
    or <source> was ignored)."""
    if ly_lib.lyd_validate_op(op.cdata, ly_ffi.NULL, ly_lib.LYD_TYPE_RPC_YANG, ly_ffi.NULL) == ly_lib.LY_SUCCESS:
        _drop_implicit(op.cdata)
        return None
    exc = ly.error("invalid input")
    err = errors.from_libyang(exc)
    names = _QUOTED.findall(err.error_message)
    if err.error_message.startswith("Mandatory node") and names:
        return [MgmtError("protocol", "missing-element", f'Missing element "{names[0]}" of "{rpc.op_name}".',
                          error_path=err.error_path, info={"bad-element": names[0]})]
    if err.error_message.startswith("Mandatory choice") and err.error_path:
        # a parameter naming nothing (<source/>, <lock/>): RFC 6241's missing-element, naming the parameter
        missing = err.error_path.rpartition("/")[2].rpartition(":")[2]
        return [MgmtError("protocol", "missing-element", f'"{missing}" of "{rpc.op_name}" is missing or empty.',
                          error_path=err.error_path, info={"bad-element": missing})]
    if err.error_message.startswith("When condition") and err.error_path:
        # RFC 7950 8.3.1: a node whose "when" is false is unknown-element (with-origin on running)
        present = err.error_path.rpartition("/")[2].partition("[")[0].rpartition(":")[2]
        return [MgmtError("protocol", "unknown-element", f'"{present}" does not apply here: {err.error_message}',
                          error_path=err.error_path, info={"bad-element": present})]
    if (err.error_message.startswith("Duplicate instance") or err.error_message.startswith("Data for both cases")) \
            and names:
        return [MgmtError("protocol", "bad-element", err.error_message, error_path=err.error_path,
                          info={"bad-element": names[-1]})]
    return _parse_errors(exc, rpc, ly)


def _drop_implicit(op: Any) -> None:
    """Remove the default nodes validation added: a handler tells a parameter given from one left out (edit-config
    without error-option is not its default stop-on-error, see the README)."""
    implicit = []
    todo = [ly_lib.lyd_child(op)]
    while todo:
        node = todo.pop()
        while node != ly_ffi.NULL:
            if node.flags & ly_lib.LYD_DEFAULT:
                implicit.append(node)
            elif node.schema != ly_ffi.NULL and node.schema.nodetype & (ly_lib.LYS_CONTAINER | ly_lib.LYS_LIST):
                todo.append(ly_lib.lyd_child(node))
            node = node.next
    for node in implicit:
        ly_lib.lyd_free_tree(node)


def register_fallback(fn: Handler) -> Handler:
    FALLBACK[:] = [fn]
    return fn


def on_session_end(fn: Callable[[NetconfSession], None]) -> Callable[[NetconfSession], None]:
    SESSION_END.append(fn)
    return fn


def dispatch(session: NetconfSession, message: bytes) -> tuple[bytes, bool]:
    """Handle one `<rpc>` message: (reply bytes, whether to close the session after sending it)."""
    server = session.server
    bounds = server.limits
    try:
        rpc = messages.parse_rpc(message, bounds)
        limits.check_request(rpc.op, bounds, message)  # before libyang parses (and compiles) any XPath
    except RpcParseError as exc:
        return _fail(session, exc.attributes, list(exc.errors), bad=True), False
    except MgmtException as exc:
        return _fail(session, rpc.attributes, list(exc.errors), bad=True), False
    if session.sr is None:
        return _fail(session, rpc.attributes, [MgmtError("application", "operation-failed",
                                                         "Session is not ready.")]), False
    session.refresh_nacm()
    ly = session.sr.acquire_context()
    op: libyang.DNode | None = None
    try:
        try:
            op = parse_netconf_rpc(ly, _for_schema(rpc))
        except libyang.LibyangError as exc:
            return _fail(session, rpc.attributes, _parse_errors(exc, rpc, ly), bad=True), False
        if (rpc.op_ns, rpc.op_name) in HANDLERS and rpc.op_ns in _VALIDATED_NS:
            invalid = _invalid_input(op, rpc, ly)
            if invalid is not None:
                return _fail(session, rpc.attributes, invalid, bad=True), False
        # RFC 6022: in-rpcs counts correct <rpc> messages; the others are counted in in-bad-rpcs only
        with server.state.lock:
            server.state.stats.in_rpcs += 1
        session.in_rpcs += 1
        key = (rpc.op_ns, rpc.op_name)
        if key not in _NACM_EXEMPT and not nacm.check_operation(session.sr, op.cdata):
            # not through _fail: the error-path names the client's own request, no data it may not read
            return session.error_reply(rpc.attributes, [MgmtError(
                "protocol", "access-denied", f'Access to the operation "{rpc.op_name}" is denied.',
                error_path=_operation_path(op))]), False
        handler = HANDLERS.get(key, FALLBACK[0] if FALLBACK else None)
        if handler is None:
            return _fail(session, rpc.attributes, [MgmtError(
                "protocol", "operation-not-supported", f'Operation "{rpc.op_name}" is not supported.')]), False
        ctx = OpContext(session, rpc, op, ly)
        try:
            body = handler(ctx)
        except MgmtException as exc:
            return _fail(session, rpc.attributes, list(exc.errors)), False
        except WouldWait:
            raise  # run on the event loop, it would have to wait: the session runs it again on its worker
        except Exception as exc:  # noqa: BLE001 - every failure becomes an rpc-error
            mapped = errors.from_exception(exc, ly)  # ly: a must failure gets its error-app-tag
            if mapped[0].error_message == "Internal error.":
                session.log.exception("operation failed", operation=rpc.op_name)
            return _fail(session, rpc.attributes, mapped), False
        reply = messages.reply(rpc.attributes, body)
        if len(reply) > bounds.max_reply_size:
            return _fail(session, rpc.attributes, list(limits.reply_too_big(len(reply), bounds).errors)), False
        return reply, ctx.close_after
    finally:
        if op is not None:
            op.free()
        session.sr.release_context()


def _operation_path(op: libyang.DNode) -> str:
    """RFC 8341 3.4.4: an operation NACM refuses is named by error-path, `/nc:rpc/nc:edit-config` in the RFC's
    example. Module names are the prefixes (their namespaces declared on the error-path, `mgmt.errors.
    path_namespaces`): the base namespace is ietf-netconf's. An action is named by its data path."""
    path = op.path()
    if op.parent() is not None:
        return path
    return "/ietf-netconf:rpc" + path


def _for_schema(rpc: Rpc) -> bytes:
    """The message libyang validates. RFC 5277 clients (ncclient among them) put create-subscription's <filter> in
    the base namespace, where the `notifications` module has no such node; the handler reads the filter from the
    envelope, so libyang validates the rest."""
    if (rpc.op_ns, rpc.op_name) == (messages.NOTIF_NS, "create-subscription"):
        base_filter = rpc.op.find(messages.qname(messages.BASE_NS, "filter"))
        if base_filter is not None:
            import copy
            import xml.etree.ElementTree as ET

            op = copy.deepcopy(rpc.op)
            op.remove(op.find(messages.qname(messages.BASE_NS, "filter")))  # type: ignore[arg-type]
            root = ET.Element(messages.qname(messages.BASE_NS, "rpc"),
                              {k: v for k, v in rpc.attributes.items() if not k.startswith("xmlns:")})
            root.append(op)
            return ET.tostring(root)
    return rpc.raw


def _fail(session: NetconfSession, attributes: dict[str, str], errs: list[MgmtError], bad: bool = False) -> bytes:
    """The error reply; sysrepo's process internals (pids, connection ids, lock owners) never reach a client."""
    errs = for_reader(errs, session.sr) if session.sr is not None else errs  # nothing NACM hides (mgmt.errors)
    clean = [replace(e, error_message=scrub(e.error_message)) if e.error_message else e for e in errs]
    return session.error_reply(attributes, clean, bad=bad)

"""The server's private libyang context holding the twins of RFC 8040/8072 yang-data templates (restconf/yang/).

libyang-python cannot create or parse data inside extension instances (`rc:yang-data`), so the error report, the
API root and the YANG Patch envelope live in twin modules with the RFCs' names and namespaces, declared as plain
data nodes. libyang still does every parse and print; only this context ever sees the twins.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from xml.sax.saxutils import quoteattr

import libyang

from singbox_agent.mgmt import xpath
from singbox_agent.mgmt.errors import MAX_MESSAGE, MgmtError, clip
from singbox_agent.restconf.uri import Encoding

_ERROR_PATH = re.compile(rb"<error-path>")
_YANG_DIR = Path(__file__).resolve().parent / "yang"
_lock = threading.Lock()
_ctx: libyang.Context | None = None


def context() -> libyang.Context:
    global _ctx
    with _lock:
        if _ctx is None:
            ctx = libyang.Context(str(_YANG_DIR))
            ctx.load_module("ietf-restconf")
            ctx.load_module("ietf-yang-patch")
            _ctx = ctx
        return _ctx


def print_tree(node: libyang.DNode, encoding: Encoding) -> bytes:
    text = node.print_mem(encoding.value, with_siblings=True, pretty=True)
    return text.encode() if isinstance(text, str) else text


def _fill_error(ctx: libyang.Context, parent: libyang.DNode, error: MgmtError) -> None:
    ctx.create_data_path("error-type", parent=parent, value=error.error_type)
    ctx.create_data_path("error-tag", parent=parent, value=error.error_tag)
    if error.error_app_tag:
        ctx.create_data_path("error-app-tag", parent=parent, value=error.error_app_tag)
    if error.error_path:
        # bounded as error-message is (mgmt.errors): a path quotes the client's keys, and a 1 MB key came back
        # whole in every error about it
        ctx.create_data_path("error-path", parent=parent, value=clip(error.error_path, MAX_MESSAGE))
    if error.error_message:
        ctx.create_data_path("error-message", parent=parent, value=error.error_message)


def _new_entry(ctx: libyang.Context, top: libyang.DNode, path: str) -> libyang.DNode:
    """A new instance of the keyless list at `path` (lyd_new_path returns the FIRST node it made: look it up)."""
    ctx.create_data_path(path, parent=top)
    entries = list(top.find_all(path))
    return entries[-1]


def render_errors(errors: tuple[MgmtError, ...] | list[MgmtError], encoding: Encoding,
                  namespaces: Callable[[str], Mapping[str, str]] | None = None) -> bytes:
    """RFC 8040 §7.1 `ietf-restconf:errors`, printed by libyang. In XML, `namespaces` gives the declarations of an
    error-path's prefixes (module names; mgmt.errors.path_namespaces): error-path is an instance-identifier, whose
    XML value is read with the namespaces in scope (RFC 7950 §9.13.2). The twin holds it as a string, so libyang
    declares nothing: they are added to the printed element."""
    ctx = context()
    with _lock:
        root = ctx.create_data_path("/ietf-restconf:errors")
        assert root is not None
        try:
            for error in errors:
                entry = ctx.create_data_path("error", parent=root)
                assert entry is not None
                _fill_error(ctx, entry, error)
            text = print_tree(root, encoding)
        finally:
            root.free()
    return _declare_path_namespaces(text, errors, encoding, namespaces)


def _declare_path_namespaces(text: bytes, errors: tuple[MgmtError, ...] | list[MgmtError], encoding: Encoding,
                             namespaces: Callable[[str], Mapping[str, str]] | None) -> bytes:
    """In XML, each printed <error-path> (one per error with a path, in `errors`' order) declares its prefixes."""
    if encoding is not Encoding.XML or namespaces is None:
        return text
    decls = iter([namespaces(e.error_path) for e in errors if e.error_path])
    return _ERROR_PATH.sub(
        lambda m: b"<error-path" + "".join(f" xmlns:{p}={quoteattr(ns)}" for p, ns in next(decls).items()).encode()
        + b">", text)


def render_api_root(yang_library_revision: str, encoding: Encoding) -> bytes:
    """RFC 8040 §3.1 `ietf-restconf:restconf` (data and operations are placeholders, as in the RFC's example)."""
    ctx = context()
    with _lock:
        root = ctx.create_data_path("/ietf-restconf:restconf/yang-library-version", value=yang_library_revision)
        assert root is not None
        top = root.root()
        try:
            ctx.create_data_path("/ietf-restconf:restconf/data", parent=top)
            ctx.create_data_path("/ietf-restconf:restconf/operations", parent=top)
            text = top.print_mem(encoding.value, with_siblings=True, pretty=True, keep_empty_containers=True)
            return text.encode() if isinstance(text, str) else text
        finally:
            top.free()


def render_yang_library_version(revision: str, encoding: Encoding) -> bytes:
    """RFC 8040 §3.3.3 `ietf-restconf:yang-library-version`."""
    ctx = context()
    with _lock:
        node = ctx.create_data_path("/ietf-restconf:yang-library-version", value=revision)
        assert node is not None
        try:
            return print_tree(node, encoding)
        finally:
            node.free()


def render_patch_status(
    patch_id: str,
    edit_errors: dict[str, list[MgmtError]],
    global_errors: list[MgmtError],
    encoding: Encoding,
    namespaces: Callable[[str], Mapping[str, str]] | None = None,
) -> bytes:
    """RFC 8072 §2.3 `ietf-yang-patch:yang-patch-status`: ok, or global errors and per-edit errors; in XML each
    error-path declares its prefixes, as in `render_errors` (they were undeclared: an unreadable
    instance-identifier)."""
    ctx = context()
    with _lock:
        root = ctx.create_data_path("/ietf-yang-patch:yang-patch-status/patch-id", value=patch_id)
        assert root is not None
        top = root.root()
        try:
            if not global_errors and not edit_errors:
                ctx.create_data_path("/ietf-yang-patch:yang-patch-status/ok", parent=top)
            for error in global_errors:
                _fill_error(ctx, _new_entry(ctx, top, "/ietf-yang-patch:yang-patch-status/errors/error"), error)
            for edit_id, errs in edit_errors.items():
                quoted = xpath.quote(edit_id, in_path=True)  # the handler refuses edit-ids it cannot name
                base = f"/ietf-yang-patch:yang-patch-status/edit-status/edit[edit-id={quoted}]"
                for error in errs:
                    _fill_error(ctx, _new_entry(ctx, top, f"{base}/errors/error"), error)
            text = print_tree(top, encoding)
        finally:
            top.free()
    # printed in schema order: the global errors, then each edit's
    printed = [*global_errors, *(e for errs in edit_errors.values() for e in errs)]
    return _declare_path_namespaces(text, printed, encoding, namespaces)

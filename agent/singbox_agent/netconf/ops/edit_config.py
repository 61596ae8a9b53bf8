"""<edit-config> (RFC 6241 7.2): parse options → edit_batch → apply (or validate), one cleanup path that discards.

sysrepo applies a batch all-or-nothing, so every error-option behaves as rollback-on-error: a failed request
leaves the target unchanged (continue-on-error is accepted with that stronger guarantee).
"""

from __future__ import annotations

import libyang

from singbox_agent.mgmt.errors import invalid_value
from singbox_agent.netconf.dispatch import OpContext, register
from singbox_agent.netconf.messages import BASE_NS
from singbox_agent.netconf.ops.common import check_not_locked_by_other, datastore_choice, leaf, parse_config

TARGETS = ("running", "candidate", "startup")


def apply_edit(
    ctx: OpContext, ds: str, tree: libyang.DNode | None, default_operation: str, test_only: bool = False
) -> None:
    """Apply an edit tree to `ds` through this session's sysrepo session; nothing stays pending afterwards."""
    sr = ctx.sr
    check_not_locked_by_other(ctx, ds)
    sr.switch_datastore(ds)
    try:
        if tree is None:
            if default_operation == "replace" and not test_only:
                sr.replace_config_ly(None, None)  # RFC 6241: replace with empty config empties the datastore
            return
        sr.edit_batch_ly(tree, default_operation)
        if test_only:
            sr.validate()
        else:
            sr.apply_changes()
            if ds == "candidate":
                with ctx.session.server.state.lock:
                    ctx.session.server.state.candidate_modified = True
    finally:
        sr.discard_changes()


@register(BASE_NS, "edit-config")
def handle(ctx: OpContext) -> str:
    ds = datastore_choice(ctx, "target", TARGETS)
    default_operation = leaf(ctx, "default-operation") or "merge"
    test_option = leaf(ctx, "test-option") or "test-then-set"
    error_option = leaf(ctx, "error-option") or "stop-on-error"
    if error_option not in ("stop-on-error", "continue-on-error", "rollback-on-error"):
        raise invalid_value(f'Unknown error-option "{error_option}".')
    if ctx.op.find_path("url") is not None:
        from singbox_agent.mgmt.errors import operation_not_supported

        raise operation_not_supported("The :url capability is not supported.")
    tree = parse_config(ctx, "config")
    try:
        apply_edit(ctx, ds, tree, default_operation, test_only=test_option == "test-only")
    finally:
        if tree is not None:
            tree.free()
    return "<ok/>"

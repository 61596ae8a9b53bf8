"""<copy-config> (RFC 6241 7.3): datastore to datastore, or inline <config> replacing the target."""

from __future__ import annotations

import sysrepo

from singbox_agent.mgmt import datastore, notify
from singbox_agent.mgmt.errors import applied_anyway, invalid_value
from singbox_agent.netconf.dispatch import OpContext, register
from singbox_agent.netconf.messages import BASE_NS
from singbox_agent.netconf.ops.common import check_not_locked_by_other, datastore_choice, parse_config

DATASTORES = ("running", "candidate", "startup")


@register(BASE_NS, "copy-config")
def handle(ctx: OpContext) -> str:
    target = datastore_choice(ctx, "target", DATASTORES)
    source = datastore_choice(ctx, "source", DATASTORES, config_ok=True)
    if source == target:
        raise invalid_value("Source and target are the same datastore.")
    check_not_locked_by_other(ctx, target)
    sr = ctx.sr
    if source == "config":
        tree = parse_config(ctx, "source/config")
        sr.switch_datastore(target)
        if target in datastore.CONFIG_CHANGE_DATASTORES:
            datastore.wait_for_replay_room()
        sr.replace_config_ly(tree, None, timeout_ms=datastore.SUBSCRIBER_TIMEOUT_MS)  # spends the tree
    else:
        sr.switch_datastore(target)
        try:
            datastore.copy_config(sr, source)
        except sysrepo.SysrepoOperationFailedError as exc:
            if not applied_anyway(exc):
                raise
            notify.record_loss("netconf-config-change", str(exc), delivered=notify.file_full(exc))
    state = ctx.session.server.state
    with state.lock:
        if target == "candidate":
            state.candidate_modified = True
        elif target == "running":
            state.candidate_modified = False
    return "<ok/>"

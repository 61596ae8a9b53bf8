"""One module per NETCONF operation; importing this package registers every handler with the dispatcher.

Logic several operations share lives in common.py (parameters, filters, reads, edit content), editing.py (applying
an edit: edit-config, edit-data) and locking.py (lock bookkeeping: lock, unlock, discard-changes, session end);
operations never import one another."""

from singbox_agent.netconf.ops import (  # noqa: F401 - imported for registration
    close_session,
    commit,
    copy_config,
    create_subscription,
    delete_config,
    discard_changes,
    edit_config,
    edit_data,
    generic_rpc,
    get,
    get_config,
    get_data,
    get_schema,
    kill_session,
    lock,
    subscribed_notifications,
    unlock,
    validate,
)

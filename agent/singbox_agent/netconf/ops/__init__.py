"""One module per NETCONF operation; importing this package registers every handler with the dispatcher."""

from singbox_agent.netconf.ops import (  # noqa: F401 - imported for registration
    close_session,
    commit,
    copy_config,
    create_subscription,
    delete_config,
    discard_changes,
    edit_config,
    edit_data,
    get,
    get_config,
    get_data,
    get_schema,
    kill_session,
    lock,
    unlock,
    validate,
)

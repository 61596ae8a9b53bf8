"""The datastores ietf-yang-library lists (RFC 8525, /yang-library/datastore) as the servers serve them.

sysrepo 3.7 generates the list itself: running, candidate, startup and operational. Both servers also serve
<intended> (RFC 8342 section 5.1.4: read-only and, without configuration transformations, the same as running;
RESTCONF's {+restconf}/ds/ietf-datastores:intended, RFC 8527 section 3.1, and NETCONF's <get-data>, RFC 8526), and
RFC 8525 lists each "datastore supported by this server": a client that reads the library learns of every datastore it
may address, and of none it may not. Each server adds <intended> as operational data it pushes for as long as it
runs: sysrepo drops a session's pushed data when the session (or its connection, or its process) ends, so a stopped
server leaves nothing behind, and two running servers push the same entry.
"""

from __future__ import annotations

from typing import Any

INTENDED = "ietf-datastores:intended"
_ENTRY = f"/ietf-yang-library:yang-library/datastore[name='{INTENDED}']/schema"


def announce_datastores(conn: Any) -> Any:
    """Push <intended>'s yang-library entry (the schema of the other datastores, sysrepo's "complete") through a
    session of `conn`, which the caller keeps open while it serves: the entry goes with it."""
    sess = conn.start_session("operational")
    sess.set_item(_ENTRY, "complete")
    sess.apply_changes()
    return sess

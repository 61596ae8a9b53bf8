"""PUT's 201 or 204 without a subscription (store.Datastore.edit, in-process): what the target was right before the
commit, also when another writer creates it between the server's read and its commit."""

from __future__ import annotations

import json
from typing import Any

import pytest

from singbox_agent.repository import SysrepoInstance

PATH = "/vpp-singbox:singbox/client/endpoint[name='r1']"


def _put_tree(ctx: Any, port: int) -> Any:
    doc = {"vpp-singbox:singbox": {"client": {"endpoint": [{"name": "r1", "address": "192.0.2.7", "port": port}]}}}
    tree = ctx.parse_data_mem(json.dumps(doc), "json", parse_only=True, strict=True)
    tree.find_one(PATH).new_meta("ietf-netconf:operation", "replace")  # as the handler builds a PUT
    return tree


def _port(sess: Any) -> int | None:
    data = sess.get_data(PATH + "/port")
    endpoints = list(data.get("singbox", {}).get("client", {}).get("endpoint", []))
    return endpoints[0].get("port") if endpoints else None


def test_put_answers_from_the_state_right_before_its_commit(sysrepo_instance: SysrepoInstance,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    import sysrepo

    from singbox_agent.restconf import store

    conn = sysrepo.SysrepoConnection(cache_running=True)
    other = sysrepo.SysrepoConnection()
    ds = store.Datastore(conn)
    check = other.start_session("running")
    try:
        ds.watch_changes()
        # absent: created (201)
        assert ds.edit(None, "running", lambda ctx, reader: (_put_tree(ctx, 5), None), check_exists=PATH).existed \
            is False
        # present: replaced (204)
        assert ds.edit(None, "running", lambda ctx, reader: (_put_tree(ctx, 6), None), check_exists=PATH).existed
        assert _port(check) == 6
        check.delete_item(PATH)
        check.apply_changes()

        # absent when read, created by another writer before the commit: the PUT replaces it (204)
        real_exists = store.Reader.exists
        raced: list[str] = []

        def exists_then_another_writer(reader: Any, path: str) -> bool:
            found = bool(real_exists(reader, path))
            if path == PATH and not raced:
                raced.append(path)
                check.set_item(PATH + "/address", "198.51.100.1")
                check.set_item(PATH + "/port", 9)
                check.apply_changes()
            return found

        monkeypatch.setattr(store.Reader, "exists", exists_then_another_writer)
        result = ds.edit(None, "running", lambda ctx, reader: (_put_tree(ctx, 7), None), check_exists=PATH)
        assert raced
        assert result.existed is True
        assert _port(check) == 7
        address = list(check.get_data(PATH + "/address")["singbox"]["client"]["endpoint"])[0]["address"]
        assert address == "192.0.2.7"
    finally:
        check.stop()
        ds.close()
        other.disconnect()
        conn.disconnect()

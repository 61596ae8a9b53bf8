"""mgmt.errors.hide_unreadable: what a NACM-restricted user's error texts keep (a table, no server)."""

from __future__ import annotations

from singbox_agent.mgmt.errors import HIDDEN, MgmtError, hide_unreadable

HIDDEN_PATH = "/vpp-singbox:singbox/server/listen[name='secret']"
OWN_PATH = "/vpp-singbox:singbox/server/listen[name='mine']"


def readable(path: str) -> bool:
    return "secret" not in path


def test_unreadable_paths_give_way_to_a_placeholder() -> None:
    error = MgmtError("application", "operation-failed",
                      f'Unique data leaf(s) "address port" not satisfied in "{OWN_PATH}" and "{HIDDEN_PATH}". '
                      f'(path "{HIDDEN_PATH}")', "data-not-unique", HIDDEN_PATH,
                      {"non-unique": HIDDEN_PATH, "bad-element": "listen"})
    [seen] = hide_unreadable([error], readable)
    assert "secret" not in repr(seen)
    assert OWN_PATH in seen.error_message and HIDDEN in seen.error_message
    assert seen.error_path is None and seen.info == {"bad-element": "listen"}
    assert seen.error_app_tag == "data-not-unique"


def test_conditions_lose_their_text() -> None:
    error = MgmtError("application", "operation-failed",
                      'Must condition "/ietf-system:system/authentication/user[name=\'root\']/password = \'x\'" '
                      "not satisfied.", "must-violation", OWN_PATH)
    [seen] = hide_unreadable([error], readable)
    assert seen.error_message == "Must condition not satisfied." and seen.error_path == OWN_PATH
    when = MgmtError("application", "operation-failed", 'When condition "../secret = \'1\'" not satisfied.')
    assert hide_unreadable([when], readable)[0].error_message == "When condition not satisfied."

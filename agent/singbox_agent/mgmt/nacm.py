"""RFC 8341 NACM through libsysrepo's own implementation (sysrepo/netconf_acm.h).

libsysrepo enforces NACM for a session once a NACM user is set on it: reads are filtered, edits, RPCs and
notifications are checked (the same calls netopeer2 makes: `sr_nacm_init` once per process, `sr_nacm_set_user` per
session). The PyPI bindings 1.7.6 that match libsysrepo.so.7 do not wrap these; `libsysrepo.py` declares them and
this module calls them on the C session pointer of a `SysrepoSession` (`session.cdata`).

The recovery user (RFC 8341 section 3.4: "recovery session") is sysrepo's, normally `root`; sessions for it are
not restricted. `enable_nacm(..., recovery=True)` gives the same to a configured account.
"""

from __future__ import annotations

import threading
from typing import Any

import libyang
import structlog
from sysrepo.session import SysrepoSession

from singbox_agent.mgmt import change_notice, libsysrepo, nacm_counters, xpath

log = structlog.get_logger("mgmt.nacm")

_ffi = libsysrepo.ffi
_lib = libsysrepo.lib

_SR_DS_RUNNING = 1
_SR_ERR_OK = 0

_init_lock = threading.Lock()
_state: dict[str, Any] = {}


class NacmError(RuntimeError):
    """A NACM call of libsysrepo failed (its return code is in the message)."""


def _c_session(session: SysrepoSession) -> Any:
    return libsysrepo.session_ptr(session)


def init_nacm(session: SysrepoSession) -> None:
    """Start libsysrepo's NACM for this process (idempotent).

    NACM's subscriptions need a session that outlives every other: we start a private C session on the same
    connection, so stopping `session` later is safe. Call before any session serves a user.
    """
    with _init_lock:
        if "sub" in _state:
            return
        conn = _lib.sr_session_get_connection(_c_session(session))
        own = _ffi.new("sr_session_ctx_t **")
        rc = _lib.sr_session_start(conn, _SR_DS_RUNNING, own)
        if rc != _SR_ERR_OK:
            raise NacmError(f"sr_session_start failed: {rc}")
        sub = _ffi.new("sr_subscription_ctx_t **")
        rc = _lib.sr_nacm_init(own[0], 0, sub)
        if rc != _SR_ERR_OK:
            _lib.sr_session_stop(own[0])
            raise NacmError(f"sr_nacm_init failed: {rc}")
        _state.update(session=own[0], sub=sub[0])
        # RFC 8341's denied-* counters, summed over the processes enforcing NACM (nacm_counters.py)
        _state["counters"] = nacm_counters.DenialCounters(libsysrepo.session_connection(session))


def destroy_nacm() -> None:
    """Undo `init_nacm` (before disconnecting the connection it used)."""
    with _init_lock:
        if "sub" not in _state:
            return
        counters = _state.pop("counters", None)
        if counters is not None:
            counters.stop()
        _lib.sr_unsubscribe(_state.pop("sub"))
        _lib.sr_nacm_destroy()
        _lib.sr_session_stop(_state.pop("session"))


def recovery_user() -> str:
    """sysrepo's NACM recovery user (unrestricted access)."""
    raw = _lib.sr_nacm_get_recovery_user()
    return _ffi.string(raw).decode() if raw != _ffi.NULL else "root"


def enable_nacm(session: SysrepoSession, user: str | None, *, recovery: bool = False) -> None:
    """Make every later get/edit/RPC/notification on `session` obey NACM for `user`.

    `user=None` or `recovery=True` clears the NACM user (unrestricted, the recovery session).
    """
    init_nacm(session)
    name = _ffi.NULL if (user is None or recovery) else user.encode()
    rc = _lib.sr_nacm_set_user(_c_session(session), name)
    if rc != _SR_ERR_OK:
        raise NacmError(f"sr_nacm_set_user failed: {rc}")


def nacm_user(session: SysrepoSession) -> str | None:
    raw = _lib.sr_nacm_get_user(_c_session(session))
    return _ffi.string(raw).decode() if raw != _ffi.NULL else None


def check_operation(session: SysrepoSession, op_cdata: Any) -> bool:
    """Whether the session's NACM user may execute the RPC/action whose libyang tree is `op_cdata`."""
    address = int(_ffi.cast("uintptr_t", op_cdata))
    rc = _lib.sr_nacm_check_operation(_c_session(session), _ffi.cast("struct lyd_node *", address))
    return bool(rc == _SR_ERR_OK)


# --- users NACM cannot restrict ----------------------------------------------------------------------------------

NACM_XPATH = "/ietf-netconf-acm:nacm"


# RFC 8341 gives a user who is in no group no rule-list at all, not even those for group "*": such a user would
# read everything `read-default permit` allows, login password hashes included. On this appliance "*" means every
# authenticated user, so a user in no group acts under this reserved name, which bootstrap places in a group of its
# own ("%" cannot start a login name: see users.py).
UNGROUPED_USER = "%ungrouped"
UNGROUPED_GROUP = "ungrouped"


def groups_of(config: dict[str, Any], user: str) -> set[str]:
    nacm_cfg = config.get("nacm", {})
    return {g["name"] for g in nacm_cfg.get("groups", {}).get("group", []) if user in g.get("user-name", [])}


def _first_applicable_rule(config: dict[str, Any], user: str) -> dict[str, Any] | None:
    nacm_cfg = config.get("nacm", {})
    groups = groups_of(config, user)
    if not groups:  # RFC 8341 3.4.5 step 6: no group, no rule-list applies
        return None
    for rule_list in nacm_cfg.get("rule-list", []):
        applies = set(rule_list.get("group", []))
        if "*" in applies or groups & applies:
            rules = list(rule_list.get("rule", []))
            if rules:
                return dict(rules[0])
    return None


def unrestricted(config: dict[str, Any], user: str) -> bool:
    """Whether NACM (RFC 8341 3.4) permits `user` everything under this configuration.

    True when NACM is disabled, or when the first rule that applies to the user matches every request
    (module-name "*", no rpc-name/notification-name/path) for every operation and permits it. Such a user gets no
    NACM user on its sysrepo session: the outcome is identical and reads of large trees skip a per-node walk.
    """
    nacm_cfg = config.get("nacm", {})
    if nacm_cfg.get("enable-nacm", True) is False:
        return True
    rule = _first_applicable_rule(config, user)
    if rule is None:
        return False
    return (
        rule.get("module-name", "*") == "*"
        and rule.get("access-operations", "*") == "*"
        and rule.get("action") == "permit"
        and not any(k in rule for k in ("rpc-name", "notification-name", "path"))
    )


# More groups touched by one change than this: every user's groups are searched again rather than a lookup for each.
_DIRTY_LIMIT = 64
# users whose membership changes the subscription names one by one (`_subscription_xpath`); beyond, all of them
_FOLLOWED_USERS_MAX = 64


def _subscription_xpath(users: frozenset[str] | None) -> str:
    """What `NacmPolicy` subscribes to: everything of NACM but the groups, and of those only the `user-name` nodes
    of the users it answered for (`users`; None: every group, whole). With `filter_origin` sysrepo's writer evaluates
    it on the commit's diff and neither notifies nor waits for a subscriber whose XPath selects no changed node
    (shm_sub.c: SR_SUBSCR_FILTER_ORIG; without it the subscriber's thread is woken and waited for, and only it skips
    the callback), so such an edit never waits for this process (issue 17).

    A group matters only through its members: a group created or deleted whole holds its `user-name` nodes in the
    diff (libyang's diff keeps a created or deleted subtree whole), so one of a followed user is selected there;
    one of strangers changes no answer. Following every group's name made the one-edit load of a NACM list (groups
    of strangers) wait for this process, and the next request re-take its NACM identity."""
    if users is None:
        return NACM_XPATH
    parts = [f"{NACM_XPATH}/*[local-name() != 'groups']"]
    if users:
        names = " or ".join(f".={xpath.quote(u)}" for u in sorted(users))
        parts.append(f"{NACM_XPATH}/groups/group/user-name[{names}]")
    return " | ".join(parts)


class NacmPolicy:
    """Answers `unrestricted(user)` and `identity(user)` from the NACM configuration of running.

    Each answer reads only what decides it — enable-nacm, the rule-lists' groups and the first rule of the first
    rule-list applying to the user — and is remembered until NACM changes (`generation`). A user's groups are
    searched once (an XPath on user-name: ~30 ms with 10,000 groups) and then kept current from the change events:
    a change re-reads only the groups it touched (one key lookup each) and moves them in or out of the users asked
    so far; anything else under `groups`, or more than `_DIRTY_LIMIT` groups, makes every user's search run again.
    Only the users who asked are kept: an index of every group cost ~10 MB and 300 ms to build with 10,000 groups,
    and rebuilding the whole policy in Python after every change two thirds of an edit's time (issue 17).

    A change that can alter no answer leaves everything as it is, `generation` included: a `user-name` added to or
    removed from a group for a user who never asked (nor is being searched for right now) decides nothing this
    policy has answered. Moving `generation` for it made every session re-take its NACM identity and re-read the
    group on its next request (0.1 ms of each request after such an edit), and RESTCONF drop its pooled sessions.
    """

    def __init__(self, connection: Any) -> None:
        self._session = connection.start_session("running")
        self._lock = threading.Lock()
        self._answers: dict[str, dict[str, Any]] = {}  # user -> the configuration that decides for it
        self.generation = 0
        self._user_groups: dict[str, frozenset[str]] = {}  # user -> its groups, for the users asked so far
        self._searching: dict[str, int] = {}  # users whose groups a `_groups` call is searching now (-> how many)
        self._rebuilds = 0  # bumped whenever a change makes every user's groups searched again
        self._dirty: set[str] = set()  # groups a change touched, re-read at the next use
        # one thread at a time brings _user_groups up to date (another would answer from it before the update)
        self._update_lock = threading.Lock()
        # enable-nacm and every rule-list that has rules (name, groups, first rule), in order; None: read again
        self._rules: dict[str, Any] | None = None
        # Not the binding's subscription: it would build a Python object for every changed node (20,000 for an edit
        # creating 10,000 groups) where at most _DIRTY_LIMIT paths are needed (mgmt/change_notice.py). A subscription
        # at all, though sysrepo waits for it on every NACM commit: `change_notice.RunningStamps` would tell as surely
        # that NACM changed (FollowedSettings uses it), but not which groups, and searching each asked user's groups
        # again after every NACM commit costs more than the round trip from ~100 groups on (bench/netconf/README.md,
        # session 15). Revocation must reach the next request: tests/{netconf,restconf}/test_nacm_revoke.py.
        # Its XPath leaves out the members of groups whom no user asked about (`_follow_user`): the edits that change
        # nothing this policy answered do not wait for it.
        self._watch = connection.start_session("running")  # its own: subscribed again while others read
        self._subscription: Any = None
        self._followed: frozenset[str] | None = frozenset()  # users whose membership changes reach `_on_change`
        self._subscribe(self._followed)

    def _subscribe(self, users: frozenset[str] | None) -> None:
        """(Re)subscribe for `users`: the new subscription before the old one goes, so no commit falls between."""
        old = self._subscription
        try:
            change_notice.subscribe(self._watch, "ietf-netconf-acm", _subscription_xpath(users), self._on_change,
                                    done_only=True, filter_origin=True)
        except Exception as exc:
            if users is None:
                raise
            log.warning("NACM changes followed whole (the filtered subscription failed)", error=str(exc))
            users = None
            change_notice.subscribe(self._watch, "ietf-netconf-acm", NACM_XPATH, self._on_change, done_only=True)
        self._subscription = self._watch.subscriptions[-1]
        self._followed = users
        if old is not None:
            self._watch.subscriptions.remove(old)
            old.unsubscribe()

    def _follow_user(self, user: str) -> None:
        """Membership changes of `user` reach `_on_change` from now on (caller holds `_update_lock`, before it
        searches the user's groups): a commit stored after this is notified, one stored before is in the search."""
        if self._followed is None or user in self._followed:
            return
        users = self._followed | {user}
        self._subscribe(users if len(users) <= _FOLLOWED_USERS_MAX else None)

    def _on_change(self, event: str, ev_sess: Any) -> None:
        try:
            paths = change_notice.changed_paths(ev_sess, NACM_XPATH + "//.", 4 * _DIRTY_LIMIT)  # a group: ~3 nodes
        except Exception:  # noqa: BLE001 - the policy must never stay stale: forget everything
            paths = None
        with self._lock:
            relevant = False
            try:
                if paths is None:
                    raise ValueError("too many changes to follow one by one")
                for path in paths:
                    steps = list(libyang.xpath_split(path))
                    names = [step[1] for step in steps]
                    if names[:2] != ["nacm", "groups"]:
                        self._rules = None  # enable-nacm, the defaults, a rule-list
                        relevant = True
                        continue
                    keys = dict(steps[2][2]) if len(steps) > 2 and names[2] == "group" else {}
                    if "name" not in keys:
                        raise ValueError(path)
                    if names[3:] == ["user-name"] and len(steps) == 4:
                        # one member in or out: it matters only to a user we answered for or are searching for
                        member = dict(steps[3][2]).get(".")
                        if member is None:
                            raise ValueError(path)
                        if member not in self._user_groups and member not in self._searching:
                            continue
                    elif names[3:] in ([], ["name"]) and not self._user_groups and not self._searching:
                        continue  # a whole group (or its key), and nobody asked yet
                    self._dirty.add(keys["name"])
                    relevant = True
            except Exception:  # noqa: BLE001 - a change we cannot place: search the groups and read the rules again
                self._user_groups = {}
                self._dirty = set()
                self._rules = None
                self._rebuilds += 1
                relevant = True
            if relevant:
                self._answers = {}
                self.generation += 1

    def _groups(self, user: str) -> list[str]:
        """The groups naming `user` (the users asked so far brought up to date first)."""
        with self._update_lock:
            with self._lock:
                rebuilds = self._rebuilds
                dirty, self._dirty = self._dirty, set()
                known = dict(self._user_groups)
            if dirty and known:
                if len(dirty) > _DIRTY_LIMIT:
                    known = {}
                else:  # one read for every group touched (a key lookup each)
                    found = self._read(" | ".join(f"{NACM_XPATH}/groups/group[name={xpath.quote(g)}]"
                                                  for g in dirty))
                    now = {g["name"]: frozenset(g.get("user-name", []))
                           for g in found.get("nacm", {}).get("groups", {}).get("group", [])}
                    known = {u: frozenset({g for g in groups if g not in dirty}
                                          | {g for g, members in now.items() if u in members})
                             for u, groups in known.items()}
            groups = known.get(user)
            searched = groups is None
            if searched:
                # a change of this user's membership from now on is one that matters (`_on_change`), also while
                # the search runs and before its result is kept
                with self._lock:
                    self._searching[user] = self._searching.get(user, 0) + 1
            try:
                if groups is None:
                    self._follow_user(user)
                    found = self._read(f"{NACM_XPATH}/groups/group[user-name={xpath.quote(user)}]/name")
                    groups = frozenset(g["name"] for g in found.get("nacm", {}).get("groups", {}).get("group", []))
                    known[user] = groups
                with self._lock:
                    if self._rebuilds == rebuilds:  # no change since: what we read is current
                        self._user_groups = known
            finally:
                if searched:
                    with self._lock:
                        left = self._searching.pop(user) - 1
                        if left:
                            self._searching[user] = left
            return sorted(groups)

    def _rule_lists(self) -> dict[str, Any]:
        """enable-nacm and the rule-lists with rules (name, groups, first rule) in order: one read after a change to
        them, none otherwise."""
        with self._lock:
            cached = self._rules
            generation = self.generation
        if cached is not None:
            return cached
        # (not `rule-list/rule[1]`: libyang numbers that position over all rule-lists' rules together)
        found = self._read(f"{NACM_XPATH}/enable-nacm | {NACM_XPATH}/rule-list[rule]").get("nacm", {})
        rules: dict[str, Any] = {k: v for k, v in found.items() if k == "enable-nacm"}
        rules["rule-list"] = [{"name": rl["name"], "group": list(rl.get("group", [])), "rule": list(rl["rule"])[:1]}
                              for rl in found.get("rule-list", []) if rl.get("rule")]
        with self._lock:
            if self.generation == generation:
                self._rules = rules
        return rules

    def _read(self, xpath: str, max_depth: int = 0) -> dict[str, Any]:
        try:
            return dict(self._session.get_data(xpath, max_depth=max_depth))
        except Exception:  # noqa: BLE001 - nothing configured: NACM defaults
            return {}

    def config(self, user: str) -> dict[str, Any]:
        """The part of the NACM configuration that decides for `user`, shaped like the whole (for `unrestricted` and
        `groups_of`): enable-nacm, the user's groups, the first rule-list that applies with only its first rule."""
        with self._lock:
            cached = self._answers.get(user)
            generation = self.generation
        if cached is not None:
            return cached
        found = self._rule_lists()
        nacm_cfg: dict[str, Any] = {}
        if "enable-nacm" in found:
            nacm_cfg["enable-nacm"] = found["enable-nacm"]
        names = self._groups(user)
        nacm_cfg["groups"] = {"group": [{"name": n, "user-name": [user]} for n in names]}
        applies = {"*", *names}
        first = next((rl for rl in found.get("rule-list", []) if applies & set(rl.get("group", []))), None)
        if names and first is not None:
            nacm_cfg["rule-list"] = [{"name": first["name"], "group": ["*"], "rule": list(first.get("rule", []))[:1]}]
        answer = {"nacm": nacm_cfg}
        with self._lock:
            if self.generation == generation:
                self._answers[user] = answer
        return answer

    def unrestricted(self, user: str) -> bool:
        return unrestricted(self.config(user), user)

    def identity(self, user: str | None) -> str | None:
        """The NACM user a session of `user` runs as: None (no restriction) when NACM permits it everything,
        `UNGROUPED_USER` when it is in no group, else the user itself."""
        if user is None:
            return None
        config = self.config(user)
        if unrestricted(config, user):
            return None
        if not groups_of(config, user):
            return UNGROUPED_USER
        return user

    def close(self) -> None:
        self._watch.stop()
        self._session.stop()

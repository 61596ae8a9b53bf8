"""The NETCONF server: RFC 6242 over asyncssh, sessions, capabilities and ietf-netconf-monitoring state.

Settings (`settings.py`): listen endpoints and their client-authentication users in ietf-netconf-server, host keys in
the keystore, public-key bags in the truststore — seeded on first start from `--listen` and the state directory's
host key (`DIR/netconf/ssh_host_ed25519_key`). Users an endpoint does not name come from the RFC 7317 user list in
sysrepo (`singbox_agent.mgmt.users`), shared with RESTCONF, governed by NACM like any other data.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime
import errno
import functools
import os
import socket
import threading
import urllib.parse
from pathlib import Path
from typing import Any

import asyncssh
import structlog
import sysrepo

from singbox_agent.mgmt import change_notice, connguard, crypt, nacm, password_hashing, schemas
from singbox_agent.mgmt.datastore import module_deviations, module_namespace
from singbox_agent.mgmt import users
from singbox_agent.mgmt.login_guard import LoginGuard
from singbox_agent.mgmt.login_settings import LoginSettings
from singbox_agent.mgmt.users import UserStore
from singbox_agent.netconf import confirmed, dispatch, messages, settings, ssh_ignore, tcp_ack
from singbox_agent.netconf.confirmed_store import ConfirmedStore
from singbox_agent.netconf.events import BaseEvents
from singbox_agent.netconf import limits
from singbox_agent.netconf.limits import Limits
from singbox_agent.mgmt.replay_retention import RetentionTask
from singbox_agent.netconf.session import NetconfSession
from singbox_agent.netconf.state import ServerState

log = structlog.get_logger("netconf.server")

PROTOCOL_CAPABILITIES = [
    messages.BASE_1_0,
    messages.BASE_1_1,
    "urn:ietf:params:netconf:capability:writable-running:1.0",
    "urn:ietf:params:netconf:capability:candidate:1.0",
    "urn:ietf:params:netconf:capability:confirmed-commit:1.1",
    "urn:ietf:params:netconf:capability:rollback-on-error:1.0",
    "urn:ietf:params:netconf:capability:validate:1.1",
    "urn:ietf:params:netconf:capability:startup:1.0",
    "urn:ietf:params:netconf:capability:xpath:1.0",
    "urn:ietf:params:netconf:capability:with-defaults:1.0?basic-mode=explicit"
    "&also-supported=report-all,report-all-tagged,trim",
    "urn:ietf:params:netconf:capability:notification:1.0",
    "urn:ietf:params:netconf:capability:interleave:1.0",
]
RETRY_BIND_S = 2.0
# How often the listen endpoints and host keys are looked at for a commit (one non-blocking read): a new endpoint
# listens this long after its commit at most.
LISTEN_LOOK_S = 0.5
# An SSH connection that has not authenticated within this is closed (asyncssh's default: 120 s, a file descriptor
# held that long per connection opened and left; OpenSSH's LoginGraceTime); an operator's login takes seconds.
LOGIN_GRACE_S = 30.0
CORK_MIN = 16 * 1024  # a message this long may take several SSH packets (clients' maximum packet: 32 KiB)

NCM_NS = "urn:ietf:params:xml:ns:yang:ietf-netconf-monitoring"


def _iso(ts: float) -> str:
    return datetime.datetime.fromtimestamp(ts, datetime.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


class NetconfServer:
    def __init__(self, conn: sysrepo.SysrepoConnection, *,
                 recovery_users: frozenset[str] = frozenset(), hello_timeout: float = 60.0,
                 state_dir: Path | None = None) -> None:
        import singbox_agent.netconf.ops  # noqa: F401 - registers the operation handlers

        # what a session runs: the dispatcher, and the operations' cleanup when it ends (sessions import neither)
        self.dispatch = dispatch.dispatch
        self.session_end_hooks = tuple(dispatch.SESSION_END)
        self.conn = conn
        self.recovery_users = recovery_users
        self.hello_timeout = hello_timeout
        self.state = ServerState()
        self.users = UserStore(conn)
        # failed-login back-off (per source address and user), configured in netconf-server/login-backoff
        self.login_guard = LoginGuard()
        self.login_settings = LoginSettings(conn, "vpp-singbox-netconf-server", "netconf-server", self.login_guard)
        self.nacm_policy = nacm.NacmPolicy(conn)
        self.events = BaseEvents(self)
        self.confirmed_store = ConfirmedStore(state_dir) if state_dir is not None else None
        self._internal = conn.start_session("running")
        nacm.init_nacm(self._internal)
        # The server's own settings are followed without a subscription (`change_notice.Commits`; issue 17): sysrepo
        # 3.7.11 waits for every change subscriber of a module, done-only ones too, before a commit returns — a round
        # trip to this process on every commit of ietf-netconf-server, the keystore or the limits' module. The commit
        # renames the module's running file before it returns, so a look after it sees it: the request limits are
        # looked at by every message, the endpoints' users by every login, the listeners every LISTEN_LOOK_S.
        # (A passive done-only subscription on `_settings_session` only for a module sysrepo keeps otherwise.)
        self._settings_session: Any = conn.start_session("running")
        self._limits_commits = self._follow({limits.MODULE: limits.XPATH})
        self._limits_seen = self._limits_commits.generation() if self._limits_commits is not None else 0
        self._limits: Limits = settings.read_limits(self._internal)
        self._limits_lock = threading.Lock()
        self._capabilities: list[str] | None = None
        self._oper = conn.start_session("operational")
        self._oper.subscribe_oper_data_request(
            "ietf-netconf-monitoring", "/ietf-netconf-monitoring:netconf-state", self._monitoring_state
        )
        self._acceptors: list[asyncssh.SSHAcceptor] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._listen_commits: change_notice.Commits | None = None
        self._listen_seen = 0
        self._listen_look: asyncio.Task[None] | None = None
        self.host_key: asyncssh.SSHKey | None = None
        self.bound: list[tuple[str, int]] = []
        # Endpoints whose address could not be bound yet (not up at boot, DHCP, a VLAN made later): retried every
        # RETRY_BIND_S while the server runs, so a late address needs no restart. name -> "address:port: error"
        self.unbound: dict[str, str] = {}
        self._retry: asyncio.Task[None] | None = None
        self.listening = asyncio.Event()  # set once any endpoint listens
        self.connections: set[asyncssh.SSHServerConnection] = set()
        # how many connections and whose (connguard.py), across every endpoint: they share the descriptors
        self.admission = connguard.Limits(connguard.default_total())
        self.retention: RetentionTask | None = None
        # endpoint name -> user name -> that endpoint's ietf-ssh-server client-authentication entry (client keys from
        # the truststore); re-read at the first login after a commit of either module returned
        self._endpoint_users: dict[str, dict[str, settings.EndpointUser]] = {}
        self._users_commits = self._follow({"ietf-netconf-server": settings.LISTEN_XPATH,
                                            "ietf-truststore": settings.TRUSTSTORE_XPATH})
        self._users_seen: int | None = None  # the commits seen when the users were read (None: never read)
        self._endpoint_users_lock = threading.Lock()
        self._bindings: list[tuple[str, str, int, tuple[bytes, ...]]] = []

    # --- capabilities ------------------------------------------------------------------------------------------

    def capabilities(self) -> list[str]:
        if self._capabilities is None:
            self._capabilities = self._build_capabilities()
        return self._capabilities

    def _build_capabilities(self) -> list[str]:
        caps = list(PROTOCOL_CAPABILITIES)
        content_id = "0"
        try:
            data = self._internal_oper_get("/ietf-yang-library:yang-library/content-id")
            content_id = str(data.get("yang-library", {}).get("content-id", "0"))
        except sysrepo.SysrepoError:
            pass
        caps.append(f"urn:ietf:params:netconf:capability:yang-library:1.1?revision=2019-01-04&content-id={content_id}")
        ctx: Any
        module: Any
        with self.conn.get_ly_ctx() as ctx:
            for module in ctx:
                if not module.implemented():
                    continue
                rev = next(iter(module.revisions()), None)
                query = {"module": module.name()}
                if rev is not None:
                    query["revision"] = str(rev.date())
                features = [f.name() for f in module.features() if f.state()]
                if features:
                    query["features"] = ",".join(features)
                deviations = module_deviations(module)
                if deviations:
                    query["deviations"] = ",".join(deviations)
                caps.append(f"{module_namespace(module)}?{urllib.parse.urlencode(query, safe=',')}")
        return caps

    def _follow(self, modules: dict[str, str]) -> change_notice.Commits | None:
        """The commits of `modules`; None (never changed) when a module is not installed."""
        try:
            return change_notice.Commits(self._settings_session, modules)
        except sysrepo.SysrepoError as exc:
            log.warning("settings not followed (module not installed)", modules=sorted(modules), error=str(exc))
            return None

    def _internal_oper_get(self, xpath: str) -> dict[str, Any]:
        sess = self.conn.start_session("operational")
        try:
            return dict(sess.get_data(xpath))
        finally:
            sess.stop()

    # --- ietf-netconf-monitoring (RFC 6022) --------------------------------------------------------------------

    def _monitoring_state(self, xpath: str, private_data: Any) -> dict[str, Any]:
        st = self.state
        with st.lock:
            sessions = [
                {
                    "session-id": s.id,
                    "transport": "netconf-ssh",
                    "username": s.user,
                    "source-host": s.source_host or None,
                    "login-time": _iso(s.login_time),
                    "in-rpcs": s.in_rpcs,
                    "in-bad-rpcs": s.in_bad_rpcs,
                    "out-rpc-errors": s.out_rpc_errors,
                    "out-notifications": s.out_notifications,
                }
                for s in st.sessions.values()
            ]
            for session_entry in sessions:
                if session_entry["source-host"] is None:
                    del session_entry["source-host"]
            datastores: list[dict[str, Any]] = []
            for ds in ("running", "candidate", "startup"):
                entry: dict[str, Any] = {"name": ds}
                if ds in st.locks:
                    entry["locks"] = {"global-lock": {"locked-by-session": st.locks[ds],
                                                      "locked-time": _iso(st.lock_times.get(ds, 0.0))}}
                datastores.append(entry)
            stats = st.stats
            statistics = {
                "netconf-start-time": _iso(stats.start_time),
                "in-bad-hellos": stats.in_bad_hellos,
                "in-sessions": stats.in_sessions,
                "dropped-sessions": stats.dropped_sessions,
                "in-rpcs": stats.in_rpcs,
                "in-bad-rpcs": stats.in_bad_rpcs,
                "out-rpc-errors": stats.out_rpc_errors,
                "out-notifications": stats.out_notifications,
            }
        # RFC 6022's schema list: every module and submodule of the context, each revision, in both formats
        schema_list: list[dict[str, Any]] = []
        ctx: Any
        with self.conn.get_ly_ctx() as ctx:
            for found in schemas.all_schemas(ctx):
                for fmt in schemas.FORMATS:
                    schema_list.append({"identifier": found.identifier, "version": found.version, "format": fmt,
                                        "namespace": found.namespace, "location": ["NETCONF"]})
        return {
            "netconf-state": {
                "capabilities": {"capability": self.capabilities()},
                "datastores": {"datastore": datastores},
                "schemas": {"schema": schema_list},
                "sessions": {"session": sessions},
                "statistics": statistics,
            }
        }

    # --- confirmed commit and session end ----------------------------------------------------------------------

    def confirmed_on_session_end(self, session: NetconfSession) -> None:
        with self.state.lock:
            cc = self.state.confirmed
        if cc is not None and cc.session_id == session.id:
            confirmed.rollback(self, cc, "session ended")
            self.events.confirmed_commit("cancel", session)

    # --- SSH transport ----------------------------------------------------------------------------------------

    async def start(self, listens: list[tuple[str, int]], seed_key: asyncssh.SSHKey) -> list[tuple[str, int]]:
        """Serve the endpoints configured in sysrepo (seeded from `listens` and `seed_key` on first start) and
        follow their changes. Returns the bound (host, port) pairs (port 0 picks a free port); those that could not
        be bound are in `unbound` and retried in the background (`listening` is set once one listens)."""
        loop = asyncio.get_running_loop()
        self._loop = loop
        # followed from before the read: a commit during it is seen at the next look
        self._listen_commits = self._follow({"ietf-netconf-server": settings.LISTEN_XPATH,
                                             "ietf-keystore": settings.KEYS_XPATH})
        self._listen_seen = self._listen_commits.generation() if self._listen_commits is not None else 0
        endpoints = await loop.run_in_executor(None, self._read_or_seed, listens, seed_key)
        bound = await self._bind(endpoints)
        self._listen_look = loop.create_task(self._look_for_listen_changes())
        password_hashing.subscribe(self._settings_session)
        # sysrepo stores notifications for replay and never deletes them: this server keeps the store bounded.
        self.retention = RetentionTask(self.conn)
        self.retention.start()
        return bound

    def _read_or_seed(self, listens: list[tuple[str, int]], seed_key: asyncssh.SSHKey) -> list[settings.Endpoint]:
        sess = self.conn.start_session("running")
        try:
            endpoints = settings.read_endpoints(sess)
            if not endpoints:
                settings.seed(self.conn, listens, seed_key)
                log.info("listen endpoints and host key stored in sysrepo",
                         endpoints=[f"{h}:{p}" for h, p in listens])
                endpoints = settings.read_endpoints(sess)
            return endpoints
        finally:
            sess.stop()

    def endpoint_user(self, endpoint: str, user: str) -> settings.EndpointUser | None:
        """`user`'s client-authentication entry on `endpoint`, None when the endpoint does not name it. Blocks for
        one sysrepo read after a change."""
        with self._endpoint_users_lock:
            # looked at before the read: a commit during the read makes the next login read again
            seen = self._users_commits.generation() if self._users_commits is not None else 0
            if seen != self._users_seen:
                self._users_seen = seen
                sess = self.conn.start_session("running")
                try:
                    self._endpoint_users = settings.read_endpoint_users(sess)
                finally:
                    sess.stop()
            return self._endpoint_users.get(endpoint, {}).get(user)

    async def _bind(self, endpoints: list[settings.Endpoint]) -> list[tuple[str, int]]:
        self._stop_retrying()
        self._bindings = sorted(ep.binding() for ep in endpoints)
        self.bound = []
        self.unbound = {}
        failed = [ep for ep in endpoints if not await self._listen(ep)]
        if self.bound:
            log.info("netconf listening", endpoints=[f"{h}:{p}" for h, p in self.bound])
        if failed:
            self._retry = asyncio.get_running_loop().create_task(self._retry_binding(failed))
        return list(self.bound)

    async def _listen(self, ep: settings.Endpoint, *, retry: bool = False) -> bool:
        """Open one endpoint's listener; False (logged once, not on every retry) when its address cannot be bound."""
        try:
            # bound here, so that every connection passes the connection limits before asyncssh sees it
            sock = connguard.bind(ep.address, ep.port, self.admission)
        except OSError as exc:
            reason = _bind_error(exc)
            if not retry:
                log.error("cannot listen", endpoint=ep.name, address=ep.address, port=ep.port, error=reason,
                          retry_every_s=RETRY_BIND_S)
            self.unbound[ep.name] = f"{ep.address}:{ep.port}: {reason}"
            return False
        try:
            acceptor = await asyncssh.create_server(
                functools.partial(_SSHServer, self, ep.name), sock=sock,
                server_host_keys=list(ep.host_keys),
                encoding=None, allow_scp=False, agent_forwarding=False, x11_forwarding=False,
                line_editor=False,  # a subsystem: asyncssh's editor layer only passed every message through
                keepalive_interval=30, login_timeout=LOGIN_GRACE_S,
            )
        except BaseException:
            sock.close()
            raise
        self.unbound.pop(ep.name, None)
        self._acceptors.append(acceptor)
        addr = acceptor.sockets[0].getsockname()
        self.bound.append((str(addr[0]), int(addr[1])))
        if self.host_key is None:
            self.host_key = ep.host_keys[0]
        if retry:
            log.info("netconf listening", endpoint=ep.name, endpoints=[f"{addr[0]}:{addr[1]}"])
        self.listening.set()
        return True

    async def _retry_binding(self, endpoints: list[settings.Endpoint]) -> None:
        while endpoints:
            await asyncio.sleep(RETRY_BIND_S)
            endpoints = [ep for ep in endpoints if not await self._listen(ep, retry=True)]

    def _stop_retrying(self) -> None:
        if self._retry is not None:
            self._retry.cancel()
            self._retry = None

    async def _look_for_listen_changes(self) -> None:
        """Listeners follow commits of the endpoints and host keys. Looked at on a timer, not by a reader of the
        watch on the event loop: that watch sees the renames of every module's running file, and would wake the
        loop on every commit of anything (during each edit of this server's own sessions too). The truststore
        changes no listener (client keys are read per login), so its commits re-read nothing here."""
        commits = self._listen_commits
        if commits is None:
            return
        while True:
            await asyncio.sleep(LISTEN_LOOK_S)
            seen = commits.generation()
            if seen != self._listen_seen:
                self._listen_seen = seen
                try:
                    await self._reconfigure()
                except Exception:  # noqa: BLE001 - the next commit is followed all the same
                    log.exception("reconfiguring the listeners failed")

    @property
    def limits(self) -> Limits:
        """The request limits of running, read again once a commit of their module returned (one short sysrepo read).
        They count as read only once the read is over: a caller that comes during it waits for it (a mark cleared
        when the read began let it go on with the limits from before the change), and a commit during it (the
        commits are counted before the read) makes the next caller read again."""
        commits = self._limits_commits
        if commits is not None and (commits.generation() != self._limits_seen or self._limits_lock.locked()):
            with self._limits_lock:
                seen = commits.generation()
                if seen != self._limits_seen:
                    sess = self.conn.start_session("running")
                    try:
                        self._limits = settings.read_limits(sess)
                    finally:
                        sess.stop()
                    self._limits_seen = seen
                    log.info("request limits changed", **dataclasses.asdict(self._limits))
        return self._limits

    def look_at_limits(self) -> None:
        """Bring the request limits up to date now (`limits`), so that the next message's look finds nothing queued:
        the watch behind them sees every commit of any module (sysrepo's running files), a few events each."""
        self.limits  # noqa: B018 - the property's look is the point

    async def _reconfigure(self) -> None:
        """Apply changed endpoints/keys: new listeners replace the old ones; open sessions stay."""
        loop = asyncio.get_running_loop()
        sess = self.conn.start_session("running")
        try:
            endpoints = await loop.run_in_executor(None, settings.read_endpoints, sess)
        except settings.SettingsError as exc:
            log.error("listen settings not applied, keeping the current ones", error=str(exc))
            return
        finally:
            sess.stop()
        if sorted(ep.binding() for ep in endpoints) == self._bindings:
            return  # nothing a listener depends on changed (users are read at login)
        for acceptor in self._acceptors:
            acceptor.close()
        self._acceptors = []
        self.host_key = None
        await self._bind(endpoints)

    async def close(self) -> None:
        self._stop_retrying()
        if self._listen_look is not None:
            self._listen_look.cancel()
            self._listen_look = None
        if self.retention is not None:
            await self.retention.stop()
        with self.state.lock:
            sessions = list(self.state.sessions.values())
        for s in sessions:
            s.end_reason = "other"
            s.close()
        for conn in list(self.connections):
            conn.close()
        for acceptor in self._acceptors:
            acceptor.close()
            try:
                await asyncio.wait_for(acceptor.wait_closed(), 5)
            except TimeoutError:
                log.warning("SSH listener did not close in time")
        loop = asyncio.get_running_loop()
        for s in sessions:
            await loop.run_in_executor(None, s.wait_closed, 10.0)
        with self.state.lock:
            cc = self.state.confirmed
        if cc is not None and cc.timer is not None:
            cc.timer.cancel()  # persist: not rolled back at shutdown; the record on disk re-arms it on the next start
        await asyncio.sleep(0)

    def shutdown(self) -> None:
        """Stop the server's own sysrepo sessions (before the connection is closed)."""
        self._settings_session.stop()
        for commits in (self._limits_commits, self._users_commits, self._listen_commits):
            if commits is not None:
                commits.close()
        if self.retention is not None:
            self.retention.close()
        self.users.close()
        self.login_settings.close()
        self.nacm_policy.close()
        self.events.close()
        self._oper.stop()
        nacm.destroy_nacm()
        self._internal.stop()


def _bind_error(exc: OSError) -> str:
    """Why a listener could not be opened, said for an operator (an address not up yet, a port in use)."""
    if exc.errno == errno.EADDRNOTAVAIL:
        return "cannot assign requested address: not an address of this host (yet)"
    return exc.strerror or str(exc)


class _SSHServer(asyncssh.SSHServer):
    """One SSH connection to the endpoint `endpoint`: its client-authentication users first, the shared user list
    for everyone else.

    Password attempts go through the server's failed-login back-off (`LoginGuard`, per source address and user):
    while the address or the user is blocked an attempt fails unchecked, and after `max_auth_tries` failed
    attempts the connection is closed (OpenSSH's MaxAuthTries). Public keys, which cannot be guessed, are not held
    back. Every attempt is logged with the address and the user name, never the password."""

    def __init__(self, server: NetconfServer, endpoint: str) -> None:
        self._server = server
        self._endpoint = endpoint
        self._conn: asyncssh.SSHServerConnection | None = None
        self._source = ""
        self._username = ""
        self._tries = 0
        self._authenticated = False
        self._acks: tcp_ack.AckTracker | None = None

    def connection_made(self, conn: asyncssh.SSHServerConnection) -> None:
        self._conn = conn
        self._acks = tcp_ack.install(conn)  # a client's window adjust must not hold its next request 40 ms
        ssh_ignore.install(conn)  # one SSH packet per reply, not an SSH_MSG_IGNORE before each (unless CBC)
        self._server.connections.add(conn)
        peer = conn.get_extra_info("peername") or ("", 0)
        self._source = str(peer[0])

    def connection_lost(self, exc: Exception | None) -> None:
        if self._conn is not None:
            self._server.connections.discard(self._conn)
        if not self._authenticated and (isinstance(exc, asyncssh.IllegalUserName) or (
                isinstance(exc, asyncssh.ProtocolError) and "auth request" in str(exc))):
            # asyncssh ends the connection on a password or user name that is not UTF-8 or that SASLprep
            # prohibits — a NUL, other control characters — before we see it: a refused attempt all the same.
            failure = self._server.login_guard.failed(self._source, self._username or None)
            log.info("password authentication refused: malformed request, connection closed", source=self._source,
                     user=self._username, endpoint=self._endpoint, reason=str(exc),
                     source_failures=failure.source_failures, blocked_for_s=round(failure.blocked_for, 3))

    def _endpoint_user(self, username: str) -> settings.EndpointUser | None:
        return self._server.endpoint_user(self._endpoint, username)

    def begin_auth(self, username: str) -> bool:
        self._username = username
        user = self._endpoint_user(username)
        if user is not None and user.none:
            log.info("authentication none configured, accepted", user=username, endpoint=self._endpoint)
            return False
        return True

    def auth_completed(self) -> None:
        self._authenticated = True
        if self._conn is not None:  # never closed to make room for another connection (connguard.py)
            peer = self._conn.get_extra_info("peername")
            if peer:
                self._server.admission.trust((str(peer[0]), int(peer[1])))
        self._server.login_guard.succeeded(self._source, self._username)

    def session_requested(self) -> _NetconfChannel:
        return _NetconfChannel(self._server, self._acks)

    def password_auth_supported(self) -> bool:
        return True

    async def validate_password(self, username: str, password: str) -> bool:
        loop = asyncio.get_running_loop()
        guard = self._server.login_guard
        problem = crypt.password_problem(password)
        if problem is None and any(ord(c) < 0x20 or c == "\x7f" for c in username):
            problem = "a control character in the user name"
        if problem is not None:  # never cut or cleaned up and compared
            failure = guard.failed(self._source, None)
            log.info("password authentication refused: malformed", source=self._source, user=username,
                     endpoint=self._endpoint, reason=problem, source_failures=failure.source_failures,
                     blocked_for_s=round(failure.blocked_for, 3))
            self._failed_try()
            return False
        await loop.run_in_executor(None, self._server.login_settings.refresh)
        refusal = guard.check(self._source, username)
        if refusal is not None:
            log.warning("login refused: backing off", source=self._source, user=username, endpoint=self._endpoint,
                        blocked=refusal.reason, retry_after_s=round(refusal.retry_after, 3))
            self._failed_try()
            return False
        user = await loop.run_in_executor(None, self._endpoint_user, username)
        if user is None:
            ok = await loop.run_in_executor(None, self._server.users.verify_password, username, password)
        elif user.password_hash:
            ok = await loop.run_in_executor(None, crypt.verify_password, password, user.password_hash)
        else:  # no password for this user here; the same work as a check, so timing tells nothing
            await loop.run_in_executor(None, self._server.users.verify_password, users.RESERVED_PREFIX, password)
            ok = False
        if ok:
            log.info("password authentication", source=self._source, user=username, endpoint=self._endpoint,
                     accepted=True, user_list="endpoint" if user is not None else "ietf-system")
            return True
        failure = guard.failed(self._source, username)
        log.info("password authentication", source=self._source, user=username, endpoint=self._endpoint,
                 accepted=False, user_list="endpoint" if user is not None else "ietf-system",
                 source_failures=failure.source_failures, user_failures=failure.user_failures,
                 blocked_for_s=round(failure.blocked_for, 3))
        self._failed_try()
        return False

    def _failed_try(self) -> None:
        """Counts a failed password attempt of this connection; at max-auth-tries the connection is closed (after
        the failure reply, which asyncssh sends when we return)."""
        self._tries += 1
        limit = self._server.login_guard.policy.max_auth_tries
        if self._tries >= limit and self._conn is not None:
            log.warning("too many authentication failures, disconnecting", source=self._source, user=self._username,
                        endpoint=self._endpoint, tries=self._tries)
            conn = self._conn
            asyncio.get_running_loop().call_soon(
                conn.disconnect, asyncssh.DISC_NO_MORE_AUTH_METHODS_AVAILABLE, "Too many authentication failures")

    def public_key_auth_supported(self) -> bool:
        return True

    def validate_public_key(self, username: str, key: asyncssh.SSHKey) -> bool:
        user = self._endpoint_user(username)
        if user is not None:
            return key.public_data in user.public_keys
        offered = key.export_public_key("openssh").decode().split()[:2]
        for line in self._server.users.authorized_keys(username):
            if line.split()[:2] == offered:
                return True
        return False


class _NetconfChannel(asyncssh.SSHServerSession):  # type: ignore[type-arg]
    """Adapter between an SSH channel and a `NetconfSession`; only the `netconf` subsystem is accepted."""

    def __init__(self, server: NetconfServer, acks: tcp_ack.AckTracker | None = None) -> None:
        self._server = server
        self._acks = acks  # told of every read that completed a request (tcp_ack.py)
        self._chan: Any = None
        self._sock: Any = None  # the connection's TCP socket (asyncio's TransportSocket), for TCP_CORK
        self._session: NetconfSession | None = None

    def connection_made(self, chan: Any) -> None:
        self._chan = chan
        sock = chan.get_extra_info("socket")
        self._sock = sock if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6) else None

    def _send(self, data: bytes) -> None:
        """One message out in as few TCP segments as the kernel can make of it. asyncssh writes every SSH packet
        on its own: uncorked, a reply of several packets left in as many segments and the first woke the client
        for part of it, while our thread waited for the CPU back to send the rest (on a loaded two-core box the
        client's thread preempts the sender). Corked, the kernel sends the packets together when the write is
        done. A message that fits one packet (`CORK_MIN`; the SSH_MSG_IGNORE asyncssh put before each is gone,
        ssh_ignore.py) is one write anyway: no cork, two system calls fewer — and the uncorking one sent the
        segment with the GIL held (setsockopt keeps it), a send releases it."""
        sock = self._sock
        if sock is None or len(data) < CORK_MIN:
            self._chan.write(data)
            return
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_CORK, 1)
        except OSError:  # the connection is going: asyncssh's own write copes with that
            self._chan.write(data)
            return
        try:
            self._chan.write(data)
        finally:
            try:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_CORK, 0)
            except OSError:
                pass

    def subsystem_requested(self, subsystem: str) -> bool:
        return subsystem == "netconf"

    def shell_requested(self) -> bool:
        return False

    def exec_requested(self, command: str) -> bool:
        return False

    def session_started(self) -> None:
        user = str(self._chan.get_extra_info("username"))
        peer = self._chan.get_extra_info("peername") or ("", 0)
        try:
            self._session = NetconfSession(self._server, user, self._send, self._end, str(peer[0]))
            self._session.start()
        except Exception:
            log.exception("cannot start a NETCONF session", user=user)
            self._chan.close()

    def _end(self) -> None:
        # exit-status 0 before the close (RFC 4254 6.10), as for any subsystem that ended: OpenSSH's `ssh -s ...
        # netconf` exits 0 then, not 255 ("no exit status")
        try:
            self._chan.exit(0)
        except OSError:  # the connection is going already
            self._chan.close()

    def data_received(self, data: bytes, datatype: Any) -> None:
        if self._session is not None and self._session.data_received(data) and self._acks is not None:
            self._acks.delivered += 1  # a request completed: its reply acknowledges this read

    def eof_received(self) -> bool:
        # True keeps our side of the channel open: the replies to what the client sent before its EOF still go out,
        # then the session closes the channel (NetconfSession.eof_received).
        if self._session is None:
            return False
        self._session.eof_received()
        return True

    def connection_lost(self, exc: Exception | None) -> None:
        if self._session is not None:
            self._session.connection_lost()


def load_or_create_host_key(state_dir: Path) -> asyncssh.SSHKey:
    path = state_dir / "netconf" / "ssh_host_ed25519_key"
    if path.exists():
        return asyncssh.read_private_key(str(path))
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    key = asyncssh.generate_private_key("ssh-ed25519")
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(key.export_private_key())
    os.replace(tmp, path)
    (path.parent / "ssh_host_ed25519_key.pub").write_bytes(key.export_public_key())
    return key

"""SSH password logins of the NETCONF server under attack, through real SSH clients (asyncssh, ncclient): a NUL in
the password is a refused, logged attempt; guessing is held back per address and per user (configured in
netconf-server/login-backoff), other addresses and users never wait; MaxAuthTries closes a guessing connection."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import asyncssh
import pytest
from ncclient.transport.errors import AuthenticationError, SSHError

from tests.netconf.conftest import ADMIN, ADMIN_PASSWORD, ServerInfo

NC = "urn:ietf:params:xml:ns:netconf:base:1.0"
SBNS = "urn:vpp-singbox:yang:vpp-singbox-netconf-server"


def backoff_config(**leaves: object) -> str:
    body = "".join(f"<{k}>{str(v).lower() if isinstance(v, bool) else v}</{k}>" for k, v in leaves.items())
    return (f'<config xmlns="{NC}"><netconf-server xmlns="{SBNS}"><login-backoff>{body}</login-backoff>'
            "</netconf-server></config>")


async def try_passwords(server: ServerInfo, user: str, passwords: list[str], local: str = "127.0.0.1") -> list[str]:
    """Each password on a connection of its own from `local`: "ok", "denied", or "closed" (connection ended)."""
    results = []
    for password in passwords:
        try:
            conn = await asyncssh.connect(server.host, server.port, username=user, password=password,
                                          known_hosts=None, client_keys=None, agent_path=None,
                                          preferred_auth="password", local_addr=(local, 0), connect_timeout=30)
        except asyncssh.PermissionDenied:
            results.append("denied")
        except (asyncssh.DisconnectError, ConnectionError, asyncssh.ProtocolError):
            results.append("closed")
        else:
            conn.close()
            await conn.wait_closed()
            results.append("ok")
    return results


def log_of(server: ServerInfo) -> str:
    return (server.state_dir / "netconf.log").read_text(errors="replace")


def refusals_logged(server: ServerInfo, expected: int) -> str:
    """The log once it holds `expected` refusals (the server logs a refusal as the client's connection ends, which
    a loaded machine may schedule after the client returned), or after 10 s."""
    deadline = time.monotonic() + 10
    while True:
        log = log_of(server)
        if log.count("password authentication refused") >= expected or time.monotonic() > deadline:
            return log
        time.sleep(0.05)


def test_a_nul_in_the_password_is_a_refused_and_logged_attempt(netconf_server: ServerInfo) -> None:
    """`<password>\\0junk` dropped the connection with no log line (asyncssh's SASLprep refuses it first)."""
    results = asyncio.run(try_passwords(netconf_server, ADMIN, [ADMIN_PASSWORD + "\0junk", "\0" + ADMIN_PASSWORD]))
    assert "ok" not in results
    log = refusals_logged(netconf_server, 2)
    assert log.count("password authentication refused") == 2, log[-3000:]
    assert '"source": "127.0.0.1"' in log and '"user": "admin"' in log
    assert "junk" not in log and ADMIN_PASSWORD not in log
    assert asyncio.run(try_passwords(netconf_server, ADMIN, [ADMIN_PASSWORD])) == ["ok"]
    for user in ("ad\0min", "ad\x01min", "admin\n"):  # a control character in the user name: refused, logged
        assert not paramiko_login(netconf_server, user, ADMIN_PASSWORD)
    log = refusals_logged(netconf_server, 5)
    assert log.count("password authentication refused") == 5, log[-3000:]


def paramiko_login(server: ServerInfo, user: str, password: str) -> bool:
    """paramiko sends a user name as given (asyncssh's client would refuse one SASLprep prohibits)."""
    import paramiko

    transport = paramiko.Transport((server.host, server.port))
    try:
        transport.start_client(timeout=30)
        transport.auth_password(user, password)
        return transport.is_authenticated()
    except (paramiko.SSHException, EOFError, OSError):
        return False
    finally:
        transport.close()


def test_guessing_is_held_back_and_nobody_else_waits(netconf_server: ServerInfo) -> None:
    """20 wrong SSH passwords were answered at 0.01-0.1 s each and then the right one worked."""
    with netconf_server.connect() as m:  # the real admin, from 127.0.0.3 later; configure through NETCONF
        m.edit_config(target="running", config=backoff_config(**{"free-failures": 2, "initial-delay": 600000,
                                                                 "maximum-delay": 600000}))
    assert asyncio.run(try_passwords(netconf_server, ADMIN, [ADMIN_PASSWORD], "127.0.0.3")) == ["ok"]
    guesses = [f"guess{i}" for i in range(20)]
    assert asyncio.run(try_passwords(netconf_server, ADMIN, guesses + [ADMIN_PASSWORD], "127.0.0.2")) == \
        ["denied"] * 21  # the right password too, once blocked
    log = log_of(netconf_server)
    assert log.count("login refused: backing off") >= 18, log[-3000:]
    # another user from another address, and the real admin's own address: not slowed
    with netconf_server.connect() as m:
        m.edit_config(target="running", config=(
            f'<config xmlns="{NC}"><system xmlns="urn:ietf:params:xml:ns:yang:ietf-system"><authentication><user>'
            "<name>op</name><password>$0$op-password</password></user></authentication></system></config>"))
    assert asyncio.run(try_passwords(netconf_server, "op", ["op-password"], "127.0.0.4")) == ["ok"]
    assert asyncio.run(try_passwords(netconf_server, ADMIN, [ADMIN_PASSWORD], "127.0.0.3")) == ["ok"]
    # the guessed user from a new address is held back; the guessing address, whoever it names
    assert asyncio.run(try_passwords(netconf_server, ADMIN, [ADMIN_PASSWORD], "127.0.0.5")) == ["denied"]
    assert asyncio.run(try_passwords(netconf_server, "op", ["op-password"], "127.0.0.2")) == ["denied"]
    assert "guess1" not in log_of(netconf_server) and ADMIN_PASSWORD not in log_of(netconf_server)


def test_max_auth_tries_closes_a_guessing_connection(netconf_server: ServerInfo) -> None:
    """Many passwords on one connection: after max-auth-tries the server closes it (OpenSSH's MaxAuthTries)."""
    with netconf_server.connect() as m:
        m.edit_config(target="running", config=backoff_config(enabled=False, **{"max-auth-tries": 3}))
    tried: list[str] = []

    class Guesser(asyncssh.SSHClient):
        def password_auth_requested(self) -> str:
            tried.append("x")
            return f"guess{len(tried)}"

    async def guess() -> Any:
        with pytest.raises((asyncssh.DisconnectError, asyncssh.PermissionDenied, ConnectionError)) as ended:
            await asyncssh.connect(netconf_server.host, netconf_server.port, username=ADMIN, known_hosts=None,
                                   client_keys=None, agent_path=None, preferred_auth="password",
                                   client_factory=Guesser, connect_timeout=30)
        return ended.value

    ended = asyncio.run(guess())
    log = log_of(netconf_server)
    assert "too many authentication failures" in log, (ended, log[-3000:])
    # three attempts checked, then the close (a 4th the client sent meanwhile may be checked after it)
    assert log[:log.index("too many authentication failures")].count('"accepted": false') == 3, log[-3000:]
    assert len(tried) <= 4  # (the client may ask for a 4th before the close reaches it)
    with netconf_server.connect() as m:  # and the server serves on
        assert m.session_id


def test_ncclient_sees_a_plain_authentication_failure_while_blocked(netconf_server: ServerInfo) -> None:
    with netconf_server.connect() as m:
        m.edit_config(target="running", config=backoff_config(**{"free-failures": 0, "initial-delay": 600000}))
    with pytest.raises((AuthenticationError, SSHError)):
        netconf_server.connect(user="nobody", password="x")
    with pytest.raises((AuthenticationError, SSHError)):
        netconf_server.connect(user="someone", password="y")  # the address is blocked (free-failures 0)
    with netconf_server.connect() as m:  # the admin logged in from here before: trusted, not held back
        assert m.session_id

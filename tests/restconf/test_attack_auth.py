"""Attacks on RESTCONF authentication over real HTTPS: malformed and hostile credentials (each refused with a
precise 401, never cut and compared), password guessing (held back per address and per user with 429 and
Retry-After, other addresses and users never slowed), and `$0$` passwords that cannot be hashed."""

from __future__ import annotations

import base64
import itertools
import json
from typing import Any

import httpx
from helpers import JSON, running_config
from rawhttp import basic
from rcserver import ADMIN, BOB, RestconfServer

SB = "/restconf/data/vpp-singbox:singbox"
SETTINGS = "/restconf/data/vpp-singbox-restconf-server:restconf-server"
USERS = "/restconf/data/ietf-system:system/authentication"


def client_from(server: RestconfServer, address: str, auth: tuple[str, str] | None = ADMIN) -> httpx.Client:
    """A client whose connections come from `address` (any of 127.0.0.0/8 on loopback)."""
    transport = httpx.HTTPTransport(local_address=address, verify=server.ca or False)
    return httpx.Client(base_url=server.base_url, transport=transport, auth=auth, timeout=30.0)


def first_error(resp: httpx.Response) -> dict[str, Any]:
    error: dict[str, Any] = resp.json()["ietf-restconf:errors"]["error"][0]
    return error


def set_backoff(client: httpx.Client, **leaves: object) -> None:
    body = {"vpp-singbox-restconf-server:login-backoff": leaves}
    resp = client.put(f"{SETTINGS}/login-backoff", content=json.dumps(body).encode(), headers={"content-type": JSON})
    assert resp.status_code in (201, 204), resp.text


def raw_auth(value: str | bytes) -> dict[str, str]:
    text = value if isinstance(value, str) else base64.b64encode(value).decode()
    return {"authorization": text}


# --- the corpus: (authorization header value, what the error-message says) ---------------------------------------
def b64(raw: bytes) -> str:
    return "Basic " + base64.b64encode(raw).decode()


admin_pw = ADMIN[1].encode()
CORPUS: list[tuple[str, str]] = []
# A NUL anywhere in the password: everything after it used to be ignored (admin:<password>\0junk -> 200).
for tail in (b"\0", b"\0junk", b"\0" + admin_pw, b"\0\0\0", b"\0" * 600):
    CORPUS.append((b64(b"admin:" + admin_pw + tail), "a NUL in the password"))
CORPUS += [(b64(b"admin:\0" + admin_pw), "a NUL in the password"), (b64(b"bob:\0"), "a NUL in the password")]
# Control characters in the user name.
for ch in (0, 1, 9, 10, 13, 27, 127):
    CORPUS.append((b64(b"admin" + bytes([ch]) + b":" + admin_pw), "control character in the user name"))
    CORPUS.append((b64(bytes([ch]) + b"admin:" + admin_pw), "control character in the user name"))
# Not base64, or not of UTF-8 text.
for value in ("YWRtaW4", "YWRtaW4===", "!!!!", "YW Rt", "\u00e9\u00e9\u00e9\u00e9", "YWRt aW46eA==",
              "-_-_", "YWRtaW46eA==YWRtaW46eA=="):
    CORPUS.append(("Basic " + value, "not base64 of UTF-8 text"))
for raw in (b"\xff\xfe:x", b"admin:\xc3\x28", b"\xed\xa0\x80:x", b"admin:\x80"):
    CORPUS.append((b64(raw), "not base64 of UTF-8 text"))
# No user name.
for raw in (b"", b":", b":" + admin_pw, b"admin", b"adminpassword"):
    CORPUS.append((b64(raw), "no user name"))
# Oversized credentials.
for size in (5000, 10_000):
    CORPUS.append((b64(b"admin:" + b"a" * size), "too long"))
# Wrong passwords, unknown and reserved users, near misses: the plain refusal.
WRONG = "Invalid user name or password"
for user, password in itertools.chain(
    [("admin", p) for p in ("", "x", ADMIN[1][:-1], ADMIN[1] + "x", ADMIN[1].upper(), " " + ADMIN[1],
                            ADMIN[1] + " ", ADMIN[1] + "\n", ADMIN[1] + "\t", "a" * 511, "a" * 512, "a" * 3000,
                            ADMIN[1] + "é", BOB[1], "$0$" + ADMIN[1])],
    [(u, ADMIN[1]) for u in ("Admin", "ADMIN", "admin ", " admin", "root", "nobody", "%ungrouped", "%", "admin:",
                             "é" * 100, "a" * 1000, "bob")],
):
    CORPUS.append((b64(user.encode() + b":" + password.encode()), WRONG))
# Generated guesses: lengths around crypt's limits, every printable character once, case and Unicode variants.
for n in (1, 8, 64, 255, 510, 511, 512, 513, 1024, 4000):
    CORPUS.append((b64(b"admin:" + b"p" * n), WRONG))
for chunk_start in range(0x21, 0x7f, 16):
    CORPUS.append((b64(b"admin:" + bytes(range(chunk_start, min(chunk_start + 16, 0x7f)))), WRONG))
for user in ("adm\u0131n", "\uff41dmin", "admin\u200b", "\u0430dmin"):  # dotless i, fullwidth a, ZWSP, Cyrillic a
    CORPUS.append((b64(user.encode() + b":" + admin_pw), WRONG))
CORPUS.append(("BASIC " + base64.b64encode(b"admin:wrong").decode(), WRONG))
# Other schemes and shapes of the header.
for value in ("Basic", "basic", "Bearer " + base64.b64encode(b"admin:" + admin_pw).decode(), "Digest x",
              "Negotiate YWRtaW4=", "NTLM x", "Basicx YWRtaW46eA==", "x" * 100):
    CORPUS.append((value, ""))


def test_a_nul_in_the_password_is_refused_not_cut(restconf: RestconfServer) -> None:
    """`admin:<password>\\0junk` was accepted: C's crypt saw only what came before the NUL."""
    with restconf.client(auth=None) as client:
        for tail in (b"\0junk", b"\0"):
            resp = client.get(SB, headers={"authorization": b64(b"admin:" + admin_pw + tail)})
            assert resp.status_code == 401, resp.text
            assert first_error(resp)["error-message"] == "Malformed Basic credentials: a NUL in the password"
        assert client.get(SB, headers={"authorization": b64(b"admin:" + admin_pw)}).status_code in (200, 404)
    assert "a NUL in the password" in restconf.log()
    assert "junk" not in restconf.log()


def test_hostile_credentials_corpus(restconf: RestconfServer) -> None:
    """Each input: 401, an errors body saying why, WWW-Authenticate; the server keeps serving; nothing changes.
    (Back-off off for the corpus, so that each input gets its own answer; the back-off has its own tests.)"""
    assert len(CORPUS) >= 80, len(CORPUS)
    env = restconf.instance.env
    with restconf.client() as admin, restconf.client(auth=None, http2=True) as anon2, \
            restconf.client(auth=None) as anon1:
        set_backoff(admin, enabled=False)
        before = [running_config(env, m) for m in ("vpp-singbox", "ietf-system", "ietf-netconf-acm")]
        failures = []
        for index, (value, says) in enumerate(CORPUS):
            client = anon2 if index % 2 else anon1
            try:
                resp = client.get(SB, headers={"authorization": value.encode()})
            except httpx.HTTPError as exc:
                failures.append(f"{value[:60]!r}: transport error {exc!r}")
                continue
            if resp.status_code != 401:
                failures.append(f"{value[:60]!r}: status {resp.status_code}")
                continue
            message = first_error(resp).get("error-message", "")
            if says not in message or not resp.headers.get("www-authenticate", "").startswith("Basic"):
                failures.append(f"{value[:60]!r}: {message!r}")
        assert admin.get("/restconf/yang-library-version").status_code == 200
        after = [running_config(env, m) for m in ("vpp-singbox", "ietf-system", "ietf-netconf-acm")]
    assert not failures, f"{len(failures)} of {len(CORPUS)}:\n" + "\n".join(failures)
    assert after == before
    assert restconf.process.poll() is None
    log = restconf.log()
    assert ADMIN[1] not in log and BOB[1] not in log


def test_guessing_is_held_back_per_address_and_user_and_nobody_else_waits(restconf: RestconfServer) -> None:
    """20 wrong passwords used to be answered at full speed, and then the right one worked. Now: after
    free-failures, the guessing address and the guessed user are blocked (429 + Retry-After, the password not even
    checked, so a right guess is not recognised); another address and another user are not slowed; the address
    the real admin logged in from keeps working."""
    with client_from(restconf, "127.0.0.3") as real_admin:
        set_backoff(real_admin, **{"free-failures": 2, "initial-delay": 600000, "maximum-delay": 600000})
        assert real_admin.get("/restconf/yang-library-version").status_code == 200  # trusted pair (127.0.0.3, admin)
    with client_from(restconf, "127.0.0.1", auth=None) as guesser:
        answers = [guesser.get(SB, headers={"authorization": basic("admin", f"guess{i}")}) for i in range(20)]
        assert [r.status_code for r in answers[:3]] == [401, 401, 401]
        assert {r.status_code for r in answers[3:]} == {429}
        blocked = answers[3]
        assert int(blocked.headers["retry-after"]) > 500
        assert first_error(blocked)["error-message"].startswith("Too many failed logins for this address")
        right = guesser.get(SB, headers={"authorization": basic(*ADMIN)})
        assert right.status_code == 429  # the right password from the guessing address: not even checked
        assert guesser.get(SB, headers={"authorization": basic(*BOB)}).status_code == 429  # the address, any user
    with client_from(restconf, "127.0.0.2", auth=BOB) as other:
        assert other.get("/restconf/yang-library-version").status_code == 200  # another address and user
    with client_from(restconf, "127.0.0.4") as admin_elsewhere:
        resp = admin_elsewhere.get("/restconf/yang-library-version")
        assert resp.status_code == 429  # the guessed user, from an address it never logged in from
        assert first_error(resp)["error-message"].startswith("Too many failed logins for this user")
    with client_from(restconf, "127.0.0.3") as real_admin:
        assert real_admin.get("/restconf/yang-library-version").status_code == 200
        set_backoff(real_admin, enabled=False)  # and a commit of the settings applies to the next login
    with client_from(restconf, "127.0.0.1") as guesser:
        assert guesser.get("/restconf/yang-library-version").status_code == 200
    log = restconf.log()
    assert '"event": "authentication failed", "source": "127.0.0.1", "user": "admin"' in log.replace(
        '"source": "127.0.0.1", "user": "admin", "event": "authentication failed"',
        '"event": "authentication failed", "source": "127.0.0.1", "user": "admin"') or all(
        k in log for k in ('"authentication failed"', '"source": "127.0.0.1"', '"user": "admin"'))
    assert "login refused: backing off" in log
    assert "guess1" not in log and ADMIN[1] not in log


def test_a_clear_text_password_that_cannot_be_hashed_is_refused(restconf: RestconfServer) -> None:
    """A `$0$` password of more than 511 bytes was answered 204 and stored as written, in clear text."""
    env = restconf.instance.env
    user = f"{USERS}/user=carol"
    with restconf.client() as client:
        for clear in ("x" * 600, "é" * 300):
            body = {"ietf-system:user": [{"name": "carol", "password": "$0$" + clear}]}
            resp = client.put(user, content=json.dumps(body).encode(), headers={"content-type": JSON})
            assert resp.status_code == 400, resp.text
            message = first_error(resp)["error-message"]
            assert "at most 511 bytes" in message and clear not in message
        assert "carol" not in running_config(env, "ietf-system")
        body = {"ietf-system:user": [{"name": "carol", "password": "$0$carol-pw"}]}
        resp = client.put(user, content=json.dumps(body).encode(), headers={"content-type": JSON})
        assert resp.status_code == 201, resp.text
        stored = running_config(env, "ietf-system")
        assert "carol-pw" not in stored and "$6$" in stored
    with restconf.client(auth=("carol", "carol-pw")) as carol:
        assert carol.get("/restconf/yang-library-version").status_code == 200

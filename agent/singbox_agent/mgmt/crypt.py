"""The one password hasher of the product: libxcrypt (libcrypt.so.1) through ctypes.

Every password the appliance stores or checks goes through here: the management users (RFC 7317 ietf-system, the
NETCONF endpoints' ietf-ssh-server users) and the SOCKS5 users of the agent. Python 3.13 removed the `crypt`
module; libxcrypt is what PAM and shadow use on Debian, so hashes made here verify with any tool on the appliance
and the other way round. RFC 7317 `ianach:crypt-hash` allows $1$, $5$ and $6$, and `$0$<clear text>` for a
password the server must hash before it stores it: we make $6$ (SHA-512 crypt).

What a password may be: libxcrypt takes a NUL-terminated string of at most `MAX_PASSWORD_BYTES` bytes (its
CRYPT_MAX_PASSPHRASE_SIZE, 512, counts the terminating NUL) and fails on a longer one. A password with a NUL
would be cut at it by C, so that everything after the NUL would be ignored: such a password is refused when it
is set (`PasswordError`) and never matches when it is checked. Nothing here ever returns or stores clear text.
"""

from __future__ import annotations

import ctypes
import hmac

_CRYPT_DATA_SIZE = 32768  # sizeof(struct crypt_data) in libxcrypt
_OUTPUT_SIZE = 512

MAX_PASSWORD_BYTES = 511
"""The longest password libxcrypt hashes, in UTF-8 bytes (CRYPT_MAX_PASSPHRASE_SIZE minus its NUL)."""

CLEAR_TEXT_PREFIX = "$0$"
"""RFC 7317: a `crypt-hash` value starting with this is clear text the server stores hashed."""

_lib = ctypes.CDLL("libcrypt.so.1", use_errno=True)
_lib.crypt_rn.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_void_p, ctypes.c_int]
_lib.crypt_rn.restype = ctypes.c_char_p
_lib.crypt_gensalt_rn.argtypes = [
    ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_int
]
_lib.crypt_gensalt_rn.restype = ctypes.c_char_p


class PasswordError(ValueError):
    """A password that cannot be hashed as given; the message says why and never contains the password."""


def password_problem(clear: str) -> str | None:
    """Why `clear` cannot be a password (None when it can)."""
    if "\0" in clear:
        return "a password must not contain a NUL character"
    size = len(clear.encode("utf-8", "surrogatepass"))
    if size > MAX_PASSWORD_BYTES:
        return f"a password is at most {MAX_PASSWORD_BYTES} bytes (UTF-8); this one has {size}"
    try:
        clear.encode("utf-8")
    except UnicodeEncodeError:
        return "a password must be valid Unicode text"
    return None


def crypt(phrase: str, setting: str) -> str | None:
    """crypt(3) of `phrase` with the method and salt of `setting`; None when libxcrypt refuses either, or when
    either holds a NUL (C would see only what comes before it)."""
    if "\0" in phrase or "\0" in setting:
        return None
    try:
        phrase_bytes, setting_bytes = phrase.encode(), setting.encode()
    except UnicodeEncodeError:
        return None
    data = ctypes.create_string_buffer(_CRYPT_DATA_SIZE)
    out: bytes | None = _lib.crypt_rn(phrase_bytes, setting_bytes, data, _CRYPT_DATA_SIZE)
    if not out or out.startswith(b"*"):  # libxcrypt's failure tokens start with "*"
        return None
    return out.decode()


def hash_password(clear: str) -> str:
    """A fresh $6$ hash of `clear` with a random salt from the OS. Raises `PasswordError` for a password that
    cannot be hashed (`password_problem`), OSError when libxcrypt fails otherwise."""
    problem = password_problem(clear)
    if problem is not None:
        raise PasswordError(problem)
    salt = ctypes.create_string_buffer(_OUTPUT_SIZE)
    if not _lib.crypt_gensalt_rn(b"$6$", 0, None, 0, salt, _OUTPUT_SIZE):
        raise OSError(ctypes.get_errno(), "crypt_gensalt_rn failed")
    hashed = crypt(clear, salt.value.decode())
    if hashed is None:
        raise OSError(ctypes.get_errno(), "crypt_rn failed on a checked password and a salt it generated")
    return hashed


def stored_form(value: str) -> str:
    """What to store for a `crypt-hash` value as a client wrote it: `$0$<clear>` hashed, anything else as is.
    Raises `PasswordError` (or OSError) rather than ever returning the clear text."""
    if value.startswith(CLEAR_TEXT_PREFIX):
        return hash_password(value[len(CLEAR_TEXT_PREFIX):])
    return value


def verify_password(clear: str, stored: str) -> bool:
    """Whether `clear` matches `stored` (a crypt hash, or RFC 7317 `$0$` clear text); constant-time compare.
    A password that could never have been set (`password_problem`) matches nothing."""
    if password_problem(clear) is not None:
        return False
    if stored.startswith(CLEAR_TEXT_PREFIX):
        return hmac.compare_digest(clear.encode(), stored[len(CLEAR_TEXT_PREFIX):].encode())
    if not stored.startswith("$"):
        return False
    hashed = crypt(clear, stored)
    return hashed is not None and hmac.compare_digest(hashed.encode(), stored.encode())

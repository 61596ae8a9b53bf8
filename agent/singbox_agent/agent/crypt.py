"""crypt(3) hashes for server user passwords given as '$0$<clear text>' (RFC 7317 semantics), via libcrypt."""

from __future__ import annotations

import ctypes
import ctypes.util
import secrets
import threading

_SALT_CHARS = "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_lock = threading.Lock()  # crypt() returns a static buffer
_libcrypt: ctypes.CDLL | None = None


def _lib() -> ctypes.CDLL:
    global _libcrypt
    if _libcrypt is None:
        lib = ctypes.CDLL(ctypes.util.find_library("crypt") or "libcrypt.so.1")
        lib.crypt.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
        lib.crypt.restype = ctypes.c_char_p
        _libcrypt = lib
    return _libcrypt


def crypt(password: str, setting: str) -> str:
    with _lock:
        out = _lib().crypt(password.encode(), setting.encode())
    if not out or out.startswith(b"*"):
        raise ValueError("crypt(3) refused the setting")
    return str(out.decode())


def sha512_crypt(password: str) -> str:
    """A '$6$' hash with a random 16-character salt."""
    salt = "".join(secrets.choice(_SALT_CHARS) for _ in range(16))
    return crypt(password, f"$6${salt}$")


def verify(password: str, hashed: str) -> bool:
    return secrets.compare_digest(crypt(password, hashed), hashed)

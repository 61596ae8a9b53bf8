"""Password hashing with the system's libxcrypt (libcrypt.so.1) through ctypes.

Python 3.13 removed the `crypt` module; libxcrypt is what PAM and shadow use on Debian, so hashes made here verify
with any tool on the appliance and the other way round. RFC 7317 `ianach:crypt-hash` allows only $1$, $5$ and $6$ (and
$0$ for clear text to be hashed on store): we make $6$ (SHA-512 crypt).
"""

from __future__ import annotations

import ctypes
import hmac

_CRYPT_DATA_SIZE = 32768  # sizeof(struct crypt_data) in libxcrypt
_OUTPUT_SIZE = 512

_lib = ctypes.CDLL("libcrypt.so.1", use_errno=True)
_lib.crypt_rn.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_void_p, ctypes.c_int]
_lib.crypt_rn.restype = ctypes.c_char_p
_lib.crypt_gensalt_rn.argtypes = [
    ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_int
]
_lib.crypt_gensalt_rn.restype = ctypes.c_char_p

CLEAR_TEXT_PREFIX = "$0$"


def crypt(phrase: str, setting: str) -> str | None:
    """crypt(3) of `phrase` with the method and salt of `setting`; None when libxcrypt rejects the setting."""
    data = ctypes.create_string_buffer(_CRYPT_DATA_SIZE)
    out: bytes | None = _lib.crypt_rn(phrase.encode(), setting.encode(), data, _CRYPT_DATA_SIZE)
    if not out or out.startswith(b"*"):  # libxcrypt's failure tokens start with "*"
        return None
    return out.decode()


def hash_password(clear: str) -> str:
    """A fresh $6$ hash of `clear` with a random salt from the OS."""
    salt = ctypes.create_string_buffer(_OUTPUT_SIZE)
    if not _lib.crypt_gensalt_rn(b"$6$", 0, None, 0, salt, _OUTPUT_SIZE):
        raise OSError(ctypes.get_errno(), "crypt_gensalt_rn failed")
    hashed = crypt(clear, salt.value.decode())
    if hashed is None:
        raise OSError("crypt_rn rejected a salt it generated")
    return hashed


def verify_password(clear: str, stored: str) -> bool:
    """Whether `clear` matches `stored` (a crypt hash, or RFC 7317 `$0$` clear text); constant-time compare."""
    if stored.startswith(CLEAR_TEXT_PREFIX):
        return hmac.compare_digest(clear.encode(), stored[len(CLEAR_TEXT_PREFIX):].encode())
    if not stored.startswith("$"):
        return False
    hashed = crypt(clear, stored)
    return hashed is not None and hmac.compare_digest(hashed.encode(), stored.encode())

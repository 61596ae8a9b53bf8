# SPDX-License-Identifier: Apache-2.0
# Copyright (c) 2026 vpp-singbox authors
"""crypt(3) hashes for tests, through libcrypt (Python 3.13 has no crypt)."""

from __future__ import annotations

import ctypes
import ctypes.util
import secrets
import string


def sha512_crypt(password: str) -> str:
    lib = ctypes.CDLL(ctypes.util.find_library("crypt") or "libcrypt.so.1")
    lib.crypt.restype = ctypes.c_char_p
    lib.crypt.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
    salt = "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(16))
    out = lib.crypt(password.encode(), f"$6${salt}$".encode())
    assert out and out.startswith(b"$6$")
    return out.decode()

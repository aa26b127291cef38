"""Password hashes of the embedded provider's accounts: scrypt (n=2**14, r=8, p=1, 64 bytes).

Written here, checked by provider.mjs with Node's crypto.scrypt (same parameters and format:
``scrypt$<salt base64>$<digest base64>``).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os

SCRYPT = {"n": 2**14, "r": 8, "p": 1}


def hash_password(password: str, salt: bytes | None = None) -> str:
    salt = salt or os.urandom(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, **SCRYPT)
    b64 = base64.b64encode
    return f"scrypt${b64(salt).decode()}${b64(digest).decode()}"


def check_password(password: str, stored: str) -> bool:
    try:
        scheme, salt, digest = stored.split("$")
    except ValueError:
        return False
    if scheme != "scrypt":
        return False
    computed = hashlib.scrypt(password.encode(), salt=base64.b64decode(salt), **SCRYPT)
    return hmac.compare_digest(computed, base64.b64decode(digest))

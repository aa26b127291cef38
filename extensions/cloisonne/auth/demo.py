"""A local login for demo sites and tests: users and scrypt password hashes in a YAML file.

The OIDC issue replaces it for real sites; it exists so that `make up` gives working logins on
a machine with no identity provider.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from pathlib import Path
from typing import Any

import yaml
from jupyterhub.auth import Authenticator
from traitlets import Unicode

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


def load_users(path: str | Path) -> dict[str, dict[str, Any]]:
    data = yaml.safe_load(Path(path).read_text()) or {}
    users = data.get("users", {})
    if not isinstance(users, dict):
        raise ValueError(f"{path}: 'users' must be a mapping of name -> {{password_hash, admin}}")
    return users


def write_users(path: str | Path, users: dict[str, dict[str, Any]]) -> None:
    path = Path(path)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(yaml.safe_dump({"users": users}, sort_keys=True))
    os.chmod(tmp, 0o600)
    tmp.replace(path)


class DemoAuthenticator(Authenticator):
    """Username and password checked against a root-only YAML file of scrypt hashes."""

    users_file = Unicode(
        config=True,
        help="YAML file: users: {name: {password_hash: 'scrypt$...', admin: bool}}.",
    )

    async def authenticate(self, handler: Any, data: dict[str, str]) -> dict | None:
        name = (data.get("username") or "").strip().lower()
        users = load_users(self.users_file)
        entry = users.get(name)
        if not entry or not check_password(data.get("password") or "", entry["password_hash"]):
            self.log.warning("Failed login for %r", name)
            return None
        return {"name": name, "admin": bool(entry.get("admin", False))}

    def check_allowed(self, username: str, authentication: dict | None = None) -> bool:
        return username in load_users(self.users_file)

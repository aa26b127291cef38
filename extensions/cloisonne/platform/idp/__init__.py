"""The embedded OpenID Connect provider of the local platform, started by the operator's tooling
(`make up`, tests, benchmarks).

`provider.mjs` (panva's oidc-provider on Node) does the protocol; this module writes its
accounts and client files and starts and stops it by PID. Real sites point the hub at their own
provider (Keycloak, Pro Santé Connect...): see docs/identity.md.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

from .passwords import hash_password

HERE = Path(__file__).parent
REPO = HERE.parents[3]
PROVIDER_JS = HERE / "provider.mjs"
NODE_MODULE = REPO / ".node" / "node_modules" / "oidc-provider"
CLIENT_ID = "cloisonne-hub"
PROJECT_PREFIX = "project-"
LEADS_SUFFIX = "-leads"
ADMIN_GROUP = "cloisonne-admins"


def project_claims(specs: Iterable[Any], admins: Iterable[str] = ()) -> dict[str, list[str]]:
    """Groups claim of each user named in the projects file: ``project-<id>`` for members,
    ``project-<id>-leads`` for leads, and the admin group for ``admins``."""
    claims: dict[str, set[str]] = {}
    for spec in specs:
        pid = spec.project.id
        for name in spec.members:
            claims.setdefault(name, set()).add(f"{PROJECT_PREFIX}{pid}")
        for name in spec.leads:
            claims.setdefault(name, set()).add(f"{PROJECT_PREFIX}{pid}{LEADS_SUFFIX}")
    for name in admins:
        claims.setdefault(name, set()).add(ADMIN_GROUP)
    return {name: sorted(groups) for name, groups in sorted(claims.items())}


def write_json(path: Path, value: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(value, indent=1, sort_keys=True))
    os.chmod(tmp, 0o600)
    tmp.replace(path)


def write_accounts(
    data: Path, passwords: Mapping[str, str], groups: Mapping[str, list[str]]
) -> None:
    """Accounts file of the provider: scrypt hashes (the provider checks them with Node's
    crypto.scrypt, same parameters), and each user's groups claim."""
    write_json(
        data / "accounts.json",
        {
            "users": {
                name: {"password_hash": hash_password(pw), "groups": list(groups.get(name, []))}
                for name, pw in passwords.items()
            }
        },
    )


def set_groups(data: Path, name: str, groups: list[str]) -> None:
    """Change a user's groups at the provider (what a site's IdP administrator does)."""
    path = data / "accounts.json"
    accounts = json.loads(path.read_text())
    accounts["users"][name]["groups"] = list(groups)
    write_json(path, accounts)


def set_totp(data: Path, name: str, secret: str | None) -> None:
    """Give an account a TOTP second factor (base32 secret; None removes it): its sign-in then
    asks for a code, and the ID token says ``amr: [pwd, otp, mfa]``."""
    path = data / "accounts.json"
    accounts = json.loads(path.read_text())
    if secret:
        accounts["users"][name]["totp_secret"] = secret
    else:
        accounts["users"][name].pop("totp_secret", None)
    write_json(path, accounts)


@dataclass
class Client:
    client_id: str
    client_secret: str
    redirect_uri: str


def ensure_client(data: Path, redirect_uri: str) -> Client:
    """The hub's client at the provider; its secret is kept across restarts, its redirect URI
    follows the hub's public URL. Consent is automatic for it (it is the platform itself)."""
    path = data / "clients.json"
    try:
        secret = json.loads(path.read_text())[0]["client_secret"]
    except (OSError, ValueError, LookupError):
        secret = secrets.token_urlsafe(32)
    write_json(
        path,
        [
            {
                "client_id": CLIENT_ID,
                "client_secret": secret,
                "redirect_uris": [redirect_uri],
                "grant_types": ["authorization_code"],
                "response_types": ["code"],
                "token_endpoint_auth_method": "client_secret_basic",
                "auto_consent": True,
            }
        ],
    )
    return Client(CLIENT_ID, secret, redirect_uri)


@dataclass
class EmbeddedProvider:
    """Start and stop provider.mjs; its PID is kept in <data>/provider.pid."""

    data: Path
    port: int
    node: str = "node"

    @property
    def issuer(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid_file(self) -> Path:
        return self.data / "provider.pid"

    def start(self, timeout: float = 20) -> None:
        if not (NODE_MODULE / "package.json").exists():
            raise RuntimeError(
                f"oidc-provider is not installed under {NODE_MODULE}: run `make deps`"
            )
        self.stop()
        self.data.mkdir(parents=True, exist_ok=True, mode=0o700)
        log = open(self.data / "provider.log", "ab")
        proc = subprocess.Popen(
            [
                self.node,
                str(PROVIDER_JS),
                "--data",
                str(self.data),
                "--port",
                str(self.port),
                "--module",
                str(NODE_MODULE),
            ],  # fmt: skip
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        log.close()
        self.pid_file.write_text(str(proc.pid))
        deadline = time.monotonic() + timeout
        url = f"{self.issuer}/.well-known/openid-configuration"
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"the OIDC provider exited:\n{self.log_tail()}")
            try:
                if requests.get(url, timeout=1).ok:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.05)
        self.stop()
        raise TimeoutError(f"the OIDC provider did not answer:\n{self.log_tail()}")

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join((self.data / "provider.log").read_text().splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self, timeout: float = 5) -> None:
        try:
            pid = int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            return
        try:
            os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                os.kill(pid, 0)
                try:  # reap it when it is our child
                    os.waitpid(pid, os.WNOHANG)
                except ChildProcessError:
                    pass
                time.sleep(0.05)
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.pid_file.unlink(missing_ok=True)

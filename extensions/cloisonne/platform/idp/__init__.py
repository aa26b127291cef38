"""The embedded OpenID Connect provider of the local platform, started by the operator's tooling
(`make up`, tests, benchmarks).

`provider.mjs` (panva's oidc-provider on Node) does the protocol; this module writes its
accounts and client files and starts and stops it by PID. Real sites point the hub at their own
provider (Keycloak, Pro Santé Connect...): see docs/identity.md.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

from ...hub.idp_client import CLIENT_ID, Client, ensure_client, write_json
from ...procs import read_pid, stop_pid
from .passwords import hash_password

__all__ = ["CLIENT_ID", "Client", "EmbeddedProvider", "ensure_client", "project_claims",
           "set_groups", "write_accounts"]  # fmt: skip

HERE = Path(__file__).parent
REPO = HERE.parents[3]
PROVIDER_JS = HERE / "provider.mjs"
NODE_MODULE = REPO / ".node" / "node_modules" / "oidc-provider"
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
        stop_pid(read_pid(self.pid_file), timeout=timeout)
        self.pid_file.unlink(missing_ok=True)

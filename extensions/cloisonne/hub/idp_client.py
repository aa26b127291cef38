"""The hub's client registration at the embedded OpenID Connect provider: a file the provider
reads (``<state>/idp/clients.json``), written by the hub's configuration at start and by the
operator's tooling (``platform/idp`` runs the provider itself)."""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CLIENT_ID = "cloisonne-hub"


def write_json(path: Path, value: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(value, indent=1, sort_keys=True))
    os.chmod(tmp, 0o600)
    tmp.replace(path)


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

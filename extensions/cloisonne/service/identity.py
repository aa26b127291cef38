"""Who is calling: a workspace server (user + project), a user, or an admin (pure)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

SERVER_SCOPE = "access:servers!server="


@dataclass(frozen=True)
class Caller:
    user: str
    admin: bool
    project: str | None  # set only for a workspace server's own token
    spawn_id: str = ""  # the workspace's start, once proven (service.base.BaseHandler.prepare)


def presented_token(authorization: str) -> str:
    """The token of an ``Authorization: token …`` or ``Bearer …`` header ("" if none)."""
    scheme, _, token = authorization.strip().partition(" ")
    return token.strip() if scheme.lower() in ("token", "bearer") else ""


def caller_from_model(model: dict[str, Any]) -> Caller:
    """Derive the caller from the hub's model of a token.

    A workspace's $JUPYTERHUB_API_TOKEN carries ``access:servers!server=<user>/<server>`` for
    its own server only; the server name is the project id. A user's personal token carries
    ``!user=`` scopes instead, so it can never speak for a workspace.
    """
    name = model.get("name", "")
    servers = {
        scope[len(SERVER_SCOPE) :]
        for scope in model.get("scopes", [])
        if scope.startswith(SERVER_SCOPE)
    }
    project = None
    if model.get("kind") == "user" and len(servers) == 1:
        owner, _, server = next(iter(servers)).partition("/")
        if owner == name and server:
            project = server
    return Caller(user=name, admin=bool(model.get("admin")), project=project)

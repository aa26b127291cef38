"""Audit events the hub itself records: logins, workspace starts and stops, and changes to
users, groups and their properties made through the REST API or the admin panel.

The hub writes straight into the audit store (same database); a failure to record a login or a
spawn fails that login or spawn, so nothing happens unaudited.
"""

from __future__ import annotations

import json
import re
from typing import Any

from jupyterhub.log import log_request

from ..audit.store import AuditStore

# Mutating REST calls on users and groups (the admin panel uses the same API).
ADMIN_ROUTE = re.compile(r"^/hub/api/(?P<kind>users|groups)/(?P<name>[^/]+)(?P<rest>/.*)?$")
MUTATING = {"POST", "PUT", "PATCH", "DELETE"}


class HubAudit:
    """Hooks for JupyterHub config: post_auth_hook, pre_spawn_hook, post_stop_hook and a
    tornado log_function."""

    def __init__(self, db_url: str):
        self.db_url = db_url
        self._store: AuditStore | None = None

    @property
    def store(self) -> AuditStore:
        if self._store is None:
            self._store = AuditStore(self.db_url)
        return self._store

    def event(self, event_type: str, *, user: str = "", project: str = "", **fields: Any) -> None:
        """The authenticator's audit hook (membership added/removed, workspace stopped)."""
        self.store.append(f"hub.{event_type}", user=user, project=project, fields=fields)

    def login(self, authenticator: Any, handler: Any, authentication: dict) -> dict:
        remote = handler.request.remote_ip if handler is not None else ""
        self.store.append("hub.login", user=authentication["name"], fields={"remote_ip": remote})
        return authentication

    def spawn(self, spawner: Any) -> None:
        self.store.append(
            "hub.spawn", user=spawner.user.name, project=spawner.name,
            fields={"server": spawner.name},
        )  # fmt: skip

    def stop(self, spawner: Any) -> None:
        self.store.append(
            "hub.stop", user=spawner.user.name, project=spawner.name,
            fields={"server": spawner.name},
        )  # fmt: skip

    def log_request(self, handler: Any) -> None:
        """JupyterHub's request log, plus an audit event for each successful change to users,
        groups, memberships and group properties."""
        log_request(handler)
        request = handler.request
        if request.method not in MUTATING or handler.get_status() >= 400:
            return
        match = ADMIN_ROUTE.match(request.path)
        if not match or (match["kind"] == "users" and (match["rest"] or "").startswith(
            ("/server", "/activity", "/tokens")
        )):  # fmt: skip
            return  # spawns, activity and tokens are recorded elsewhere or are not changes
        actor = getattr(handler.current_user, "name", "") if handler.current_user else ""
        try:
            body = json.loads(request.body or b"{}")
        except (json.JSONDecodeError, UnicodeDecodeError):
            body = {}
        fields = {
            "method": request.method,
            "path": request.path,
            "target": match["name"],
            "users": body.get("users", []) if isinstance(body, dict) else [],
        }
        if match["kind"] == "groups" and (match["rest"] or "") == "/properties":
            fields["properties"] = body
        event = "hub.group_change" if match["kind"] == "groups" else "hub.user_change"
        self.store.append(event, user=actor, fields=fields)

"""What every Cloisonné hub is, whatever backend spawns its workspaces: one function.

Both ``hub/config.py`` (local) and ``hub/kube.py`` (Kubernetes) call ``configure_hub``: the
project gate, the hub's audit events, the OIDC authenticator with the groups-claim mapping,
the roles (``cloisonne-admin`` identical) and the cloisonne service come from here only.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ..backends.gate import named_server_gate
from ..core.projects import ProjectSpec
from .audit_events import HubAudit
from .groups_sync import sync_project_groups
from .site import Site

SERVICE = "cloisonne"
AUTHENTICATOR = "cloisonne.hub.oidc.CloisonneOIDCAuthenticator"
ADMIN_ROLE = "cloisonne-admin"
# JupyterHub's `admin_access = False` has done nothing since JupyterHub 2: its built-in admin
# role holds `access:servers` (enter any server), `tokens` (issue a token as any user) and
# `shares`, and it cannot be redefined. So the provider's admin group never gets JupyterHub's
# admin flag: it gets this role, which manages users, servers and project groups in the admin
# panel and the REST API, and cannot enter workspaces, read users' auth state (their IdP
# tokens) or servers' state.
ADMIN_SCOPES = [
    "admin-ui",
    "users",  # read, list, rename users and see activity
    "delete:users",
    "admin:groups",  # project membership and properties
    "servers",  # start and stop workspaces (not admin:servers: no server state)
    "read:roles",
    "list:services",
    "read:services",
    "read:hub",
    "read:metrics",
]
# The service (audit and airlock) reads who is in which project, who leads it, and each
# project's approvals_required.
# read:servers and admin:server_state: the service reads each running server's workspace
# proof from its state (cloisonne.core.workspace_proof) to tell workspace calls from others.
SERVICE_SCOPES = ["list:users", "read:users:name", "read:users:groups", "list:groups",
                  "read:groups", "read:servers", "admin:server_state"]  # fmt: skip
# What a workspace's own token may do: report activity, be entered, call the service (the
# guard appends its audit events there).
SERVER_TOKEN_SCOPES = ["users:activity!user", "access:servers!server",
                       f"access:services!service={SERVICE}"]  # fmt: skip


@dataclass(frozen=True)
class OIDCEndpoints:
    authorize_url: str
    token_url: str
    userdata_url: str
    logout_url: str = ""


@dataclass
class HubParts:
    """What the backend decides and the shared function needs."""

    callback_url: str
    endpoints: OIDCEndpoints
    service_url: str
    service: dict[str, Any] = field(default_factory=dict)  # extra keys of the service entry
    services: list[dict[str, Any]] = field(default_factory=list)  # the backend's own services
    roles: list[dict[str, Any]] = field(default_factory=list)  # and their roles


def admin_role(group: str) -> dict[str, Any]:
    return {
        "name": ADMIN_ROLE,
        "description": "Hub administrators: users, servers, project groups; no workspace access",
        "scopes": list(ADMIN_SCOPES),
        "groups": [group],
    }


def configure_hub(
    c: Any, site: Site, specs: Sequence[ProjectSpec], parts: HubParts, *, prepare_db: bool = True
) -> HubAudit:
    """Set everything both backends share on the JupyterHub config ``c``.

    Prepares the hub database: the project groups and their properties are written before
    JupyterHub opens it (with the provider managing membership JupyterHub refuses
    ``load_groups``)."""
    db_url = site.hub_db_url
    c.JupyterHub.db_url = db_url
    c.JupyterHub.allow_named_servers = True
    c.JupyterHub.named_server_limit_per_user = named_server_gate(0)
    c.JupyterHub.default_url = "/hub/home"
    # Workspaces outlive a hub restart; they are stopped explicitly.
    c.JupyterHub.cleanup_servers = False
    # Admins manage, never enter (see ADMIN_SCOPES).
    c.JupyterHub.admin_access = False
    c.Authenticator.admin_users = set()

    auth = c.CloisonneOIDCAuthenticator
    c.JupyterHub.authenticator_class = AUTHENTICATOR
    auth.client_id = site.oidc_client_id
    auth.client_secret = site.oidc_client_secret
    auth.oauth_callback_url = parts.callback_url
    auth.authorize_url = parts.endpoints.authorize_url
    auth.token_url = parts.endpoints.token_url
    auth.userdata_url = parts.endpoints.userdata_url
    if parts.endpoints.logout_url:
        auth.logout_redirect_url = f"{parts.endpoints.logout_url}?client_id={site.oidc_client_id}"
    auth.login_service = "Cloisonné sign-in"
    auth.username_claim = site.oidc_username_claim
    auth.auth_state_groups_key = f"oauth_user.{site.oidc_groups_claim}"
    auth.admin_group = site.oidc_admin_group
    auth.projects = [spec.project.id for spec in specs]
    auth.manage_groups = True
    auth.enable_pkce = True
    c.Authenticator.auto_login = True

    audit = HubAudit(db_url)
    c.Authenticator.post_auth_hook = audit.login
    c.Spawner.pre_spawn_hook = audit.spawn
    c.Spawner.post_stop_hook = audit.stop
    c.JupyterHub.tornado_settings = {"log_function": audit.log_request}
    if site.audit_hook:
        module, _, name = site.audit_hook.partition(":")
        auth.audit_hook = getattr(importlib.import_module(module), name)
    else:
        # membership changes seen at login, and workspaces stopped because of them
        auth.audit_hook = audit.event

    c.Spawner.server_token_scopes = list(SERVER_TOKEN_SCOPES)
    service = {
        "name": SERVICE,
        "url": parts.service_url,
        "oauth_no_confirm": True,
        "display": True,
        **parts.service,
    }
    c.JupyterHub.services = [service, *parts.services]
    c.JupyterHub.load_roles = [
        admin_role(site.oidc_admin_group),
        # Every user may call the service (it checks what each caller may do).
        {"name": "user", "scopes": ["self", f"access:services!service={SERVICE}"]},
        {
            "name": "cloisonne-service",
            "services": [SERVICE],
            "scopes": list(SERVICE_SCOPES),
            "description": "Project membership for the audit and airlock service",
        },  # fmt: skip
        *parts.roles,
    ]
    if prepare_db:
        sync_project_groups(db_url, specs, extra_groups=[site.oidc_admin_group])
    return audit

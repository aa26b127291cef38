"""Hub configuration for the Kubernetes distribution, from the chart's cloisonne.yaml.

The Helm chart renders its values into ``cloisonne.yaml`` (hub ConfigMap); the chart's
jupyterhub_config.py calls ``configure(c, path, os.environ)``. Keeping the logic here makes
it testable: the tests render the chart, feed the rendered file to ``configure`` and build
real pods from the result.

Admins: members of ``hub.admin_groups`` get a role with the admin panel's scopes (users,
groups, servers) and *without* ``access:servers`` or token scopes, so they can start and stop
workspaces but never enter one. JupyterHub's built-in ``admin`` flag (all scopes) is never
given, and ``admin_access`` is off.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote

import yaml

from ...core.projects import ProjectSpec, parse_projects

SPAWNER = "cloisonne.backends.kube.spawner.ProjectKubeSpawner"
WORKSPACE_PORT = 8888  # the port the chart's NetworkPolicies open to the proxy and hub
ADMIN_ROLE = "cloisonne-admin"
# The admin panel without entering workspaces: no access:servers, no tokens, no auth state.
ADMIN_SCOPES = [
    "admin-ui",
    "users",  # read, list, rename users and see activity
    "delete:users",
    "admin:groups",  # project membership and properties
    "servers",  # start and stop workspaces (not admin:servers: no server state)
    "read:roles:users",
    "list:services",
    "read:services",
]
# The cloisonne service needs to know who is in which project and who leads it.
SERVICE_SCOPES = ["list:users", "read:users", "list:groups", "read:groups", "read:users:name"]


def load_site(path: str | Path) -> dict[str, Any]:
    data = yaml.safe_load(Path(path).read_text())
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a mapping")
    return data


def site_projects(site: Mapping[str, Any], *, source: str = "cloisonne.yaml") -> list[ProjectSpec]:
    return parse_projects({"projects": site.get("projects") or []}, source=source)


def load_groups(specs: list[ProjectSpec], admin_groups: list[str]) -> dict[str, Any]:
    """JupyterHub groups: one per project (members, properties) and one for its leads."""
    groups: dict[str, Any] = {}
    for spec in specs:
        groups[spec.project.id] = {
            "users": list(spec.members),
            "properties": spec.project.to_properties(),
        }
        groups[spec.project.leads_group] = {"users": list(spec.leads), "properties": {}}
    for name in admin_groups:
        groups.setdefault(name, {"users": [], "properties": {}})
    return groups


def db_url(db: Mapping[str, Any], environ: Mapping[str, str]) -> str:
    if db.get("type", "sqlite") == "sqlite":
        return "sqlite:////srv/jupyterhub/jupyterhub.sqlite"
    pg = db["postgres"]
    password = quote(environ.get("HUB_DB_PASSWORD", ""), safe="")
    user = quote(pg["user"], safe="")
    where = f"{pg['host']}:{pg.get('port', 5432)}/{pg['database']}"
    return f"postgresql+psycopg://{user}:{password}@{where}"


def oidc_urls(oidc: Mapping[str, Any]) -> dict[str, str]:
    """Endpoints, defaulting to the Keycloak layout under the issuer when not given."""
    issuer = str(oidc.get("issuer") or "").rstrip("/")
    base = f"{issuer}/protocol/openid-connect"
    return {
        "authorize_url": oidc.get("authorizeUrl") or f"{base}/auth",
        "token_url": oidc.get("tokenUrl") or f"{base}/token",
        "userdata_url": oidc.get("userdataUrl") or f"{base}/userinfo",
    }


def configure(c: Any, path: str | Path, environ: Mapping[str, str]) -> list[ProjectSpec]:
    """Apply cloisonne.yaml to the JupyterHub config object ``c``; returns the projects."""
    site = load_site(path)
    specs = site_projects(site, source=str(path))
    hub = site.get("hub") or {}
    admin_groups = list(hub.get("admin_groups") or [])

    c.JupyterHub.spawner_class = SPAWNER
    c.JupyterHub.allow_named_servers = True
    c.JupyterHub.named_server_limit_per_user = max(1, len(specs))
    c.JupyterHub.default_server_name = ""
    c.JupyterHub.hub_bind_url = "http://:8081"
    c.JupyterHub.hub_connect_url = hub["connect_url"]
    c.JupyterHub.cleanup_servers = False  # a hub restart must not kill running workspaces
    c.JupyterHub.db_url = db_url(hub.get("db") or {}, environ)
    # Schema migrations only when the operator says so (after a backup; see the upgrade docs).
    c.JupyterHub.upgrade_db = bool((hub.get("db") or {}).get("upgrade", False))
    c.ConfigurableHTTPProxy.should_start = False
    c.ConfigurableHTTPProxy.api_url = "http://proxy-api:8001"

    # Admins manage, never enter (see module docstring).
    c.JupyterHub.admin_access = False
    c.Authenticator.admin_users = set()
    c.JupyterHub.load_groups = load_groups(specs, admin_groups)
    service = site.get("service") or {}
    roles = [
        {
            "name": "cloisonne-service",
            "description": "Project membership for the audit and airlock service",
            "scopes": SERVICE_SCOPES,
            "services": [service.get("name", "cloisonne")],
        }
    ]
    if admin_groups:
        roles.append(
            {
                "name": ADMIN_ROLE,
                "description": "Manage users, projects and servers; no access to workspaces",
                "scopes": ADMIN_SCOPES,
                "groups": admin_groups,
            }
        )
    c.JupyterHub.load_roles = roles
    c.JupyterHub.services = [
        {
            "name": service.get("name", "cloisonne"),
            "url": service["url"],
            "api_token": environ.get("CLOISONNE_SERVICE_TOKEN", ""),
            "oauth_no_confirm": True,
            "display": True,
        }
    ]

    oidc = site.get("oidc") or {}
    if oidc.get("clientId"):
        c.JupyterHub.authenticator_class = "generic-oauth"
        g = c.GenericOAuthenticator
        g.client_id = oidc["clientId"]
        g.client_secret = environ.get("OIDC_CLIENT_SECRET", "")
        g.oauth_callback_url = oidc.get("callbackUrl", "")
        for key, value in oidc_urls(oidc).items():
            setattr(g, key, value)
        g.scope = list(oidc.get("scope") or ["openid"])
        g.username_claim = oidc.get("usernameClaim", "preferred_username")
        g.manage_groups = True
        g.auth_state_groups_key = oidc.get("groupsKey", "oauth_user.groups")
        # Only people in a project (or its leads, or admins) may log in at all.
        g.allowed_groups = set(c.JupyterHub.load_groups)

    for key, value in (site.get("spawner") or {}).items():
        setattr(c.ProjectKubeSpawner, key, value)
    c.ProjectKubeSpawner.port = WORKSPACE_PORT
    c.ProjectKubeSpawner.cmd = ["jupyterhub-singleuser"]
    c.ProjectKubeSpawner.storage_pvc_ensure = False  # the chart creates the project PVCs
    c.ProjectKubeSpawner.start_timeout = 600  # first pulls of the images take minutes
    return specs

"""Hub configuration for the Kubernetes distribution: the chart's cloisonne.yaml as a ``Site``.

The Helm chart renders its values into ``cloisonne.yaml`` (hub ConfigMap); the chart's
jupyterhub_config.py calls ``configure(c, path, os.environ)``. This module is only the adapter
from that file (and the Secret's environment variables) onto ``Site``; the hub itself is built
by ``hub.common.configure_hub``, the same function as the local one. What is Kubernetes' own
here: the spawner (KubeSpawner's settings), the proxy in its own pod, the database URL.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote

import yaml

from ..core.projects import ProjectSpec, parse_projects
from .common import ADMIN_ROLE, HubParts, OIDCEndpoints, configure_hub
from .site import Site, SiteError, sqlite_url

__all__ = ["ADMIN_ROLE", "configure", "load_site", "site_from_yaml", "site_projects"]

SPAWNER = "cloisonne.backends.kube.spawner.ProjectKubeSpawner"
WORKSPACE_PORT = 8888  # the port the chart's NetworkPolicies open to the proxy and hub
GROUPS_KEY_PREFIX = "oauth_user."
# Chart values that fill a Site setting (tests/backends/kube/test_site_schema.py checks them
# against values.schema.json and the traits, so the two cannot drift).
CHART_SETTINGS = {
    "hub.db": "db_url",
    "hub.adminGroups": "oidc_admin_group",
    "auth.oidc.issuer": "oidc_issuer",
    "auth.oidc.clientId": "oidc_client_id",
    "auth.oidc.clientSecretRef": "oidc_client_secret",
    "auth.oidc.usernameClaim": "oidc_username_claim",
    "auth.oidc.groupsKey": "oidc_groups_claim",
}
# Chart values of the Kubernetes side only: where the provider's endpoints and the callback are
# (the local platform discovers them), and the scopes asked for.
CHART_ONLY = ("auth.oidc.authorizeUrl", "auth.oidc.tokenUrl", "auth.oidc.userdataUrl",
              "auth.oidc.callbackUrl", "auth.oidc.scope")  # fmt: skip


def load_site(path: str | Path) -> dict[str, Any]:
    data = yaml.safe_load(Path(path).read_text())
    if not isinstance(data, dict):
        raise SiteError(f"{path}: expected a mapping")
    return data


def site_projects(site: Mapping[str, Any], *, source: str = "cloisonne.yaml") -> list[ProjectSpec]:
    return parse_projects({"projects": site.get("projects") or []}, source=source)


def db_url(db: Mapping[str, Any], environ: Mapping[str, str]) -> str:
    if db.get("type", "sqlite") == "sqlite":
        # relative to the hub's working directory: its volume (deployment.yaml's workingDir)
        return sqlite_url(Path())
    pg = db["postgres"]
    password = quote(environ.get("HUB_DB_PASSWORD", ""), safe="")
    user = quote(pg["user"], safe="")
    where = f"{pg['host']}:{pg.get('port', 5432)}/{pg['database']}"
    return f"postgresql+psycopg://{user}:{password}@{where}"


def oidc_endpoints(oidc: Mapping[str, Any]) -> OIDCEndpoints:
    """Endpoints, defaulting to the Keycloak layout under the issuer when not given."""
    issuer = str(oidc.get("issuer") or "").rstrip("/")
    base = f"{issuer}/protocol/openid-connect"
    return OIDCEndpoints(
        authorize_url=oidc.get("authorizeUrl") or f"{base}/auth",
        token_url=oidc.get("tokenUrl") or f"{base}/token",
        userdata_url=oidc.get("userdataUrl") or f"{base}/userinfo",
        logout_url=f"{base}/logout" if issuer else "",
    )


def site_from_yaml(data: Mapping[str, Any], environ: Mapping[str, str]) -> Site:
    """The adapter: cloisonne.yaml's hub and oidc sections (and the Secret's variables)."""
    hub = data.get("hub") or {}
    oidc = data.get("oidc") or {}
    if not oidc.get("clientId"):
        raise SiteError("auth.oidc.clientId is empty: the hub signs users in through OIDC only")
    if not (oidc.get("issuer") or oidc.get("authorizeUrl")):
        raise SiteError("auth.oidc: set issuer (or authorizeUrl, tokenUrl and userdataUrl)")
    admin_groups = list(hub.get("admin_groups") or [])
    if len(admin_groups) > 1:
        raise SiteError(f"hub.adminGroups {admin_groups}: one admin group is supported")
    groups_key = str(oidc.get("groupsKey") or "oauth_user.groups")
    if not groups_key.startswith(GROUPS_KEY_PREFIX):
        raise SiteError(f"auth.oidc.groupsKey {groups_key!r} must start with 'oauth_user.'")
    values: dict[str, Any] = {
        "db_url": db_url(hub.get("db") or {}, environ),
        "oidc_issuer": str(oidc.get("issuer") or ""),
        "oidc_client_id": oidc["clientId"],
        "oidc_client_secret": environ.get("OIDC_CLIENT_SECRET", ""),
        "oidc_username_claim": oidc.get("usernameClaim") or "preferred_username",
        "oidc_groups_claim": groups_key.removeprefix(GROUPS_KEY_PREFIX),
    }
    if admin_groups:
        values["oidc_admin_group"] = admin_groups[0]
    try:
        return Site(**values)
    except Exception as exc:  # traitlets' TraitError names the setting
        raise SiteError(str(exc)) from None


def configure(
    c: Any, path: str | Path, environ: Mapping[str, str], *, prepare_db: bool = True
) -> list[ProjectSpec]:
    """Apply cloisonne.yaml to the JupyterHub config object ``c``; returns the projects.

    ``prepare_db=False`` leaves the hub database alone (tests that only read the result)."""
    data = load_site(path)
    specs = site_projects(data, source=str(path))
    site = site_from_yaml(data, environ)
    hub = data.get("hub") or {}
    oidc = data.get("oidc") or {}
    service = data.get("service") or {}

    c.JupyterHub.spawner_class = SPAWNER
    c.JupyterHub.default_server_name = ""
    c.JupyterHub.hub_bind_url = "http://:8081"
    c.JupyterHub.hub_connect_url = hub["connect_url"]
    # Schema migrations only when the operator says so (after a backup; see the upgrade docs).
    c.JupyterHub.upgrade_db = bool((hub.get("db") or {}).get("upgrade", False))
    c.ConfigurableHTTPProxy.should_start = False
    c.ConfigurableHTTPProxy.api_url = "http://proxy-api:8001"
    parts = HubParts(
        callback_url=oidc.get("callbackUrl", ""),
        endpoints=oidc_endpoints(oidc),
        service_url=service["url"],
        service={"api_token": environ.get("CLOISONNE_SERVICE_TOKEN", "")},
    )
    configure_hub(c, site, specs, parts, prepare_db=prepare_db)
    scope = oidc.get("scope")
    if scope:
        c.CloisonneOIDCAuthenticator.scope = list(scope)

    for key, value in (data.get("spawner") or {}).items():
        setattr(c.ProjectKubeSpawner, key, value)
    c.ProjectKubeSpawner.port = WORKSPACE_PORT
    c.ProjectKubeSpawner.cmd = ["jupyterhub-singleuser"]
    c.ProjectKubeSpawner.storage_pvc_ensure = False  # the chart creates the project PVCs
    c.ProjectKubeSpawner.start_timeout = 600  # first pulls of the images take minutes
    return specs

"""The local platform's hub: hub_config/jupyterhub_config.py calls ``configure(c)``.

The settings are a ``Site`` read from environment variables (``Site.from_env``; listed by
`cloisonne settings`), so that `make up`, the tests and the benchmarks can run several hubs on
one machine without editing files. What every hub has (gate, audit, OIDC, roles, service) is
``hub.common.configure_hub``; this module adds the sandbox spawner, the proxy, the culler.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..backends.sandbox import host
from ..core.projects import load_projects
from ..packages.settings import DEMO_ALLOW, ProxySettings
from .common import SERVICE, HubParts, OIDCEndpoints, admin_role, configure_hub
from .idp_client import ensure_client
from .lifecycle import SETTINGS as LIFECYCLE_SETTINGS
from .lifecycle import configure_lifecycle
from .site import REPO, SETTINGS, Site, SiteError

SETTINGS.update(LIFECYCLE_SETTINGS)  # the lifecycle's settings (ProjectRules) by variable name

__all__ = ["PACKAGE_SETTINGS", "REPO", "SETTINGS", "admin_role", "configure", "setting"]

# the package proxy's settings (cloisonne.packages.settings.from_env reads the same variables)
PACKAGE_SETTINGS = {
    "CLOISONNE_PACKAGES": (
        "off",
        "package proxy: auto (connected if the upstream answers, else air-gapped; `cloisonne "
        "up` uses auto when unset) | connected | air-gapped | off",
    ),
    "CLOISONNE_PACKAGES_PORT": (str(ProxySettings.port.default_value), ProxySettings.port.help),
    "CLOISONNE_PACKAGES_UPSTREAM": (
        ProxySettings.upstream.default_value,
        ProxySettings.upstream.help,
    ),  # fmt: skip
    "CLOISONNE_PACKAGES_ALLOW": (
        " ".join(DEMO_ALLOW),
        "site package allow-list, entries separated by spaces ('numpy>=2 pandas>=2.2,<3')",
    ),
    "CLOISONNE_PACKAGES_SDISTS": ("off", ProxySettings.allow_sdists.help),
}
SETTINGS.update(PACKAGE_SETTINGS)


def managed_service(module: str, *args: str) -> list[str]:
    """The command of a hub-managed Python service, wrapped so that it dies with the hub
    (a crashed hub must not leave a culler or service behind for its successor)."""
    return [sys.executable, "-m", "cloisonne.platform.with_hub",
            sys.executable, "-m", module, *args]  # fmt: skip


def setting(env: Mapping[str, str], name: str) -> str:
    """A setting's text by variable name (for callers not yet holding a Site)."""
    return env.get(name) or SETTINGS[name][0]


def configure(c: Any, env: Mapping[str, str] = os.environ) -> None:
    """Raises SiteError (or ProjectError) naming what is wrong; hub_config/jupyterhub_config.py
    turns it into a one-line refusal."""
    site = Site.from_env(env)
    specs = load_projects(site.projects, datasets_root=site.datasets_path)
    state = site.state_path
    state.mkdir(parents=True, exist_ok=True)
    os.chmod(state, 0o711)
    network = site.network

    c.JupyterHub.bind_url = site.bind_url
    # The hub API listens on the host-only veth address: the only host address a sandbox's
    # nft table lets it reach.
    c.JupyterHub.hub_bind_url = f"http://{network.hub_ip}:{site.hub_port}"
    c.JupyterHub.cookie_secret_file = str(state / "jupyterhub_cookie_secret")
    c.JupyterHub.pid_file = str(state / "jupyterhub.pid")
    c.ConfigurableHTTPProxy.pid_file = str(state / "proxy.pid")
    c.ConfigurableHTTPProxy.api_url = f"http://127.0.0.1:{site.proxy_api_port}"
    c.ConfigurableHTTPProxy.command = [site.chp]
    c.ConfigurableHTTPProxy.debug = False

    if not site.sandboxed:
        c.JupyterHub.spawner_class = "jupyterhub.spawner.SimpleLocalProcessSpawner"
        c.JupyterHub.hub_bind_url = f"http://127.0.0.1:{site.hub_port}"
        c.Spawner.cmd = [str(Path(sys.prefix, "bin", "jupyterhub-singleuser"))]
        if os.geteuid() == 0:
            c.Spawner.args = ["--allow-root"]
        c.SimpleLocalProcessSpawner.home_dir_template = str(state / "simple-homes" / "{username}")
    else:
        if os.geteuid() != 0:
            raise SiteError(
                "the sandbox backend must run as root: it creates network namespaces, "
                "nftables rules and cgroups, and switches to each user's uid."
            )
        host.ensure_hub_link(network)  # the hub binds its API address on it, so it comes first
        c.JupyterHub.spawner_class = "cloisonne.backends.sandbox.spawner.SandboxSpawner"
        c.SandboxSpawner.state_root = str(state)
        c.SandboxSpawner.datasets_root = str(site.datasets_path)
        c.SandboxSpawner.subnet = network.subnet
        c.SandboxSpawner.name_prefix = network.prefix
        c.SandboxSpawner.guard = site.guard
        configure_data(c, site)
        if setting(env, "CLOISONNE_PACKAGES") != "off":
            # the package proxy LocalHub runs on the hub's address (cloisonne.packages)
            port = setting(env, "CLOISONNE_PACKAGES_PORT")
            c.SandboxSpawner.package_index = f"{network.hub_ip}:{port}"
            c.SandboxSpawner.package_key_file = str(state / "packages" / "workspace.key")
    c.Spawner.default_url = "/lab"
    c.Spawner.start_timeout = 60
    c.Spawner.http_timeout = 30

    roles: list[dict[str, Any]] = []
    services: list[dict[str, Any]] = []
    cull_timeout = site.cull_timeout
    cull_every = site.cull_every or max(cull_timeout // 2, 1)
    activity_every = max(1, min(300, cull_timeout // 4))
    c.JupyterHub.last_activity_interval = activity_every  # the proxy's view of activity, too
    services.append(
        {
            "name": "idle-culler",
            "command": managed_service(
                "jupyterhub_idle_culler", f"--timeout={cull_timeout}", f"--cull-every={cull_every}"
            ),
        }
    )
    roles.append(
        {
            "name": "idle-culler",
            "scopes": ["list:users", "read:users:activity", "read:servers", "delete:servers"],
            "services": ["idle-culler"],
        }
    )
    if site.admin_token:
        # Operations account used by `cloisonne down`, the tests and the benchmarks. It can
        # manage users and servers but, like admins, cannot enter workspaces.
        services.append({"name": "cloisonne-ops", "api_token": site.admin_token})
        roles.append(
            {
                "name": "cloisonne-ops",
                "scopes": [
                    "admin:users",
                    "admin:servers",
                    "admin:groups",
                    "tokens",
                    "list:users",
                    "read:users",
                    "read:groups",
                    "list:groups",  # `cloisonne projects register`
                    "read:hub",
                    "list:services",
                ],  # fmt: skip
                "services": ["cloisonne-ops"],
            }
        )
    service_host = network.hub_ip if site.sandboxed else "127.0.0.1"
    service_url = f"http://{service_host}:{site.service_port}"
    # the guards' audit journals (cloisonne.audit.journal): root-only, forwarded by the service
    journal_dir = str(state / "audit-journal") if site.audit_journal else ""
    c.SandboxSpawner.audit_journal_dir = journal_dir
    c.SandboxSpawner.service_endpoints = [f"{service_host}:{site.service_port}"]
    endpoints = oidc_endpoints(site)
    configure_lifecycle(
        c, {k: setting(env, k) for k in LIFECYCLE_SETTINGS}, services, roles,
        command=managed_service("cloisonne.service.lifecycle_watch"),
        admin_group=site.oidc_admin_group, db_url=site.hub_db_url, state=state,
        userinfo_url=endpoints.userdata_url, groups_claim=site.oidc_groups_claim,
    )  # fmt: skip
    parts = HubParts(
        callback_url=f"{site.bind_url.rstrip('/')}/hub/oauth_callback",
        endpoints=endpoints,
        service_url=service_url,
        service={
            "command": managed_service("cloisonne.service"),
            "environment": {
                "CLOISONNE_AUDIT_DB": site.hub_db_url,  # the audit log is in the hub's database
                "CLOISONNE_OUTFLOW_BUDGET": site.outflow_budget,
                # submitted files: a folder of the service's own, never mounted in a workspace
                "CLOISONNE_AIRLOCK_STORE": str(state / "airlock"),
                "CLOISONNE_AUDIT_JOURNAL_DIR": journal_dir,
                **{k: v for k, v in env.items() if k.startswith("CLOISONNE_AIRLOCK_")},
            },
        },
        services=services,
        roles=roles,
    )
    configure_hub(c, site, specs, parts)
    c.Spawner.environment = {
        "CLOISONNE_SERVICE_URL": f"{service_url}/services/{SERVICE}/",
        # A workspace reports its activity (kernels, terminals, requests) to the hub well
        # within the cull timeout: with JupyterHub's default of 300 s a workspace busy under a
        # shorter timeout looked idle, and the culler stopped it.
        "JUPYTERHUB_ACTIVITY_INTERVAL": str(activity_every),
    }
    if site.egress_probes:
        c.Spawner.environment["CLOISONNE_EGRESS_PROBES"] = site.egress_probes
    # the guard's caps on what enters the workspace (see cloisonne.workspace.guard)
    c.Spawner.environment["CLOISONNE_UPLOAD_MAX"] = site.upload_max
    c.Spawner.environment["CLOISONNE_UPLOAD_ABANDON_SECONDS"] = str(site.upload_abandon_seconds)
    if env.get("CLOISONNE_AIRLOCK_MAX_FILE"):
        # the export client refuses files above the service's cap before sending them
        c.Spawner.environment["CLOISONNE_AIRLOCK_MAX_FILE"] = env["CLOISONNE_AIRLOCK_MAX_FILE"]


def configure_data(c: Any, site: Site) -> None:
    """Each workspace's extract (/data) and S3 bucket; LocalHub runs the store itself."""
    c.WorkspaceData.project_data_root = str(site.project_data_path)
    store = site.s3_store()
    if store is not None:
        c.WorkspaceData.s3_root = str(store.root)
        c.WorkspaceData.s3_host = store.host
        c.WorkspaceData.s3_port = store.ports.base


def oidc_endpoints(site: Site) -> OIDCEndpoints:
    """The provider's endpoints: from its discovery document, or the embedded provider's."""
    if site.oidc_issuer:
        found = _discover(site.oidc_issuer.rstrip("/"))
        return OIDCEndpoints(
            found["authorization_endpoint"], found["token_endpoint"],
            found["userinfo_endpoint"], found.get("end_session_endpoint", ""),
        )  # fmt: skip
    # The embedded provider (cloisonne.platform.idp): its endpoints are fixed, its client file
    # holds the secret LocalHub made for the hub.
    issuer = f"http://127.0.0.1:{site.oidc_port}"
    client = ensure_client(
        site.state_path / "idp", f"{site.bind_url.rstrip('/')}/hub/oauth_callback"
    )
    site.oidc_client_id = client.client_id
    site.oidc_client_secret = site.oidc_client_secret or client.client_secret
    return OIDCEndpoints(f"{issuer}/auth", f"{issuer}/token", f"{issuer}/me",
                         f"{issuer}/session/end")  # fmt: skip


def _discover(issuer: str) -> dict[str, str]:
    import requests

    url = f"{issuer}/.well-known/openid-configuration"
    try:
        r = requests.get(url, timeout=10)
        r.raise_for_status()
        return r.json()
    except (requests.RequestException, ValueError) as exc:
        raise SiteError(f"cannot read the OIDC discovery document {url}: {exc}") from None

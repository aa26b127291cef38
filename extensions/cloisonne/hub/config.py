"""Everything hub_config/jupyterhub_config.py sets, as one testable function.

Site settings come from environment variables (documented in SETTINGS) so that `make up`,
the tests and the benchmarks can run several hubs on one machine without editing files.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..backends.gate import named_server_gate
from ..backends.sandbox import host
from ..backends.sandbox.network import SiteNetwork
from ..core.projects import ProjectError, load_projects
from .audit_events import HubAudit
from .lifecycle import SETTINGS as LIFECYCLE_SETTINGS
from .lifecycle import configure_lifecycle

REPO = Path(__file__).resolve().parents[3]

SETTINGS = {
    "CLOISONNE_STATE": ("/var/lib/cloisonne", "state folder: hub database, homes, logs"),
    "CLOISONNE_PROJECTS": (str(REPO / "hub_config" / "projects.yaml"), "projects file"),
    "CLOISONNE_DATASETS": ("", "datasets folder (default: <state>/datasets)"),
    "CLOISONNE_DB": ("sqlite", "local platform's database: sqlite | postgres (private cluster)"),
    "CLOISONNE_DB_URL": ("", "hub database URL (default: SQLite in the state folder)"),
    "CLOISONNE_OIDC_ISSUER": ("", "OIDC issuer URL (empty: the embedded provider)"),
    "CLOISONNE_OIDC_PORT": ("8090", "port of the embedded OIDC provider on 127.0.0.1"),
    "CLOISONNE_OIDC_CLIENT_ID": ("cloisonne-hub", "the hub's client id at the provider"),
    "CLOISONNE_OIDC_CLIENT_SECRET": ("", "client secret (embedded provider: from its files)"),
    "CLOISONNE_OIDC_USERNAME_CLAIM": ("preferred_username", "claim that gives the user name"),
    "CLOISONNE_OIDC_GROUPS_CLAIM": ("groups", "claim that lists the user's groups"),
    "CLOISONNE_OIDC_ADMIN_GROUP": ("cloisonne-admins", "claim group whose members are admins"),
    "CLOISONNE_AUDIT_HOOK": ("", "module:callable receiving audit events (default: hub log)"),
    "CLOISONNE_BIND_URL": ("http://127.0.0.1:8000", "public URL of the proxy"),
    "CLOISONNE_HUB_PORT": ("8081", "hub API port (on the hub's host-only address)"),
    "CLOISONNE_PROXY_API_PORT": ("8001", "configurable-http-proxy API port on 127.0.0.1"),
    "CLOISONNE_SUBNET": ("10.243.0.0/16", "sandbox address range"),
    "CLOISONNE_PREFIX": ("cln", "prefix of namespaces, interfaces, nft tables, cgroups"),
    "CLOISONNE_CULL_TIMEOUT": ("3600", "seconds of inactivity before a workspace is stopped"),
    "CLOISONNE_CULL_EVERY": ("0", "seconds between culler checks (0: timeout / 2)"),
    "CLOISONNE_SPAWNER": ("sandbox", "sandbox | simple (no isolation; benchmark baseline only)"),
    "CLOISONNE_SERVICE_PORT": (
        "8082",
        "cloisonne service port (audit, airlock) on the hub address",
    ),
    "CLOISONNE_OUTFLOW_BUDGET": (
        "50M",
        "bytes a project may send to browsers per day before an alert",
    ),
    "CLOISONNE_EGRESS_PROBES": (
        "",
        "addresses workspaces must not reach, probed at start (default: public + metadata)",
    ),
    "CLOISONNE_PROJECT_DATA": (
        "",
        "projects' provisioned extracts, <dir>/<project> read-only at /data "
        "(default: <state>/project-data)",
    ),
    "CLOISONNE_S3": (
        "on",
        "on | off: run the per-project S3 store (SeaweedFS) on the hub address; each "
        "workspace gets its project's bucket and credential",
    ),
    "CLOISONNE_S3_PORT": (
        "18330",
        "S3 port of the store; master, volume, filer, admin use the next four (never "
        "reachable from workspaces), each gRPC port is its HTTP port + 10000",
    ),
    "CLOISONNE_GUARD": ("on", "off only for the benchmark that measures the guard's cost"),
    "CLOISONNE_AUDIT_JOURNAL": (
        "on",
        "on: guards append to a journal the service forwards; off: HTTP append per read",
    ),
    "CLOISONNE_ADMIN_TOKEN": ("", "if set, an API token for the 'cloisonne-ops' service"),
    "CLOISONNE_CHP": (
        str(REPO / ".node" / "node_modules" / ".bin" / "configurable-http-proxy"),
        "configurable-http-proxy command",
    ),  # fmt: skip
}
SETTINGS.update(LIFECYCLE_SETTINGS)


# JupyterHub's `admin_access = False` has done nothing since JupyterHub 2: its built-in admin
# role holds `access:servers` (enter any server), `tokens` (issue a token as any user) and
# `shares` (share any server with oneself), and it cannot be redefined. So the provider's admin
# group never gets JupyterHub's admin flag: it gets this role, which manages users, servers and
# project groups in the admin panel and the REST API, and cannot enter workspaces.
def admin_role(group: str) -> dict[str, Any]:
    return {
        "name": "cloisonne-admin",
        "description": "Hub administrators: users, servers, project groups; no workspace access",
        "scopes": [
            "admin-ui",
            "admin:users",
            "admin:servers",
            "admin:groups",
            "list:services",
            "read:services",
            "read:hub",
            "read:roles",
            "read:metrics",
        ],
        "groups": [group],
    }


def managed_service(module: str, *args: str) -> list[str]:
    """The command of a hub-managed Python service, wrapped so that it dies with the hub
    (a crashed hub must not leave a culler or service behind for its successor)."""
    return [sys.executable, "-m", "cloisonne.platform.with_hub",
            sys.executable, "-m", module, *args]  # fmt: skip


def setting(env: Mapping[str, str], name: str) -> str:
    return env.get(name) or SETTINGS[name][0]


def configure(c: Any, env: Mapping[str, str] = os.environ) -> None:
    state = Path(setting(env, "CLOISONNE_STATE"))
    datasets = setting(env, "CLOISONNE_DATASETS") or str(state / "datasets")
    projects_file = setting(env, "CLOISONNE_PROJECTS")
    try:
        specs = load_projects(projects_file, datasets_root=datasets)
    except ProjectError as exc:
        # A clean one-line refusal rather than a traceback from inside traitlets.
        raise SystemExit(f"Cloisonné: refusing to start: {exc}") from None

    state.mkdir(parents=True, exist_ok=True)
    os.chmod(state, 0o711)
    site = SiteNetwork(setting(env, "CLOISONNE_SUBNET"), setting(env, "CLOISONNE_PREFIX"))
    hub_port = int(setting(env, "CLOISONNE_HUB_PORT"))

    c.JupyterHub.bind_url = setting(env, "CLOISONNE_BIND_URL")
    # The hub API listens on the host-only veth address: the only host address a sandbox's
    # nft table lets it reach.
    c.JupyterHub.hub_bind_url = f"http://{site.hub_ip}:{hub_port}"
    c.JupyterHub.db_url = (
        setting(env, "CLOISONNE_DB_URL") or f"sqlite:///{state / 'jupyterhub.sqlite'}"
    )
    c.JupyterHub.cookie_secret_file = str(state / "jupyterhub_cookie_secret")
    c.JupyterHub.pid_file = str(state / "jupyterhub.pid")
    c.ConfigurableHTTPProxy.pid_file = str(state / "proxy.pid")
    c.ConfigurableHTTPProxy.api_url = f"http://127.0.0.1:{setting(env, 'CLOISONNE_PROXY_API_PORT')}"
    c.ConfigurableHTTPProxy.command = [setting(env, "CLOISONNE_CHP")]
    c.ConfigurableHTTPProxy.debug = False
    # Workspaces outlive a hub restart; `cloisonne down` stops them explicitly.
    c.JupyterHub.cleanup_servers = False
    c.JupyterHub.allow_named_servers = True
    c.JupyterHub.named_server_limit_per_user = named_server_gate(0)
    c.JupyterHub.default_url = "/hub/home"
    c.JupyterHub.admin_access = False

    configure_oidc(c, env, specs, state)

    if setting(env, "CLOISONNE_SPAWNER") == "simple":
        c.JupyterHub.spawner_class = "jupyterhub.spawner.SimpleLocalProcessSpawner"
        c.JupyterHub.hub_bind_url = f"http://127.0.0.1:{hub_port}"
        c.Spawner.cmd = [str(Path(sys.prefix, "bin", "jupyterhub-singleuser"))]
        if os.geteuid() == 0:
            c.Spawner.args = ["--allow-root"]
        c.SimpleLocalProcessSpawner.home_dir_template = str(state / "simple-homes" / "{username}")
    else:
        if os.geteuid() != 0:
            raise SystemExit(
                "Cloisonné: the sandbox backend must run as root: it creates network "
                "namespaces, nftables rules and cgroups, and switches to each user's uid."
            )
        host.ensure_hub_link(site)  # the hub binds its API address on it, so it comes first
        c.JupyterHub.spawner_class = "cloisonne.backends.sandbox.spawner.SandboxSpawner"
        c.SandboxSpawner.state_root = str(state)
        c.SandboxSpawner.datasets_root = datasets
        c.SandboxSpawner.subnet = site.subnet
        c.SandboxSpawner.name_prefix = site.prefix
        c.SandboxSpawner.guard = setting(env, "CLOISONNE_GUARD") != "off"
        configure_data(c, env, state, site)
    c.Spawner.default_url = "/lab"
    c.Spawner.start_timeout = 60
    c.Spawner.http_timeout = 30

    roles: list[dict[str, Any]] = [admin_role(setting(env, "CLOISONNE_OIDC_ADMIN_GROUP"))]
    services: list[dict[str, Any]] = []
    cull_timeout = int(setting(env, "CLOISONNE_CULL_TIMEOUT"))
    cull_every = int(setting(env, "CLOISONNE_CULL_EVERY")) or max(cull_timeout // 2, 1)
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
    admin_token = setting(env, "CLOISONNE_ADMIN_TOKEN")
    if admin_token:
        # Operations account used by `cloisonne down`, the tests and the benchmarks. It can
        # manage users and servers but, like admins, cannot enter workspaces.
        services.append({"name": "cloisonne-ops", "api_token": admin_token})
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
    configure_service(c, env, state, site, services, roles)
    configure_lifecycle(
        c, {k: setting(env, k) for k in LIFECYCLE_SETTINGS}, services, roles,
        command=managed_service("cloisonne.service.lifecycle_watch"),
        admin_group=setting(env, "CLOISONNE_OIDC_ADMIN_GROUP"), db_url=c.JupyterHub.db_url,
        state=state,
    )  # fmt: skip
    # A workspace reports its activity (kernels, terminals, requests) to the hub well within
    # the cull timeout: with JupyterHub's default of 300 s a workspace busy under a shorter
    # timeout looked idle, and the culler stopped it.
    c.Spawner.environment["JUPYTERHUB_ACTIVITY_INTERVAL"] = str(activity_every)
    c.JupyterHub.services = services
    c.JupyterHub.load_roles = roles


SERVICE = "cloisonne"


def configure_data(c: Any, env: Mapping[str, str], state: Path, site: SiteNetwork) -> None:
    """Each workspace's extract (/data) and S3 bucket; LocalHub runs the store itself."""
    from ..platform import data_platform as platform

    c.WorkspaceData.project_data_root = str(platform.project_data_root(env, state))
    store = platform.s3_store(env, state, site)
    if store is not None:
        c.WorkspaceData.s3_root = str(store.root)
        c.WorkspaceData.s3_host = store.host
        c.WorkspaceData.s3_port = store.ports.base


def configure_service(
    c: Any, env: Mapping[str, str], state: Path, site: SiteNetwork, services: list, roles: list
) -> None:
    """The cloisonne service (audit log API) and the hub's own audit hooks."""
    db_url = c.JupyterHub.db_url  # the audit log lives in the hub's database
    port = int(setting(env, "CLOISONNE_SERVICE_PORT"))
    service_host = site.hub_ip if setting(env, "CLOISONNE_SPAWNER") != "simple" else "127.0.0.1"
    url = f"http://{service_host}:{port}"
    # the guards' audit journals (cloisonne.audit.journal): root-only, forwarded by the service
    journal_on = setting(env, "CLOISONNE_AUDIT_JOURNAL") != "off"
    journal_dir = str(state / "audit-journal") if journal_on else ""
    c.SandboxSpawner.audit_journal_dir = journal_dir
    services.append(
        {
            "name": SERVICE,
            "url": url,
            "command": managed_service("cloisonne.service"),
            "environment": {
                "CLOISONNE_AUDIT_DB": db_url,
                "CLOISONNE_OUTFLOW_BUDGET": setting(env, "CLOISONNE_OUTFLOW_BUDGET"),
                # submitted files: a folder of the service's own, never mounted in a workspace
                "CLOISONNE_AIRLOCK_STORE": str(state / "airlock"),
                "CLOISONNE_AUDIT_JOURNAL_DIR": journal_dir,
                **{k: v for k, v in env.items() if k.startswith("CLOISONNE_AIRLOCK_")},
            },
            "oauth_no_confirm": True,
        }
    )
    # Every user may call the service (it checks what each caller may do); a workspace's token
    # may too, which is how the guard appends its audit events.
    roles.append({"name": "user", "scopes": ["self", f"access:services!service={SERVICE}"]})
    # The airlock reads who leads which project and each project's approvals_required.
    roles.append({"name": "cloisonne-service", "services": [SERVICE],
                  "scopes": ["read:groups", "read:users:groups"]})  # fmt: skip
    c.Spawner.server_token_scopes = [
        "users:activity!user", "access:servers!server", f"access:services!service={SERVICE}",
    ]  # fmt: skip
    c.Spawner.environment = {
        "CLOISONNE_SERVICE_URL": f"{url}/services/{SERVICE}/",
    }
    if env.get("CLOISONNE_EGRESS_PROBES"):
        c.Spawner.environment["CLOISONNE_EGRESS_PROBES"] = env["CLOISONNE_EGRESS_PROBES"]
    c.SandboxSpawner.service_endpoints = [f"{service_host}:{port}"]

    audit = HubAudit(db_url)
    c.Authenticator.post_auth_hook = audit.login
    c.Spawner.pre_spawn_hook = audit.spawn
    c.Spawner.post_stop_hook = audit.stop
    c.JupyterHub.tornado_settings = {"log_function": audit.log_request}
    if not setting(env, "CLOISONNE_AUDIT_HOOK"):
        # membership changes seen at login, and workspaces stopped because of them
        c.CloisonneOIDCAuthenticator.audit_hook = audit.event


def configure_oidc(c: Any, env: Mapping[str, str], specs: list[Any], state: Path) -> None:
    """Login through an OpenID Connect provider; its groups claim gives projects, leads, admins.

    Projects are JupyterHub groups: ``<id>`` (members, with the project's settings as group
    properties) and ``<id>-leads``. Membership comes from the provider at each login
    (``manage_groups``); the properties come from projects.yaml, written at start.
    """
    from .groups_sync import sync_project_groups

    bind_url = setting(env, "CLOISONNE_BIND_URL").rstrip("/")
    issuer = setting(env, "CLOISONNE_OIDC_ISSUER").rstrip("/")
    client_id = setting(env, "CLOISONNE_OIDC_CLIENT_ID")
    secret = setting(env, "CLOISONNE_OIDC_CLIENT_SECRET")
    if issuer:
        endpoints = _discover(issuer)
    else:
        # The embedded provider (cloisonne.platform.idp): its endpoints are fixed, its client file
        # holds the secret LocalHub made for the hub.
        from ..platform.idp import ensure_client

        issuer = f"http://127.0.0.1:{setting(env, 'CLOISONNE_OIDC_PORT')}"
        endpoints = {
            "authorization_endpoint": f"{issuer}/auth",
            "token_endpoint": f"{issuer}/token",
            "userinfo_endpoint": f"{issuer}/me",
            "end_session_endpoint": f"{issuer}/session/end",
        }
        client = ensure_client(state / "idp", f"{bind_url}/hub/oauth_callback")
        client_id, secret = client.client_id, secret or client.client_secret

    auth = c.CloisonneOIDCAuthenticator
    c.JupyterHub.authenticator_class = "cloisonne.hub.oidc.CloisonneOIDCAuthenticator"
    auth.client_id = client_id
    auth.client_secret = secret
    auth.oauth_callback_url = f"{bind_url}/hub/oauth_callback"
    auth.authorize_url = endpoints["authorization_endpoint"]
    auth.token_url = endpoints["token_endpoint"]
    auth.userdata_url = endpoints["userinfo_endpoint"]
    if endpoints.get("end_session_endpoint"):
        auth.logout_redirect_url = f"{endpoints['end_session_endpoint']}?client_id={client_id}"
    auth.login_service = "Cloisonné sign-in"
    auth.username_claim = setting(env, "CLOISONNE_OIDC_USERNAME_CLAIM")
    auth.auth_state_groups_key = f"oauth_user.{setting(env, 'CLOISONNE_OIDC_GROUPS_CLAIM')}"
    auth.admin_group = setting(env, "CLOISONNE_OIDC_ADMIN_GROUP")
    auth.projects = [spec.project.id for spec in specs]
    auth.manage_groups = True
    auth.enable_pkce = True
    hook = setting(env, "CLOISONNE_AUDIT_HOOK")
    if hook:
        module, _, name = hook.partition(":")
        import importlib

        auth.audit_hook = getattr(importlib.import_module(module), name)
    c.Authenticator.auto_login = True

    sync_project_groups(c.JupyterHub.db_url, specs, extra_groups=[auth.admin_group])


def _discover(issuer: str) -> dict[str, str]:
    import requests

    url = f"{issuer}/.well-known/openid-configuration"
    try:
        r = requests.get(url, timeout=10)
        r.raise_for_status()
        return r.json()
    except (requests.RequestException, ValueError) as exc:
        raise SystemExit(
            f"Cloisonné: cannot read the OIDC discovery document {url}: {exc}"
        ) from None

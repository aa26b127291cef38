"""Run a whole local platform (hub + proxy + sandboxes) as a child process.

One class serves `cloisonne up`, the integration tests and the benchmarks, so all three run
the platform the same way: a state folder, the hub config file, an operations API token.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from ..backends.sandbox import host
from ..backends.sandbox.network import SiteNetwork
from ..backends.sandbox.sweep import sweep
from ..core.projects import ProjectError, load_projects
from ..data.s3 import S3Store
from ..hub.site import REPO, Site, sqlite_url
from ..packages.process import PackageProxy, upstream_reachable
from ..packages.settings import ProxySettings
from ..packages.settings import from_env as packages_settings
from ..procs import read_pid, stop_pid
from .idp import EmbeddedProvider, ensure_client, project_claims, write_accounts

HUB_CONFIG = REPO / "hub_config" / "jupyterhub_config.py"


@dataclass
class LocalHub:
    state: Path
    projects_file: Path = REPO / "hub_config" / "projects.yaml"
    datasets: Path | None = None
    # defaults: the Site traits' (written once, in hub/site.py)
    port: int = 8000
    hub_port: int = Site.hub_port.default_value
    proxy_api_port: int = Site.proxy_api_port.default_value
    subnet: str = Site.subnet.default_value
    prefix: str = Site.prefix.default_value
    spawner: str = Site.spawner.default_value
    cull_timeout: int = Site.cull_timeout.default_value
    cull_every: int = Site.cull_every.default_value
    extra_env: dict[str, str] = field(default_factory=dict)
    proc: subprocess.Popen | None = None
    # identity: the embedded OIDC provider's port (0: a free one)
    idp_port: int = 0
    # hub database: "sqlite" (embedded) or "postgres" (a private cluster under the state folder)
    db: str = "sqlite"
    # first start of a state folder: add projects.yaml's members and leads to the groups, as
    # the embedded provider's accounts have them (afterwards the provider's claim decides)
    seed_members: bool = True
    pg: Any = None
    # the Python that runs the hub (and, through the spawner's sys.prefix, every workspace) and
    # the hub's configuration file: another clone's, to run the platform from where it lies
    python: str = sys.executable
    hub_config: Path = HUB_CONFIG

    def __post_init__(self) -> None:
        if not self.idp_port:
            import socket

            with socket.socket() as s:
                s.bind(("127.0.0.1", 0))
                self.idp_port = s.getsockname()[1]

    @property
    def idp(self) -> EmbeddedProvider:
        return EmbeddedProvider(self.state / "idp", self.idp_port)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def site(self) -> SiteNetwork:
        return SiteNetwork(self.subnet, self.prefix)

    @property
    def ops_token(self) -> str:
        path = self.state / "ops_token"
        if not path.exists():
            self.state.mkdir(parents=True, exist_ok=True)
            path.write_text(secrets.token_hex(32))
            os.chmod(path, 0o600)
        return path.read_text().strip()

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("CLOISONNE_")}
        env.update(
            CLOISONNE_STATE=str(self.state),
            CLOISONNE_PROJECTS=str(self.projects_file),
            CLOISONNE_DATASETS=str(self.datasets or self.state / "datasets"),
            CLOISONNE_BIND_URL=self.url,
            CLOISONNE_HUB_PORT=str(self.hub_port),
            CLOISONNE_PROXY_API_PORT=str(self.proxy_api_port),
            CLOISONNE_SUBNET=self.subnet,
            CLOISONNE_PREFIX=self.prefix,
            CLOISONNE_SPAWNER=self.spawner,
            CLOISONNE_CULL_TIMEOUT=str(self.cull_timeout),
            CLOISONNE_CULL_EVERY=str(self.cull_every),
            CLOISONNE_ADMIN_TOKEN=self.ops_token,
            CLOISONNE_OIDC_PORT=str(self.idp_port),
        )
        if self.pg is not None:
            env["CLOISONNE_DB_URL"] = self.pg.url
        env.update(self.extra_env)
        return env

    @property
    def db_url(self) -> str:
        """The hub's database (which also holds the audit log and the airlock's tables)."""
        if self.pg is not None:
            return self.pg.url
        return sqlite_url(self.state)

    def wait_audit_forwarded(self, timeout: float = 10) -> None:
        """Wait until the service has forwarded every workspace journal to its end (guard
        events reach the audit chain a few milliseconds after they are served)."""
        from ..audit.journal import backlog
        from ..audit.store import AuditStore

        folder = self.state / "audit-journal"
        store = AuditStore(self.db_url, create=False)
        try:
            deadline = time.monotonic() + timeout
            while pending := [j.name for j in backlog(folder, store.journal_offsets())
                              if j.pending > 0]:  # fmt: skip
                if time.monotonic() > deadline:
                    raise TimeoutError(f"audit journals not forwarded: {pending}")
                time.sleep(0.02)
        finally:
            store.close()

    def spawner_id(self, user: str, server: str) -> int:
        """The database id of ``user``'s server ``server``: the sandbox's network slot, which
        names its namespace, interfaces, nft table and cgroup (site.slot(id))."""
        import sqlalchemy

        engine = sqlalchemy.create_engine(self.db_url)
        try:
            with engine.connect() as conn:
                return conn.execute(
                    sqlalchemy.text(
                        "SELECT spawners.id FROM spawners JOIN users ON users.id = spawners.user_id"
                        " WHERE users.name = :user AND spawners.name = :server"
                    ),
                    {"user": user, "server": server},
                ).scalar_one()
        finally:
            engine.dispose()

    def write_users(self, users: dict[str, str], admins: tuple[str, ...] = ()) -> None:
        """Accounts at the embedded provider: name -> password; each account's groups claim
        mirrors projects.yaml (members, leads) and ``admins`` get the admin group."""
        self.state.mkdir(parents=True, exist_ok=True)
        try:
            specs = load_projects(self.projects_file)
        except ProjectError:
            specs = []  # the hub will refuse to start and say why; accounts have no projects
        write_accounts(self.state / "idp", users, project_claims(specs, admins))

    # -- process --------------------------------------------------------------------------

    def start(self, timeout: float = 60) -> None:
        self.state.mkdir(parents=True, exist_ok=True)
        os.chmod(self.state, 0o711)  # services running as other users reach their folders
        if self.db == "postgres" and self.pg is None:
            from .pg import PrivatePostgres

            self.pg = PrivatePostgres(self.state / "pg")
        if self.pg is not None:
            self.pg.start()
        if not self.extra_env.get("CLOISONNE_OIDC_ISSUER"):
            ensure_client(self.state / "idp", f"{self.url}/hub/oauth_callback")
            self.idp.start()
        self._start_on_hub_address(self.s3_store())
        self._start_on_hub_address(self.package_proxy())
        log = open(self.state / "hub.log", "ab")
        self.proc = subprocess.Popen(
            [self.python, "-m", "jupyterhub", "-f", str(self.hub_config)],
            cwd=self.state,
            env=self.env(),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"the hub exited with {self.proc.returncode}:\n{self.log_tail()}"
                )
            try:
                if requests.get(f"{self.url}/hub/api/", timeout=1).ok:
                    self._seed_members()
                    return
            except requests.RequestException:
                pass
            time.sleep(0.1)
        raise TimeoutError(f"the hub did not answer within {timeout} s:\n{self.log_tail()}")

    def s3_store(self) -> S3Store | None:
        """The per-project S3 store of this platform (None when CLOISONNE_S3 is off)."""
        return Site.from_env(self.env()).s3_store()

    def _start_on_hub_address(self, service: S3Store | PackageProxy | None) -> None:
        """Start the S3 store or the package proxy (if on): both listen on the hub's address."""
        if service is None:
            return
        if self.spawner != "simple":
            host.ensure_hub_link(self.site)
        service.start()

    def package_proxy(self) -> PackageProxy | None:
        """The package proxy of this platform, its mode resolved (None when off)."""
        env = self.env()
        mode = env.get("CLOISONNE_PACKAGES", "off")
        if mode == "off":
            return None
        if mode == "auto":
            upstream = (
                env.get("CLOISONNE_PACKAGES_UPSTREAM") or ProxySettings.upstream.default_value
            )
            mode = "connected" if upstream_reachable(upstream) else "air-gapped"
            # the hub gives workspaces the proxy whatever its mode: tell it the one chosen
            self.extra_env["CLOISONNE_PACKAGES"] = env["CLOISONNE_PACKAGES"] = mode
        host_ip = self.site.hub_ip if self.spawner != "simple" else "127.0.0.1"
        return PackageProxy(packages_settings(env, self.state, host_ip, self.db_url))

    def restart_package_proxy(self) -> bool:
        """Start the package proxy again if it should run and does not (True if it did)."""
        proxy = self.package_proxy()
        if proxy is None or proxy.pid() is not None:
            return False
        proxy.start()
        return True

    def _seed_members(self) -> None:
        marker = self.state / "members-seeded"
        if not self.seed_members or marker.exists():
            return
        for spec in load_projects(self.projects_file):
            for group, names in ((spec.project.id, spec.members),
                                 (spec.project.leads_group, spec.leads)):  # fmt: skip
                for name in names:
                    self.api("POST", f"/users/{name}")  # 409 when it exists: fine
                if names:
                    r = self.api("POST", f"/groups/{group}/users", json={"users": list(names)})
                    r.raise_for_status()
        marker.write_text("")

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = (self.state / "hub.log").read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def kill9(self) -> None:
        """Kill the hub the hard way (its proxy and the workspaces live on)."""
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait()

    def stop(self, *, stop_servers: bool = True, timeout: float = 30) -> None:
        if stop_servers and self.proc is not None and self.proc.poll() is None:
            self.stop_all_servers()
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._stop_leftover_proxy()
        self.idp.stop()
        # By the PID in its state folder (whatever CLOISONNE_S3 says now), before sweep()
        # removes the address it listens on.
        S3Store(self.state / "s3").stop()
        PackageProxy(ProxySettings(state_dir=str(self.state / "packages"))).stop()
        if self.pg is not None:
            self.pg.stop()

    def _stop_leftover_proxy(self) -> None:
        pid_file = self.state / "proxy.pid"
        stop_pid(read_pid(pid_file), timeout=5)
        pid_file.unlink(missing_ok=True)

    def teardown(self) -> dict[str, list[str]]:
        """Stop everything and remove every host resource; returns what had been left over."""
        try:
            self.stop()
        finally:
            found = sweep(self.site)
        return found

    # -- REST API -------------------------------------------------------------------------

    def api(self, method: str, path: str, token: str | None = None, **kw: Any) -> requests.Response:
        headers = {"Authorization": f"token {token or self.ops_token}"}
        return requests.request(
            method,
            f"{self.url}/hub/api{path}",
            headers=headers,
            timeout=kw.pop("timeout", 60),
            **kw,
        )

    def stop_all_servers(self, timeout: float = 120) -> None:
        """Stop every running server, ten at a time (each DELETE waits for its stop), and wait
        until the hub reports none active."""
        users = self.api("GET", "/users", params={"state": "active"})
        if not users.ok:
            return
        paths = [
            f"/users/{user['name']}" + (f"/servers/{name}" if name else "/server")
            for user in users.json()
            for name in user.get("servers", {})
        ]
        with ThreadPoolExecutor(10) as pool:
            list(pool.map(lambda path: self.api("DELETE", path), paths))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            active = self.api("GET", "/users", params={"state": "active"})
            if not active.ok or not active.json():
                return
            time.sleep(0.2)

"""The site's settings, each written once: name, type, default, help text and validation.

Both backends build their hub from a ``Site``: the local platform fills it from environment
variables (``Site.from_env``: ``CLOISONNE_<NAME>``), the Kubernetes chart from its rendered
``cloisonne.yaml`` (``hub/kube.py``). ``cloisonne settings`` and docs/configuration.md are
generated from these traits, and a test checks the chart's values schema against them.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from traitlets import Bool, Enum, HasTraits, Int, TraitError, TraitType, Unicode, validate

from ..backends.sandbox.network import SiteNetwork
from ..core.values import parse_switch
from ..data.layout import layout
from ..data.s3 import S3Store, StorePorts

REPO = Path(__file__).resolve().parents[3]
ENV_PREFIX = "CLOISONNE_"


class Switch(Bool):
    """A boolean that environment variables spell on/off (or true/false, 1/0, yes/no)."""

    def from_string(self, s: str) -> bool:
        try:
            return parse_switch(s)
        except ValueError as exc:
            raise TraitError(str(exc)) from None


def _port(default: int, help: str, *, low: int = 1, high: int = 65535, local: bool = True) -> Int:
    return Int(default, min=low, max=high, help=help).tag(backend="local" if local else "both")


class Site(HasTraits):
    """Everything a site configures. ``backend`` metadata: local, kube or both."""

    # --- both backends --------------------------------------------------------------------
    db_url = Unicode(
        "",
        help="Hub database URL (SQLAlchemy). Empty: SQLite in the state folder (local) or "
        "on the hub's volume (Kubernetes). The hub's audit events are written there too.",
    ).tag(backend="both")
    oidc_issuer = Unicode(
        "",
        help="OpenID Connect issuer URL. Local: empty runs the embedded provider; its "
        "discovery document gives the endpoints. Kubernetes: endpoints default to Keycloak's "
        "layout under it.",
    ).tag(backend="both")
    oidc_client_id = Unicode("cloisonne-hub", help="The hub's client id at the provider.").tag(
        backend="both"
    )
    oidc_client_secret = Unicode(
        "", help="The hub's client secret (embedded provider: read from its files)."
    ).tag(backend="both", secret=True)
    oidc_username_claim = Unicode("preferred_username", help="Claim that gives the user name.").tag(
        backend="both"
    )
    oidc_groups_claim = Unicode(
        "groups",
        help="Claim that lists the user's groups: 'project-<id>' (member), "
        "'project-<id>-leads' (lead) and the admin group.",
    ).tag(backend="both")
    oidc_admin_group = Unicode(
        "cloisonne-admins",
        help="Claim group whose members get the 'cloisonne-admin' role (admin panel; never "
        "access to workspaces).",
    ).tag(backend="both")
    audit_hook = Unicode(
        "",
        help="module:callable receiving the authenticator's membership events (default: "
        "the audit log).",
    ).tag(backend="local")

    # --- local backend ----------------------------------------------------------------------
    state = Unicode("/var/lib/cloisonne", help="State folder: hub database, homes, logs.").tag(
        backend="local"
    )
    projects = Unicode(
        str(REPO / "hub_config" / "projects.yaml"), help="The projects file (projects.yaml)."
    ).tag(backend="local")
    datasets = Unicode("", help="Datasets folder (default: <state>/datasets).").tag(backend="local")
    db = Enum(
        ["sqlite", "postgres"], "sqlite",
        help="Local platform's database: sqlite, or postgres (a private cluster under the "
        "state folder).",
    ).tag(backend="local")  # fmt: skip
    oidc_port = _port(8090, "Port of the embedded OIDC provider on 127.0.0.1.")
    bind_url = Unicode("http://127.0.0.1:8000", help="Public URL of the proxy.").tag(
        backend="local"
    )
    hub_port = _port(8081, "Hub API port (on the hub's host-only address).")
    proxy_api_port = _port(8001, "configurable-http-proxy API port on 127.0.0.1.")
    subnet = Unicode(SiteNetwork.subnet, help="Sandbox address range (IPv4, /20 or larger).").tag(
        backend="local"
    )
    prefix = Unicode(
        SiteNetwork.prefix,
        help="Prefix of network namespaces, interfaces, nft tables and cgroups (1-4 lowercase "
        "letters and digits).",
    ).tag(backend="local")
    cull_timeout = Int(
        3600, min=1, help="Seconds of inactivity before a workspace is stopped."
    ).tag(backend="local")
    cull_every = Int(0, min=0, help="Seconds between culler checks (0: cull_timeout / 2).").tag(
        backend="local"
    )
    spawner = Enum(
        ["sandbox", "simple"], "sandbox",
        help="sandbox, or simple (no isolation: only the benchmarks' baseline).",
    ).tag(backend="local")  # fmt: skip
    service_port = _port(8082, "Cloisonné service port (audit, airlock) on the hub address.")
    outflow_budget = Unicode(
        "50M", help="Bytes a project may send to browsers per day before an alert."
    ).tag(backend="local")
    upload_max = Unicode(
        "100M",
        help="Largest file, notebook or chunked upload (its running total) a workspace takes "
        "through Jupyter; over it the write is refused (413) and recorded.",
    ).tag(backend="local")
    upload_abandon_seconds = Int(
        3600,
        min=1,
        help="Seconds after its last chunk that an unfinished chunked upload is removed from "
        "the workspace, and the removal recorded.",
    ).tag(backend="local")
    egress_probes = Unicode(
        "",
        help="Addresses workspaces must not reach, probed at start (default: public "
        "addresses and cloud metadata).",
    ).tag(backend="local")
    project_data = Unicode(
        "",
        help="Projects' provisioned extracts: <dir>/<project> read-only at /data "
        "(default: <state>/project-data).",
    ).tag(backend="local")
    s3 = Switch(
        True,
        help="Run the per-project S3 store (SeaweedFS) on the hub address; each "
        "workspace gets its project's bucket and credential.",
    ).tag(backend="local")
    s3_port = _port(
        18330,
        "S3 port of the store; master, volume, filer and admin use the next four (never "
        "reachable from workspaces), each gRPC port is its HTTP port + 10000.",
        low=1024,
        high=65535 - 10004,
    )
    guard = Switch(True, help="off only for the benchmark that measures the guard's cost.").tag(
        backend="local"
    )
    audit_journal = Switch(
        True,
        help="on: guards append to a journal the service forwards; off: an HTTP append per read.",
    ).tag(backend="local")
    admin_token = Unicode("", help="If set, an API token for the 'cloisonne-ops' service.").tag(
        backend="local", secret=True
    )
    chp = Unicode(
        str(REPO / ".node" / "node_modules" / ".bin" / "configurable-http-proxy"),
        help="configurable-http-proxy command.",
    ).tag(backend="local")

    @validate("subnet", "prefix")
    def _network(self, proposal: dict) -> str:
        parts = {
            "subnet": self.subnet,
            "prefix": self.prefix,
            proposal["trait"].name: proposal["value"],
        }
        try:
            SiteNetwork(**parts)
        except ValueError as exc:
            raise TraitError(str(exc)) from None
        return proposal["value"]

    @validate("outflow_budget", "upload_max")
    def _budget(self, proposal: dict) -> str:
        from ..core.projects import ProjectError, parse_size

        try:
            parse_size(proposal["value"], field=proposal["trait"].name)
        except ProjectError as exc:
            raise TraitError(str(exc)) from None
        return proposal["value"]

    # --- derived values (written here once) ---------------------------------------------------
    @property
    def state_path(self) -> Path:
        return Path(self.state)

    @property
    def datasets_path(self) -> Path:
        return Path(self.datasets) if self.datasets else layout(self.state_path)["datasets"]

    @property
    def project_data_path(self) -> Path:
        if self.project_data:
            return Path(self.project_data)
        return layout(self.state_path)["project_data"]

    @property
    def hub_db_url(self) -> str:
        return self.db_url or sqlite_url(self.state_path)

    @property
    def network(self) -> SiteNetwork:
        return SiteNetwork(self.subnet, self.prefix)

    @property
    def sandboxed(self) -> bool:
        return self.spawner != "simple"

    @property
    def hub_address(self) -> str:
        """The hub's host-only address: its API, the service and the S3 store listen there,
        the one host address sandboxes may reach (127.0.0.1 with the unsandboxed spawner)."""
        return self.network.hub_ip if self.sandboxed else "127.0.0.1"

    def s3_store(self) -> S3Store | None:
        """The per-project S3 store (``<state>/s3``) on the hub address, or None when off.
        ``cloisonne up`` starts it; the hub hands its location to the spawner."""
        if not self.s3:
            return None
        return S3Store(layout(self.state_path)["s3"], host=self.hub_address,
                       ports=StorePorts(self.s3_port))  # fmt: skip

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Site:
        """The environment adapter: ``CLOISONNE_<NAME>`` for each trait; empty means default."""
        values: dict[str, Any] = {}
        for name, trait in cls.class_traits().items():
            raw = env.get(env_name(name), "")
            if raw == "":
                continue
            try:
                values[name] = trait.from_string(raw)
            except (TraitError, ValueError) as exc:
                raise SiteError(f"{env_name(name)}={raw!r}: {exc}") from None
        try:
            return cls(**values)
        except TraitError as exc:
            raise SiteError(str(exc)) from None

    def to_env(self) -> dict[str, str]:
        """The settings that differ from their defaults, as environment variables."""
        out = {}
        for name, trait in self.traits().items():
            value = getattr(self, name)
            if value != trait.default():
                out[env_name(name)] = _env_text(value)
        return out


class SiteError(ValueError):
    """A setting with a bad value; the message names the setting."""


def env_name(trait_name: str) -> str:
    return ENV_PREFIX + trait_name.upper()


def sqlite_url(folder: Path) -> str:
    """The hub database in ``folder`` when no URL is given (every caller builds it here)."""
    return f"sqlite:///{Path(folder) / 'jupyterhub.sqlite'}"


def _env_text(value: object) -> str:
    if isinstance(value, bool):
        return "on" if value else "off"
    return str(value)


def described() -> Iterator[tuple[str, TraitType, str]]:
    """(name, trait, backend) for every setting, in declaration order."""
    for name, trait in Site.class_traits().items():
        yield name, trait, trait.metadata.get("backend", "both")


def type_name(trait: TraitType) -> str:
    if isinstance(trait, Switch):
        return "on/off"
    if isinstance(trait, Enum):
        return " or ".join(str(v) for v in trait.values or ())
    if isinstance(trait, Int):
        low, high = getattr(trait, "min", None), getattr(trait, "max", None)
        return f"integer {low}..{high}" if high is not None else f"integer ≥ {low}"
    return "string"


def default_text(trait: TraitType) -> str:
    return _env_text(trait.default())


# Compatibility for callers that still read settings by variable name.
SETTINGS = {
    env_name(name): (default_text(t), " ".join(t.help.split())) for name, t, _ in described()
}
SECRET_SETTINGS = {env_name(name) for name, t, _ in described() if t.metadata.get("secret")}

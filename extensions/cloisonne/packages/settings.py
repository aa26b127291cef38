"""The package proxy's settings: traits with help text; environment variables are an adapter.

``cloisonne up`` (LocalHub) and the chart set the ``CLOISONNE_PACKAGES*`` variables; the hub's
configuration reads the same ones to give each workspace its index (``from_env`` is the one
place that maps them).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from traitlets import Bool, Enum, Integer, List, Unicode, validate
from traitlets.config import Configurable

from ..core.packages import AllowListError, parse_list

MODES = ("connected", "air-gapped")
# a small demo allow-list for `make up` (pure-Python wheels, no dependencies off the list)
DEMO_ALLOW = ("six", "tabulate", "python-dateutil", "pytz", "tzdata")


class ProxySettings(Configurable):
    mode = Enum(
        MODES,
        "air-gapped",
        config=True,
        help="connected: the proxy (never a workspace) fetches allowed files from `upstream` and "
        "caches them; air-gapped: files come only from the wheelhouse the site loads with "
        "`cloisonne packages add`.",
    )
    host = Unicode(
        "127.0.0.1",
        config=True,
        help="Address the proxy listens on (the hub's host-only address on the local platform, "
        "the one host address workspaces may reach).",
    )
    port = Integer(18340, config=True, help="The proxy's one port.")
    upstream = Unicode(
        "https://pypi.org/simple/",
        config=True,
        help="Simple index (PEP 503) the proxy mirrors in connected mode.",
    )
    allow = List(
        Unicode(),
        config=True,
        help="Site allow-list: 'name' or 'name<range>' (packaging specifiers, e.g. "
        "'pandas>=2.2,<3'), allowed in every project; a project's `packages` property adds "
        "to it.",
    )
    allow_sdists = Bool(
        False,
        config=True,
        help="Also serve source distributions. Off: building an sdist runs its code at "
        "install time, so only wheels are served.",
    )
    state_dir = Unicode("", config=True, help="The proxy's folder: wheelhouse, cache, key, log.")
    db_url = Unicode(
        "",
        config=True,
        help="The hub's database: projects' `packages` properties are read from its groups, "
        "audit events are appended to its audit log.",
    )
    cache_ttl = Integer(30, config=True, help="Seconds the upstream's index pages are cached.")
    key_path = Unicode(
        "",
        config=True,
        help="File holding the key workspace credentials are checked with (default: "
        "workspace.key in state_dir; on Kubernetes, the hub Secret mounted read-only).",
    )

    @validate("allow")
    def _check_allow(self, proposal):  # noqa: ANN001, ANN202 - traitlets validator
        try:
            parse_list(proposal["value"])
        except AllowListError as exc:
            raise ValueError(f"site package allow-list: {exc}") from None
        return proposal["value"]

    @property
    def root(self) -> Path:
        return Path(self.state_dir)

    @property
    def key_file(self) -> Path:
        return Path(self.key_path) if self.key_path else self.root / "workspace.key"


def split_allow(text: str) -> list[str]:
    """The allow-list as one variable: entries separated by spaces or ';' (ranges have ',')."""
    return [part for part in text.replace(";", " ").split() if part]


def from_env(env: Mapping[str, str], state: Path, host: str, db_url: str) -> ProxySettings:
    """The settings from ``CLOISONNE_PACKAGES*`` (mode must already be resolved, not auto)."""
    mode = env.get("CLOISONNE_PACKAGES", "air-gapped")
    raw_port = env.get("CLOISONNE_PACKAGES_PORT") or str(ProxySettings.port.default_value)
    if not raw_port.isdigit() or not 1024 <= int(raw_port) <= 65535:
        raise SystemExit(f"Cloisonné: CLOISONNE_PACKAGES_PORT={raw_port!r}: expected a port")
    try:
        return ProxySettings(
            mode=mode,
            host=host,
            port=int(raw_port),
            upstream=env.get("CLOISONNE_PACKAGES_UPSTREAM") or ProxySettings.upstream.default_value,
            allow=split_allow(env.get("CLOISONNE_PACKAGES_ALLOW", " ".join(DEMO_ALLOW))),
            allow_sdists=env.get("CLOISONNE_PACKAGES_SDISTS", "off").lower() in ("on", "1", "true"),
            state_dir=str(state / "packages"),
            db_url=db_url,
        )
    except Exception as exc:  # noqa: BLE001 - a traitlets error, said in one line
        raise SystemExit(f"Cloisonné: package proxy settings: {exc}") from None

"""The local platform's research data, from its settings: where extracts are, and the S3 store.

``cloisonne up`` (LocalHub) starts and stops the store; the hub configuration hands the same
locations to the spawner. Both call these functions with the same settings, so they agree.
The store listens on the hub's host-only address, the one host address that sandboxes may be
allowed to reach (127.0.0.1 with the unsandboxed benchmark spawner).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from ..backends.sandbox.network import SiteNetwork
from ..data.s3 import S3Store, StorePorts
from ..hub.config import setting

SWITCH = {"on": True, "off": False, "1": True, "0": False, "true": True, "false": False}


def s3_enabled(env: Mapping[str, str]) -> bool:
    value = setting(env, "CLOISONNE_S3").strip().lower()
    if value not in SWITCH:
        raise SystemExit(f"Cloisonné: CLOISONNE_S3={value!r}: expected 'on' or 'off'")
    return SWITCH[value]


def project_data_root(env: Mapping[str, str], state: Path) -> Path:
    return Path(setting(env, "CLOISONNE_PROJECT_DATA") or state / "project-data")


def s3_port(env: Mapping[str, str]) -> int:
    raw = setting(env, "CLOISONNE_S3_PORT")
    # the store uses base .. base+4 and each + 10000 (gRPC)
    if not raw.isdigit() or not 1024 <= int(raw) <= 65535 - 10004:
        raise SystemExit(
            f"Cloisonné: CLOISONNE_S3_PORT={raw!r}: expected a port from 1024 to {65535 - 10004}"
        )
    return int(raw)


def s3_store(env: Mapping[str, str], state: Path, site: SiteNetwork) -> S3Store | None:
    """The platform's S3 store (``<state>/s3``), or None when CLOISONNE_S3 is off."""
    if not s3_enabled(env):
        return None
    sandboxed = setting(env, "CLOISONNE_SPAWNER") != "simple"
    host = site.hub_ip if sandboxed else "127.0.0.1"
    return S3Store(state / "s3", host=host, ports=StorePorts(s3_port(env)))


def running_s3_store(env: Mapping[str, str]) -> S3Store | None:
    """The store of the platform ``env`` describes, if it is on and running (operator
    commands: suspend freezes a project's credential, close deletes its bucket)."""
    site = SiteNetwork(setting(env, "CLOISONNE_SUBNET"), setting(env, "CLOISONNE_PREFIX"))
    store = s3_store(env, Path(setting(env, "CLOISONNE_STATE")), site)
    return store if store is not None and store.pid() else None

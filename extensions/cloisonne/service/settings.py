"""The airlock's settings: traitlets with help text, read from ``CLOISONNE_AIRLOCK_*``."""

from __future__ import annotations

import os
from collections.abc import Mapping

from traitlets import Bool, Integer, Unicode
from traitlets.config import Configurable

from ..core.projects import parse_size
from ..core.values import parse_switch


class AirlockSettings(Configurable):
    store_dir = Unicode(
        "/var/lib/cloisonne/airlock",
        help="Folder where submitted files are stored under their SHA-256 (mode 0700, owned by "
        "the service; never mounted into a workspace). Env: CLOISONNE_AIRLOCK_STORE.",
    ).tag(config=True)
    max_file_bytes = Integer(
        100 * 1024**2,
        help="Largest file a request may hold, in bytes. Env: CLOISONNE_AIRLOCK_MAX_FILE.",
    ).tag(config=True)
    max_request_bytes = Integer(
        256 * 1024**2,
        help="Largest total size of one request's files. Env: CLOISONNE_AIRLOCK_MAX_REQUEST.",
    ).tag(config=True)
    max_files = Integer(
        200, help="Most files in one request. Env: CLOISONNE_AIRLOCK_MAX_FILES."
    ).tag(config=True)
    auto_release = Bool(
        True,
        help="Release a request as soon as it is approved (the last required approval). If "
        "off, a lead releases it explicitly. Env: CLOISONNE_AIRLOCK_AUTO_RELEASE (1/0).",
    ).tag(config=True)
    metrics_public = Bool(
        False,
        help="Serve /metrics without a token (like JupyterHub's authenticate_prometheus=False); "
        "otherwise admins only. Env: CLOISONNE_AIRLOCK_METRICS_PUBLIC (1/0).",
    ).tag(config=True)
    directory_cache_s = Integer(
        10,
        help="Seconds a user's groups and a project's properties read from the hub are reused.",
    ).tag(config=True)

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> AirlockSettings:
        s = cls()
        if env.get("CLOISONNE_AIRLOCK_STORE"):
            s.store_dir = env["CLOISONNE_AIRLOCK_STORE"]
        for name, trait in (
            ("CLOISONNE_AIRLOCK_MAX_FILE", "max_file_bytes"),
            ("CLOISONNE_AIRLOCK_MAX_REQUEST", "max_request_bytes"),
        ):
            if env.get(name):
                setattr(s, trait, parse_size(env[name], field=name))
        if env.get("CLOISONNE_AIRLOCK_MAX_FILES"):
            s.max_files = int(env["CLOISONNE_AIRLOCK_MAX_FILES"])
        for name, trait in (
            ("CLOISONNE_AIRLOCK_AUTO_RELEASE", "auto_release"),
            ("CLOISONNE_AIRLOCK_METRICS_PUBLIC", "metrics_public"),
        ):
            if env.get(name):
                setattr(s, trait, parse_switch(env[name], field=name))
        return s

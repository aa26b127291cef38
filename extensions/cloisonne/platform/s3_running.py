"""The running S3 store of the platform an environment describes (operator commands: suspend
freezes a project's credential, close deletes its bucket)."""

from __future__ import annotations

from collections.abc import Mapping

from ..data.s3 import S3Store
from ..hub.site import Site


def running_s3_store(env: Mapping[str, str]) -> S3Store | None:
    store = Site.from_env(env).s3_store()
    return store if store is not None and store.pid() else None

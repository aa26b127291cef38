"""The event a writer hands to the audit log, before the chain gives it a place and a hash.

Pure (no SQLAlchemy): the journal format (``journal.py``) and the workspace guard use it, the
store (``store.py``) appends it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

# What an event type looks like ("guard.read", "airlock.submitted"), wherever events come from.
EVENT_TYPE = re.compile(r"^[a-z][a-z0-9_.:-]{0,63}$")


@dataclass(frozen=True)
class NewEvent:
    type: str
    user: str = ""
    project: str = ""
    fields: Mapping[str, Any] | None = None
    time: datetime | None = None


# The package proxy's events (cloisonne.packages): a file served to a workspace (fields:
# package, version, file, sha256, source) and a request refused (package, version, reason).
PACKAGE_SERVED = "packages.served"
PACKAGE_REFUSED = "packages.refused"

# The workspace guard's events (cloisonne.workspace.guard). Each names the route, the path and
# whether it was allowed, with the reason; byte counts where bytes moved.
GUARD_READ = "guard.read"  # file bytes sent to the browser (fields: bytes, sha256)
GUARD_ROUTE = "guard.route"  # a closed route refused (method, path)
GUARD_OUTFLOW = "guard.outflow"  # bytes kernels and terminals sent to browsers (bytes, total)
GUARD_IMPORT = "guard.import"  # bytes written by a contents PUT: file, notebook, directory, chunk
GUARD_UPLOAD_ABANDONED = "guard.upload_abandoned"  # a chunked upload never finished, removed
GUARD_COPY = "guard.copy"  # a copy through the contents API (from, path, bytes)
GUARD_RENAME = "guard.rename"  # a rename or move through the contents API (from, path)
GUARD_EXPORT_REFUSED = "guard.export_refused"  # an export request refused in the workspace

"""The audit hook that data operations call: ``audit(event_type, **fields)``.

Data operations take any callable with this signature. The data commands (``cloisonne data``,
the demo) append JSON lines to a hub-side file (0600); they do not write to the tamper-evident
audit chain (audit/store.py) yet: pass an emitter onto it as ``audit=`` to do so.
"""

from __future__ import annotations

import datetime
import json
import os
from pathlib import Path
from typing import Any, Protocol


class Audit(Protocol):
    def __call__(self, event_type: str, /, **fields: Any) -> None: ...


class JsonlAudit:
    """Append one JSON object per event to ``path`` (created 0600, fsynced per event)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def __call__(self, event_type: str, /, **fields: Any) -> None:
        event = {
            "ts": datetime.datetime.now(datetime.UTC).isoformat(timespec="milliseconds"),
            "type": event_type,
            **fields,
        }
        line = (json.dumps(event, sort_keys=True, default=str) + "\n").encode()
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, line)
            os.fsync(fd)
        finally:
            os.close(fd)


def no_audit(event_type: str, /, **fields: Any) -> None:
    """For callers that audit elsewhere (tests pass a list's append instead)."""

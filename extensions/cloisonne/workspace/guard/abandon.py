"""Chunked uploads left unfinished are removed and recorded (the guard's sweeper, in the
workspace server): a file whose last chunk never came would otherwise stay in the home with
no audit event."""

from __future__ import annotations

import os
import shutil
import time
from typing import Any

from tornado import web

from ...audit.events import GUARD_UPLOAD_ABANDONED
from .policy import Decision


async def sweep_abandoned(contents: Any, guard: Any) -> None:
    """Remove the uploads whose last chunk is older than the guard's abandon time, and record
    each; one not recorded (audit log unreachable) stays in the ledger and is tried again."""
    after = guard.upload_abandon_seconds
    for path, upload in contents.uploads.abandoned(time.monotonic(), after):
        remove(contents._get_os_path(path))
        reason = (f"Upload of {path} abandoned: no chunk for {after:g} s after "
                  f"{upload.total} bytes; the partial file was removed.")  # fmt: skip
        try:
            await guard.record(GUARD_UPLOAD_ABANDONED, "contents", path, Decision.deny(reason),
                               size=upload.total)  # fmt: skip
        except web.HTTPError:
            continue
        contents.uploads.finish(path)


def remove(path: str) -> None:
    """Remove a file or folder the guard must not leave behind (gone already is fine)."""
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path, ignore_errors=True)
        return
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass

"""Chunked uploads (pure): the running total each one has reached, and which were abandoned.

jupyter_server saves a chunked upload one PUT per chunk (``chunk`` 1, 2, …, -1 for the last),
appending each to the file. A cap on one PUT's size would let any total through, and an upload
that never sends its last chunk would stay in the home unrecorded: the ledger keeps the total
per path across chunks and the time of its last chunk, so the guard can refuse the chunk that
goes over the cap and remove uploads left unfinished.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


def incoming_bytes(model: Mapping[str, Any]) -> int:
    """The bytes a contents PUT will write, from its model, before anything is written."""
    content = model.get("content")
    if content is None or model.get("type") == "directory":
        return 0
    if model.get("type") == "notebook":
        # as nbformat writes it (indent 1): close to the size on disk
        return len(json.dumps(content, indent=1, ensure_ascii=False).encode())
    text = str(content)
    if model.get("format") == "base64":
        stripped = "".join(text.split())
        return len(stripped) * 3 // 4 - len(stripped) + len(stripped.rstrip("="))
    return len(text.encode())


@dataclass
class OpenUpload:
    total: int  # bytes received so far, this chunk included
    last: float  # monotonic time of the last chunk


class UploadLedger:
    """Running totals of the chunked uploads in progress, by path."""

    def __init__(self) -> None:
        self._open: dict[str, OpenUpload] = {}

    def total_before(self, path: str, chunk: int, on_disk: int) -> int:
        """Bytes already received for ``path`` before this chunk. The first chunk starts
        again from nothing; a later chunk the ledger never saw (the server restarted) counts
        what is on disk."""
        if chunk == 1:
            return 0
        known = self._open.get(path)
        return known.total if known is not None else on_disk

    def received(self, path: str, total: int, now: float) -> None:
        self._open[path] = OpenUpload(total, now)

    def finish(self, path: str) -> OpenUpload | None:
        return self._open.pop(path, None)

    def abandoned(self, now: float, after: float) -> list[tuple[str, OpenUpload]]:
        """Uploads whose last chunk is more than ``after`` seconds old (oldest first)."""
        stale = [(p, u) for p, u in self._open.items() if now - u.last > after]
        return sorted(stale, key=lambda item: item[1].last)

    def __len__(self) -> int:
        return len(self._open)

"""Cap accounting for what a contents PUT writes (pure): the bytes a model carries, and the
running total of chunked uploads with their abandonment."""

from __future__ import annotations

import base64
import json

from cloisonne.workspace.guard.policy import GuardSettings, decide_upload
from cloisonne.workspace.guard.uploads import UploadLedger, incoming_bytes

S = GuardSettings(max_upload_bytes=1000)


def test_incoming_bytes_of_each_type() -> None:
    raw = bytes(range(256)) * 3 + b"ab"  # 770 bytes: base64 with padding
    b64 = base64.b64encode(raw).decode()
    assert incoming_bytes({"type": "file", "format": "base64", "content": b64}) == len(raw)
    wrapped = "\n".join(b64[i : i + 76] for i in range(0, len(b64), 76))
    assert incoming_bytes({"type": "file", "format": "base64", "content": wrapped}) == len(raw)
    assert incoming_bytes({"type": "file", "format": "text", "content": "é" * 10}) == 20
    nb = {"cells": [{"cell_type": "code", "source": "x" * 500}], "metadata": {}}
    size = incoming_bytes({"type": "notebook", "content": nb})
    assert size >= len(json.dumps(nb)) and size > 500
    assert incoming_bytes({"type": "directory"}) == 0
    assert incoming_bytes({"type": "file"}) == 0  # a new empty file


def test_running_total_across_chunks_reaches_the_cap() -> None:
    ledger = UploadLedger()
    totals = []
    for chunk in (1, 2, 3):
        total = ledger.total_before("big.bin", chunk, on_disk=0) + 400
        totals.append((total, decide_upload("big.bin", total, S).allowed))
        ledger.received("big.bin", total, now=float(chunk))
    # each chunk alone is under the cap; the third takes the total over it
    assert totals == [(400, True), (800, True), (1200, False)]
    refused = decide_upload("big.bin", 1200, S)
    assert (
        refused.status == 413 and "1200 bytes" in refused.reason and "1000-byte" in refused.reason
    )


def test_first_chunk_starts_again_and_unknown_chunks_count_the_disk() -> None:
    ledger = UploadLedger()
    ledger.received("a.bin", 900, now=0.0)
    assert ledger.total_before("a.bin", 1, on_disk=900) == 0  # a new upload of the same name
    assert ledger.total_before("b.bin", 4, on_disk=700) == 700  # seen before a server restart
    assert ledger.total_before("a.bin", 2, on_disk=0) == 900  # the ledger, not the disk
    assert ledger.finish("a.bin") is not None and ledger.finish("a.bin") is None
    assert len(ledger) == 0


def test_abandoned_after_the_configured_time_oldest_first() -> None:
    ledger = UploadLedger()
    ledger.received("old.bin", 10, now=100.0)
    ledger.received("newer.bin", 20, now=105.0)
    ledger.received("live.bin", 30, now=109.5)
    stale = ledger.abandoned(now=110.0, after=2.0)
    assert [(p, u.total) for p, u in stale] == [("old.bin", 10), ("newer.bin", 20)]
    assert ledger.abandoned(now=110.0, after=60.0) == []


def test_site_settings_in_the_servers_environment_outrank_the_config(monkeypatch) -> None:
    from cloisonne.workspace.guard import WorkspaceGuard

    monkeypatch.setenv("CLOISONNE_UPLOAD_MAX", "2M")
    monkeypatch.setenv("CLOISONNE_UPLOAD_ABANDON_SECONDS", "5")
    guard = WorkspaceGuard(max_upload_bytes=10, upload_abandon_seconds=99.0)
    assert guard.settings.max_upload_bytes == 2 * 1024**2
    assert (guard.upload_abandon_seconds, guard.abandon_check_seconds) == (5.0, 1.25)
    monkeypatch.delenv("CLOISONNE_UPLOAD_MAX")
    assert WorkspaceGuard(max_upload_bytes=10).settings.max_upload_bytes == 10

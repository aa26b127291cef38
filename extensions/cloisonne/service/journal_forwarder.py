"""Forward the workspaces' audit journals into the hash chain (see cloisonne.audit.journal).

Every ``interval`` seconds: for each journal file in the folder, read what lies beyond its
forwarded offset, append those events and move the offset in one transaction; a journal whose
server has stopped (renamed ``.jsonl.closed`` by the spawner) is removed once fully forwarded.
The guard serves reads only while this service answers its health check, which reports the
forwarder unhealthy when a pass fails (a database outage, say), so guarded reads fail closed.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from ..audit.journal import (
    CLOSED_SUFFIX,
    SUFFIX,
    JournalError,
    JournalHeader,
    journal_name,
    parse_header,
    parse_lines,
)
from ..audit.store import AuditStore, StatementMissed
from .outflow import OutflowBudget, account_outflow

log = logging.getLogger("cloisonne.service.journal")
READ_CHUNK = 4 * 1024**2


@dataclass
class _Journal:
    header: JournalHeader
    offset: int


@dataclass
class JournalForwarder:
    store: AuditStore
    folder: Path
    budget: OutflowBudget
    interval: float = 0.1
    last_ok: float = 0.0
    error: str = ""
    _known: dict[str, _Journal] = field(default_factory=dict)
    _bad: set[str] = field(default_factory=set)

    def healthy(self, max_age: float = 2.0) -> bool:
        return not self.error and time.monotonic() - self.last_ok < max_age

    async def run(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        while True:
            try:
                await self.forward_once()
                self.last_ok, self.error = time.monotonic(), ""
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - reported through health, retried
                if not self.error:
                    log.error("forwarding audit journals failed: %s", exc)
                self.error = f"{type(exc).__name__}: {exc}"
                self._known.clear()  # re-read offsets from the database after an outage
            await asyncio.sleep(self.interval)

    async def forward_once(self) -> int:
        """One pass over the folder; returns the number of events appended."""
        appended = 0
        with os.scandir(self.folder) as entries:
            files = [e for e in entries if e.name.endswith((SUFFIX, CLOSED_SUFFIX))]
        for entry in sorted(files, key=lambda e: e.name):
            try:
                size = entry.stat(follow_symlinks=False).st_size
            except FileNotFoundError:
                continue
            appended += await self._forward_file(entry.path, size)
        return appended

    async def _forward_file(self, path: str, size: int) -> int:
        name = journal_name(path)
        if name in self._bad:
            return 0
        closed = path.endswith(CLOSED_SUFFIX)
        known = self._known.get(name)
        if known is not None and not closed and size <= known.offset:
            # Nothing new: one stat, no open. With a hundred idle workspaces a pass costs a
            # hundred stats, not a hundred opens and reads every tenth of a second.
            return 0
        appended = 0
        try:
            with open(path, "rb") as f:
                journal = self._known.get(name) or self._register(name, f)
                if journal is None:
                    return 0
                while True:
                    f.seek(journal.offset)
                    data = f.read(READ_CHUNK)
                    batch = parse_lines(data, journal.header)
                    if not batch.consumed:
                        break
                    new = journal.offset + batch.consumed
                    try:
                        self.store.forward_journal(name, journal.offset, new, batch.events)
                    except StatementMissed:  # someone else forwarded it: start again from theirs
                        self._known.pop(name, None)
                        return appended
                    journal.offset = new
                    appended += len(batch.events)
                    await account_outflow(self.budget, self.store, journal.header.user,
                                          journal.header.project, batch.events)  # fmt: skip
                at_end = journal.offset >= os.fstat(f.fileno()).st_size
        except FileNotFoundError:
            return appended
        if closed and at_end:
            os.unlink(path)  # the file first: a crash here leaves a harmless offset row
            self.store.forget_journal(name)
            self._known.pop(name, None)
        return appended

    def _register(self, name: str, f: BinaryIO) -> _Journal | None:
        first = f.readline(64 * 1024)
        if not first.endswith(b"\n"):
            return None  # the spawner is still writing the header
        try:
            header = parse_header(first)
        except JournalError as exc:
            log.error("ignoring %s: %s", name, exc)
            self._bad.add(name)
            return None
        offset = self.store.journal_offset(name, len(first))
        journal = _Journal(header, offset)
        self._known[name] = journal
        return journal

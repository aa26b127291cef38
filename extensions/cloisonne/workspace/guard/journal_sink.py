"""The guard's fast audit path: append to the journal the spawner handed over, while the
service is known to be forwarding it (cloisonne.audit.journal explains the design).

``ServiceWatch`` keeps one connection to the service: a health request every ``interval``
seconds and, between requests, a pending read that returns the moment the service closes the
connection (a killed service is noticed within milliseconds, a hung one within ``max_age``).
While the service is not known healthy, appends raise ``AuditUnavailable`` (503): a journal
nobody forwards would hold events the audit log does not show yet.
"""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any
from urllib.parse import urlsplit

from ...audit.journal import JournalWriter
from .audit_client import AuditUnavailable, http_exchange

JOURNAL_FD_ENV = "CLOISONNE_AUDIT_JOURNAL_FD"


class ServiceWatch:
    def __init__(self, service_url: str, interval: float = 0.5, max_age: float = 2.0):
        parts = urlsplit(service_url + "api/health")
        self._host, self._port, self._path = parts.hostname or "", parts.port or 80, parts.path
        self.interval, self.max_age = interval, max_age
        self.last_ok = 0.0
        self.reason = "no answer from the audit service yet"
        self._task: asyncio.Task | None = None
        self._first = asyncio.Event()

    def healthy(self) -> bool:
        return bool(self.last_ok) and time.monotonic() - self.last_ok < self.max_age

    async def ensure(self) -> None:
        """Raise AuditUnavailable unless the service is known healthy (waiting for the very
        first answer after start)."""
        if self._task is None:
            self._task = asyncio.create_task(self._run())
        if not self._first.is_set():
            try:
                await asyncio.wait_for(self._first.wait(), self.max_age)
            except TimeoutError:
                pass
        if not self.healthy():
            raise AuditUnavailable(self.reason)

    async def _run(self) -> None:
        while True:
            try:
                await self._watch_one_connection()
            except (OSError, asyncio.IncompleteReadError, ValueError, IndexError) as exc:
                self._down(f"audit service: {exc or type(exc).__name__}")
            self._first.set()
            await asyncio.sleep(min(self.interval, 0.2))

    async def _watch_one_connection(self) -> None:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(self._host, self._port), self.max_age
        )
        try:
            while True:
                status, body, close = await asyncio.wait_for(
                    http_exchange(reader, writer, "GET", self._path, f"{self._host}:{self._port}"),
                    self.max_age,
                )
                if status == 200:
                    self.last_ok = time.monotonic()
                else:
                    self._down(f"audit service unhealthy ({status}): {body[:200]!r}")
                self._first.set()
                if close:
                    return
                try:  # returns b"" as soon as the service goes away
                    if not await asyncio.wait_for(reader.read(1), self.interval):
                        self._down("the audit service closed its connection")
                        return
                    return  # unexpected bytes: start a fresh connection
                except TimeoutError:
                    pass
        finally:
            writer.close()

    def _down(self, reason: str) -> None:
        self.last_ok, self.reason = 0.0, reason


class JournalSink:
    """Same interface as AuditClient: ``append`` / ``append_many`` return once recorded."""

    def __init__(self, writer: JournalWriter, watch: ServiceWatch):
        self.writer, self.watch = writer, watch

    async def append(self, event_type: str, **fields: Any) -> None:
        await self.append_many([(event_type, fields)])

    async def append_many(self, events: list[tuple[str, dict[str, Any]]]) -> None:
        if not self.watch.healthy():
            await self.watch.ensure()
        self.append_now(events)

    def append_now(self, events: list[tuple[str, dict[str, Any]]]) -> None:
        """Blocking append without the health check (before the event loop runs)."""
        try:
            self.writer.append_many(events)
        except OSError as exc:  # e.g. the hub's disk is full
            raise AuditUnavailable(f"audit journal: {exc}") from None


def journal_sink_from_env(service_url: str) -> JournalSink | None:
    """The sink for the journal descriptor the spawner passed, if any (none on Kubernetes)."""
    fd = os.environ.get(JOURNAL_FD_ENV)
    if not fd:
        return None
    writer = JournalWriter(int(fd))
    os.set_inheritable(writer.fd, False)  # kernels and terminals must never get it
    return JournalSink(writer, ServiceWatch(service_url))

"""The airlock's shell: stores files, runs the checks, applies transitions, records audit events.

Every change goes through the pure ``airlock.states.transition``; this module only loads the
request, asks it, saves the result and appends the events it returns. HTTP lives in
``airlock_api``; this class is what the API, the review pages and the benchmarks call.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.exc import IntegrityError

from ..airlock.effects import validate_files
from ..airlock.errors import AirlockError, InvalidRequest, PermissionDenied
from ..airlock.events import AirlockEvent, EventType
from ..airlock.model import SYSTEM, Action, Actor, Request, RequestFile, State
from ..airlock.permissions import can_view, is_requester
from ..airlock.repository import Conflict, Repository, Stored
from ..airlock.states import frozen_reason, new_request, transition
from ..airlock.storage import BlobStore
from ..airlock.visibility import view_for
from ..audit.events import NewEvent
from ..audit.store import AuditStore, StatementMissed
from ..sdc import check_request
from .directory import Directory
from .metrics import AirlockMetrics
from .settings import AirlockSettings

log = logging.getLogger("cloisonne.airlock")

UNCHECKED = (State.SUBMITTED, State.RESUBMITTED)


class NotFound(AirlockError):
    pass


class TooLarge(AirlockError):
    pass


@dataclass(frozen=True)
class Upload:
    name: str
    data: bytes
    sha256: str = ""
    """What the workspace computed; if given it must match the bytes received."""


def now() -> datetime:
    return datetime.now(UTC)


def new_id() -> str:
    return f"{now():%Y%m%d}-{secrets.token_hex(5)}"


def open_key(requester: str, project: str, files: Sequence[RequestFile], why: str) -> str:
    body = json.dumps([requester, project, sorted((f.name, f.sha256) for f in files), why])
    return hashlib.sha256(body.encode()).hexdigest()


class Airlock:
    def __init__(
        self,
        audit: AuditStore,
        directory: Directory,
        settings: AirlockSettings | None = None,
    ) -> None:
        self.settings = settings or AirlockSettings()
        self.audit = audit
        self.directory = directory
        self.repo = Repository(audit.engine)
        self.blobs = BlobStore(self.settings.store_dir)
        self.metrics = AirlockMetrics(self.repo.count_by_state, self.oldest_waiting)
        self._locks: dict[str, asyncio.Lock] = {}

    def oldest_waiting(self) -> float:
        """Seconds since the checks of the longest-waiting undecided request completed."""
        starts = []
        for s in self.repo.in_states((State.CHECKED, State.IN_REVIEW)):
            checks = [h.time for h in s.request.history if h.action == "check"]
            starts.append(checks[-1] if checks else s.request.updated_at)
        return max(((now() - t).total_seconds() for t in starts), default=0.0)

    # -- start-up ---------------------------------------------------------------------------

    async def recover(self) -> None:
        """After a restart: drop half-written files; check requests whose checks never ran."""
        removed = self.blobs.clean_partial()
        if removed:
            log.warning("removed %d partial file(s) left by an interrupted upload", removed)
        for stored in self.repo.in_states(UNCHECKED):
            await self.run_checks(stored.request.id)

    # -- helpers ----------------------------------------------------------------------------

    def _commit(self, statement: Any, events: Sequence[AirlockEvent]) -> None:
        """The request's row and its audit events, in one transaction: both or neither."""
        try:
            self.audit.append_many(
                [NewEvent(e.type.value, e.user, e.project, dict(e.fields)) for e in events],
                statements=[statement],
            )
        except StatementMissed:
            raise Conflict("the request changed meanwhile; try again") from None

    def _save(
        self, request: Request, version: int, events: Sequence[AirlockEvent],
        report: dict[str, Any] | None = None,
    ) -> int:  # fmt: skip
        self._commit(self.repo.save_statement(request, version, report), events)
        return version + 1

    def deny(self, actor: Actor, project: str, what: str, why: str) -> None:
        self.audit.append(
            EventType.ACCESS_DENIED.value, user=actor.name, project=project,
            fields={"action": what, "reason": why},
        )  # fmt: skip

    def _load(self, request_id: str, actor: Actor) -> Stored:
        stored = self.repo.get(request_id)
        if stored is None or not can_view(stored.request, actor):
            # the same answer whether it exists or not: no probing other projects' requests
            if stored is not None:
                self.deny(actor, stored.request.project, "view", "not the requester or a lead")
            raise NotFound(f"no request {request_id!r} that you may see")
        return stored

    def _lock(self, request_id: str) -> asyncio.Lock:
        return self._locks.setdefault(request_id, asyncio.Lock())

    # -- reading ----------------------------------------------------------------------------

    def view(self, stored: Stored, actor: Actor) -> dict[str, Any]:
        out = view_for(stored.request, actor)
        out["checks"] = stored.report
        return out

    def get(self, request_id: str, actor: Actor) -> dict[str, Any]:
        return self.view(self._load(request_id, actor), actor)

    def list(self, actor: Actor) -> list[dict[str, Any]]:
        rows = self.repo.visible_to(actor.name, actor.lead_of)
        return [self.view(s, actor) for s in rows if can_view(s.request, actor)]

    async def frozen(self, project_id: str) -> str:
        """'' unless the project is suspended or closed (then the airlock is frozen)."""
        return frozen_reason(await self.directory.project(project_id))

    async def download(self, request_id: str, name: str, actor: Actor) -> tuple[RequestFile, bytes]:
        """``read_file``, refused while the request's project is frozen."""
        project = self._load(request_id, actor).request.project
        frozen = await self.frozen(project)
        if frozen:
            self.deny(actor, project, "download", frozen)
            raise PermissionDenied(f"files cannot be downloaded: {frozen}")
        return self.read_file(request_id, name, actor)

    def read_file(self, request_id: str, name: str, actor: Actor) -> tuple[RequestFile, bytes]:
        """A released file for its requester; any file of the request for a reviewing lead.
        Each read is an audit event; the bytes are checked against their SHA-256."""
        stored = self._load(request_id, actor)
        request = stored.request
        f = request.file(name)
        if f is None:
            raise NotFound(f"request {request_id} has no file {name!r}")
        if is_requester(request, actor):
            if request.state is not State.RELEASED:
                self.deny(actor, request.project, "download", f"request is {request.state}")
                raise PermissionDenied(
                    f"request {request_id} is '{request.state.value}': files can be downloaded "
                    "only once it is released"
                )
            purpose = "release"
            self.metrics.downloads.inc()
        else:
            purpose = "review"
        data = self.blobs.read(f.sha256)
        self.audit.append(
            EventType.FILE_DOWNLOADED.value, user=actor.name, project=request.project,
            fields={"request": request.id, "file": f.name, "sha256": f.sha256, "size": f.size,
                    "purpose": purpose},
        )  # fmt: skip
        return f, data

    # -- writing ----------------------------------------------------------------------------

    def _store(self, uploads: Sequence[Upload]) -> list[RequestFile]:
        s = self.settings
        if not uploads:
            raise InvalidRequest("a request needs at least one file")
        if len(uploads) > s.max_files:
            raise TooLarge(f"{len(uploads)} files; at most {s.max_files} per request")
        total = 0
        for u in uploads:
            total += len(u.data)
            if len(u.data) > s.max_file_bytes:
                raise TooLarge(f"{u.name}: {len(u.data)} bytes, over the cap of "
                               f"{s.max_file_bytes}")  # fmt: skip
        if total > s.max_request_bytes:
            raise TooLarge(f"{total} bytes in all, over the cap of {s.max_request_bytes}")
        files = []
        for u in uploads:
            digest = hashlib.sha256(u.data).hexdigest()
            if u.sha256 and u.sha256 != digest:
                raise InvalidRequest(
                    f"{u.name}: the bytes received do not match the SHA-256 sent ({u.sha256}); "
                    "the file changed or was damaged in transit"
                )
            files.append(RequestFile(u.name, digest, len(u.data)))
        validate_files(files)  # names checked before anything is written
        for u in uploads:
            self.blobs.put(u.data)
        self.metrics.submitted_bytes.inc(total)
        return files

    async def submit(
        self,
        actor: Actor,
        project_id: str,
        uploads: Sequence[Upload],
        why: str,
        spawn_id: str = "",
    ) -> tuple[dict[str, Any], bool]:
        """Store the files, then create the request, then run the checks. Returns the request
        as the requester sees it and whether it was new (False: the same one is open)."""
        project = await self.directory.project(project_id)
        if project is None:
            raise NotFound(f"unknown project {project_id!r}")
        if not why.strip():
            raise InvalidRequest("say what the files are and why they need to leave (--why)")
        frozen = frozen_reason(project)
        if frozen:
            self.deny(actor, project.id, "submit", frozen)
            raise PermissionDenied(f"no new export request: {frozen}")
        files = await asyncio.to_thread(self._store, uploads)
        made = new_request(id=new_id(), project=project, requester=actor, files=files,
                           now=now(), context=why.strip(),
                           workspace=f"{actor.name}/{project.id}", spawn_id=spawn_id)  # fmt: skip
        key = open_key(actor.name, project.id, files, why.strip())
        try:
            self._commit(self.repo.insert_statement(made.request, key), made.events)
        except (IntegrityError, self.audit.engine.dialect.loaded_dbapi.IntegrityError):
            existing = self.repo.duplicate_of(key)
            if existing is None:
                raise
            return self.get(existing, actor), False
        await self.run_checks(made.request.id)
        return self.get(made.request.id, actor), True

    async def run_checks(self, request_id: str) -> None:
        async with self._lock(request_id):
            stored = self.repo.get(request_id)
            if stored is None or stored.request.state not in UNCHECKED:
                return
            request = stored.request
            started = time.perf_counter()
            report = await asyncio.to_thread(
                lambda: check_request([(f.name, self.blobs.read(f.sha256)) for f in request.files])
            )
            elapsed = time.perf_counter() - started
            self.metrics.check_seconds.observe(elapsed)
            done = transition(request, Action.CHECK, SYSTEM, now(),
                              checks=report.file_statuses())  # fmt: skip
            data = {**report.to_dict(), "round": request.round, "seconds": round(elapsed, 4)}
            self._save(done.request, stored.version, done.events, report=data)

    async def act(
        self,
        request_id: str,
        action: Action | str,
        actor: Actor,
        comment: str = "",
        **details: Any,
    ) -> dict[str, Any]:
        async with self._lock(request_id):
            stored = self._load(request_id, actor)
            frozen = await self.frozen(stored.request.project)
            try:
                done = transition(stored.request, action, actor, now(), comment, frozen=frozen,
                                  **details)  # fmt: skip
            except PermissionDenied as exc:
                self.deny(actor, stored.request.project, str(action), str(exc))
                raise
            request = done.request
            version = self._save(request, stored.version, done.events)
            await self._follow_up(request, version, stored.request, frozen)
        if request.state in UNCHECKED:
            await self.run_checks(request.id)
        return self.get(request_id, actor)

    async def resubmit(
        self, request_id: str, actor: Actor, uploads: Sequence[Upload] | None, comment: str = ""
    ) -> dict[str, Any]:
        """A returned request sent again, with its files replaced if new ones are given."""
        details: dict[str, Any] = {}
        if uploads:
            details["files"] = await asyncio.to_thread(self._store, uploads)
        return await self.act(request_id, Action.RESUBMIT, actor, comment, **details)

    async def _follow_up(
        self, request: Request, version: int, before: Request, frozen: str = ""
    ) -> None:
        """What the service does itself after a person acts: approve once every file is
        approved, then release (if configured); measure the wait for a decision."""
        if request.state is State.IN_REVIEW:
            try:
                approved = transition(request, Action.APPROVE, SYSTEM, now(), frozen=frozen)
            except AirlockError:
                return
            request = approved.request
            version = self._save(request, version, approved.events)
            if self.settings.auto_release:
                released = transition(request, Action.RELEASE, SYSTEM, now())
                request = released.request
                self._save(request, version, released.events)
        if request.state in (State.APPROVED, State.RELEASED, State.RETURNED, State.REJECTED) and (
            before.state in (State.CHECKED, State.IN_REVIEW)
        ):
            checked = [h.time for h in request.history if h.action == "check"]
            if checked:
                self.metrics.review_wait_seconds.observe(
                    (request.updated_at - checked[-1]).total_seconds()
                )


__all__ = ["Airlock", "Conflict", "NotFound", "TooLarge", "Upload"]

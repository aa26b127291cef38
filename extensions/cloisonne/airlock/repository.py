"""The airlock's own tables in the hub database (SQLite or PostgreSQL).

One row per request: a few indexed columns to select on, the whole request as JSON, the latest
check report as JSON. ``version`` makes every save conditional on the row not having changed
since it was read, so two concurrent actions cannot both apply to the same state.
``open_key`` (a digest of requester, project, files and justification) is unique while the
request is open: the same submission sent twice at once creates one request, not two.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    Column,
    Engine,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    insert,
    or_,
    select,
    update,
)

from .codec import request_from_dict, request_to_dict
from .model import FINAL_STATES, Request, State

metadata = MetaData()

requests_table = Table(
    "cloisonne_airlock_requests",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("project", String(255), nullable=False, index=True),
    Column("requester", String(255), nullable=False, index=True),
    Column("state", String(32), nullable=False, index=True),
    Column("version", Integer, nullable=False),
    Column("open_key", String(64), unique=True, nullable=True),
    Column("created_at", String(40), nullable=False),
    Column("updated_at", String(40), nullable=False),
    Column("body", Text, nullable=False),
    Column("report", Text, nullable=True),
)

CLOSED_STATES = FINAL_STATES | {State.RELEASED}
"""States in which the same files may be asked for again (open_key is cleared)."""


class Conflict(RuntimeError):
    """The request changed since it was read (another action got there first)."""


@dataclass(frozen=True)
class Stored:
    request: Request
    version: int
    report: dict[str, Any] | None


def _stored(row: Any) -> Stored:
    return Stored(
        request_from_dict(json.loads(row.body)),
        row.version,
        json.loads(row.report) if row.report else None,
    )


class Repository:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        metadata.create_all(engine)

    # Statements, so that the caller can run them in the same transaction as the audit events
    # they go with (``AuditStore.append_many(..., statements=[...])``).

    def insert_statement(self, request: Request, open_key: str) -> Any:
        """Add a new request (its files already stored); fails on an open duplicate."""
        return insert(requests_table).values(**self._row(request), version=1, open_key=open_key)

    def save_statement(
        self, request: Request, version: int, report: dict[str, Any] | None = None
    ) -> Any:
        """Store the new state; changes no row unless the row is still at ``version``."""
        values: dict[str, Any] = {**self._row(request), "version": version + 1}
        if report is not None:
            values["report"] = json.dumps(report)
        if request.state in CLOSED_STATES:
            values["open_key"] = None
        return (
            update(requests_table)
            .where(requests_table.c.id == request.id, requests_table.c.version == version)
            .values(**values)
        )

    def duplicate_of(self, open_key: str) -> str | None:
        with self.engine.connect() as conn:
            return conn.execute(
                select(requests_table.c.id).where(requests_table.c.open_key == open_key)
            ).scalar()

    def get(self, request_id: str) -> Stored | None:
        with self.engine.connect() as conn:
            row = conn.execute(
                select(requests_table).where(requests_table.c.id == request_id)
            ).first()
        return _stored(row) if row else None

    def visible_to(self, user: str, lead_of: Iterable[str]) -> list[Stored]:
        """Requests ``user`` made, and those of the projects they lead (newest first)."""
        query = select(requests_table).where(
            or_(requests_table.c.requester == user, requests_table.c.project.in_(list(lead_of)))
        )
        with self.engine.connect() as conn:
            rows = conn.execute(query.order_by(requests_table.c.created_at.desc())).all()
        return [_stored(r) for r in rows]

    def in_states(self, states: Iterable[State]) -> list[Stored]:
        query = select(requests_table).where(requests_table.c.state.in_([s.value for s in states]))
        with self.engine.connect() as conn:
            return [_stored(r) for r in conn.execute(query).all()]

    def count_by_state(self) -> Counter[str]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(requests_table.c.state)).all()
        return Counter(r.state for r in rows)

    @staticmethod
    def _row(request: Request) -> dict[str, Any]:
        return {
            "id": request.id,
            "project": request.project,
            "requester": request.requester,
            "state": request.state.value,
            "created_at": request.created_at.isoformat(),
            "updated_at": request.updated_at.isoformat(),
            "body": json.dumps(request_to_dict(request)),
        }

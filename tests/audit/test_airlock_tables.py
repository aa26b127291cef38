"""The airlock's tables in the hub database, written in the same transaction as the audit
events that go with each change (SQLite and PostgreSQL)."""

from __future__ import annotations

import pytest
from cloisonne.airlock.model import Actor, RequestFile, State
from cloisonne.airlock.repository import Repository
from cloisonne.airlock.states import new_request, transition
from cloisonne.audit.events import NewEvent
from cloisonne.audit.store import AuditStore, StatementMissed
from cloisonne.core.projects import Project
from cloisonne.service.airlock import now


def test_request_row_and_its_audit_events_are_written_together(db_url: str) -> None:
    audit = AuditStore(db_url)
    repo = Repository(audit.engine)
    try:
        made = new_request(id="r1", project=Project("cardio"), requester=Actor("alice"),
                           files=[RequestFile("t.csv", "a" * 64, 1)], now=now())  # fmt: skip
        audit.append_many([NewEvent("x")], statements=[repo.insert_statement(made.request, "k")])
        stored = repo.get("r1")
        assert stored.version == 1 and stored.request == made.request and audit.head().seq == 1
        # the same open request again: refused by the database, nothing written
        dbapi = audit.engine.dialect.loaded_dbapi
        with pytest.raises(dbapi.IntegrityError):
            made2 = new_request(id="r2", project=Project("cardio"), requester=Actor("alice"),
                                files=[RequestFile("t.csv", "a" * 64, 1)], now=now())  # fmt: skip
            audit.append_many([NewEvent("x2")],
                              statements=[repo.insert_statement(made2.request, "k")])  # fmt: skip
        assert repo.get("r2") is None and repo.duplicate_of("k") == "r1"
        # a save against a stale version changes no row: neither it nor its event is written
        with pytest.raises(StatementMissed):
            audit.append_many([NewEvent("y")], statements=[repo.save_statement(made.request, 7)])
        # an event that cannot be stored takes the row change with it
        with pytest.raises(ValueError):
            audit.append_many([NewEvent("z", fields={"bad": object()})],
                              statements=[repo.save_statement(made.request, 1)])  # fmt: skip
        assert repo.get("r1").version == 1 and audit.head().seq == 1
        # a withdrawn request frees its open key
        done = transition(made.request, "withdraw", Actor("alice"), now())
        audit.append_many([NewEvent("w")], statements=[repo.save_statement(done.request, 1)])
        assert repo.get("r1").request.state is State.WITHDRAWN and repo.duplicate_of("k") is None
        assert audit.verify().ok and repo.count_by_state() == {"withdrawn": 1}
    finally:
        audit.close()

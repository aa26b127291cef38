"""The workspace audit journal: its pure encoding, the guard's writer and the service's
forwarder into the chain (exactly once, on SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cloisonne.audit.events import NewEvent
from cloisonne.audit.journal import (
    CLOSED_SUFFIX,
    SUFFIX,
    JournalError,
    JournalHeader,
    JournalWriter,
    backlog,
    encode_events,
    parse_header,
    parse_lines,
)
from cloisonne.audit.store import AuditStore
from cloisonne.service.journal_forwarder import JournalForwarder
from cloisonne.service.outflow import OutflowBudget
from cloisonne.workspace.guard.audit_client import AuditUnavailable
from cloisonne.workspace.guard.journal_sink import JournalSink, ServiceWatch

HEADER = JournalHeader("alice", "cardio", "cardio")
NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)


def test_lines_become_events_of_the_headers_user_and_project() -> None:
    data = encode_events([("guard.read", {"path": "/a.csv", "user": "mallory"})], NOW)
    batch = parse_lines(data + b'{"type": "guard.re', HEADER)  # a line still being written
    assert batch.consumed == len(data)
    (event,) = batch.events
    assert (event.type, event.user, event.project, event.time) == (
        "guard.read", "alice", "cardio", NOW)  # fmt: skip
    assert event.fields["user"] == "mallory"  # a field, never the event's identity


@pytest.mark.parametrize(
    "line",
    [b"not json", b'{"type": "Bad Type"}', b'{"type": "x", "fields": [1]}', b"[]",
     b'{"type": "x", "fields": {"n": NaN}}'],
)  # fmt: skip
def test_a_malformed_line_is_kept_as_an_event_not_dropped(line: bytes) -> None:
    (event,) = parse_lines(line + b"\n", HEADER).events
    assert event.type == "audit.journal_malformed" and event.project == "cardio"
    assert event.fields["excerpt"] == line.decode()


def test_header_round_trip_and_bad_headers() -> None:
    assert parse_header(HEADER.encode()) == HEADER
    for bad in (b"{}", b"nope", b'{"cloisonne_journal": 1}'):
        with pytest.raises(JournalError):
            parse_header(bad)


def test_writer_needs_an_append_only_descriptor(tmp_path: Path) -> None:
    path = tmp_path / "j.jsonl"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT)
    try:
        with pytest.raises(JournalError, match="not opened for appending"):
            JournalWriter(fd)
    finally:
        os.close(fd)
    with pytest.raises(JournalError, match="not usable"):
        JournalWriter(987)


def test_a_full_disk_refuses_the_read(tmp_path: Path) -> None:
    """Failure injection: /dev/full stands for the hub's disk filling up."""
    full = os.open("/dev/full", os.O_WRONLY | os.O_APPEND)
    try:
        writer = JournalWriter.__new__(JournalWriter)
        writer.fd = full  # /dev/full is not a regular file, so bypass the constructor's check
        sink = JournalSink(writer, ServiceWatch("http://127.0.0.1:9/"))
        with pytest.raises(AuditUnavailable):
            sink.append_now([("guard.read", {"path": "/a"})])
    finally:
        os.close(full)


def test_nothing_is_appended_while_the_service_does_not_answer(tmp_path: Path) -> None:
    path = tmp_path / f"s{SUFFIX}"
    path.write_bytes(HEADER.encode())
    fd = os.open(path, os.O_WRONLY | os.O_APPEND)
    try:
        watch = ServiceWatch("http://127.0.0.1:9/", interval=0.05, max_age=0.3)
        sink = JournalSink(JournalWriter(fd), watch)
        with pytest.raises(AuditUnavailable):
            asyncio.run(sink.append("guard.read", path="/a"))
    finally:
        os.close(fd)
    assert path.read_bytes() == HEADER.encode()


def write_journal(folder: Path, name: str, events: list[tuple[str, dict]]) -> Path:
    path = folder / f"{name}{SUFFIX}"
    if not path.exists():
        path.write_bytes(HEADER.encode())
    with open(path, "ab") as f:
        f.write(encode_events(events, NOW))
    return path


def forwarder(store: AuditStore, folder: Path, budget: int = 10**9) -> JournalForwarder:
    return JournalForwarder(store, folder, OutflowBudget(budget))


def test_forwarded_exactly_once_across_restarts_and_races(db_url: str, tmp_path: Path) -> None:
    store = AuditStore(db_url)
    try:
        write_journal(tmp_path, "cln1-1", [("guard.read", {"n": i}) for i in range(3)])
        first = forwarder(store, tmp_path)
        assert asyncio.run(first.forward_once()) == 3
        assert asyncio.run(first.forward_once()) == 0
        write_journal(tmp_path, "cln1-1", [("guard.read", {"n": 3})])
        # a second forwarder (a restarted service) continues from the stored offset...
        assert asyncio.run(forwarder(store, tmp_path).forward_once()) == 1
        write_journal(tmp_path, "cln1-1", [("guard.read", {"n": 4})])
        # ...and the first, whose cached offset is now stale, appends nothing twice
        assert asyncio.run(first.forward_once()) == 0
        assert asyncio.run(first.forward_once()) == 1
        events = list(store.iter_events())
        assert [e.fields["n"] for e in events] == [0, 1, 2, 3, 4]
        assert all((e.user, e.project) == ("alice", "cardio") for e in events)
        assert store.verify().ok
        assert [j.pending for j in backlog(tmp_path, store.journal_offsets())] == [0]
    finally:
        store.close()


def test_a_closed_journal_is_removed_once_forwarded(db_url: str, tmp_path: Path) -> None:
    store = AuditStore(db_url)
    try:
        path = write_journal(tmp_path, "cln2-1", [("guard.read", {"n": 1})])
        closed = path.with_name(f"cln2-1{CLOSED_SUFFIX}")
        path.rename(closed)
        (waiting,) = backlog(tmp_path, store.journal_offsets())
        assert (waiting.name, waiting.closed, waiting.pending) == ("cln2-1", True, waiting.size)
        assert asyncio.run(forwarder(store, tmp_path).forward_once()) == 1
        assert not closed.exists() and "cln2-1" not in store.journal_offsets()
    finally:
        store.close()


def test_forwarded_meter_reports_raise_the_budget_alert(tmp_path: Path) -> None:
    store = AuditStore(f"sqlite:///{tmp_path}/a.db")
    try:
        write_journal(tmp_path, "cln3-1", [("guard.outflow", {"bytes": {"kernel": 600}})] * 2)
        asyncio.run(forwarder(store, tmp_path, budget=1000).forward_once())
        (alert,) = [e for e in store.iter_events() if e.type == "alert.outflow_budget"]
        assert (alert.project, alert.fields["total_bytes"]) == ("cardio", 1200)
    finally:
        store.close()


def test_meter_reports_count_in_the_day_their_event_carries(tmp_path: Path) -> None:
    from dataclasses import replace

    from cloisonne.service.outflow import account_outflow

    store = AuditStore(f"sqlite:///{tmp_path}/a.db")
    budget = OutflowBudget(1000)
    report = NewEvent("guard.outflow", "alice", "cardio", {"bytes": {"kernel": 600}}, NOW)
    next_day = replace(report, time=NOW + timedelta(days=1))
    try:
        for event in (report, next_day):  # 600 a day never crosses 1000
            store.append_many([event])
            asyncio.run(account_outflow(budget, store, "alice", "cardio", [event]))
        assert not [e for e in store.iter_events() if e.type == "alert.outflow_budget"]
        assert budget.totals[("cardio", "2026-11-29")] == 600
        assert budget.totals[("cardio", "2026-11-30")] == 600
    finally:
        store.close()


def test_an_outage_is_reported_unhealthy_then_recovers(tmp_path: Path) -> None:
    store = AuditStore(f"sqlite:///{tmp_path}/a.db")
    fwd = forwarder(store, tmp_path / "journals", budget=10**9)
    fwd.interval = 0.01

    async def scenario() -> tuple[bool, bool, bool]:
        task = asyncio.create_task(fwd.run())
        await asyncio.sleep(0.1)
        ok_before = fwd.healthy()
        fwd.folder.rename(tmp_path / "gone")
        await asyncio.sleep(0.1)
        down = fwd.healthy()
        (tmp_path / "gone").rename(fwd.folder)
        await asyncio.sleep(0.1)
        task.cancel()
        return ok_before, down, fwd.healthy()

    try:
        assert asyncio.run(scenario()) == (True, False, True)
    finally:
        store.close()


def test_journals_command_shows_what_is_not_in_the_chain_yet(tmp_path: Path) -> None:
    import io
    import json

    from cloisonne.platform.audit_cli import main

    url = f"sqlite:///{tmp_path}/a.db"
    store = AuditStore(url)
    folder = tmp_path / "journals"
    folder.mkdir()
    try:
        write_journal(folder, "cln4-1", [("guard.read", {"n": 1})])
        out = io.StringIO()
        assert main(["audit", "journals", "--db", url, "--dir", str(folder), "--json"], out) == 3
        (row,) = json.loads(out.getvalue())["journals"]
        assert (row["journal"], row["state"], row["registered"]) == ("cln4-1", "open", False)
        asyncio.run(forwarder(store, folder).forward_once())
        out = io.StringIO()
        assert main(["audit", "journals", "--db", url, "--dir", str(folder)], out) == 0
        assert "1 journals, 0 bytes not yet forwarded" in out.getvalue()
    finally:
        store.close()

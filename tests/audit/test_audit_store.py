"""The store on SQLite and PostgreSQL: append, read, head, verify, tampering, concurrency."""

from __future__ import annotations

import multiprocessing
import threading
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from cloisonne.audit.chain import GENESIS
from cloisonne.audit.events import NewEvent
from cloisonne.audit.store import AuditStore, AuditStoreError, events_table, head_table

T0 = datetime(2026, 11, 29, 12, 0, 0, tzinfo=UTC)


def fill(store: AuditStore, n: int) -> None:
    store.append_many(
        NewEvent("test.event", "alice", "diabete", {"i": i}, T0 + timedelta(minutes=i))
        for i in range(1, n + 1)
    )


def test_empty_store_has_genesis_head(db_url: str) -> None:
    store = AuditStore(db_url)
    assert store.head().seq == 0 and store.head().hash == GENESIS
    assert store.verify().ok and list(store.iter_events()) == []
    store.close()


def test_append_returns_the_stored_event_and_moves_the_head(db_url: str) -> None:
    store = AuditStore(db_url)
    first = store.append("workspace.started", user="alice", project="diabete", fields={"gpu": 1})
    second = store.append("airlock.request.submitted", user="bob", fields={"files": ["a.csv"]})
    assert (first.seq, second.seq) == (1, 2)
    assert first.prev_hash == GENESIS and second.prev_hash == first.hash
    assert store.head().hash == second.hash
    assert list(store.iter_events()) == [first, second]
    assert store.verify().ok
    store.close()


def test_reopening_continues_the_chain(db_url: str) -> None:
    AuditStore(db_url).append("a")
    store = AuditStore(db_url)  # create() again is harmless
    store.append("b")
    assert [e.seq for e in store.iter_events()] == [1, 2] and store.verify().ok
    store.close()


def test_iter_events_since_and_batches(db_url: str) -> None:
    store = AuditStore(db_url)
    fill(store, 25)
    assert [e.seq for e in store.iter_events(batch=7)] == list(range(1, 26))
    since = T0 + timedelta(minutes=20)
    assert [e.seq for e in store.iter_events(since=since, batch=2)] == [20, 21, 22, 23, 24, 25]
    assert [e.seq for e in store.iter_events(since="2026-11-29T12:24:00.000000Z")] == [24, 25]
    store.close()


def test_append_many_is_all_or_nothing(db_url: str) -> None:
    store = AuditStore(db_url)
    store.append("a")
    with pytest.raises(ValueError):
        store.append_many([NewEvent("b"), NewEvent("c", fields={"bad": object()})])
    assert store.head().seq == 1 and store.verify().ok
    store.close()


def _tamper(store: AuditStore, *statements: sa.Executable) -> None:
    with store.engine.begin() as conn:
        for statement in statements:
            conn.execute(statement)


def test_tamper_modified_event(db_url: str) -> None:
    store = AuditStore(db_url)
    fill(store, 10)
    t = events_table
    _tamper(store, sa.update(t).where(t.c.seq == 4).values(user="mallory"))
    result = store.verify()
    assert not result.ok and result.first_bad_seq == 4 and "modified" in result.reason
    store.close()


def test_tamper_deleted_event(db_url: str) -> None:
    store = AuditStore(db_url)
    fill(store, 10)
    _tamper(store, sa.delete(events_table).where(events_table.c.seq == 6))
    result = store.verify()
    assert not result.ok and result.first_bad_seq == 7
    store.close()


def test_tamper_reordered_events(db_url: str) -> None:
    store = AuditStore(db_url)
    fill(store, 10)
    t = events_table
    # Swap the contents of events 3 and 4 but keep their numbers (the order read back).
    rows = {r.seq: r._asdict() for r in store.engine.connect().execute(sa.select(t))}
    swap = []
    for seq, other in ((3, 4), (4, 3)):
        values = {k: v for k, v in rows[other].items() if k != "seq"}
        values["hash"] = f"tmp{seq}" if seq == 3 else values["hash"]
        swap.append(sa.update(t).where(t.c.seq == seq).values(**values))
    swap.append(sa.update(t).where(t.c.seq == 3).values(hash=rows[4]["hash"]))
    _tamper(store, *swap)
    result = store.verify()
    assert not result.ok and result.first_bad_seq == 3
    store.close()


def test_tamper_inserted_event(db_url: str) -> None:
    store = AuditStore(db_url)
    fill(store, 10)
    t = events_table
    # Make room after event 5 and insert a forged event 6 that links to event 5.
    ev5 = next(e for e in store.iter_events() if e.seq == 5)
    from cloisonne.audit.chain import canonical, make_event

    forged = make_event(seq=6, time=ev5.time, type="forged", prev_hash=ev5.hash)
    shift = [sa.update(t).where(t.c.seq == s).values(seq=s + 1) for s in range(10, 5, -1)]
    row = {**forged.body(), "fields": canonical(forged.fields).decode(), "hash": forged.hash}
    _tamper(store, *shift, sa.insert(t).values(**row))
    result = store.verify()
    assert not result.ok and result.first_bad_seq == 7
    store.close()


def test_tamper_deleted_last_event_caught_by_head_row(db_url: str) -> None:
    store = AuditStore(db_url)
    fill(store, 5)
    _tamper(store, sa.delete(events_table).where(events_table.c.seq == 5))
    result = store.verify()
    assert not result.ok and result.first_bad_seq == 5 and "head row" in result.reason
    store.close()


def test_rewritten_log_caught_by_anchor(db_url: str) -> None:
    store = AuditStore(db_url)
    fill(store, 5)
    anchor = store.head().hash
    _tamper(store, sa.delete(events_table), sa.update(head_table).values(seq=0, hash=GENESIS))
    store.append("forged")
    assert store.verify().ok  # internally consistent...
    assert not store.verify(expected_head=anchor).ok  # ...but not the log that was anchored
    store.close()


def test_missing_head_row_refuses_to_append(db_url: str) -> None:
    store = AuditStore(db_url)
    _tamper(store, sa.delete(head_table))
    with pytest.raises(AuditStoreError):
        store.append("x")
    store.close()


def test_concurrent_threads_never_fork_the_chain(db_url: str) -> None:
    store = AuditStore(db_url)
    errors: list[BaseException] = []

    def worker(k: int) -> None:
        try:
            for i in range(40):
                store.append("thread.event", user=f"t{k}", fields={"i": i})
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    result = store.verify()
    assert result.ok and result.count == 240
    store.close()


def _process_worker(url: str, k: int, n: int) -> None:
    store = AuditStore(url)  # every process starts on an empty database: create() races too
    for i in range(n):
        store.append("process.event", user=f"p{k}", fields={"i": i})
    store.close()


def test_concurrent_processes_from_an_empty_database_never_fork_the_chain(db_url: str) -> None:
    # fork, not spawn: the children build their own engines, and a spawned interpreter spends
    # ~1 s importing SQLAlchemy before it appends anything.
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_process_worker, args=(db_url, k, 50)) for k in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert [p.exitcode for p in procs] == [0, 0, 0, 0]
    store = AuditStore(db_url)
    result = store.verify()
    assert result.ok and result.count == 200
    users = {e.user for e in store.iter_events()}
    assert users == {"p0", "p1", "p2", "p3"}
    store.close()


def test_in_memory_sqlite_works() -> None:
    store = AuditStore("sqlite://")
    store.append("a")
    store.append("b")
    assert store.verify().ok and store.head().seq == 2


def test_bad_synchronous_mode_is_refused(tmp_path) -> None:
    with pytest.raises(ValueError):
        AuditStore(f"sqlite:///{tmp_path}/x.db", sqlite_synchronous="FAST")


def _forged_row(seq: int, prev_hash: str) -> dict:
    from cloisonne.audit.chain import canonical, make_event

    ev = make_event(seq=seq, time="2026-11-29T12:00:00.000000Z", type="forged", prev_hash=prev_hash)
    return {**ev.body(), "fields": canonical(ev.fields).decode(), "hash": ev.hash}


def test_tamper_event_before_the_first(db_url: str) -> None:
    store = AuditStore(db_url)
    fill(store, 3)
    _tamper(store, sa.insert(events_table).values(**_forged_row(0, GENESIS)))
    result = store.verify()
    assert not result.ok and result.first_bad_seq == 0 and result.position == 1
    store.close()


def test_tamper_event_beyond_the_head(db_url: str) -> None:
    store = AuditStore(db_url)
    fill(store, 3)
    head = store.head()
    _tamper(store, sa.insert(events_table).values(**_forged_row(4, head.hash)))
    result = store.verify()
    assert not result.ok and result.first_bad_seq == 4 and "beyond the head" in result.reason
    store.close()


def test_verify_while_others_append(db_url: str) -> None:
    store = AuditStore(db_url)
    fill(store, 50)
    stop = threading.Event()
    errors: list[BaseException] = []

    def appender() -> None:
        writer = AuditStore(db_url)
        try:
            while not stop.is_set():
                writer.append("live.event")
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            writer.close()

    thread = threading.Thread(target=appender)
    thread.start()
    try:
        results = [store.verify() for _ in range(15)]
    finally:
        stop.set()
        thread.join()
    assert not errors
    assert all(r.ok for r in results), [r.describe() for r in results if not r.ok]
    assert results[-1].count >= 50 and store.verify().ok
    store.close()

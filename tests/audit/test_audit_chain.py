"""The pure hash chain: encoding, hashing, and the four kinds of tampering verify must catch."""

from __future__ import annotations

import dataclasses
import hashlib
from datetime import UTC, datetime, timedelta, timezone

import pytest
from cloisonne.audit.chain import (
    GENESIS,
    Event,
    canonical,
    format_time,
    hash_body,
    make_event,
    parse_time,
    verify,
)

T0 = datetime(2026, 11, 29, 12, 0, 0, tzinfo=UTC)


def build(n: int) -> list[Event]:
    events, prev = [], GENESIS
    for i in range(1, n + 1):
        ev = make_event(
            seq=i,
            time=format_time(T0 + timedelta(seconds=i)),
            type="airlock.request.submitted" if i % 2 else "workspace.started",
            user=f"user{i % 3}",
            project="diabete",
            fields={"i": i, "note": "é", "nested": {"b": 1, "a": [1, 2]}},
            prev_hash=prev,
        )
        events.append(ev)
        prev = ev.hash
    return events


def test_canonical_encoding_is_sorted_compact_utf8() -> None:
    assert canonical({"b": 1, "a": "é", "c": [1, {"z": 0, "y": None}]}) == (
        '{"a":"é","b":1,"c":[1,{"y":null,"z":0}]}'.encode()
    )


def test_canonical_refuses_nan() -> None:
    with pytest.raises(ValueError):
        canonical({"x": float("nan")})


def test_make_event_refuses_non_json_fields() -> None:
    with pytest.raises(ValueError, match="plain JSON"):
        make_event(seq=1, time="t", type="x", fields={"when": T0}, prev_hash=GENESIS)


def test_event_hash_is_sha256_of_canonical_body() -> None:
    ev = build(1)[0]
    body = {
        "seq": 1,
        "time": ev.time,
        "type": ev.type,
        "user": ev.user,
        "project": "diabete",
        "fields": ev.fields,
        "prev_hash": GENESIS,
    }
    assert ev.hash == hashlib.sha256(canonical(body)).hexdigest() == hash_body(ev.body())


def test_fields_are_stored_as_hashed() -> None:
    ev = make_event(seq=1, time="t", type="x", fields={"t": (1, 2)}, prev_hash=GENESIS)
    assert ev.fields == {"t": [1, 2]}
    assert verify([ev]).ok


def test_time_format_is_fixed_width_utc() -> None:
    paris = timezone(timedelta(hours=1))
    text = format_time(datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=paris))
    assert text == "2026-01-02T02:04:05.000006Z"
    assert parse_time(text) == datetime(2026, 1, 2, 2, 4, 5, 6, tzinfo=UTC)
    with pytest.raises(ValueError):
        format_time(datetime(2026, 1, 1))


def test_sound_chain_verifies() -> None:
    events = build(10)
    result = verify(events)
    assert result.ok and result.count == 10 and result.head == events[-1].hash
    assert result.first_bad_seq is None
    assert verify([]).ok and verify([]).head == GENESIS


def test_modified_event_is_named() -> None:
    events = build(10)
    events[4] = dataclasses.replace(events[4], fields={**events[4].fields, "i": 999})
    result = verify(events)
    assert not result.ok and result.first_bad_seq == 5 and "modified" in result.reason


def test_modified_event_with_recomputed_hash_breaks_the_next_link() -> None:
    events = build(10)
    forged = make_event(seq=5, time=events[4].time, type="x", fields={}, prev_hash=events[3].hash)
    events[4] = forged
    result = verify(events)
    assert not result.ok and result.first_bad_seq == 6 and "prev_hash" in result.reason


def test_deleted_event_is_named() -> None:
    events = build(10)
    del events[3]
    result = verify(events)
    assert not result.ok and result.first_bad_seq == 5
    assert "4 was expected" in result.reason


def test_reordered_events_are_named() -> None:
    events = build(10)
    events[2], events[3] = events[3], events[2]
    result = verify(events)
    assert not result.ok and result.first_bad_seq == 4


def test_inserted_event_is_named() -> None:
    events = build(10)
    intruder = make_event(seq=4, time=events[3].time, type="x", prev_hash=events[2].hash)
    events.insert(3, intruder)
    result = verify(events)
    # The intruder fits after event 3, so the genuine event 4, read fifth, is the first that
    # does not.
    assert not result.ok and result.first_bad_seq == 4 and result.position == 5
    assert "position 5" in result.describe()


def test_renumbered_deletion_is_caught_by_the_link() -> None:
    events = build(6)
    del events[2]
    events[2:] = [dataclasses.replace(e, seq=e.seq - 1) for e in events[2:]]
    result = verify(events)
    assert not result.ok and result.first_bad_seq == 3


def test_expected_head_catches_a_rewritten_or_truncated_chain() -> None:
    events = build(10)
    anchor = events[6].hash
    assert verify(events, expected_head=anchor).ok
    assert not verify(events[:5], expected_head=anchor).ok
    rewritten = build(10)
    rewritten = [make_event(seq=1, time="t", type="forged", prev_hash=GENESIS)]
    result = verify(rewritten, expected_head=anchor)
    assert not result.ok and "anchored head" in result.reason


def test_verify_can_continue_from_a_checkpoint() -> None:
    events = build(10)
    assert verify(events[5:], start_seq=6, start_prev_hash=events[4].hash).ok

"""The audit hash chain: canonical encoding, event hashes and verification. Pure: no I/O.

Each event carries the hash of the one before it, so changing, deleting, reordering or inserting
an event breaks the chain from that point on and ``verify`` names the first event that does not
fit. Someone able to rewrite the whole table can recompute every hash after the one they change,
which is why the head hash is also exported for anchoring elsewhere (a ticket, a signed e-mail,
another site's log): ``verify(..., expected_head=...)`` then catches a rewritten chain too.

Canonical encoding: JSON with sorted keys, no whitespace, UTF-8 (not ASCII-escaped), no NaN or
infinities. Times are strings in one fixed format (``format_time``) so that they hash the same
in every database and sort as text in the same order as in time.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

GENESIS = "0" * 64
"""The ``prev_hash`` of the first event."""

TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"


def format_time(moment: datetime) -> str:
    """``2026-11-29T15:58:19.123456Z``: UTC, microseconds, fixed width (sorts as text)."""
    if moment.tzinfo is None:
        raise ValueError("audit times must be timezone-aware")
    return moment.astimezone(UTC).strftime(TIME_FORMAT)


def parse_time(text: str) -> datetime:
    return datetime.strptime(text, TIME_FORMAT).replace(tzinfo=UTC)


def canonical(value: Any) -> bytes:
    """The one byte encoding of a JSON value that hashes are computed over."""
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")


@dataclass(frozen=True)
class Event:
    """One audit event as stored. ``fields`` holds the event's details (JSON values only)."""

    seq: int
    time: str
    type: str
    user: str
    project: str
    fields: Mapping[str, Any]
    prev_hash: str
    hash: str

    def body(self) -> dict[str, Any]:
        """Everything the hash covers: all columns but the hash itself."""
        return event_body(
            self.seq, self.time, self.type, self.user, self.project, self.fields, self.prev_hash
        )

    def to_dict(self) -> dict[str, Any]:
        return {**self.body(), "hash": self.hash}


def event_body(
    seq: int,
    time: str,
    type: str,
    user: str,
    project: str,
    fields: Mapping[str, Any],
    prev_hash: str,
) -> dict[str, Any]:
    return {
        "seq": seq,
        "time": time,
        "type": str(type),
        "user": user,
        "project": project,
        "fields": dict(fields),
        "prev_hash": prev_hash,
    }


def hash_body(body: Mapping[str, Any]) -> str:
    return hashlib.sha256(canonical(body)).hexdigest()


def make_event(
    *,
    seq: int,
    time: str,
    type: str,
    user: str = "",
    project: str = "",
    fields: Mapping[str, Any] | None = None,
    prev_hash: str,
) -> Event:
    """Build the next event of a chain; raises ValueError if ``fields`` is not plain JSON."""
    fields = dict(fields or {})
    body = event_body(seq, time, type, user, project, fields, prev_hash)
    # Round-trip through the canonical form so that what is stored is exactly what was hashed
    # (tuples become lists, and a value JSON cannot carry fails here rather than at verify).
    try:
        encoded = canonical(body)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"audit event fields must be plain JSON values: {exc}") from None
    stored = json.loads(encoded)
    return Event(
        seq=seq,
        time=time,
        type=str(type),
        user=user,
        project=project,
        fields=stored["fields"],
        prev_hash=prev_hash,
        hash=hashlib.sha256(encoded).hexdigest(),
    )


@dataclass(frozen=True)
class VerifyResult:
    """The outcome of checking a chain.

    ``count`` and ``head``: how many events were sound, and the hash of the last of them.
    ``first_bad_seq``: the sequence number of the first event that does not fit (as stored: a
    moved event keeps its number), ``position`` its place in the order read (1-based). Both are
    None when the chain is sound.
    """

    ok: bool
    count: int
    head: str
    first_bad_seq: int | None = None
    reason: str = ""
    position: int | None = None

    def describe(self) -> str:
        if self.ok:
            return f"ok: {self.count} events, head {self.head}"
        where = f"event {self.first_bad_seq}"
        if self.position is not None and self.position != self.first_bad_seq:
            where += f" (read in position {self.position})"
        return f"BAD at {where}: {self.reason}"


def verify(
    events: Iterable[Event],
    *,
    start_seq: int = 1,
    start_prev_hash: str = GENESIS,
    expected_head: str | None = None,
) -> VerifyResult:
    """Check a whole chain, in the order given, and name the first event that does not fit.

    Checks, for each event: its sequence number is the next one (a gap means a deletion or an
    insertion, a step back a reordering); its ``prev_hash`` is the previous event's hash; its
    hash is the hash of its content. ``expected_head`` is a head exported earlier: the chain
    must contain it (an event with that hash), else it was rewritten or cut short.
    """
    expected_seq, prev_hash = start_seq, start_prev_hash
    count = 0
    head_seen = expected_head is None or expected_head == start_prev_hash
    for event in events:
        reason = ""
        if event.seq != expected_seq:
            reason = f"sequence number {event.seq} where {expected_seq} was expected"
        elif event.prev_hash != prev_hash:
            reason = "prev_hash does not match the previous event's hash"
        elif hash_body(event.body()) != event.hash:
            reason = "content does not match its hash (modified)"
        if reason:
            return VerifyResult(
                False, count, prev_hash, first_bad_seq=event.seq, reason=reason,
                position=count + 1,
            )  # fmt: skip
        count += 1
        expected_seq, prev_hash = event.seq + 1, event.hash
        head_seen = head_seen or event.hash == expected_head
    if not head_seen:
        return VerifyResult(
            False,
            count,
            prev_hash,
            first_bad_seq=expected_seq,
            reason="the anchored head hash is not in the chain (rewritten or truncated)",
        )
    return VerifyResult(True, count, prev_hash)

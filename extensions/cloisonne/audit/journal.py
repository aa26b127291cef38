"""The audit journal: a workspace's write-ahead log of guard decisions, on the hub's disk.

Why: a guarded read must be recorded before it is served, and a round trip to the service
(HTTP, token check, chained commit) cost 2-3 ms against a 2-4 ms read. Instead the spawner
(root) creates one journal file per server outside the sandbox, writes a header naming the
server's user and project, and hands the server an append-only file descriptor. The guard
writes each event as one JSON line with one ``write(2)`` (O_APPEND: lines never interleave),
which takes microseconds and is durable against any process crash once it returns. The
cloisonne service forwards journals into the hash chain, moving a per-journal offset in the
same transaction as the events (exactly once, even across a service restart).

Why it is safe: the file and its folder are root-only and never mounted into the sandbox; the
descriptor is not inherited by kernels or terminals (close-on-exec), and the server is
non-dumpable, so code in a kernel (same uid) cannot reach it through /proc either. The user
and project of every event come from the header the spawner wrote, never from the lines.

This module is pure (bytes in, events out) apart from ``JournalWriter``, a thin ``write(2)``.
"""

from __future__ import annotations

import fcntl
import json
import os
import stat
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from .chain import canonical, format_time, parse_time
from .events import EVENT_TYPE, NewEvent

HEADER_KEY = "cloisonne_journal"
SUFFIX = ".jsonl"
CLOSED_SUFFIX = ".jsonl.closed"
MAX_LINE = 256 * 1024  # as the service's HTTP body limit


class JournalError(ValueError):
    pass


@dataclass(frozen=True)
class JournalHeader:
    """Who writes a journal: set by the spawner, the only source of user and project."""

    user: str
    project: str
    server: str

    def encode(self) -> bytes:
        body = {HEADER_KEY: 1, "user": self.user, "project": self.project, "server": self.server}
        return json.dumps(body, sort_keys=True).encode() + b"\n"


def parse_header(first_line: bytes) -> JournalHeader:
    try:
        body = json.loads(first_line)
        if body.get(HEADER_KEY) != 1:
            raise JournalError("the first line is not a cloisonne journal header")
        return JournalHeader(str(body["user"]), str(body["project"]), str(body["server"]))
    except (ValueError, KeyError, AttributeError, TypeError) as exc:
        raise JournalError(f"bad journal header: {exc}") from None


def encode_events(events: list[tuple[str, Mapping[str, Any]]], now: datetime) -> bytes:
    """The lines a writer appends: one JSON object per event, ending with a newline."""
    stamp = format_time(now)
    return b"".join(
        json.dumps({"type": t, "time": stamp, "fields": dict(f)}, separators=(",", ":")).encode()
        + b"\n"
        for t, f in events
    )


@dataclass(frozen=True)
class Batch:
    events: list[NewEvent]
    consumed: int  # bytes of complete lines read (a partial last line waits for the next read)


def parse_lines(data: bytes, header: JournalHeader) -> Batch:
    """Turn the complete lines of ``data`` into events for ``header``'s user and project.

    A line that is not a valid event is not dropped: it becomes an ``audit.journal_malformed``
    event carrying its beginning, so a broken writer shows in the log instead of vanishing.
    """
    end = data.rfind(b"\n") + 1
    if end == 0 and len(data) > MAX_LINE:  # a line too long to ever complete: cut it off
        end = len(data)
    events = []
    for line in data[:end].split(b"\n"):
        if not line.strip():
            continue
        events.append(_event(line, header))
    return Batch(events, end)


def _event(line: bytes, header: JournalHeader) -> NewEvent:
    try:
        body = json.loads(line)
        kind, fields, stamp = body["type"], body.get("fields") or {}, body.get("time")
        if not isinstance(kind, str) or not EVENT_TYPE.match(kind):
            raise JournalError(f"bad event type {kind!r}")
        if not isinstance(fields, dict):
            raise JournalError("'fields' is not an object")
        canonical(fields)  # NaN or infinities would fail the chained append, every time
        when = parse_time(stamp) if isinstance(stamp, str) else None
        return NewEvent(kind, header.user, header.project, fields, when)
    except (ValueError, KeyError, TypeError) as exc:
        return NewEvent(
            "audit.journal_malformed", header.user, header.project,
            {"server": header.server, "error": str(exc)[:200],
             "excerpt": line[:200].decode("utf-8", "replace")},
        )  # fmt: skip


def journal_name(path: str) -> str:
    """The journal's key (its file name without suffix), the same before and after closing."""
    base = os.path.basename(path)
    for suffix in (CLOSED_SUFFIX, SUFFIX):
        if base.endswith(suffix):
            return base[: -len(suffix)]
    raise JournalError(f"{path} is not a journal file")


@dataclass(frozen=True)
class Backlog:
    """One journal file and how much of it the chain does not hold yet."""

    name: str
    closed: bool
    size: int
    forwarded: int | None  # None: the forwarder has not seen it yet

    @property
    def pending(self) -> int:
        return self.size - (self.forwarded or 0)


def backlog(folder: str | os.PathLike, offsets: Mapping[str, int]) -> list[Backlog]:
    """The journal files in ``folder``, by name, against the store's ``offsets``."""
    try:
        entries = sorted(os.scandir(folder), key=lambda e: e.name)
    except FileNotFoundError:
        return []
    out = []
    for entry in entries:
        if not entry.name.endswith((SUFFIX, CLOSED_SUFFIX)):
            continue
        try:
            size = entry.stat().st_size
        except FileNotFoundError:  # forwarded and removed meanwhile
            continue
        name = journal_name(entry.name)
        out.append(Backlog(name, entry.name.endswith(CLOSED_SUFFIX), size, offsets.get(name)))
    return out


class JournalWriter:
    """Appends events to an inherited O_APPEND descriptor (the guard's side)."""

    def __init__(self, fd: int):
        flags = _check_fd(fd)
        if not flags & os.O_APPEND:
            raise JournalError(f"audit journal descriptor {fd} is not opened for appending")
        self.fd = fd

    def append_many(self, events: list[tuple[str, Mapping[str, Any]]]) -> None:
        data = encode_events(events, datetime.now(UTC))
        written = os.write(self.fd, data)
        if written != len(data):  # a short write on a regular file: the disk is full
            raise OSError(f"short write to the audit journal ({written} of {len(data)} bytes)")


def _check_fd(fd: int) -> int:
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise JournalError(f"audit journal descriptor {fd} is not a regular file")
        return fcntl.fcntl(fd, fcntl.F_GETFL)
    except OSError as exc:
        raise JournalError(f"audit journal descriptor {fd} is not usable: {exc}") from None

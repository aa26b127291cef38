"""Closing a project: the step plan, its recorded progress, the archive manifest and the
deletion certificate.

Close-out is a list of steps run in order; after each the shell records it as done in the
progress file, so a close interrupted half-way resumes at the first step not done and a
re-run of a finished close does nothing. Every step is written to be safe to run twice (a
folder already deleted is recorded as such). What was deleted is measured *before* deletion
(files, bytes, a SHA-256 over the sorted file digests) and ends up in the certificate the site
hands to the data controller, with the audit head at the time.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field, replace
from typing import Any

STEPS: tuple[tuple[str, str], ...] = (
    ("close", "mark the project closed: spawns refused, airlock frozen"),
    ("stop", "stop every workspace of the project"),
    ("withdraw", "withdraw every open export request, with the reason"),
    ("archive", "write the read-only archive: released outputs, requests and decisions, "
                "the audit slice with the chain head, the manifest"),
    ("delete", "delete the extract, homes, shared folder, S3 bucket and credential, "
               "unreleased airlock files and the pseudonymisation key"),
    ("certify", "write the deletion certificate"),
)  # fmt: skip
STEP_NAMES = tuple(name for name, _ in STEPS)
FORMAT = "cloisonne-closeout/1"


@dataclass(frozen=True)
class Deleted:
    """One thing deleted, as measured just before: e.g. the homes folder of the project."""

    what: str
    location: str
    files: int = 0
    bytes: int = 0
    sha256: str = ""  # over the sorted "<sha256>  <relative path>" lines ('' if nothing)
    note: str = ""


@dataclass(frozen=True)
class Progress:
    project: str
    by: str
    reason: str
    started_at: str
    done: tuple[str, ...] = ()
    deleted: tuple[Deleted, ...] = ()
    results: Mapping[str, Any] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=1, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Progress:
        data = json.loads(text)
        data["done"] = tuple(data["done"])
        data["deleted"] = tuple(Deleted(**d) for d in data["deleted"])
        return cls(**data)


def next_step(progress: Progress) -> str | None:
    """The first step not done yet, or None when the close is complete."""
    for name in STEP_NAMES:
        if name not in progress.done:
            return name
    return None


def mark_done(
    progress: Progress, step: str, *, deleted: Iterable[Deleted] = (), **results: Any
) -> Progress:
    """``progress`` with ``step`` done; steps must complete in order."""
    if step != next_step(progress):
        raise ValueError(f"step {step!r} is not the next one ({next_step(progress)!r})")
    return replace(
        progress,
        done=(*progress.done, step),
        deleted=(*progress.deleted, *deleted),
        results={**progress.results, step: results} if results else progress.results,
    )


def tree_digest(entries: Iterable[tuple[str, str]]) -> str:
    """One SHA-256 over (relative path, file SHA-256) pairs, independent of listing order."""
    lines = sorted(f"{digest}  {path}" for path, digest in entries)
    if not lines:
        return ""
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()


def manifest(files: Mapping[str, tuple[int, str]], project: str, audit_head: Mapping) -> dict:
    """The archive's manifest: every file's size and SHA-256, the audit head it ends at."""
    return {
        "format": FORMAT,
        "project": project,
        "audit_head": dict(audit_head),
        "files": {name: {"bytes": size, "sha256": digest}
                  for name, (size, digest) in sorted(files.items())},
    }  # fmt: skip


def certificate(progress: Progress, *, audit_head: Mapping, archive_sha256: str, now: str) -> dict:
    """The deletion certificate: what was deleted, its sizes and hashes before deletion, when,
    by whom, and the audit head, to hand to the data controller."""
    return {
        "format": FORMAT,
        "certificate": "deletion of research project data",
        "project": progress.project,
        "closed_by": progress.by,
        "reason": progress.reason,
        "started_at": progress.started_at,
        "completed_at": now,
        "deleted": [asdict(d) for d in progress.deleted],
        "totals": {
            "files": sum(d.files for d in progress.deleted),
            "bytes": sum(d.bytes for d in progress.deleted),
        },
        "archive_manifest_sha256": archive_sha256,
        "audit_head": dict(audit_head),
    }

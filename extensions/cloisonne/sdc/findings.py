"""What the checks report: findings, per-file reports and the request's report (JSON-ready).

Statuses are ACRO's: ``pass``, ``review`` (a person must look), ``fail`` (a rule is broken).
They inform reviewers; they never approve anything.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any


class Status(StrEnum):
    PASS = "pass"
    REVIEW = "review"
    FAIL = "fail"

    @property
    def rank(self) -> int:
        return _RANK[self]


_RANK = {Status.PASS: 0, Status.REVIEW: 1, Status.FAIL: 2}


def worst(statuses: Iterable[Status]) -> Status:
    return max(statuses, key=lambda s: s.rank, default=Status.PASS)


@dataclass(frozen=True)
class Finding:
    """One rule's result on one place (a file, a table, a column, a notebook output).

    ``cells`` counts the offending cells where that applies; ``locations`` names the first few.
    """

    rule: str
    status: Status
    message: str
    location: str = ""
    cells: int = 0
    locations: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["status"] = self.status.value
        out["locations"] = list(self.locations)
        return out


@dataclass(frozen=True)
class FileReport:
    name: str
    size: int
    kind: str
    findings: tuple[Finding, ...] = ()
    acro: tuple[dict[str, Any], ...] = ()
    """ACRO's outputs that list this file (uid, status, summary), shown beside our findings."""

    @property
    def status(self) -> Status:
        return worst(f.status for f in self.findings)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "size": self.size,
            "kind": self.kind,
            "status": self.status.value,
            "findings": [f.to_dict() for f in self.findings],
            "acro": [dict(a) for a in self.acro],
        }


@dataclass(frozen=True)
class RequestReport:
    files: tuple[FileReport, ...]
    acro_outputs: tuple[dict[str, Any], ...] = field(default=())
    """Every output of the request's ACRO results.json, if there is one."""

    @property
    def status(self) -> Status:
        return worst(f.status for f in self.files)

    def file_statuses(self) -> dict[str, str]:
        """name -> status: what ``airlock`` attaches to the request's files."""
        return {f.name: f.status.value for f in self.files}

    def to_dict(self) -> dict[str, Any]:
        return {
            "status": self.status.value,
            "files": [f.to_dict() for f in self.files],
            "acro_outputs": [dict(a) for a in self.acro_outputs],
        }

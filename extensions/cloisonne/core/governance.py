"""A project's governance record: what it is authorised for, by whom, for how long, and its state.

A health-data hub hosts a project for a purpose, a period and a dataset, under an authorisation
(in France a CNIL decision) and a data controller's agreement. These fields live in the project
group's properties beside its settings, so they are edited in the same admin panel and validated
by the same code on load and at spawn. ``state`` (active, suspended, closed) with who, why and
when is the project's lifecycle state; the rules that act on all this are in ``lifecycle.py``.
"""

from __future__ import annotations

import datetime
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

ACTIVE, SUSPENDED, CLOSED = "active", "suspended", "closed"
STATES = (ACTIVE, SUSPENDED, CLOSED)

# The fields a site may declare mandatory (``ProjectRules.mandatory_fields``); ``datasets`` is
# satisfied by datasets or an extract.
GOVERNANCE_FIELDS = (
    "purpose", "authorisations", "legal_basis", "controller", "investigator", "start", "end",
    "outputs",
)  # fmt: skip
MANDATORY_CHOICES = (*GOVERNANCE_FIELDS, "datasets")
STATE_KEYS = ("state", "state_why", "state_by", "state_at")
GOVERNANCE_KEYS = set(GOVERNANCE_FIELDS) | set(STATE_KEYS)
AUTHORISATION_KEYS = {"reference", "authority", "date"}
MAX_TEXT = 2000


class GovernanceError(ValueError):
    """A governance field is wrong; ``field`` names it (projects.py adds file and project)."""

    def __init__(self, message: str, *, field: str):
        self.reason, self.field = message, field
        super().__init__(f"field '{field}': {message}")


@dataclass(frozen=True)
class Authorisation:
    """One authorisation: e.g. CNIL decision DR-2024-123 of 2024-03-01."""

    reference: str
    authority: str
    date: datetime.date | None = None

    def to_property(self) -> dict[str, str]:
        out = {"reference": self.reference, "authority": self.authority}
        if self.date:
            out["date"] = self.date.isoformat()
        return out

    def __str__(self) -> str:
        when = f" of {self.date.isoformat()}" if self.date else ""
        return f"{self.authority} {self.reference}{when}"


@dataclass(frozen=True)
class Governance:
    purpose: str = ""
    authorisations: tuple[Authorisation, ...] = ()
    legal_basis: str = ""
    controller: str = ""
    investigator: str = ""
    start: datetime.date | None = None
    end: datetime.date | None = None
    outputs: tuple[str, ...] = ()
    state: str = ACTIVE
    state_why: str = ""
    state_by: str = ""
    state_at: str = ""

    def to_properties(self) -> dict[str, Any]:
        """JSON-native group properties: only the fields that are set (a project without
        governance keeps exactly the properties it had)."""
        out: dict[str, Any] = {
            "purpose": self.purpose,
            "authorisations": [a.to_property() for a in self.authorisations],
            "legal_basis": self.legal_basis,
            "controller": self.controller,
            "investigator": self.investigator,
            "start": self.start.isoformat() if self.start else "",
            "end": self.end.isoformat() if self.end else "",
            "outputs": list(self.outputs),
            "state": "" if self.state == ACTIVE else self.state,
            "state_why": self.state_why,
            "state_by": self.state_by,
            "state_at": self.state_at,
        }
        return {k: v for k, v in out.items() if v}


def _text(value: object, *, field: str) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise GovernanceError(f"expected text, got {value!r}", field=field)
    text = value.strip()
    if len(text) > MAX_TEXT:
        raise GovernanceError(f"at most {MAX_TEXT} characters, got {len(text)}", field=field)
    return text


def parse_date(value: object, *, field: str) -> datetime.date | None:
    if value is None or value == "":
        return None
    if isinstance(value, datetime.datetime):
        return value.date()
    if isinstance(value, datetime.date):
        return value
    try:
        return datetime.date.fromisoformat(str(value).strip())
    except ValueError:
        raise GovernanceError(
            f"expected a date such as 2026-01-31, got {value!r}", field=field
        ) from None


def _json_if_text(value: object, *, field: str, opener: str) -> object:
    """The admin panel edits properties as text: accept JSON in a string."""
    if isinstance(value, str) and value.strip().startswith(opener):
        try:
            return json.loads(value)
        except json.JSONDecodeError as exc:
            raise GovernanceError(f"not valid JSON: {exc.msg}", field=field) from None
    return value


def _authorisations(value: object) -> tuple[Authorisation, ...]:
    field = "authorisations"
    if value is None or value == "" or value == []:
        return ()
    value = _json_if_text(value, field=field, opener="[")
    if isinstance(value, dict):
        value = [value]
    if not isinstance(value, list):
        raise GovernanceError(
            "expected a list of {reference, authority, date}, e.g. "
            '[{"reference": "DR-2024-123", "authority": "CNIL", "date": "2024-03-01"}]',
            field=field,
        )
    out = []
    for index, item in enumerate(value):
        where = f"{field}[{index}]"
        if not isinstance(item, dict):
            raise GovernanceError("expected a mapping with reference and authority", field=where)
        unknown = sorted(set(item) - AUTHORISATION_KEYS)
        if unknown:
            raise GovernanceError(
                f"unknown key(s) {', '.join(unknown)}; allowed: "
                f"{', '.join(sorted(AUTHORISATION_KEYS))}",
                field=f"{where}.{unknown[0]}",
            )
        reference = _text(item.get("reference"), field=f"{where}.reference")
        authority = _text(item.get("authority"), field=f"{where}.authority")
        if not reference or not authority:
            missing = "reference" if not reference else "authority"
            raise GovernanceError("is required", field=f"{where}.{missing}")
        out.append(
            Authorisation(reference, authority, parse_date(item.get("date"), field=f"{where}.date"))
        )
    return tuple(out)


def _outputs(value: object) -> tuple[str, ...]:
    field = "outputs"
    if value is None or value == "":
        return ()
    value = _json_if_text(value, field=field, opener="[")
    if isinstance(value, str):
        return tuple(part.strip() for part in value.split(",") if part.strip())
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise GovernanceError(f"expected a list of descriptions, got {value!r}", field=field)
    return tuple(_text(v, field=field) for v in value if v.strip())


def parse_governance(properties: Mapping[str, Any]) -> Governance:
    """Validate the governance and state keys of a project's properties."""
    start = parse_date(properties.get("start"), field="start")
    end = parse_date(properties.get("end"), field="end")
    if start and end and start > end:
        raise GovernanceError(f"the end {end} is before the start {start}", field="end")
    state = _text(properties.get("state"), field="state") or ACTIVE
    if state not in STATES:
        raise GovernanceError(f"expected one of {', '.join(STATES)}, got {state!r}", field="state")
    return Governance(
        purpose=_text(properties.get("purpose"), field="purpose"),
        authorisations=_authorisations(properties.get("authorisations")),
        legal_basis=_text(properties.get("legal_basis"), field="legal_basis"),
        controller=_text(properties.get("controller"), field="controller"),
        investigator=_text(properties.get("investigator"), field="investigator"),
        start=start,
        end=end,
        outputs=_outputs(properties.get("outputs")),
        state=state,
        state_why=_text(properties.get("state_why"), field="state_why"),
        state_by=_text(properties.get("state_by"), field="state_by"),
        state_at=_text(properties.get("state_at"), field="state_at"),
    )


def check_mandatory_names(names: object) -> list[str]:
    """Validate a site's list of mandatory fields (the trait's validator calls this)."""
    if not isinstance(names, list | tuple):
        raise ValueError(f"expected a list of field names, got {names!r}")
    unknown = [n for n in names if n not in MANDATORY_CHOICES]
    if unknown:
        raise ValueError(
            f"unknown mandatory field(s) {', '.join(map(str, unknown))}; "
            f"choose from {', '.join(MANDATORY_CHOICES)}"
        )
    return list(dict.fromkeys(names))

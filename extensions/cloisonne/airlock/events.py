"""Audit event types of the airlock, and the events a transition emits (not yet stored).

The shell appends each ``AirlockEvent`` to the audit store
(``store.append(event.type, user=..., project=..., fields=...)``) in the same breath as it
saves the new request.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class EventType(StrEnum):
    REQUEST_SUBMITTED = "airlock.request.submitted"
    REQUEST_CHECKED = "airlock.request.checked"
    REVIEW_SUBMITTED = "airlock.review.submitted"
    REQUEST_APPROVED = "airlock.request.approved"
    REQUEST_RELEASED = "airlock.request.released"
    REQUEST_RETURNED = "airlock.request.returned"
    REQUEST_RESUBMITTED = "airlock.request.resubmitted"
    REQUEST_REJECTED = "airlock.request.rejected"
    REQUEST_WITHDRAWN = "airlock.request.withdrawn"
    REQUEST_REVOKED = "airlock.request.revoked"
    # Emitted by the shell, not by transitions: a released file downloaded, an action refused.
    FILE_DOWNLOADED = "airlock.file.downloaded"
    ACCESS_DENIED = "airlock.access.denied"


@dataclass(frozen=True)
class AirlockEvent:
    type: EventType
    user: str
    project: str
    fields: Mapping[str, Any]

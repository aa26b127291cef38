"""The export request and what hangs off it: files, reviews, votes, history. Pure dataclasses.

A request holds several files, each identified by its name in the request and stored under
its SHA-256. Reviews come in rounds: returning a request and resubmitting it starts a new
round, and only the current round's votes count. Everything is immutable; ``states.transition``
returns a new request.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any


class State(StrEnum):
    SUBMITTED = "submitted"
    CHECKED = "checked"
    IN_REVIEW = "in_review"
    APPROVED = "approved"
    RELEASED = "released"
    RETURNED = "returned"
    RESUBMITTED = "resubmitted"
    REJECTED = "rejected"
    WITHDRAWN = "withdrawn"
    REVOKED = "revoked"


FINAL_STATES = frozenset({State.REJECTED, State.WITHDRAWN, State.REVOKED})
"""No action leaves these."""

DECIDED_STATES = frozenset(
    {State.RETURNED, State.REJECTED, State.APPROVED, State.RELEASED, State.REVOKED}
)
"""A decision was taken on the current round: reviews are no longer blinded."""


class Action(StrEnum):
    """What can be done to a request; ``states.VALID_STATE_TRANSITIONS`` says when and by whom."""

    CHECK = "check"
    REVIEW = "review"
    APPROVE = "approve"
    RELEASE = "release"
    RETURN = "return"
    RESUBMIT = "resubmit"
    REJECT = "reject"
    WITHDRAW = "withdraw"
    REVOKE = "revoke"


class Decision(StrEnum):
    """A reviewer's vote on one file."""

    APPROVE = "approve"
    REQUEST_CHANGES = "request_changes"
    REJECT = "reject"


class FileStatus(StrEnum):
    """A file's standing in the current round, from the votes in."""

    PENDING = "pending"
    APPROVED = "approved"
    CHANGES_REQUESTED = "changes_requested"
    REJECTED = "rejected"


SHA256 = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True)
class Actor:
    """Who acts. ``lead_of`` lists the projects this user leads (from the ``-leads`` groups).

    The shell resolves groups from JupyterHub when the request comes in; the core never looks
    them up, so the same call gives the same answer in tests.
    """

    name: str
    lead_of: frozenset[str] = frozenset()
    is_system: bool = False


SYSTEM = Actor("cloisonne", is_system=True)
"""The airlock service itself: attaches check reports, may approve and release."""


@dataclass(frozen=True)
class RequestFile:
    name: str
    sha256: str
    size: int
    check_status: str = ""
    """The automated checks' status for this file (pass / review / fail); informs reviewers."""


@dataclass(frozen=True)
class FileVote:
    decision: Decision
    comment: str = ""


@dataclass(frozen=True)
class Review:
    """One reviewer's votes on every file of the request, submitted at once."""

    reviewer: str
    round: int
    votes: tuple[tuple[str, FileVote], ...]
    submitted_at: datetime
    comment: str = ""

    def vote_for(self, file_name: str) -> FileVote | None:
        return dict(self.votes).get(file_name)


@dataclass(frozen=True)
class HistoryEntry:
    time: datetime
    actor: str
    action: str
    from_state: State | None
    to_state: State
    comment: str = ""

    def to_dict(self) -> dict[str, Any]:
        """JSON form (used by the stored codec and, with blinding, by what viewers see)."""
        return {
            "time": self.time.isoformat(),
            "actor": self.actor,
            "action": self.action,
            "from": self.from_state.value if self.from_state else None,
            "to": self.to_state.value,
            "comment": self.comment,
        }


@dataclass(frozen=True)
class Request:
    id: str
    project: str
    requester: str
    files: tuple[RequestFile, ...]
    state: State
    approvals_required: int
    """Taken from the project when the request is made, so a later change to the project's
    setting does not move the goalposts of a review under way."""
    created_at: datetime
    updated_at: datetime
    round: int = 1
    reviews: tuple[Review, ...] = ()
    history: tuple[HistoryEntry, ...] = ()
    context: str = ""
    """What the requester says the outputs are (shown to reviewers)."""
    workspace: str = ""
    """The workspace ("user/project") the request came from, proven by the service."""
    spawn_id: str = ""
    """Which start of that workspace (cloisonne.core.workspace_proof)."""

    def file(self, name: str) -> RequestFile | None:
        return next((f for f in self.files if f.name == name), None)

    @property
    def current_reviews(self) -> tuple[Review, ...]:
        return tuple(r for r in self.reviews if r.round == self.round)


def file_status(request: Request, name: str) -> FileStatus:
    """A file is approved when the required number of independent reviewers approved it and no
    reviewer of the round rejected it or asked for changes (disagreement goes to discussion,
    not to a vote count)."""
    votes = [v for r in request.current_reviews if (v := r.vote_for(name)) is not None]
    if any(v.decision is Decision.REJECT for v in votes):
        return FileStatus.REJECTED
    if any(v.decision is Decision.REQUEST_CHANGES for v in votes):
        return FileStatus.CHANGES_REQUESTED
    approvals = sum(v.decision is Decision.APPROVE for v in votes)
    return FileStatus.APPROVED if approvals >= request.approvals_required else FileStatus.PENDING


def all_files_approved(request: Request) -> bool:
    """The request may be approved only when every one of its files is."""
    return all(file_status(request, f.name) is FileStatus.APPROVED for f in request.files)


def reviews_in(request: Request) -> int:
    return len(request.current_reviews)

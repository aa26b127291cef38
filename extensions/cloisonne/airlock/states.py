"""The airlock's state machine, written as one table, and ``transition`` that applies it.

::

    submitted ─check─► checked ─review─► in_review ─approve─► approved ─release─► released
        ▲                 │                 │  ▲ review            │                  │
        │                 └──return/reject──┤                      └──────revoke──────┴─► revoked
    (new_request)                           ├─return─► returned ─resubmit─► resubmitted ─check─►
                                            └─reject─► rejected
    withdraw (by the requester) from any state before a decision ─► withdrawn

``transition`` is pure: it checks the table (is the action allowed from this state), the
permission function named in the table (may this actor do it), the comment rule, and the
action's own condition (e.g. every file approved), then returns the new request together with
the audit events to record. Anything wrong raises an ``AirlockError`` that says what and why.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum
from typing import Any

from . import permissions as can
from .events import AirlockEvent, EventType
from .model import (
    SHA256,
    Actor,
    Decision,
    FileVote,
    HistoryEntry,
    Request,
    RequestFile,
    Review,
    State,
    all_files_approved,
    file_status,
)


class Action(StrEnum):
    CHECK = "check"
    REVIEW = "review"
    APPROVE = "approve"
    RELEASE = "release"
    RETURN = "return"
    RESUBMIT = "resubmit"
    REJECT = "reject"
    WITHDRAW = "withdraw"
    REVOKE = "revoke"


@dataclass(frozen=True)
class Rule:
    sources: frozenset[State]
    target: State
    allowed: Callable[[Request, Actor], bool]
    who: str
    event: EventType
    needs_comment: bool = False


S = State
_BEFORE_DECISION = frozenset({S.SUBMITTED, S.CHECKED, S.IN_REVIEW, S.RETURNED, S.RESUBMITTED})

VALID_STATE_TRANSITIONS: Mapping[Action, Rule] = {
    Action.CHECK: Rule(
        frozenset({S.SUBMITTED, S.RESUBMITTED}), S.CHECKED,
        can.can_attach_checks, "the airlock service", EventType.REQUEST_CHECKED,
    ),
    Action.REVIEW: Rule(
        frozenset({S.CHECKED, S.IN_REVIEW}), S.IN_REVIEW,
        can.can_review, "a lead of the project, not the requester, who has not yet reviewed "
        "this round", EventType.REVIEW_SUBMITTED,
    ),
    Action.APPROVE: Rule(
        frozenset({S.IN_REVIEW}), S.APPROVED,
        can.can_approve, "a lead of the project other than the requester, or the airlock service",
        EventType.REQUEST_APPROVED,
    ),
    Action.RELEASE: Rule(
        frozenset({S.APPROVED}), S.RELEASED,
        can.can_release, "a lead of the project other than the requester, or the airlock service",
        EventType.REQUEST_RELEASED,
    ),
    Action.RETURN: Rule(
        frozenset({S.CHECKED, S.IN_REVIEW}), S.RETURNED,
        can.can_return, "a lead of the project other than the requester",
        EventType.REQUEST_RETURNED, needs_comment=True,
    ),
    Action.RESUBMIT: Rule(
        frozenset({S.RETURNED}), S.RESUBMITTED,
        can.can_resubmit, "the requester", EventType.REQUEST_RESUBMITTED,
    ),
    Action.REJECT: Rule(
        frozenset({S.CHECKED, S.IN_REVIEW}), S.REJECTED,
        can.can_reject, "a lead of the project other than the requester",
        EventType.REQUEST_REJECTED, needs_comment=True,
    ),
    Action.WITHDRAW: Rule(
        _BEFORE_DECISION, S.WITHDRAWN,
        can.can_withdraw, "the requester", EventType.REQUEST_WITHDRAWN,
    ),
    Action.REVOKE: Rule(
        frozenset({S.APPROVED, S.RELEASED}), S.REVOKED,
        can.can_revoke, "a lead of the project other than the requester",
        EventType.REQUEST_REVOKED, needs_comment=True,
    ),
}  # fmt: skip
"""The whole state machine. Requests are created in ``submitted`` by ``new_request``."""


def next_states(state: State) -> frozenset[State]:
    """OpenSAFELY's view of the same table: where a request in ``state`` can go next."""
    return frozenset(r.target for r in VALID_STATE_TRANSITIONS.values() if state in r.sources)


def next_actions(request: Request, actor: Actor) -> frozenset[Action]:
    """The actions ``actor`` could take now (what the review page offers as buttons)."""
    if not can.can_view(request, actor):
        return frozenset()
    out = {a for a, r in VALID_STATE_TRANSITIONS.items() if request.state in r.sources}
    out = {a for a in out if VALID_STATE_TRANSITIONS[a].allowed(request, actor)}
    if Action.APPROVE in out and not all_files_approved(request):
        out.discard(Action.APPROVE)
    return frozenset(out)


class AirlockError(ValueError):
    """A request or an action on it is not valid; the message says why."""


class InvalidTransition(AirlockError):
    pass


class PermissionDenied(AirlockError):
    pass


class CommentRequired(AirlockError):
    pass


class NotReady(AirlockError):
    pass


class InvalidRequest(AirlockError):
    pass


@dataclass(frozen=True)
class Transition:
    request: Request
    events: tuple[AirlockEvent, ...]


_UNSAFE_NAME = re.compile(r"(^/|\\|(^|/)\.\.?(/|$)|//|[\x00-\x1f])")


def _validate_files(files: Iterable[RequestFile]) -> tuple[RequestFile, ...]:
    files = tuple(files)
    if not files:
        raise InvalidRequest("a request needs at least one file")
    names = [f.name for f in files]
    if len(set(names)) != len(names):
        raise InvalidRequest("a file name appears twice in the request")
    for f in files:
        if not f.name or _UNSAFE_NAME.search(f.name):
            raise InvalidRequest(f"file name {f.name!r} is not a plain relative path")
        if not SHA256.match(f.sha256):
            raise InvalidRequest(f"file {f.name!r}: sha256 must be 64 lowercase hex digits")
        if f.size < 0:
            raise InvalidRequest(f"file {f.name!r}: negative size")
    return files


def _files_field(files: Iterable[RequestFile]) -> list[dict[str, Any]]:
    return [{"name": f.name, "sha256": f.sha256, "size": f.size} for f in files]


def _event(request: Request, type: EventType, actor: Actor, **fields: Any) -> AirlockEvent:
    return AirlockEvent(type, actor.name, request.project, {"request": request.id, **fields})


def new_request(
    *,
    id: str,
    project: str,
    requester: Actor,
    files: Iterable[RequestFile],
    approvals_required: int,
    now: datetime,
    context: str = "",
) -> Transition:
    """Create a request in ``submitted`` (``approvals_required`` from the Project)."""
    if requester.is_system:
        raise PermissionDenied("the airlock service cannot make export requests")
    if approvals_required < 1:
        raise InvalidRequest("approvals_required must be at least 1")
    checked_files = _validate_files(files)
    request = Request(
        id=id,
        project=project,
        requester=requester.name,
        files=checked_files,
        state=State.SUBMITTED,
        approvals_required=approvals_required,
        created_at=now,
        updated_at=now,
        history=(HistoryEntry(now, requester.name, "submit", None, State.SUBMITTED),),
        context=context,
    )
    event = _event(
        request, EventType.REQUEST_SUBMITTED, requester,
        to=State.SUBMITTED.value, round=1, approvals_required=approvals_required,
        files=_files_field(checked_files),
    )  # fmt: skip
    return Transition(request, (event,))


# Each action's own checks and changes beyond the table: (request, actor, now, **kwargs) ->
# (changes to the request, extra event fields).
_Effect = Callable[..., tuple[dict[str, Any], dict[str, Any]]]


def _check(
    request: Request, actor: Actor, now: datetime, *, checks: Mapping[str, str] | None = None
) -> tuple[dict[str, Any], dict[str, Any]]:
    checks = dict(checks or {})
    names = {f.name for f in request.files}
    if set(checks) != names:
        missing, extra = sorted(names - set(checks)), sorted(set(checks) - names)
        raise InvalidRequest(
            f"check statuses must cover exactly the request's files (missing: {missing}, "
            f"unknown: {extra})"
        )
    bad = {v for v in checks.values() if v not in {"pass", "review", "fail"}}
    if bad:
        raise InvalidRequest(f"check status must be pass, review or fail, got {sorted(bad)}")
    files = tuple(replace(f, check_status=checks[f.name]) for f in request.files)
    return {"files": files}, {"checks": checks}


def _review(
    request: Request,
    actor: Actor,
    now: datetime,
    *,
    votes: Mapping[str, FileVote] | None = None,
    comment: str = "",
) -> tuple[dict[str, Any], dict[str, Any]]:
    votes = dict(votes or {})
    names = [f.name for f in request.files]
    missing = [n for n in names if n not in votes]
    unknown = sorted(set(votes) - set(names))
    if missing or unknown:
        raise InvalidRequest(
            f"a review votes on every file of the request, once (missing: {missing}, "
            f"unknown: {unknown})"
        )
    for name, vote in votes.items():
        if vote.decision is not Decision.APPROVE and not vote.comment.strip():
            raise CommentRequired(
                f"file {name!r}: a vote to {vote.decision.value.replace('_', ' ')} needs a "
                "comment saying why"
            )
    review = Review(
        reviewer=actor.name,
        round=request.round,
        votes=tuple((n, votes[n]) for n in names),
        submitted_at=now,
        comment=comment,
    )
    fields = {
        "round": request.round,
        "votes": {n: {"decision": votes[n].decision.value, "comment": votes[n].comment}
                  for n in names},
    }  # fmt: skip
    return {"reviews": (*request.reviews, review)}, fields


def _approve(request: Request, actor: Actor, now: datetime) -> tuple[dict, dict]:
    if not all_files_approved(request):
        pending = {
            f.name: file_status(request, f.name).value
            for f in request.files
            if file_status(request, f.name).value != "approved"
        }
        raise NotReady(
            f"request {request.id} needs {request.approvals_required} independent approval(s) "
            f"of every file and none rejected; not yet: {pending}"
        )
    return {}, {"round": request.round, "files": _files_field(request.files)}


def _release(request: Request, actor: Actor, now: datetime) -> tuple[dict, dict]:
    return {}, {"files": _files_field(request.files)}


def _resubmit(
    request: Request,
    actor: Actor,
    now: datetime,
    *,
    files: Iterable[RequestFile] | None = None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """A new round: the files may be replaced (a file dropped or fixed); old votes stay on
    record but no longer count."""
    new_files = _validate_files(request.files if files is None else files)
    new_files = tuple(replace(f, check_status="") for f in new_files)
    changes = {"files": new_files, "round": request.round + 1}
    return changes, {"round": request.round + 1, "files": _files_field(new_files)}


def _plain(request: Request, actor: Actor, now: datetime) -> tuple[dict, dict]:
    return {}, {}


_EFFECTS: Mapping[Action, _Effect] = {
    Action.CHECK: _check,
    Action.REVIEW: _review,
    Action.APPROVE: _approve,
    Action.RELEASE: _release,
    Action.RETURN: _plain,
    Action.RESUBMIT: _resubmit,
    Action.REJECT: _plain,
    Action.WITHDRAW: _plain,
    Action.REVOKE: _plain,
}

_DETAILS: Mapping[Action, frozenset[str]] = {
    Action.CHECK: frozenset({"checks"}),
    Action.REVIEW: frozenset({"votes"}),
    Action.RESUBMIT: frozenset({"files"}),
}


def transition(
    request: Request,
    action: Action | str,
    actor: Actor,
    now: datetime,
    comment: str = "",
    **details: Any,
) -> Transition:
    """Apply ``action`` by ``actor`` at ``now``; return the new request and its audit events.

    ``details`` by action: ``check``: ``checks={file: "pass"|"review"|"fail"}``;
    ``review``: ``votes={file: FileVote}`` (every file once); ``resubmit``: optionally
    ``files=[RequestFile, ...]`` to replace the request's files.
    """
    try:
        action = Action(action)
    except ValueError:
        raise InvalidTransition(f"unknown action {action!r}") from None
    rule = VALID_STATE_TRANSITIONS[action]
    if not can.can_view(request, actor) or not rule.allowed(request, actor):
        raise PermissionDenied(
            f"{actor.name} may not {action.value} request {request.id}: only {rule.who} may"
        )
    if request.state not in rule.sources:
        allowed = ", ".join(sorted(s.value for s in rule.sources))
        raise InvalidTransition(
            f"cannot {action.value} request {request.id}: it is '{request.state.value}'; "
            f"{action.value} is allowed from: {allowed}"
        )
    if rule.needs_comment and not comment.strip():
        raise CommentRequired(f"to {action.value} a request, say why in a comment")
    unexpected = sorted(set(details) - _DETAILS.get(action, frozenset()))
    if unexpected:
        raise InvalidRequest(f"{action.value} takes no {', '.join(unexpected)}")
    if action is Action.REVIEW:
        details["comment"] = comment
    changes, fields = _EFFECTS[action](request, actor, now, **details)
    entry = HistoryEntry(now, actor.name, action.value, request.state, rule.target, comment)
    new = replace(
        request,
        **changes,
        state=rule.target,
        updated_at=now,
        history=(*request.history, entry),
    )
    event_fields = {"from": request.state.value, "to": rule.target.value, **fields}
    if comment:
        event_fields["comment"] = comment
    return Transition(new, (_event(new, rule.event, actor, **event_fields),))

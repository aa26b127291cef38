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

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from ..core.projects import Project
from . import permissions as can
from .effects import DETAILS, EFFECTS, files_field, validate_files
from .errors import (
    AirlockError,
    CommentRequired,
    InvalidRequest,
    InvalidTransition,
    NotReady,
    PermissionDenied,
)
from .events import AirlockEvent, EventType
from .model import Action, Actor, HistoryEntry, Request, RequestFile, State, all_files_approved

__all__ = [
    "ALLOWED_WHILE_FROZEN",
    "VALID_STATE_TRANSITIONS",
    "Action",
    "AirlockError",
    "CommentRequired",
    "InvalidRequest",
    "InvalidTransition",
    "NotReady",
    "PermissionDenied",
    "Rule",
    "Transition",
    "frozen_reason",
    "new_request",
    "next_actions",
    "next_states",
    "transition",
]


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
        can.can_withdraw, "the requester (or the airlock service, closing the project)",
        EventType.REQUEST_WITHDRAWN,
    ),
    Action.REVOKE: Rule(
        frozenset({S.APPROVED, S.RELEASED}), S.REVOKED,
        can.can_revoke, "a lead of the project other than the requester",
        EventType.REQUEST_REVOKED, needs_comment=True,
    ),
}  # fmt: skip
"""The whole state machine. Requests are created in ``submitted`` by ``new_request``."""

# A suspended or closed project's airlock is frozen: nothing leaves (no approval, release or
# download) and nothing new comes in; requests can still be closed or a release taken back.
ALLOWED_WHILE_FROZEN = frozenset(
    {Action.CHECK, Action.REVIEW, Action.RETURN, Action.REJECT, Action.WITHDRAW, Action.REVOKE}
)


def frozen_reason(project: Project | None) -> str:
    """Why ``project``'s airlock is frozen ('' if it is not)."""
    if project is None or project.governance.state in ("", "active"):
        return ""
    why = f" ({project.governance.state_why})" if project.governance.state_why else ""
    return f"project '{project.id}' is {project.governance.state}{why}: its airlock is frozen"


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


@dataclass(frozen=True)
class Transition:
    request: Request
    events: tuple[AirlockEvent, ...]


def _event(request: Request, type: EventType, actor: Actor, **fields: Any) -> AirlockEvent:
    return AirlockEvent(type, actor.name, request.project, {"request": request.id, **fields})


def new_request(
    *,
    id: str,
    project: Project,
    requester: Actor,
    files: Iterable[RequestFile],
    now: datetime,
    context: str = "",
    workspace: str = "",
    spawn_id: str = "",
) -> Transition:
    """Create a request in ``submitted`` for ``project``, whose ``approvals_required`` (the
    number of independent approvals every file needs) is copied onto the request."""
    approvals_required = project.approvals_required
    if requester.is_system:
        raise PermissionDenied("the airlock service cannot make export requests")
    if approvals_required < 1:
        raise InvalidRequest("approvals_required must be at least 1")
    checked_files = validate_files(files)
    request = Request(
        id=id,
        project=project.id,
        requester=requester.name,
        files=checked_files,
        state=State.SUBMITTED,
        approvals_required=approvals_required,
        created_at=now,
        updated_at=now,
        history=(HistoryEntry(now, requester.name, "submit", None, State.SUBMITTED),),
        context=context,
        workspace=workspace,
        spawn_id=spawn_id,
    )
    event = _event(
        request, EventType.REQUEST_SUBMITTED, requester,
        to=State.SUBMITTED.value, round=1, approvals_required=approvals_required,
        files=files_field(checked_files),
        workspace={"server": workspace, "spawn_id": spawn_id},
    )  # fmt: skip
    return Transition(request, (event,))


def transition(
    request: Request,
    action: Action | str,
    actor: Actor,
    now: datetime,
    comment: str = "",
    *,
    frozen: str = "",
    **details: Any,
) -> Transition:
    """Apply ``action`` by ``actor`` at ``now``; return the new request and its audit events.

    ``frozen`` (``frozen_reason`` of the request's project) refuses every action not in
    ``ALLOWED_WHILE_FROZEN``.

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
    if frozen and action not in ALLOWED_WHILE_FROZEN:
        raise PermissionDenied(f"cannot {action.value} request {request.id}: {frozen}")
    if request.state not in rule.sources:
        allowed = ", ".join(sorted(s.value for s in rule.sources))
        raise InvalidTransition(
            f"cannot {action.value} request {request.id}: it is '{request.state.value}'; "
            f"{action.value} is allowed from: {allowed}"
        )
    if rule.needs_comment and not comment.strip():
        raise CommentRequired(f"to {action.value} a request, say why in a comment")
    unexpected = sorted(set(details) - DETAILS.get(action, frozenset()))
    if unexpected:
        raise InvalidRequest(f"{action.value} takes no {', '.join(unexpected)}")
    if action is Action.REVIEW:
        details["comment"] = comment
    changes, fields = EFFECTS[action](request, actor, now, **details)
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

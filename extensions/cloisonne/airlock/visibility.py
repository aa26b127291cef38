"""What a given viewer may see of a request (the review pages render this, nothing else).

Blinding: while a round is under review, a reviewer sees their own votes and how many reviews
are in, but not the other reviewers' votes or comments until the required number of reviews is
in (or a decision is taken), so each first opinion is independent. The requester sees the
file-level outcome and the reviewers' comments once a decision is taken, without who said
what. Anyone else sees nothing: ``view_for`` raises ``PermissionDenied``.
"""

from __future__ import annotations

from typing import Any

from . import permissions as can
from .errors import PermissionDenied
from .model import DECIDED_STATES, Actor, Request, Review, file_status, reviews_in
from .states import next_actions


def reviews_unblinded(request: Request) -> bool:
    return reviews_in(request) >= request.approvals_required or request.state in DECIDED_STATES


def _review_dict(review: Review, *, with_name: bool) -> dict[str, Any]:
    out: dict[str, Any] = {
        "round": review.round,
        "submitted_at": review.submitted_at.isoformat(),
        "comment": review.comment,
        "votes": {
            name: {"decision": vote.decision.value, "comment": vote.comment}
            for name, vote in review.votes
        },
    }
    if with_name:
        out["reviewer"] = review.reviewer
    return out


def view_for(request: Request, viewer: Actor) -> dict[str, Any]:
    """The request as ``viewer`` may see it, as JSON-ready data."""
    if not can.can_view(request, viewer):
        raise PermissionDenied(f"{viewer.name} may not see request {request.id}")
    is_requester = can.is_requester(request, viewer)
    unblinded = reviews_unblinded(request)
    decided = request.state in DECIDED_STATES
    view: dict[str, Any] = {
        "id": request.id,
        "project": request.project,
        "requester": request.requester,
        "state": request.state.value,
        "round": request.round,
        "context": request.context,
        "workspace": request.workspace,
        "spawn_id": request.spawn_id,
        "approvals_required": request.approvals_required,
        "reviews_in": reviews_in(request),
        "reviews_unblinded": unblinded,
        "created_at": request.created_at.isoformat(),
        "updated_at": request.updated_at.isoformat(),
        "actions": sorted(a.value for a in next_actions(request, viewer)),
    }
    files = []
    for f in request.files:
        item: dict[str, Any] = {
            "name": f.name,
            "sha256": f.sha256,
            "size": f.size,
            "check_status": f.check_status,
        }
        if is_requester:
            if decided:
                item["status"] = file_status(request, f.name).value
        else:
            visible = unblinded or viewer.is_system
            item["status"] = file_status(request, f.name).value if visible else "blinded"
        files.append(item)
    view["files"] = files

    current = request.current_reviews
    if is_requester:
        # Reviewers' reasons, once decided; never who gave them.
        view["reviews"] = [_review_dict(r, with_name=False) for r in current] if decided else []
    elif viewer.is_system or unblinded:
        view["reviews"] = [_review_dict(r, with_name=True) for r in current]
    else:
        view["reviews"] = [
            _review_dict(r, with_name=True) for r in current if r.reviewer == viewer.name
        ]
        view["reviewers_in"] = sorted(r.reviewer for r in current)

    # Entries before the last resubmission belong to rounds already decided: never blinded.
    current_from = max(
        (i for i, h in enumerate(request.history) if h.action == "resubmit"), default=0
    )
    history = []
    for i, h in enumerate(request.history):
        entry: dict[str, Any] = h.to_dict()
        # A review's comment is part of the review: hidden from whoever may not see it yet.
        if (
            h.action == "review"
            and i > current_from
            and h.actor != viewer.name
            and not (
                viewer.is_system or (unblinded and not is_requester) or (decided and is_requester)
            )
        ):
            entry["comment"] = ""
        if h.action == "review" and is_requester:
            entry["actor"] = "a reviewer"
        history.append(entry)
    view["history"] = history
    return view

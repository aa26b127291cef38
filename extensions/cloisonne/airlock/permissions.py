"""Who may do what with an export request: one small function per question.

Only the leads of the request's project see and act on it, and never on their own request:
a lead who is also the requester is treated as the requester. The airlock service (``SYSTEM``)
attaches check reports and may approve (once every file is) and release; it never reviews,
returns, rejects or revokes: those are human decisions.
"""

from __future__ import annotations

from .model import Actor, Request


def is_requester(request: Request, actor: Actor) -> bool:
    return not actor.is_system and actor.name == request.requester


def is_lead(request: Request, actor: Actor) -> bool:
    return not actor.is_system and request.project in actor.lead_of


def is_independent_lead(request: Request, actor: Actor) -> bool:
    """A lead of the project who is not the requester: the only people who review or decide."""
    return is_lead(request, actor) and not is_requester(request, actor)


def has_reviewed(request: Request, actor: Actor) -> bool:
    return any(r.reviewer == actor.name for r in request.current_reviews)


def can_view(request: Request, actor: Actor) -> bool:
    return actor.is_system or is_requester(request, actor) or is_independent_lead(request, actor)


def can_attach_checks(request: Request, actor: Actor) -> bool:
    return actor.is_system


def can_review(request: Request, actor: Actor) -> bool:
    """One review per independent lead per round: approvals must come from distinct people."""
    return is_independent_lead(request, actor) and not has_reviewed(request, actor)


def can_approve(request: Request, actor: Actor) -> bool:
    return actor.is_system or is_independent_lead(request, actor)


def can_release(request: Request, actor: Actor) -> bool:
    return actor.is_system or is_independent_lead(request, actor)


def can_return(request: Request, actor: Actor) -> bool:
    return is_independent_lead(request, actor)


def can_reject(request: Request, actor: Actor) -> bool:
    return is_independent_lead(request, actor)


def can_revoke(request: Request, actor: Actor) -> bool:
    return is_independent_lead(request, actor)


def can_withdraw(request: Request, actor: Actor) -> bool:
    # the airlock service withdraws the open requests of a project being closed
    return is_requester(request, actor) or actor.is_system


def can_resubmit(request: Request, actor: Actor) -> bool:
    return is_requester(request, actor)

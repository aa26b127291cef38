"""Build requests in any state with the actors of a small project."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from typing import Any

from cloisonne.airlock.model import SYSTEM, Actor, Decision, FileVote, Request, RequestFile, State
from cloisonne.airlock.states import Action, new_request, transition
from cloisonne.core.projects import Project

PROJECT = "diabete"
T0 = datetime(2026, 11, 29, 9, 0, tzinfo=UTC)

alice = Actor("alice")  # researcher, the requester
lea = Actor("lea", frozenset({PROJECT}))
leo = Actor("leo", frozenset({PROJECT}))
lou = Actor("lou", frozenset({PROJECT}))
olga = Actor("olga", frozenset({"other-project"}))  # a lead, of another project
bob = Actor("bob")  # a researcher who did not make the request
alice_lead = Actor("alice", frozenset({PROJECT}))  # the requester, also a lead


def rfile(name: str, content: bytes | None = None) -> RequestFile:
    data = content if content is not None else name.encode()
    return RequestFile(name, hashlib.sha256(data).hexdigest(), len(data))


FILES = (rfile("table1.csv"), rfile("figure.png"))


def at(minutes: int) -> datetime:
    return T0 + timedelta(minutes=minutes)


def approve_all(request: Request) -> dict[str, FileVote]:
    return {f.name: FileVote(Decision.APPROVE) for f in request.files}


def project(approvals: int = 2) -> Project:
    return Project(id=PROJECT, approvals_required=approvals)


def submitted(files: tuple[RequestFile, ...] = FILES, approvals: int = 2) -> Request:
    return new_request(
        id="r1", project=project(approvals), requester=alice, files=files, now=T0,
        context="Table 1 and Figure 2 of the paper",
    ).request  # fmt: skip


def checks_for(request: Request) -> dict[str, str]:
    return {f.name: "pass" for f in request.files}


def step(request: Request, action: Action, actor: Actor, minute: int, **kw: Any) -> Request:
    return transition(request, action, actor, at(minute), **kw).request


def request_in(state: State) -> Request:
    """A request that reached ``state`` by the ordinary path (N = 2, three leads)."""
    r = submitted()
    if state is State.SUBMITTED:
        return r
    r = step(r, Action.CHECK, SYSTEM, 1, checks=checks_for(r))
    if state is State.CHECKED:
        return r
    if state in (State.RETURNED, State.RESUBMITTED):
        r = step(r, Action.RETURN, lea, 2, comment="round the counts")
        if state is State.RETURNED:
            return r
        return step(r, Action.RESUBMIT, alice, 3)
    if state is State.REJECTED:
        return step(r, Action.REJECT, lea, 2, comment="record-level data")
    if state is State.WITHDRAWN:
        return step(r, Action.WITHDRAW, alice, 2)
    r = step(r, Action.REVIEW, lea, 2, votes=approve_all(r))
    r = step(r, Action.REVIEW, leo, 3, votes=approve_all(r))
    if state is State.IN_REVIEW:
        return r
    r = step(r, Action.APPROVE, SYSTEM, 4)
    if state is State.APPROVED:
        return r
    if state is State.REVOKED:
        return step(r, Action.REVOKE, lea, 5, comment="a cell was mislabelled")
    r = step(r, Action.RELEASE, SYSTEM, 5)
    assert state is State.RELEASED
    return r


def valid_call(request: Request, action: Action) -> dict[str, Any]:
    """An actor and arguments with which ``action`` is permitted (state aside)."""
    return {
        Action.CHECK: {"actor": SYSTEM, "checks": checks_for(request)},
        Action.REVIEW: {"actor": lou, "votes": approve_all(request)},
        Action.APPROVE: {"actor": lou},
        Action.RELEASE: {"actor": SYSTEM},
        Action.RETURN: {"actor": lou, "comment": "please round"},
        Action.RESUBMIT: {"actor": alice},
        Action.REJECT: {"actor": lou, "comment": "identifiable"},
        Action.WITHDRAW: {"actor": alice},
        Action.REVOKE: {"actor": lou, "comment": "released in error"},
    }[action]

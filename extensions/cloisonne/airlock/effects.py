"""Each action's own checks and changes, beyond what the state table says.

An effect takes ``(request, actor, now, **details)`` and returns the changes to make to the
request and the extra fields of its audit event, or raises an ``AirlockError``. ``DETAILS``
lists the keyword arguments each action accepts.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from datetime import datetime
from typing import Any

from .errors import CommentRequired, InvalidRequest, NotReady
from .model import (
    SHA256,
    Action,
    Actor,
    Decision,
    FileVote,
    Request,
    RequestFile,
    Review,
    all_files_approved,
    file_status,
)

_UNSAFE_NAME = re.compile(r"(^/|\\|(^|/)\.\.?(/|$)|//|[\x00-\x1f])")


def validate_files(files: Iterable[RequestFile]) -> tuple[RequestFile, ...]:
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


def files_field(files: Iterable[RequestFile]) -> list[dict[str, Any]]:
    return [{"name": f.name, "sha256": f.sha256, "size": f.size} for f in files]


Effect = Callable[..., tuple[dict[str, Any], dict[str, Any]]]


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
    return {}, {"round": request.round, "files": files_field(request.files)}


def _release(request: Request, actor: Actor, now: datetime) -> tuple[dict, dict]:
    return {}, {"files": files_field(request.files)}


def _resubmit(
    request: Request,
    actor: Actor,
    now: datetime,
    *,
    files: Iterable[RequestFile] | None = None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """A new round: the files may be replaced (a file dropped or fixed); old votes stay on
    record but no longer count."""
    new_files = validate_files(request.files if files is None else files)
    new_files = tuple(replace(f, check_status="") for f in new_files)
    changes = {"files": new_files, "round": request.round + 1}
    return changes, {"round": request.round + 1, "files": files_field(new_files)}


def _plain(request: Request, actor: Actor, now: datetime) -> tuple[dict, dict]:
    return {}, {}


EFFECTS: Mapping[Action, Effect] = {
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

DETAILS: Mapping[Action, frozenset[str]] = {
    Action.CHECK: frozenset({"checks"}),
    Action.REVIEW: frozenset({"votes"}),
    Action.RESUBMIT: frozenset({"files"}),
}

"""A request as JSON-ready data and back (how the service stores it in the hub database)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from .model import (
    Decision,
    FileVote,
    HistoryEntry,
    Request,
    RequestFile,
    Review,
    State,
)


def request_to_dict(r: Request) -> dict[str, Any]:
    return {
        "id": r.id,
        "project": r.project,
        "requester": r.requester,
        "state": r.state.value,
        "approvals_required": r.approvals_required,
        "created_at": r.created_at.isoformat(),
        "updated_at": r.updated_at.isoformat(),
        "round": r.round,
        "context": r.context,
        "workspace": r.workspace,
        "spawn_id": r.spawn_id,
        "files": [
            {"name": f.name, "sha256": f.sha256, "size": f.size, "check_status": f.check_status}
            for f in r.files
        ],
        "reviews": [
            {
                "reviewer": v.reviewer,
                "round": v.round,
                "submitted_at": v.submitted_at.isoformat(),
                "comment": v.comment,
                "votes": [
                    [n, {"decision": fv.decision.value, "comment": fv.comment}] for n, fv in v.votes
                ],
            }  # fmt: skip
            for v in r.reviews
        ],
        "history": [h.to_dict() for h in r.history],
    }


def request_from_dict(d: dict[str, Any]) -> Request:
    t = datetime.fromisoformat
    return Request(
        id=d["id"],
        project=d["project"],
        requester=d["requester"],
        state=State(d["state"]),
        approvals_required=d["approvals_required"],
        created_at=t(d["created_at"]),
        updated_at=t(d["updated_at"]),
        round=d["round"],
        context=d["context"],
        workspace=d.get("workspace", ""),
        spawn_id=d.get("spawn_id", ""),
        files=tuple(RequestFile(**f) for f in d["files"]),
        reviews=tuple(
            Review(
                reviewer=v["reviewer"],
                round=v["round"],
                submitted_at=t(v["submitted_at"]),
                comment=v["comment"],
                votes=tuple(
                    (n, FileVote(Decision(fv["decision"]), fv["comment"])) for n, fv in v["votes"]
                ),
            )
            for v in d["reviews"]
        ),
        history=tuple(
            HistoryEntry(
                time=t(h["time"]),
                actor=h["actor"],
                action=h["action"],
                from_state=State(h["from"]) if h["from"] else None,
                to_state=State(h["to"]),
                comment=h["comment"],
            )
            for h in d["history"]
        ),
    )

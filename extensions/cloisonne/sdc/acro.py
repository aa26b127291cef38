"""Reading ACRO's ``results.json`` so its per-output statuses can be shown beside ours.

ACRO (``acro`` on PyPI) writes ``{"version": ..., "results": {uid: {"status", "type",
"summary", "files": [{"name": ...}, ...], ...}}}``; older versions list ``"output": [names]``
instead of ``files``. Only what a reviewer needs is kept: uid, status, type, summary, the
file names, and the researcher's exception request if any.
"""

from __future__ import annotations

from pathlib import PurePosixPath
from typing import Any

ACRO_STATUSES = frozenset({"pass", "review", "fail"})


def is_acro_results(value: Any) -> bool:
    results = value.get("results") if isinstance(value, dict) else None
    return (
        isinstance(results, dict)
        and bool(results)
        and all(isinstance(r, dict) and "status" in r for r in results.values())
    )


def _file_names(record: dict[str, Any]) -> list[str]:
    names: list[str] = []
    for item in record.get("files") or record.get("output") or []:
        name = item.get("name") if isinstance(item, dict) else item
        if isinstance(name, str):
            names.append(name)
    return names


def acro_outputs(value: Any) -> list[dict[str, Any]]:
    """One entry per ACRO output; an unknown status is kept but marked as such."""
    if not is_acro_results(value):
        return []
    out = []
    for uid, record in value["results"].items():
        status = str(record.get("status", "")).lower()
        out.append({
            "uid": str(record.get("uid", uid)),
            "status": status if status in ACRO_STATUSES else f"unknown ({status})",
            "type": str(record.get("type", "")),
            "summary": str(record.get("summary", "")),
            "files": _file_names(record),
            "exception": str(record.get("exception", "") or ""),
        })  # fmt: skip
    return out


def outputs_for_file(outputs: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    """ACRO outputs that list ``name`` (compared by base name: ACRO stores bare names)."""
    base = PurePosixPath(name).name
    return [
        {"uid": o["uid"], "status": o["status"], "summary": o["summary"]}
        for o in outputs
        if base in {PurePosixPath(f).name for f in o["files"]}
    ]

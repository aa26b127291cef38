"""The close-out plan: ordered steps, recorded progress that resumes, the certificate."""

from __future__ import annotations

import pytest
from cloisonne.core.closeout import (
    STEP_NAMES,
    Deleted,
    Progress,
    certificate,
    manifest,
    mark_done,
    next_step,
    tree_digest,
)


def started() -> Progress:
    return Progress("cardio", by="admin", reason="ended", started_at="2026-12-07T10:00:00+00:00")


def test_steps_run_in_order_and_resume_from_the_recorded_progress() -> None:
    p = started()
    assert next_step(p) == "close"
    p = mark_done(p, "close")
    p = mark_done(p, "stop", stopped=2)
    resumed = Progress.from_json(p.to_json())  # as read back after an interruption
    assert resumed == p and next_step(resumed) == "withdraw"
    with pytest.raises(ValueError, match="not the next one"):
        mark_done(resumed, "delete")
    for step in STEP_NAMES[2:]:
        resumed = mark_done(resumed, step)
    assert next_step(resumed) is None and resumed.results == {"stop": {"stopped": 2}}


def test_tree_digest_is_order_independent_and_empty_for_nothing() -> None:
    a = tree_digest([("x", "1" * 64), ("y", "2" * 64)])
    assert a == tree_digest([("y", "2" * 64), ("x", "1" * 64)]) and len(a) == 64
    assert a != tree_digest([("x", "2" * 64), ("y", "1" * 64)])
    assert tree_digest([]) == ""


def test_certificate_says_what_when_who_and_the_audit_head() -> None:
    p = mark_done(mark_done(mark_done(mark_done(started(), "close"), "stop"), "withdraw"),
                  "archive")  # fmt: skip
    gone = [
        Deleted("homes", "/s/homes/cardio", 3, 120, "a" * 64),
        Deleted("pseudonymisation key", "keys/cardio", 1, 0, "", note="crypto-shredded"),
    ]
    p = mark_done(p, "delete", deleted=gone)
    cert = certificate(p, audit_head={"seq": 9, "hash": "h"}, archive_sha256="m" * 64,
                       now="2026-12-07T10:05:00+00:00")  # fmt: skip
    assert cert["totals"] == {"files": 4, "bytes": 120} and cert["closed_by"] == "admin"
    assert cert["deleted"][0]["sha256"] == "a" * 64 and cert["audit_head"]["seq"] == 9
    assert Progress.from_json(p.to_json()).deleted == tuple(gone)


def test_manifest_lists_every_file_with_its_hash() -> None:
    m = manifest({"b.csv": (3, "b" * 64), "a.json": (2, "a" * 64)}, "cardio", {"seq": 1})
    assert list(m["files"]) == ["a.json", "b.csv"] and m["files"]["b.csv"]["bytes"] == 3

"""Blinding and who sees what of a request."""

from __future__ import annotations

import json

import pytest
from airlock_helpers import (
    alice,
    approve_all,
    bob,
    lea,
    leo,
    lou,
    olga,
    request_in,
    step,
    submitted,
)
from cloisonne.airlock.model import SYSTEM, Decision, FileVote, State
from cloisonne.airlock.states import Action, PermissionDenied
from cloisonne.airlock.visibility import reviews_unblinded, view_for


def one_review_in():
    r = request_in(State.CHECKED)
    votes = approve_all(r) | {"figure.png": FileVote(Decision.REJECT, "points are patients")}
    return step(r, Action.REVIEW, lea, 2, votes=votes, comment="lea's overall note")


@pytest.mark.parametrize("outsider", [bob, olga])
def test_outsiders_see_nothing(outsider) -> None:
    with pytest.raises(PermissionDenied):
        view_for(submitted(), outsider)


def test_reviewer_sees_own_votes_but_not_others_until_n_are_in() -> None:
    r = one_review_in()
    assert not reviews_unblinded(r)
    mine = view_for(r, lea)
    assert [rv["reviewer"] for rv in mine["reviews"]] == ["lea"]
    theirs = view_for(r, leo)
    assert theirs["reviews"] == [] and theirs["reviews_in"] == 1
    assert theirs["reviewers_in"] == ["lea"]
    assert {f["status"] for f in theirs["files"]} == {"blinded"}
    review_entries = [h for h in theirs["history"] if h["action"] == "review"]
    assert review_entries and review_entries[0]["comment"] == ""
    assert "points are patients" not in json.dumps(theirs)
    assert "lea's overall note" not in json.dumps(theirs)
    assert "lea's overall note" in json.dumps(mine)


def test_unblinded_once_the_required_number_are_in() -> None:
    r = one_review_in()
    r = step(r, Action.REVIEW, leo, 3, votes=approve_all(r))
    assert reviews_unblinded(r)
    view = view_for(r, lou)
    assert sorted(rv["reviewer"] for rv in view["reviews"]) == ["lea", "leo"]
    assert {f["name"]: f["status"] for f in view["files"]} == {
        "table1.csv": "approved",
        "figure.png": "rejected",
    }


def test_unblinded_by_a_decision_before_n_are_in() -> None:
    r = step(one_review_in(), Action.RETURN, leo, 3, comment="see the figure")
    assert reviews_unblinded(r)
    assert len(view_for(r, leo)["reviews"]) == 1


def test_requester_sees_no_votes_during_review() -> None:
    r = one_review_in()
    r = step(r, Action.REVIEW, leo, 3, votes=approve_all(r))
    view = view_for(r, alice)
    assert view["reviews"] == []
    assert all("status" not in f for f in view["files"])
    assert "points are patients" not in json.dumps(view)
    assert view["actions"] == ["withdraw"]


def test_requester_sees_reasons_but_not_names_after_a_decision() -> None:
    r = step(one_review_in(), Action.RETURN, leo, 3, comment="see the figure")
    view = view_for(r, alice)
    assert view["reviews"][0]["votes"]["figure.png"]["comment"] == "points are patients"
    assert "reviewer" not in view["reviews"][0]
    assert all(h["actor"] == "a reviewer" for h in view["history"] if h["action"] == "review")
    assert view["history"][-1]["comment"] == "see the figure"
    assert {f["name"]: f["status"] for f in view["files"]}["figure.png"] == "rejected"
    assert view["actions"] == ["resubmit", "withdraw"]


def test_service_sees_everything() -> None:
    view = view_for(one_review_in(), SYSTEM)
    assert len(view["reviews"]) == 1 and view["reviews"][0]["reviewer"] == "lea"


def test_view_is_json_ready() -> None:
    json.dumps(view_for(request_in(State.RELEASED), lea))


def test_service_sees_file_outcomes_while_blinded() -> None:
    assert {f["status"] for f in view_for(one_review_in(), SYSTEM)["files"]} != {"blinded"}


def test_earlier_rounds_are_not_blinded() -> None:
    r = step(one_review_in(), Action.RETURN, leo, 3, comment="see the figure")
    r = step(r, Action.RESUBMIT, alice, 4)
    view = view_for(r, leo)
    old = [h for h in view["history"] if h["action"] == "review"]
    assert old[0]["comment"] == "lea's overall note"
    assert view["reviews"] == [] and view["reviews_in"] == 0  # the new round starts blind

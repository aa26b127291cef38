"""The state machine table, driven from the table itself: every valid transition, every
invalid (state, action) pair, and the rules around them."""

from __future__ import annotations

import itertools

import pytest
from airlock_helpers import (
    FILES,
    PROJECT,
    alice,
    alice_lead,
    approve_all,
    at,
    bob,
    checks_for,
    lea,
    leo,
    lou,
    olga,
    project,
    request_in,
    rfile,
    step,
    submitted,
    valid_call,
)
from cloisonne.airlock.events import EventType
from cloisonne.airlock.model import (
    FINAL_STATES,
    SYSTEM,
    Decision,
    FileStatus,
    FileVote,
    RequestFile,
    State,
    file_status,
)
from cloisonne.airlock.states import (
    VALID_STATE_TRANSITIONS,
    Action,
    CommentRequired,
    InvalidRequest,
    InvalidTransition,
    NotReady,
    PermissionDenied,
    new_request,
    next_actions,
    next_states,
    transition,
)

VALID = [(s, a) for a, rule in VALID_STATE_TRANSITIONS.items() for s in sorted(rule.sources)]
INVALID = [
    (s, a)
    for s, a in itertools.product(State, Action)
    if s not in VALID_STATE_TRANSITIONS[a].sources
]


def test_the_table_covers_the_documented_machine() -> None:
    assert next_states(State.SUBMITTED) == {State.CHECKED, State.WITHDRAWN}
    assert next_states(State.CHECKED) == {
        State.IN_REVIEW, State.RETURNED, State.REJECTED, State.WITHDRAWN,
    }  # fmt: skip
    assert next_states(State.IN_REVIEW) == {
        State.IN_REVIEW, State.APPROVED, State.RETURNED, State.REJECTED, State.WITHDRAWN,
    }  # fmt: skip
    assert next_states(State.APPROVED) == {State.RELEASED, State.REVOKED}
    assert next_states(State.RELEASED) == {State.REVOKED}
    assert next_states(State.RETURNED) == {State.RESUBMITTED, State.WITHDRAWN}
    assert next_states(State.RESUBMITTED) == {State.CHECKED, State.WITHDRAWN}
    for final in FINAL_STATES:
        assert next_states(final) == frozenset()
    assert len(VALID) + len(INVALID) == len(State) * len(Action)


@pytest.mark.parametrize(("state", "action"), VALID, ids=lambda v: str(v))
def test_every_valid_transition(state: State, action: Action) -> None:
    request = request_in(state)
    assert request.state is state
    call = valid_call(request, action)
    actor = call.pop("actor")
    result = transition(request, action, actor, at(30), **call)
    rule = VALID_STATE_TRANSITIONS[action]
    assert result.request.state is rule.target
    assert result.request.history[-1].to_state is rule.target
    assert result.request.history[-1].from_state is state
    assert [e.type for e in result.events] == [rule.event]
    event = result.events[0]
    assert event.user == actor.name and event.project == PROJECT
    assert event.fields["request"] == "r1"
    assert (event.fields["from"], event.fields["to"]) == (state.value, rule.target.value)
    assert request.state is state  # the input is untouched


@pytest.mark.parametrize(("state", "action"), INVALID, ids=lambda v: str(v))
def test_every_invalid_transition_is_refused(state: State, action: Action) -> None:
    request = request_in(state)
    call = valid_call(request, action)
    actor = call.pop("actor")
    with pytest.raises(InvalidTransition, match=f"it is '{state.value}'"):
        transition(request, action, actor, at(30), **call)


def test_new_request_emits_submitted_with_file_hashes() -> None:
    result = new_request(id="r9", project=project(3), requester=alice, files=FILES, now=at(0))
    assert result.request.state is State.SUBMITTED and result.request.approvals_required == 3
    (event,) = result.events
    assert event.type is EventType.REQUEST_SUBMITTED and event.user == "alice"
    assert event.fields["files"][0] == {
        "name": "table1.csv", "sha256": FILES[0].sha256, "size": FILES[0].size,
    }  # fmt: skip


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ((), "at least one file"),
        ((rfile("a.csv"), rfile("a.csv")), "twice"),
        ((RequestFile("../etc/passwd", "0" * 64, 1),), "plain relative path"),
        ((RequestFile("/abs.csv", "0" * 64, 1),), "plain relative path"),
        ((RequestFile("a/./b.csv", "0" * 64, 1),), "plain relative path"),
        ((RequestFile("a.csv", "XYZ", 1),), "sha256"),
        ((RequestFile("a.csv", "0" * 64, -1),), "negative"),
    ],
)
def test_bad_files_are_refused(files: tuple[RequestFile, ...], message: str) -> None:
    with pytest.raises(InvalidRequest, match=message):
        submitted(files=files)


def test_subfolders_in_file_names_are_fine() -> None:
    assert submitted(files=(rfile("results/table 1.csv"),)).files[0].name == "results/table 1.csv"


def test_system_cannot_request_and_approvals_must_be_positive() -> None:
    with pytest.raises(PermissionDenied):
        new_request(id="x", project=project(), requester=SYSTEM, files=FILES, now=at(0))
    with pytest.raises(InvalidRequest):
        submitted(approvals=0)  # a Project that skipped validation


# -- who may act ------------------------------------------------------------------------------


def test_requester_never_reviews_their_own_request_even_as_a_lead() -> None:
    r = request_in(State.CHECKED)
    for actor in (alice, alice_lead):
        with pytest.raises(PermissionDenied, match="not the requester"):
            transition(r, Action.REVIEW, actor, at(9), votes=approve_all(r))
    for action, extra in ((Action.RETURN, {"comment": "x"}), (Action.REJECT, {"comment": "x"})):
        with pytest.raises(PermissionDenied):
            transition(r, action, alice_lead, at(9), **extra)
    approved = request_in(State.APPROVED)
    with pytest.raises(PermissionDenied):
        transition(approved, Action.RELEASE, alice_lead, at(9))


@pytest.mark.parametrize("outsider", [bob, olga], ids=["researcher", "other-project-lead"])
def test_outsiders_cannot_act(outsider) -> None:
    r = request_in(State.CHECKED)
    with pytest.raises(PermissionDenied, match="may not review"):
        transition(r, Action.REVIEW, outsider, at(9), votes=approve_all(r))
    with pytest.raises(PermissionDenied):
        transition(r, Action.WITHDRAW, outsider, at(9))


def test_only_the_service_attaches_checks() -> None:
    r = submitted()
    with pytest.raises(PermissionDenied, match="airlock service"):
        transition(r, Action.CHECK, lea, at(1), checks=checks_for(r))


def test_the_service_never_reviews_or_rejects() -> None:
    r = request_in(State.CHECKED)
    with pytest.raises(PermissionDenied):
        transition(r, Action.REVIEW, SYSTEM, at(2), votes=approve_all(r))
    with pytest.raises(PermissionDenied):
        transition(r, Action.REJECT, SYSTEM, at(2), comment="no")


def test_only_the_requester_withdraws_and_resubmits() -> None:
    with pytest.raises(PermissionDenied):
        transition(request_in(State.CHECKED), Action.WITHDRAW, lea, at(9))
    with pytest.raises(PermissionDenied):
        transition(request_in(State.RETURNED), Action.RESUBMIT, lea, at(9))


def test_a_reviewer_reviews_once_per_round() -> None:
    r = request_in(State.CHECKED)
    r = step(r, Action.REVIEW, lea, 2, votes=approve_all(r))
    with pytest.raises(PermissionDenied, match="not yet reviewed"):
        transition(r, Action.REVIEW, lea, at(3), votes=approve_all(r))


# -- N of M -----------------------------------------------------------------------------------


def test_approval_needs_n_independent_reviews() -> None:
    r = request_in(State.CHECKED)
    r = step(r, Action.REVIEW, lea, 2, votes=approve_all(r))
    assert r.state is State.IN_REVIEW
    with pytest.raises(NotReady, match="2 independent"):
        transition(r, Action.APPROVE, SYSTEM, at(3))
    assert Action.APPROVE not in next_actions(r, leo)
    r = step(r, Action.REVIEW, leo, 3, votes=approve_all(r))
    assert Action.APPROVE in next_actions(r, lou)
    assert step(r, Action.APPROVE, SYSTEM, 4).state is State.APPROVED


@pytest.mark.parametrize("n", [1, 3])
def test_approvals_required_comes_from_the_project(n: int) -> None:
    r = submitted(approvals=n)
    r = step(r, Action.CHECK, SYSTEM, 1, checks=checks_for(r))
    for i, reviewer in enumerate((lea, leo, lou)[:n]):
        if i:
            with pytest.raises(NotReady):
                transition(r, Action.APPROVE, SYSTEM, at(9))
        r = step(r, Action.REVIEW, reviewer, 2 + i, votes=approve_all(r))
    assert r.state is State.IN_REVIEW
    assert step(r, Action.APPROVE, SYSTEM, 9).state is State.APPROVED


# -- per-file decisions -----------------------------------------------------------------------


def test_one_rejected_file_blocks_the_request_until_resubmitted_without_it() -> None:
    r = request_in(State.CHECKED)
    votes = {
        "table1.csv": FileVote(Decision.APPROVE),
        "figure.png": FileVote(Decision.REJECT, "the plot shows individual points"),
    }
    r = step(r, Action.REVIEW, lea, 2, votes=votes)
    r = step(r, Action.REVIEW, leo, 3, votes=approve_all(r))
    assert file_status(r, "table1.csv") is FileStatus.APPROVED
    assert file_status(r, "figure.png") is FileStatus.REJECTED
    with pytest.raises(NotReady, match="figure.png"):
        transition(r, Action.APPROVE, lou, at(4))
    r = step(r, Action.RETURN, lea, 4, comment="drop the figure")
    r = step(r, Action.RESUBMIT, alice, 5, files=(FILES[0],))
    assert r.round == 2 and [f.name for f in r.files] == ["table1.csv"]
    assert r.current_reviews == () and len(r.reviews) == 2  # old votes on record, not counted
    assert file_status(r, "table1.csv") is FileStatus.PENDING
    r = step(r, Action.CHECK, SYSTEM, 6, checks=checks_for(r))
    r = step(r, Action.REVIEW, lea, 7, votes=approve_all(r))  # lea may review again: new round
    r = step(r, Action.REVIEW, leo, 8, votes=approve_all(r))
    assert step(r, Action.APPROVE, SYSTEM, 9).state is State.APPROVED


def test_changes_requested_on_a_file_blocks_approval() -> None:
    r = request_in(State.CHECKED)
    votes = approve_all(r) | {"table1.csv": FileVote(Decision.REQUEST_CHANGES, "round to 5")}
    r = step(r, Action.REVIEW, lea, 2, votes=votes)
    r = step(r, Action.REVIEW, leo, 3, votes=approve_all(r))
    r = step(r, Action.REVIEW, lou, 4, votes=approve_all(r))
    assert file_status(r, "table1.csv") is FileStatus.CHANGES_REQUESTED
    with pytest.raises(NotReady):
        transition(r, Action.APPROVE, SYSTEM, at(5))


def test_a_review_votes_on_every_file_once() -> None:
    r = request_in(State.CHECKED)
    with pytest.raises(InvalidRequest, match="missing"):
        transition(r, Action.REVIEW, lea, at(2), votes={"table1.csv": FileVote(Decision.APPROVE)})
    with pytest.raises(InvalidRequest, match="unknown"):
        transition(r, Action.REVIEW, lea, at(2),
                   votes=approve_all(r) | {"x.csv": FileVote(Decision.APPROVE)})  # fmt: skip


# -- comments ---------------------------------------------------------------------------------


@pytest.mark.parametrize("action", [Action.RETURN, Action.REJECT])
@pytest.mark.parametrize("comment", ["", "   \n"])
def test_returning_or_rejecting_needs_a_comment(action: Action, comment: str) -> None:
    with pytest.raises(CommentRequired):
        transition(request_in(State.IN_REVIEW), action, lou, at(9), comment=comment)


def test_revoking_needs_a_comment() -> None:
    with pytest.raises(CommentRequired):
        transition(request_in(State.RELEASED), Action.REVOKE, lea, at(9))


@pytest.mark.parametrize("decision", [Decision.REJECT, Decision.REQUEST_CHANGES])
def test_a_negative_file_vote_needs_a_comment(decision: Decision) -> None:
    r = request_in(State.CHECKED)
    votes = approve_all(r) | {"figure.png": FileVote(decision, " ")}
    with pytest.raises(CommentRequired, match="figure.png"):
        transition(r, Action.REVIEW, lea, at(2), votes=votes)


def test_comments_are_kept_in_history_and_event() -> None:
    result = transition(request_in(State.IN_REVIEW), Action.RETURN, lea, at(9), comment="why")
    assert result.request.history[-1].comment == "why"
    assert result.events[0].fields["comment"] == "why"


# -- details ----------------------------------------------------------------------------------


def test_checks_must_cover_the_files_with_known_statuses() -> None:
    r = submitted()
    with pytest.raises(InvalidRequest, match="missing"):
        transition(r, Action.CHECK, SYSTEM, at(1), checks={"table1.csv": "pass"})
    with pytest.raises(InvalidRequest, match="pass, review or fail"):
        transition(r, Action.CHECK, SYSTEM, at(1), checks=dict.fromkeys(checks_for(r), "ok"))
    done = step(r, Action.CHECK, SYSTEM, 1, checks={"table1.csv": "fail", "figure.png": "review"})
    assert [f.check_status for f in done.files] == ["fail", "review"]


def test_unexpected_details_and_unknown_actions_are_refused() -> None:
    r = request_in(State.IN_REVIEW)
    with pytest.raises(InvalidRequest, match="takes no votes"):
        transition(r, Action.APPROVE, SYSTEM, at(9), votes={})
    with pytest.raises(InvalidTransition, match="unknown action"):
        transition(r, "teleport", SYSTEM, at(9))
    assert transition(r, "approve", SYSTEM, at(9)).request.state is State.APPROVED


def test_review_event_records_the_votes() -> None:
    r = request_in(State.CHECKED)
    (event,) = transition(r, Action.REVIEW, lea, at(2), votes=approve_all(r)).events
    assert event.type is EventType.REVIEW_SUBMITTED
    assert event.fields["votes"]["table1.csv"] == {"decision": "approve", "comment": ""}


def test_next_actions_per_viewer() -> None:
    r = request_in(State.CHECKED)
    assert next_actions(r, alice) == {Action.WITHDRAW}
    assert next_actions(r, lea) == {Action.REVIEW, Action.RETURN, Action.REJECT}
    assert next_actions(r, SYSTEM) == {Action.WITHDRAW}  # only when closing the project
    assert next_actions(r, bob) == frozenset()


def test_every_transition_event_type_is_in_the_enum_once() -> None:
    emitted = [rule.event for rule in VALID_STATE_TRANSITIONS.values()]
    assert len(set(emitted)) == len(emitted)
    shell_only = {EventType.FILE_DOWNLOADED, EventType.ACCESS_DENIED}
    assert set(EventType) == {*emitted, EventType.REQUEST_SUBMITTED, *shell_only}


def test_a_whole_lifecycle_goes_into_the_audit_chain(tmp_path) -> None:
    from cloisonne.audit.store import AuditStore

    store = AuditStore(f"sqlite:///{tmp_path}/audit.db")
    created = new_request(id="r7", project=project(), requester=alice, files=FILES, now=at(0))
    events = list(created.events)
    r = created.request
    steps = [
        (Action.CHECK, SYSTEM, {"checks": checks_for(r)}),
        (Action.REVIEW, lea, {"votes": approve_all(r)}),
        (Action.REVIEW, leo, {"votes": approve_all(r)}),
        (Action.APPROVE, SYSTEM, {}),
        (Action.RELEASE, SYSTEM, {}),
        (Action.REVOKE, lou, {"comment": "a count was wrong"}),
    ]
    for minute, (action, actor, kw) in enumerate(steps, start=1):
        result = transition(r, action, actor, at(minute), **kw)
        r = result.request
        events += result.events
    for e in events:
        store.append(e.type, user=e.user, project=e.project, fields=e.fields)
    stored = list(store.iter_events())
    assert [e.type for e in stored] == [
        "airlock.request.submitted", "airlock.request.checked", "airlock.review.submitted",
        "airlock.review.submitted", "airlock.request.approved", "airlock.request.released",
        "airlock.request.revoked",
    ]  # fmt: skip
    assert stored[2].fields["votes"]["table1.csv"]["decision"] == "approve"
    assert store.verify().ok
    store.close()


def test_check_report_statuses_attach_to_the_request() -> None:
    from cloisonne.sdc import check_request

    contents = {"table1.csv": b"sexe,n\nF,120\nH,7\n", "figure.png": b"\x89PNG\r\n\x1a\n"}
    files = tuple(rfile(name, data) for name, data in contents.items())
    r = submitted(files=files)
    report = check_request(contents)
    r = step(r, Action.CHECK, SYSTEM, 1, checks=report.file_statuses())
    assert {f.name: f.check_status for f in r.files} == {
        "table1.csv": "fail",
        "figure.png": "review",
    }

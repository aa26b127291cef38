"""A suspended or closed project's airlock is frozen: no approval, release, download or new
request; requests can still be closed (return, reject, withdraw) and releases revoked."""

from __future__ import annotations

import dataclasses

import pytest
from airlock_helpers import FILES, PROJECT, T0, alice, approve_all, lea, leo
from api_helpers import Service, upload
from cloisonne.airlock.model import SYSTEM, State
from cloisonne.airlock.states import (
    ALLOWED_WHILE_FROZEN,
    VALID_STATE_TRANSITIONS,
    Action,
    PermissionDenied,
    frozen_reason,
    new_request,
    transition,
)
from cloisonne.core.governance import Governance
from cloisonne.core.projects import Project

SUSPENDED = Project(PROJECT, approvals_required=1,
                    governance=Governance(state="suspended", state_why="incident 7"))  # fmt: skip


def test_frozen_reason_names_the_state_and_why() -> None:
    assert frozen_reason(Project(PROJECT)) == "" and frozen_reason(None) == ""
    assert frozen_reason(SUSPENDED) == (
        f"project '{PROJECT}' is suspended (incident 7): its airlock is frozen"
    )


def test_nothing_leaves_a_frozen_airlock() -> None:
    assert {Action.APPROVE, Action.RELEASE, Action.RESUBMIT} == (
        set(VALID_STATE_TRANSITIONS) - ALLOWED_WHILE_FROZEN
    )
    made = new_request(id="r1", project=Project(PROJECT, approvals_required=1), requester=alice,
                       files=FILES, now=T0).request  # fmt: skip
    checked = transition(made, Action.CHECK, SYSTEM, T0, checks={f.name: "pass" for f in FILES})
    reason = frozen_reason(SUSPENDED)
    reviewed = transition(checked.request, Action.REVIEW, lea, T0, frozen=reason,
                          votes=approve_all(checked.request)).request  # fmt: skip
    with pytest.raises(PermissionDenied, match="its airlock is frozen"):
        transition(reviewed, Action.APPROVE, leo, T0, frozen=reason)
    rejected = transition(reviewed, Action.REJECT, leo, T0, "project suspended", frozen=reason)
    assert rejected.request.state is State.REJECTED


@pytest.fixture
def svc(tmp_path):
    service = Service(tmp_path)
    yield service
    service.stop()


def suspend(svc: Service, project: str) -> None:
    projects = svc.airlock.directory.projects
    gov = Governance(state="suspended", state_why="incident 7")
    projects[project] = dataclasses.replace(projects[project], governance=gov)


SAFE = b"region,count\nnord,120\nsud,85\n"


@pytest.mark.server
async def test_suspension_freezes_downloads_approvals_and_new_requests(svc) -> None:
    c = svc.client
    released = (await c.submit("ws:alice:cardio", [upload("t.csv", SAFE)])).json()["id"]
    for lead in ("user:carol", "user:dave"):
        assert (await c.act(released, "review", lead, decision="approve")).code == 200
    pending = (await c.submit("ws:alice:cardio", [upload("u.csv", SAFE)])).json()["id"]
    assert (await c.act(pending, "review", "user:carol", decision="approve")).code == 200
    suspend(svc, "cardio")

    r = await c.call("GET", f"api/airlock/requests/{released}/files/t.csv", "user:alice")
    assert r.code == 403 and b"suspended (incident 7)" in r.body
    r = await c.act(pending, "review", "user:dave", decision="approve")
    assert r.code == 200 and r.json()["state"] == "in_review", "approved but never released"
    r = await c.submit("ws:alice:cardio", [upload("v.csv", SAFE)])
    assert r.code == 403 and b"airlock is frozen" in r.body
    r = await c.act(pending, "withdraw", "ws:alice:cardio")
    assert r.code == 200 and r.json()["state"] == "withdrawn"
    denied = [e for e in svc.events() if e.type == "airlock.access.denied"]
    assert {e.fields["action"] for e in denied} >= {"download", "submit"}

"""Governance fields: validated like the other project properties, mandatory ones enforced."""

from __future__ import annotations

import datetime

import pytest
from cloisonne.core.governance import SUSPENDED, Authorisation
from cloisonne.core.lifecycle import (
    ProjectRules,
    RunningServer,
    end_notice_due,
    missing_fields,
    refusal,
    register_entry,
    servers_to_stop,
)
from cloisonne.core.projects import ProjectError, parse_projects, project_from_properties
from traitlets import TraitError

FULL = {
    "kind": "project",
    "title": "Heart failure",
    "datasets": ["dcir"],
    "purpose": "Outcomes of heart failure after discharge",
    "authorisations": [{"reference": "DR-2024-123", "authority": "CNIL", "date": "2024-03-01"}],
    "legal_basis": "public interest (GDPR 6.1.e, 9.2.j)",
    "controller": "CHU Exemple",
    "investigator": "Dr C. Lead",
    "start": "2026-01-01",
    "end": "2026-12-31",
    "outputs": ["aggregate tables", "a paper"],
}
DAY = datetime.date(2026, 6, 1)


def test_full_record_round_trips_through_properties() -> None:
    project = project_from_properties("cardio", FULL)
    gov = project.governance
    assert gov.authorisations == (Authorisation("DR-2024-123", "CNIL", datetime.date(2024, 3, 1)),)
    assert gov.start == datetime.date(2026, 1, 1) and gov.outputs == ("aggregate tables", "a paper")
    assert project.to_properties() == {**FULL, "cpu": 1.0, "memory": "2G", "pids": 512,
                                       "gpus": 0, "approvals_required": 2, "egress": []}  # fmt: skip
    assert project_from_properties("cardio", project.to_properties()) == project


def test_admin_panel_text_is_accepted() -> None:
    """The admin panel edits every property as text: JSON lists and comma lists both work."""
    text = {
        **FULL,
        "authorisations": '[{"reference": "DR-1", "authority": "CNIL"}]',
        "outputs": "tables, figures",
    }
    gov = project_from_properties("cardio", text).governance
    assert gov.authorisations[0].reference == "DR-1" and gov.outputs == ("tables", "figures")


def test_a_project_without_governance_keeps_its_properties() -> None:
    props = {"kind": "project", "title": "t", "datasets": []}
    assert "purpose" not in project_from_properties("p1", props).to_properties()


@pytest.mark.parametrize(
    ("change", "field", "words"),
    [
        ({"start": "01/02/2026"}, "start", "expected a date"),
        ({"start": "2027-01-01"}, "end", "before the start"),
        ({"authorisations": [{"reference": "DR-1"}]}, "authorisations[0].authority", "required"),
        ({"authorisations": [{"reference": "x", "authority": "y", "number": 1}]},
         "authorisations[0].number", "unknown key"),
        ({"authorisations": "[{oops"}, "authorisations", "not valid JSON"),
        ({"purpose": 42}, "purpose", "expected text"),
        ({"purpose": "x" * 3000}, "purpose", "at most"),
        ({"state": "frozen"}, "state", "expected one of"),
    ],
)  # fmt: skip
def test_bad_fields_are_named(change: dict, field: str, words: str) -> None:
    with pytest.raises(ProjectError) as err:
        project_from_properties("cardio", {**FULL, **change})
    assert err.value.field == field and err.value.project == "cardio"
    assert words in str(err.value)


def test_projects_yaml_takes_governance_but_not_state() -> None:
    entry = {k: v for k, v in FULL.items() if k != "kind"} | {"id": "cardio"}
    (spec,) = parse_projects({"projects": [entry]})
    assert spec.project.governance.controller == "CHU Exemple"
    with pytest.raises(ProjectError, match="field 'state'"):
        parse_projects({"projects": [{**entry, "state": "suspended"}]})


def test_mandatory_fields_are_named_in_the_refusal() -> None:
    bare = project_from_properties("cardio", {"kind": "project"})
    wanted = ["purpose", "authorisations", "end", "datasets"]
    assert missing_fields(bare, wanted) == wanted
    message = refusal(bare, DAY, wanted)
    assert "lacks purpose, authorisations, end, datasets" in message
    assert refusal(project_from_properties("cardio", FULL), DAY, wanted) == ""


def test_the_site_setting_rejects_unknown_field_names() -> None:
    assert ProjectRules(mandatory_fields=["purpose"]).mandatory_fields == ["purpose"]
    with pytest.raises(TraitError, match="unknown mandatory field"):
        ProjectRules(mandatory_fields=["colour"])


def test_dates_bound_the_project_inclusively() -> None:
    project = project_from_properties("cardio", FULL)
    assert "starts on 2026-01-01" in refusal(project, datetime.date(2025, 12, 31))
    assert refusal(project, datetime.date(2026, 1, 1)) == ""
    assert refusal(project, datetime.date(2026, 12, 31)) == ""
    assert "ended on 2026-12-31" in refusal(project, datetime.date(2027, 1, 1))


def test_suspended_and_closed_projects_are_refused_with_the_reason() -> None:
    suspended = project_from_properties("cardio", {**FULL, "state": SUSPENDED,
                                                   "state_why": "incident 42"})  # fmt: skip
    assert "suspended (incident 42)" in refusal(suspended, DAY)
    closed = project_from_properties("cardio", {**FULL, "state": "closed"})
    assert "is closed" in refusal(closed, DAY)


def test_servers_to_stop() -> None:
    projects = {
        "cardio": project_from_properties("cardio", {**FULL, "state": SUSPENDED}),
        "onco": project_from_properties("onco", {"kind": "project"}),
    }
    servers = [
        RunningServer("alice", "cardio", ("cardio",)),
        RunningServer("dave", "", ("onco",)),  # default server of a one-project user: fine
        RunningServer("bob", "onco", ("cardio",)),  # left onco at the provider
        RunningServer("eve", "other", ("other",)),  # not a project server: left alone
    ]
    orders = servers_to_stop(projects, servers, DAY)
    assert [(o.user, o.server, o.project) for o in orders] == [
        ("alice", "cardio", "cardio"), ("bob", "onco", "onco")
    ]  # fmt: skip
    assert "suspended" in orders[0].reason and "no longer a member" in orders[1].reason
    assert servers_to_stop(projects, servers[1:2], DAY, ["purpose"])[0].project == "onco"


def test_end_notice_window() -> None:
    project = project_from_properties("cardio", FULL)
    assert end_notice_due(project, datetime.date(2026, 12, 1), 14) is None
    assert end_notice_due(project, datetime.date(2026, 12, 17), 14) == 14
    assert end_notice_due(project, datetime.date(2026, 12, 31), 14) == 0
    assert end_notice_due(project, datetime.date(2027, 1, 1), 14) is None
    assert end_notice_due(project, datetime.date(2026, 12, 20), 0) is None


def test_register_entry_has_public_fields_only() -> None:
    entry = register_entry(project_from_properties("cardio", FULL), DAY)
    assert entry["authorisations"] == "CNIL DR-2024-123 of 2024-03-01"
    assert entry["state"] == "active" and "members" not in entry and "cpu" not in entry
    ended = register_entry(project_from_properties("cardio", FULL), datetime.date(2027, 2, 1))
    assert ended["state"] == "ended"

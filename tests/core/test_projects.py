from __future__ import annotations

import pytest
from cloisonne.core.projects import (
    Limits,
    ProjectError,
    load_projects,
    parse_projects,
    project_from_properties,
)

GOOD = {
    "projects": [
        {
            "id": "cardio",
            "title": "Heart failure",
            "members": ["alice", "bob"],
            "leads": ["carol"],
            "datasets": ["dcir"],
            "limits": {"cpu": 2, "memory": "4G", "pids": 1024},
            "gpus": 1,
            "approvals_required": 3,
            "egress": ["10.0.0.5:27000"],
        },
        {"id": "onco"},
    ]
}


def test_parses_a_valid_file() -> None:
    specs = parse_projects(GOOD, dataset_exists=lambda name: name == "dcir")
    cardio, onco = specs
    assert cardio.members == ("alice", "bob") and cardio.leads == ("carol",)
    assert cardio.project.limits == Limits(cpu=2.0, memory_bytes=4 * 1024**3, pids=1024, gpus=1)
    assert cardio.project.approvals_required == 3
    assert cardio.project.egress[0].port == 27000
    assert onco.project.limits == Limits() and onco.project.datasets == ()
    assert cardio.project.leads_group == "cardio-leads"


def test_properties_round_trip() -> None:
    project = parse_projects(GOOD)[0].project
    assert project_from_properties("cardio", project.to_properties()) == project


def test_admin_panel_strings_are_accepted() -> None:
    # The admin panel edits properties as text.
    project = project_from_properties(
        "p1",
        {"kind": "project", "datasets": "a, b", "cpu": "0.5", "memory": "512M", "pids": "100",
         "gpus": "0", "egress": '["h:1"]'},
    )  # fmt: skip
    assert project.datasets == ("a", "b") and project.limits.cpu == 0.5
    assert project.limits.pids == 100 and project.egress[0].host == "h"


def error_of(data: object, **kw: object) -> str:
    with pytest.raises(ProjectError) as info:
        parse_projects(data, source="site/projects.yaml", **kw)  # type: ignore[arg-type]
    return str(info.value)


@pytest.mark.parametrize(
    ("entry", "project", "field"),
    [
        ({"id": "p1", "colour": "red"}, "p1", "colour"),
        ({"id": "p1", "limits": {"memory": "2"}}, "p1", "limits.memory"),
        ({"id": "p1", "limits": {"memory": "huge"}}, "p1", "limits.memory"),
        ({"id": "p1", "limits": {"cpu": 0}}, "p1", "limits.cpu"),
        ({"id": "p1", "limits": {"cpu": "many"}}, "p1", "limits.cpu"),
        ({"id": "p1", "limits": {"pids": 10}}, "p1", "limits.pids"),
        ({"id": "p1", "limits": {"pids": 1.5}}, "p1", "limits.pids"),
        ({"id": "p1", "limits": {"swap": 1}}, "p1", "limits.swap"),
        ({"id": "p1", "gpus": -1}, "p1", "gpus"),
        ({"id": "p1", "gpus": True}, "p1", "gpus"),
        ({"id": "p1", "approvals_required": 0}, "p1", "approvals_required"),
        ({"id": "p1", "datasets": ["../etc"]}, "p1", "datasets"),
        ({"id": "p1", "datasets": ["a", "a"]}, "p1", "datasets"),
        ({"id": "p1", "members": ["Bad Name"]}, "p1", "members"),
        ({"id": "p1", "egress": ["nohost"]}, "p1", "egress"),
        ({"id": "Bad_ID"}, "Bad_ID", "id"),
        ({"id": "../x"}, "../x", "id"),
    ],
)
def test_errors_name_file_project_and_field(entry: dict, project: str, field: str) -> None:
    message = error_of({"projects": [entry]})
    assert message.startswith(f"site/projects.yaml, project '{project}', field '{field}': ")


def test_duplicate_ids() -> None:
    message = error_of({"projects": [{"id": "p1"}, {"id": "p1"}]})
    assert "project 'p1', field 'id': duplicate project id" in message


def test_missing_dataset_folder() -> None:
    message = error_of(
        {"projects": [{"id": "p1", "datasets": ["x"]}]}, dataset_exists=lambda n: False
    )
    assert "project 'p1', field 'datasets': dataset folder 'x' does not exist" in message


@pytest.mark.parametrize(
    ("data", "needle"),
    [
        (None, "expected a mapping"),
        ({"projects": []}, "field 'projects'"),
        ({"projects": [{}]}, "project '#1', field 'id'"),
        ({"projects": ["x"]}, "project '#1'"),
        ({"projects": [{"id": "p1"}], "extra": 1}, "field 'extra'"),
    ],
)
def test_structural_errors(data: object, needle: str) -> None:
    assert needle in error_of(data)


def test_load_reports_unreadable_and_bad_yaml(tmp_path) -> None:
    with pytest.raises(ProjectError, match="cannot read"):
        load_projects(tmp_path / "absent.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("projects: [\n")
    with pytest.raises(ProjectError, match=f"{bad}: not valid YAML"):
        load_projects(bad)


def test_load_checks_dataset_folders(tmp_path) -> None:
    (tmp_path / "ds" / "a").mkdir(parents=True)
    f = tmp_path / "projects.yaml"
    f.write_text("projects:\n  - id: p1\n    datasets: [a]\n  - id: p2\n    datasets: [b]\n")
    with pytest.raises(ProjectError, match="project 'p2', field 'datasets': dataset folder 'b'"):
        load_projects(f, datasets_root=tmp_path / "ds")


def test_example_file_is_valid() -> None:
    from cloisonne.hub.config import REPO

    specs = load_projects(REPO / "hub_config" / "projects.yaml")
    assert [s.project.id for s in specs] == ["cardio", "onco"]
    assert specs[0].project.limits != specs[1].project.limits
    assert specs[0].project.datasets != specs[1].project.datasets

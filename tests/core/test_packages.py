"""The allow-list decisions, the filename parser and the workspace credential (pure)."""

from __future__ import annotations

import pytest
from cloisonne.core.packages import (
    AllowList,
    AllowListError,
    check_token,
    parse_entry,
    parse_filename,
    parse_list,
    workspace_token,
)
from cloisonne.core.plan import Endpoint, PlanSettings, User, plan_workspace
from cloisonne.core.projects import ProjectError, project_from_properties


def test_entries_parse_names_and_ranges() -> None:
    assert str(parse_entry("NumPy")) == "numpy"
    entry = parse_entry("pandas >=2.2,<3")
    assert entry.name == "pandas" and entry.versions.contains("2.3.1")
    assert not entry.versions.contains("3.0")


@pytest.mark.parametrize("bad", ["", "numpy>>2", "-x", "num py", "numpy=2", 3])
def test_bad_entries_are_refused_with_the_entry(bad: object) -> None:
    with pytest.raises(AllowListError):
        parse_entry(bad)  # type: ignore[arg-type]


def test_a_name_twice_is_refused() -> None:
    with pytest.raises(AllowListError, match="twice"):
        parse_list(["numpy", "NumPy>=2"])


def test_decisions_combine_site_and_project_lists() -> None:
    allow = AllowList("cardio", parse_list(["six", "numpy<3"]), parse_list(["numpy>=2", "tqdm"]))
    assert allow.decide("six", "1.0").allowed
    assert allow.decide("TQDM").allowed
    assert allow.decide("numpy", "2.1.3").allowed
    assert not allow.decide("numpy", "1.26.4").allowed  # the project's range
    assert not allow.decide("numpy", "3.0.0").allowed  # the site's range
    refused = allow.decide("requests")
    assert not refused.allowed
    assert "requests is not on the package allow-list of project cardio" in refused.reason
    assert "cloisonne packages allow cardio requests" in refused.reason


def test_filenames() -> None:
    wheel = parse_filename("Python_Dateutil-2.9.0.post0-py2.py3-none-any.whl")
    assert wheel and (wheel.name, wheel.version, wheel.kind) == (
        "python-dateutil", "2.9.0.post0", "wheel")  # fmt: skip
    sdist = parse_filename("six-1.16.0.tar.gz")
    assert sdist and sdist.kind == "sdist" and sdist.version == "1.16.0"
    assert parse_filename("index.html") is None


def test_tokens_bind_project_and_user() -> None:
    key = b"k" * 32
    token = workspace_token(key, "cardio", "alice")
    assert check_token(key, "cardio", "alice", token)
    assert not check_token(key, "onco", "alice", token)
    assert not check_token(key, "cardio", "bob", token)
    assert not check_token(b"other", "cardio", "alice", token)


def test_project_property_is_validated() -> None:
    project = project_from_properties("cardio", {"packages": ["tabulate", "six>=1.16"]})
    assert project.packages == ("tabulate", "six>=1.16")
    assert project.to_properties()["packages"] == ["tabulate", "six>=1.16"]
    assert "packages" not in project_from_properties("onco", {}).to_properties()
    with pytest.raises(ProjectError) as err:
        project_from_properties("cardio", {"packages": ["six>>1"]})
    assert err.value.field == "packages" and "cardio" in str(err.value)


def test_the_plan_gives_pip_the_projects_index_and_allows_its_endpoint() -> None:
    index = Endpoint("10.9.0.1", 18340, "package proxy")
    settings = PlanSettings("/d", "/h", "/s", Endpoint("10.9.0.1", 8081, "hub API"),
                            package_index=index, package_key=b"k" * 32)  # fmt: skip
    plan = plan_workspace(project_from_properties("cardio", {}), User("alice", 1001), settings,
                          project_index=1)  # fmt: skip
    env = plan.env_dict()
    token = workspace_token(b"k" * 32, "cardio", "alice")
    assert env["PIP_INDEX_URL"] == f"http://alice:{token}@10.9.0.1:18340/cardio/simple/"
    assert env["PIP_PREFIX"] == "/home/alice/.cloisonne/python"
    assert index in plan.allow
    without = plan_workspace(project_from_properties("cardio", {}), User("alice", 1001),
                             PlanSettings("/d", "/h", "/s", settings.hub_api), project_index=1)  # fmt: skip
    assert "PIP_INDEX_URL" not in without.env_dict() and index not in without.allow


def test_a_project_may_share_one_environment() -> None:
    index = Endpoint("10.9.0.1", 18340, "package proxy")
    settings = PlanSettings("/d", "/h", "/s", Endpoint("10.9.0.1", 8081, "hub API"),
                            package_index=index, package_key=b"k")  # fmt: skip
    project = project_from_properties("onco", {"package_env": "shared"})
    assert project.to_properties()["package_env"] == "shared"
    plan = plan_workspace(project, User("bob", 1002), settings, project_index=2)
    assert plan.env_dict()["PIP_PREFIX"] == "/shared/.cloisonne/python"
    with pytest.raises(ProjectError) as err:
        project_from_properties("onco", {"package_env": "everywhere"})
    assert err.value.field == "package_env"

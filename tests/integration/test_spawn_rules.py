"""Which servers may be spawned: one per project the user belongs to, nothing else."""

from __future__ import annotations

import subprocess
import sys

import pytest
from cloisonne.backends.sandbox.sweep import leftovers
from cloisonne.platform.localhub import HUB_CONFIG, LocalHub

from .conftest import make_hub
from .workspace import spawn, stop

BAD_NAMES = [
    "onco",  # a real project, but not alice's
    "nosuchproject",
    "a;rm -rf",
    "$(reboot)",
    "x" * 200,
    "Cardio",
    "caf\u00e9",
    "..",
]


@pytest.mark.parametrize("name", BAD_NAMES)
def test_refused_names_create_nothing(platform: LocalHub, name: str) -> None:
    before = leftovers(platform.site)
    r = platform.api("POST", f"/users/alice/servers/{name}")
    assert 400 <= r.status_code < 500, r.text
    if name in ("onco", "nosuchproject", "Cardio"):
        message = r.json()["message"]
        assert "is not one of alice's projects" in message or "not a project id" in message
    assert name not in platform.api("GET", "/users/alice").json()["servers"]
    assert leftovers(platform.site) == before


def test_path_traversal_name_never_reaches_a_spawner(platform: LocalHub) -> None:
    r = platform.api("POST", "/users/alice/servers/..%2F..%2Fetc")
    assert 400 <= r.status_code < 500
    assert set(platform.api("GET", "/users/alice").json()["servers"]) <= {"", "cardio"}


def spawn_error(hub: LocalHub, user: str, server: str) -> str:
    """The message of a refused spawn: in the response when the refusal is quick, else in the
    progress events (as the spawn-pending page shows it)."""
    path = f"/users/{user}/servers/{server}" if server else f"/users/{user}/server"
    r = hub.api("POST", path)
    if r.status_code >= 400:
        return r.json()["message"]
    assert r.status_code == 202, r.text
    return hub.api("GET", f"{path}/progress").text


def test_user_in_no_project_is_refused_with_a_clear_message(platform: LocalHub) -> None:
    assert "eve is not a member of any project" in spawn_error(platform, "eve", "")
    assert not platform.api("GET", "/users/eve").json()["servers"].get("", {}).get("ready")


def test_default_server_is_the_single_project(platform: LocalHub) -> None:
    ws = spawn(platform, "dave", "")
    try:
        out = ws.run(
            "import os; print(os.environ['CLOISONNE_PROJECT'], sorted(os.listdir('/data')))"
        )
        assert out.strip() == "onco ['cancer-registry-sample']"
        # ... and the named server of the same project is refused while it runs.
        message = spawn_error(platform, "dave", "onco")
        assert "workspace of project 'onco' is already running at /user/dave" in message
    finally:
        stop(platform, "dave", "")


def test_default_server_needs_a_choice_in_several_projects(platform: LocalHub) -> None:
    message = spawn_error(platform, "bob", "")
    assert "belongs to several projects (cardio, onco)" in message


def test_member_of_two_projects_gets_two_separate_homes(platform: LocalHub) -> None:
    cardio = spawn(platform, "bob", "cardio")
    try:
        onco = spawn(platform, "bob", "onco")
        try:
            cardio.run("open('notes-cardio.txt', 'w').write('only for cardio')")
            seen = onco.run("import os; print(sorted(os.listdir('.')))")
            assert "notes-cardio.txt" not in seen
            assert "notes-cardio.txt" in cardio.run("import os; print(os.listdir('.'))")
            assert (platform.state / "homes/cardio/bob/notes-cardio.txt").exists()
            assert not (platform.state / "homes/onco/bob/notes-cardio.txt").exists()
        finally:
            stop(platform, "bob", "onco")
    finally:
        stop(platform, "bob", "cardio")


def test_group_properties_edited_later_are_validated_at_spawn(platform: LocalHub) -> None:
    original = platform.api("GET", "/groups/cardio").json()["properties"]
    try:
        bad = {**original, "memory": "lots"}
        assert platform.api("PUT", "/groups/cardio/properties", json=bad).ok
        message = spawn_error(platform, "alice", "cardio")
        assert "project 'cardio'" in message and "field 'memory'" in message
        assert leftovers(platform.site)["netns"] == []
    finally:
        platform.api("PUT", "/groups/cardio/properties", json=original)
        platform.api("DELETE", "/users/alice/servers/cardio")


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("projects:\n  - id: p1\n    colour: red\n", "project 'p1', field 'colour'"),
        ("projects:\n  - id: p1\n  - id: p1\n", "project 'p1', field 'id': duplicate"),
        ("projects:\n  - id: p1\n    datasets: [missing]\n", "dataset folder 'missing'"),
        ("projects:\n  - id: p1\n    limits: {memory: 2}\n", "field 'limits.memory'"),
        ("projects:\n  - id: p1\n    limits: {cpu: -1}\n", "field 'limits.cpu'"),
        ("projects: [\n", "not valid YAML"),
    ],
)
def test_hub_refuses_to_start_on_invalid_projects(tmp_path, content: str, expected: str) -> None:
    projects = tmp_path / "projects.yaml"
    projects.write_text(content)
    hub = make_hub("v", projects_file=projects)
    result = subprocess.run(
        [sys.executable, "-m", "jupyterhub", "-f", str(HUB_CONFIG)],
        env=hub.env(), cwd=hub.state, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode != 0
    assert str(projects) in result.stderr and expected in result.stderr, result.stderr[-2000:]
    assert "Traceback" not in result.stderr

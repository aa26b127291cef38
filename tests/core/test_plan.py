from __future__ import annotations

from cloisonne.core.plan import Endpoint, PlanSettings, User, plan_workspace
from cloisonne.core.projects import Egress, Limits, Project

SETTINGS = PlanSettings(
    datasets_root="/srv/datasets",
    homes_root="/srv/homes",
    shared_root="/srv/shared",
    hub_api=Endpoint("10.243.0.1", 8081, "hub API"),
    extra_endpoints=(Endpoint("10.243.0.1", 9000, "audit"),),
)
PROJECT = Project(
    id="cardio",
    datasets=("dcir", "pmsi"),
    limits=Limits(cpu=2.0, memory_bytes=2**31, pids=300, gpus=1),
    egress=(Egress("10.9.9.9", 27000),),
)


def plan(user: str = "alice", project: Project = PROJECT):
    return plan_workspace(project, User(user, 200007), SETTINGS, project_index=4)


def test_mounts_data_read_only_and_home_per_project_and_user() -> None:
    p = plan()
    by_target = {m.target: m for m in p.mounts}
    assert (
        by_target["/data/dcir"].source == "/srv/datasets/dcir" and by_target["/data/dcir"].read_only
    )
    assert by_target["/data/pmsi"].read_only
    home = by_target["/home/alice"]
    assert home.source == "/srv/homes/cardio/alice" and not home.read_only
    assert (
        by_target["/shared"].source == "/srv/shared/cardio" and not by_target["/shared"].read_only
    )
    assert len(p.mounts) == 4


def test_two_projects_never_share_a_home() -> None:
    other = Project(id="onco", datasets=("registry",))
    a = {m.target: m.source for m in plan().mounts}
    b = {m.target: m.source for m in plan(project=other).mounts}
    assert a["/home/alice"] != b["/home/alice"]
    assert "/data/dcir" not in b and b["/data/registry"] == "/srv/datasets/registry"


def test_identity_limits_and_environment() -> None:
    p = plan()
    assert (p.uid, p.gid, p.umask) == (200007, 300004, 0o002)
    assert p.limits.gpus == 1 and p.limits.memory_bytes == 2**31
    env = p.env_dict()
    assert env["HOME"] == "/home/alice" and env["CLOISONNE_PROJECT"] == "cardio"
    assert env["CLOISONNE_GPUS"] == "1" and env["JUPYTER_PREFER_ENV_PATH"] == "1"
    assert env["PYTHONNOUSERSITE"] == "1"


def test_allowlist_is_hub_then_site_endpoints_then_project_egress() -> None:
    assert [(e.host, e.port) for e in plan().allow] == [
        ("10.243.0.1", 8081), ("10.243.0.1", 9000), ("10.9.9.9", 27000)
    ]  # fmt: skip


def test_no_gpu_variable_without_a_gpu_and_plan_is_deterministic() -> None:
    no_gpu = Project(id="p2")
    assert "CLOISONNE_GPUS" not in plan(project=no_gpu).env_dict()
    assert plan() == plan()
    assert dict(plan().labels)["cloisonne.io/project"] == "cardio"


def test_lab_layouts_and_settings_live_in_the_writable_home() -> None:
    p = plan()
    env = p.env_dict()
    home = next(m for m in p.mounts if m.target == p.home)
    assert not home.read_only
    assert env["JUPYTERLAB_WORKSPACES_DIR"] == f"{p.home}/.jupyter/lab/workspaces"
    assert env["JUPYTERLAB_SETTINGS_DIR"] == f"{p.home}/.jupyter/lab/user-settings"

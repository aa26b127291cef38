"""What the data part adds to a workspace plan."""

import pytest
from cloisonne.core.plan import Mount
from cloisonne.data.s3 import StorePorts, s3_endpoint
from cloisonne.data.workspace import data_mount, store_ports_to_refuse


def test_data_mount_is_the_projects_extract_read_only():
    assert data_mount("cardio", "/srv/cloisonne/project-data/") == Mount(
        source="/srv/cloisonne/project-data/cardio",
        target="/data",
        read_only=True,
        volume="dataset",
        sub_path="cardio",
    )
    with pytest.raises(ValueError):
        data_mount("../other", "/srv")


def test_only_the_s3_port_is_allowed_every_other_store_port_refused():
    ports = StorePorts(18330)
    refused = store_ports_to_refuse("10.42.0.1", ports)
    allowed = s3_endpoint("10.42.0.1", ports.s3)
    assert allowed.port == 18330
    assert allowed.port not in {e.port for e in refused}
    assert {e.port for e in refused} == set(ports.all().values()) - {18330}
    assert len(refused) == 9


def _plan(datasets: tuple[str, ...] = ()):
    from cloisonne.core.plan import Endpoint, PlanSettings, User, plan_workspace
    from cloisonne.core.projects import Project

    settings = PlanSettings(datasets_root="/srv/datasets", homes_root="/srv/homes",
                            shared_root="/srv/shared",
                            hub_api=Endpoint("10.243.0.1", 8081, "hub API"))  # fmt: skip
    project = Project(id="cardio", datasets=datasets)
    return plan_workspace(project, User("alice", 200007), settings, project_index=1)


def test_with_project_data_adds_the_extract_the_s3_port_and_variables():
    from cloisonne.core.plan import with_project_data
    from cloisonne.data.s3 import Credential, workspace_env

    plan = _plan()
    cred = Credential("cardio", "cloisonne-cardio", "AK", "SECRET")
    s3 = s3_endpoint("10.243.0.1", 18330)
    out = with_project_data(
        plan,
        extract=data_mount("cardio", "/srv/project-data"),
        s3=s3,
        s3_env=workspace_env(cred, "http://10.243.0.1:18330"),
    )
    extract = [m for m in out.mounts if m.target == "/data"]
    assert extract == [data_mount("cardio", "/srv/project-data")]
    assert out.allow == (*plan.allow, s3)
    env = out.env_dict()
    assert env["CLOISONNE_DATA_DIR"] == "/data"
    assert env["AWS_SECRET_ACCESS_KEY"] == "SECRET"
    assert env["CLOISONNE_S3_URL"] == "s3://cloisonne-cardio/"
    assert out.env == tuple(sorted(out.env))  # the plan's env stays sorted
    # nothing given: the plan is unchanged (no store, no extract)
    assert with_project_data(plan) == plan


def test_extract_beside_datasets_goes_to_data_extract():
    from cloisonne.core.plan import with_project_data

    out = with_project_data(_plan(("dcir", "pmsi")), extract=data_mount("cardio", "/srv/pd"))
    targets = {m.target for m in out.mounts}
    assert {"/data/dcir", "/data/pmsi", "/data/extract"} <= targets and "/data" not in targets
    assert out.env_dict()["CLOISONNE_DATA_DIR"] == "/data/extract"
    with pytest.raises(ValueError, match="dataset named 'extract'"):
        with_project_data(_plan(("extract",)), extract=data_mount("cardio", "/srv/pd"))


def test_a_writable_extract_is_refused():
    import dataclasses

    from cloisonne.core.plan import with_project_data

    writable = dataclasses.replace(data_mount("cardio", "/srv/pd"), read_only=False)
    with pytest.raises(ValueError, match="read-only"):
        with_project_data(_plan(), extract=writable)

"""What the data part adds to a workspace plan."""

import pytest
from cloisonne.data.s3 import StorePorts, s3_endpoint
from cloisonne.data.workspace import data_mount, store_ports_to_refuse
from cloisonne.plan import Mount


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

"""The Site settings: the environment adapter parses and refuses by setting name, and the
generated reference in docs is current."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from cloisonne.hub.reference import reference_markdown
from cloisonne.hub.site import Site, SiteError, sqlite_url

DOC = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"


def test_environment_fills_the_traits_with_one_parser_per_type() -> None:
    site = Site.from_env({"CLOISONNE_S3": "off", "CLOISONNE_GUARD": "On", "CLOISONNE_HUB_PORT":
                          "9001", "CLOISONNE_STATE": "/srv/c", "CLOISONNE_DB_URL": ""})  # fmt: skip
    assert (site.s3, site.guard, site.hub_port) == (False, True, 9001)
    assert site.hub_db_url == sqlite_url(Path("/srv/c")) == "sqlite:////srv/c/jupyterhub.sqlite"
    assert site.datasets_path == Path("/srv/c/datasets")
    assert site.to_env() == {"CLOISONNE_S3": "off", "CLOISONNE_HUB_PORT": "9001",
                             "CLOISONNE_STATE": "/srv/c"}  # fmt: skip


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"CLOISONNE_S3": "maybe"}, "CLOISONNE_S3='maybe': expected 'on' or 'off'"),
        ({"CLOISONNE_HUB_PORT": "http"}, "CLOISONNE_HUB_PORT='http'"),
        ({"CLOISONNE_HUB_PORT": "70000"}, "hub_port"),
        ({"CLOISONNE_S3_PORT": "60000"}, "s3_port"),
        ({"CLOISONNE_S3_PORT": "80"}, "s3_port"),
        ({"CLOISONNE_S3_PORT": "s3"}, "CLOISONNE_S3_PORT='s3'"),
        ({"CLOISONNE_SUBNET": "10.0.0.0/24"}, "/20 or larger"),
        ({"CLOISONNE_PREFIX": "Prod"}, "prefix 'Prod'"),
        ({"CLOISONNE_OUTFLOW_BUDGET": "lots"}, "outflow_budget"),
        ({"CLOISONNE_DB": "mysql"}, "'db' trait"),
    ],
)
def test_bad_settings_are_refused_naming_the_setting(env: dict, expected: str) -> None:
    with pytest.raises(SiteError, match=expected.replace("(", r"\(").replace(".", r"\.")):
        Site.from_env(env)


def test_configuration_reference_is_current() -> None:
    assert DOC.read_text() == reference_markdown(), "run: cloisonne settings --markdown"


def test_settings_command_lists_every_setting_and_hides_secrets() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "cloisonne.platform.cli", "settings"],
        env={"CLOISONNE_ADMIN_TOKEN": "s3cret", "CLOISONNE_HUB_PORT": "9001"},
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    assert "CLOISONNE_HUB_PORT=9001\n" in out and "CLOISONNE_ADMIN_TOKEN=(set)" in out
    assert "s3cret" not in out
    from cloisonne.hub.config import PACKAGE_SETTINGS
    from cloisonne.hub.lifecycle import SETTINGS as LIFECYCLE_SETTINGS

    # the Site's traits, the lifecycle's (ProjectRules) and the package proxy's (ProxySettings)
    expected = len(Site.class_traits()) + len(LIFECYCLE_SETTINGS) + len(PACKAGE_SETTINGS)
    assert out.count("CLOISONNE_") == expected


def test_store_on_the_hub_address_by_default() -> None:
    site = Site.from_env({"CLOISONNE_STATE": "/srv/state"})
    store = site.s3_store()
    assert store is not None
    assert (store.root, store.host, store.ports.s3) == (Path("/srv/state/s3"), "10.243.0.1", 18330)
    assert site.project_data_path == Path("/srv/state/project-data")


def test_store_off_and_unsandboxed() -> None:
    assert Site.from_env({"CLOISONNE_S3": "off"}).s3_store() is None
    store = Site.from_env({"CLOISONNE_SPAWNER": "simple", "CLOISONNE_S3_PORT": "20000"}).s3_store()
    assert store is not None and (store.host, store.ports.s3) == ("127.0.0.1", 20000)

"""The local platform's data settings: clear refusals, and where the store listens."""

from pathlib import Path

import pytest
from cloisonne.backends.sandbox.network import SiteNetwork
from cloisonne.platform import data_platform as platform

SITE = SiteNetwork("10.243.0.0/16", "cln")
STATE = Path("/srv/state")


def test_store_on_the_hub_address_by_default():
    store = platform.s3_store({}, STATE, SITE)
    assert store is not None
    assert (store.root, store.host, store.ports.s3) == (STATE / "s3", "10.243.0.1", 18330)
    assert platform.project_data_root({}, STATE) == STATE / "project-data"


def test_store_off_and_unsandboxed():
    assert platform.s3_store({"CLOISONNE_S3": "off"}, STATE, SITE) is None
    store = platform.s3_store({"CLOISONNE_SPAWNER": "simple", "CLOISONNE_S3_PORT": "20000"},
                              STATE, SITE)  # fmt: skip
    assert store is not None and (store.host, store.ports.s3) == ("127.0.0.1", 20000)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"CLOISONNE_S3": "maybe"}, "CLOISONNE_S3='maybe': expected 'on' or 'off'"),
        ({"CLOISONNE_S3_PORT": "s3"}, "CLOISONNE_S3_PORT='s3': expected a port"),
        ({"CLOISONNE_S3_PORT": "60000"}, "CLOISONNE_S3_PORT='60000': expected a port"),
    ],
)
def test_bad_settings_are_refused_with_the_setting_named(env, message):
    with pytest.raises(SystemExit, match=message):
        platform.s3_store(env, STATE, SITE)

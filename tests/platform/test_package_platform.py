"""The package proxy's place in the local platform: which mode `up` picks, where it listens,
and settings that are refused with a clear message."""

from __future__ import annotations

import http.server
import threading
from functools import partial
from pathlib import Path

import pytest
from cloisonne.hub.config import configure
from cloisonne.packages.settings import from_env
from cloisonne.platform.localhub import LocalHub
from traitlets.config import Config


class Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass


def hub(tmp_path: Path, **env: str) -> LocalHub:
    return LocalHub(state=tmp_path, subnet="10.244.0.0/16", prefix="tpk", extra_env=env,
                    idp_port=1)  # fmt: skip


def test_auto_is_air_gapped_when_the_upstream_does_not_answer(tmp_path: Path) -> None:
    local = hub(tmp_path, CLOISONNE_PACKAGES="auto",
                CLOISONNE_PACKAGES_UPSTREAM="http://127.0.0.1:9/simple/")  # fmt: skip
    proxy = local.package_proxy()
    assert proxy is not None and proxy.settings.mode == "air-gapped"
    assert proxy.settings.host == "10.244.0.1"  # the hub's host-only address
    assert local.env()["CLOISONNE_PACKAGES"] == "air-gapped"  # what the hub is told


def test_auto_is_connected_when_the_upstream_answers(tmp_path: Path) -> None:
    handler = partial(Quiet, directory=str(tmp_path))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/"
        local = hub(tmp_path, CLOISONNE_PACKAGES="auto", CLOISONNE_PACKAGES_UPSTREAM=url)
        proxy = local.package_proxy()
        assert proxy is not None and proxy.settings.mode == "connected"
    finally:
        server.shutdown()
        server.server_close()


def test_off_by_default_outside_up(tmp_path: Path) -> None:
    assert hub(tmp_path).package_proxy() is None


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"CLOISONNE_PACKAGES_ALLOW": "numpy>>2"}, "not a version range"),
        ({"CLOISONNE_PACKAGES_PORT": "80"}, "CLOISONNE_PACKAGES_PORT='80'"),
        ({"CLOISONNE_PACKAGES": "sometimes"}, "mode"),
    ],
)
def test_bad_settings_are_refused(env: dict[str, str], message: str, tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match=message):
        from_env(env, tmp_path, "127.0.0.1", "")


def test_the_hub_gives_the_spawner_the_proxy(tmp_path: Path) -> None:
    from cloisonne.platform.demo import make_demo_datasets

    make_demo_datasets(tmp_path / "datasets")
    c = Config()
    configure(c, {"CLOISONNE_STATE": str(tmp_path), "CLOISONNE_PACKAGES": "air-gapped",
                  "CLOISONNE_SUBNET": "10.244.0.0/16", "CLOISONNE_S3": "off"})  # fmt: skip
    assert c.SandboxSpawner.package_index == "10.244.0.1:18340"
    assert c.SandboxSpawner.package_key_file == str(tmp_path / "packages" / "workspace.key")

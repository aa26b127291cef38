"""`cloisonne up` hands the hub every setting the operator gave, validated first."""

from __future__ import annotations

import pytest
from cloisonne.platform import cli


def test_up_passes_every_setting_to_the_hub(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLOISONNE_STATE", "/srv/c")
    monkeypatch.setenv("CLOISONNE_SERVICE_PORT", "9123")
    monkeypatch.setenv("CLOISONNE_AIRLOCK_MAX_FILE", "5M")
    monkeypatch.setenv("CLOISONNE_CULL_EVERY", "7")
    hub = cli._hub_from_env()
    env = hub.env()
    assert env["CLOISONNE_SERVICE_PORT"] == "9123"  # dropped before
    assert env["CLOISONNE_AIRLOCK_MAX_FILE"] == "5M"
    assert (env["CLOISONNE_CULL_EVERY"], env["CLOISONNE_DATASETS"]) == ("7", "/srv/c/datasets")


def test_up_refuses_a_bad_setting_by_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLOISONNE_HUB_PORT", "hub")
    with pytest.raises(SystemExit, match="CLOISONNE_HUB_PORT='hub'"):
        cli._hub_from_env()

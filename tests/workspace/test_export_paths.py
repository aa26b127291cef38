"""The workspace side of the airlock: which paths may be exported (no service needed)."""

from __future__ import annotations

import hashlib
import os

import pytest
from cloisonne.workspace.export import ExportError, resolve_in_home, snapshot


@pytest.fixture
def home(tmp_path):
    h = tmp_path / "home"
    (h / "results").mkdir(parents=True)
    (h / "results" / "t.csv").write_text("a,b\n")
    (tmp_path / "outside.csv").write_text("secret")
    os.symlink(tmp_path / "outside.csv", h / "out-link.csv")
    os.symlink(h / "results" / "t.csv", h / "in-link.csv")
    return h


def test_names_are_relative_to_home(home) -> None:
    assert resolve_in_home("results/t.csv", home, cwd=home)[1] == "results/t.csv"
    assert resolve_in_home("t.csv", home, cwd=home / "results")[1] == "results/t.csv"
    # a link that stays in the home is exported as its target
    assert resolve_in_home("in-link.csv", home, cwd=home)[1] == "results/t.csv"


@pytest.mark.parametrize(
    ("path", "says"),
    [
        ("../outside.csv", "only files in your home"),
        ("results/../../outside.csv", "only files in your home"),
        ("out-link.csv", "only files in your home"),
        ("/etc/hostname", "only files in your home"),
        ("results", "not a file"),
        ("missing.csv", "no such file"),
    ],
)
def test_refused(home, path, says) -> None:
    with pytest.raises(ExportError, match=says):
        resolve_in_home(path, home, cwd=home)


def test_snapshot_hashes_the_bytes_sent_and_caps_size(home) -> None:
    (snap,) = snapshot([str(home / "results" / "t.csv")], home=home)
    assert snap.sha256 == hashlib.sha256(b"a,b\n").hexdigest() and snap.data == b"a,b\n"
    with pytest.raises(ExportError, match="over the airlock's cap"):
        snapshot([str(home / "results" / "t.csv")], max_file=2, home=home)
    with pytest.raises(ExportError, match="at least one file"):
        snapshot([], home=home)


def test_client_cap_is_the_services_setting_parsed_the_same_way(monkeypatch) -> None:
    from cloisonne.workspace import export

    monkeypatch.setenv("CLOISONNE_AIRLOCK_MAX_FILE", "5M")  # the hub passes the service's cap
    assert export._max_file() == 5 * 1024**2  # was 100 MiB whatever the setting said
    monkeypatch.setenv("CLOISONNE_AIRLOCK_MAX_FILE", "lots")
    with pytest.raises(export.ExportError, match="CLOISONNE_AIRLOCK_MAX_FILE"):
        export._max_file()

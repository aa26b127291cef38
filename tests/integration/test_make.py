"""The Makefile's promises that need no running platform."""

from __future__ import annotations

import subprocess

from cloisonne.hub.config import REPO


def test_make_up_as_non_root_says_why_root_is_needed() -> None:
    result = subprocess.run(
        ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
         "make", "-s", "-C", str(REPO), "up"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode != 0
    assert "Cloisonné needs root" in result.stdout and "network namespace" in result.stdout
    assert "sudo make up" in result.stdout


def test_cloisonne_up_as_non_root_says_why_root_is_needed() -> None:
    result = subprocess.run(
        ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
         str(REPO / ".venv/bin/cloisonne"), "up"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode != 0 and "Cloisonné needs root" in result.stderr

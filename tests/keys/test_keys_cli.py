"""``cloisonne keys`` as an operator runs it, against the development file keyring."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path


def cloisonne(*args: str, state: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLOISONNE_")}
    return subprocess.run([sys.executable, "-m", "cloisonne.platform.cli", *args[:1],
                           "--state", str(state), *args[1:]],
                          capture_output=True, text=True, env=env)  # fmt: skip


def test_status_rotate_and_destroy(tmp_path: Path) -> None:
    from cloisonne.data.keys import project_key

    keys = tmp_path / "hub" / "data-keys"
    key = project_key(keys, "cardio")
    status = json.loads(cloisonne("keys", "status", state=tmp_path).stdout)
    assert status["masters"] == [1] and status["projects"] == {"cardio": {"pseudonymisation": 1}}
    rotated = cloisonne("keys", "rotate", state=tmp_path)
    assert json.loads(rotated.stdout) == {"master": 2, "rewrapped": 1, "destroyed": [1]}
    assert project_key(keys, "cardio") == key
    refused = cloisonne("keys", "destroy", "cardio", state=tmp_path)
    assert refused.returncode == 2 and "--yes" in refused.stderr
    done = cloisonne("keys", "destroy", "cardio", "--yes", state=tmp_path)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["destroyed_masters"] == [2]
    bad = cloisonne("keys", "destroy", "../x", "--yes", state=tmp_path)
    assert bad.returncode == 2 and "invalid project id" in bad.stderr

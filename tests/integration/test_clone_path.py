"""The platform runs from wherever it is cloned (issue 12, item 1).

A clone under /tmp could start no workspace: the sandbox bound the clone's venv, then mounted
its own private ``--tmpfs /tmp`` over it (``setpriv: failed to execute /tmp/.../python``).
Here the hub runs from a code tree under /tmp whose path has spaces in it: the package and
hub configuration copied there, the venv and node tools linked there (the hub's ``sys.prefix``
is then the /tmp path, which is what the spawner binds and runs), and a workspace must answer.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from cloisonne.hub.site import REPO

from .conftest import running_hub
from .workspace import running


@pytest.fixture
def clone() -> Iterator[Path]:
    root = Path(tempfile.mkdtemp(prefix="cloisonne clone ", dir="/tmp"))
    try:
        ignore = shutil.ignore_patterns("__pycache__", "node_modules")
        shutil.copytree(REPO / "extensions", root / "extensions", ignore=ignore)
        shutil.copytree(REPO / "hub_config", root / "hub_config", ignore=ignore)
        (root / ".venv").symlink_to(REPO / ".venv")
        (root / ".node").symlink_to(REPO / ".node")
        yield root
    finally:
        shutil.rmtree(root)


def test_a_workspace_starts_from_a_clone_under_tmp_with_spaces(clone: Path) -> None:
    with running_hub(
        "k",
        python=str(clone / ".venv" / "bin" / "python"),
        hub_config=clone / "hub_config" / "jupyterhub_config.py",
        extra_env={"PYTHONPATH": str(clone / "extensions")},
    ) as hub, running(hub, ("alice", "cardio")) as (ws,):  # fmt: skip
        assert ws.get("api/status").ok
        seen = ws.run_json(
            "import json, os, sys, cloisonne\n"
            "print(json.dumps([sys.prefix, cloisonne.__file__, os.environ['PATH']]))"
        )
        # a PATH with spaces in it still finds the clone's python from a terminal
        python = ws.terminal("command -v python").strip()
    prefix, package, path = seen  # type: ignore[misc]
    # the workspace runs the clone's environment and package, seen at their /tmp paths
    assert package == str(clone / "extensions" / "cloisonne" / "__init__.py"), seen
    assert path.split(":")[0] == str(clone / ".venv" / "bin"), json.dumps(seen)
    assert python == str(clone / ".venv" / "bin" / "python"), python
    assert prefix == str(clone / ".venv"), seen  # the kernel too: "python" found on PATH

"""What a researcher finds in a workspace (issue 12, item 4): a terminal runs the workspace's
own environment (``cloisonne``, ``python``, ``pip``, ``jupyter`` from the platform's venv, not
the system's), and JupyterLab keeps its layouts and user settings in the user's home, while the
plugins the platform locks stay locked.

The terminal was a login shell, whose /etc/profile (the host's, bound read-only) resets PATH to
the system's; JupyterLab wrote to the read-only config dir and answered 500 every ~10 s.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterator

import pytest
from cloisonne.platform.localhub import LocalHub

from .workspace import Workspace, running

VENV_BIN = f"{sys.prefix}/bin"  # the hub runs this test's Python: its venv is the workspace's


@pytest.fixture(scope="module")
def ws(platform: LocalHub) -> Iterator[Workspace]:
    with running(platform, ("alice", "cardio")) as (workspace,):
        yield workspace


def test_the_terminal_runs_the_workspace_environment(ws: Workspace) -> None:
    out = ws.terminal(
        "for c in cloisonne python python3 pip jupyter; do command -v $c; done;"
        " python -c 'import sys; print(sys.prefix)';"
        " cloisonne --help >/dev/null && echo CLI-OK"
    )
    lines = out.replace("\r", "").split()
    names = ("cloisonne", "python", "python3", "pip", "jupyter")
    assert lines[:5] == [f"{VENV_BIN}/{c}" for c in names], out
    assert lines[5] == sys.prefix and lines[6] == "CLI-OK", out


LAYOUT = {"data": {"layout-restorer:data": {"main": {"dock": None}}}, "metadata": {"id": "default"}}


def test_lab_layouts_and_settings_are_saved_in_the_home(ws: Workspace) -> None:
    import requests

    put = requests.put(ws.base + "lab/api/workspaces/default", json=LAYOUT,
                       headers=ws._headers(), timeout=30)  # fmt: skip
    assert put.status_code == 204, put.text  # was 500: Read-only file system
    theme = '{"theme": "JupyterLab Dark"}'
    put = requests.put(ws.base + "lab/api/settings/@jupyterlab/apputils-extension:themes",
                       json={"raw": theme}, headers=ws._headers(), timeout=30)  # fmt: skip
    assert put.status_code == 204, put.text
    saved = ws.get("lab/api/settings/@jupyterlab/apputils-extension:themes").json()
    assert saved["raw"] == theme
    files = ws.run_json(
        "import json, os\n"
        "lab = os.path.expanduser('~/.jupyter/lab')\n"
        "print(json.dumps(sorted(os.path.relpath(os.path.join(d, f), lab)\n"
        "                        for d, _, fs in os.walk(lab) for f in fs)))"
    )
    assert "workspaces/default-37a8.jupyterlab-workspace" in files, files  # type: ignore[operator]
    assert "user-settings/@jupyterlab/apputils-extension/themes.jupyterlab-settings" in files, files  # type: ignore[operator]


def test_locked_plugins_stay_locked_with_a_writable_settings_dir(ws: Workspace) -> None:
    locked = "@jupyterlab/filebrowser-extension:download"
    # ~/.jupyter is now the user's to write: a page config there must not unlock anything
    ws.run(
        "import json, os\n"
        "d = os.path.expanduser('~/.jupyter/labconfig'); os.makedirs(d, exist_ok=True)\n"
        f"unlock = {{'disabledExtensions': {{'{locked}': False}},\n"
        f"          'lockedExtensions': {{'{locked}': False}}}}\n"
        "json.dump(unlock, open(os.path.join(d, 'page_config.json'), 'w'))\n"
    )
    page = ws.get("lab").text
    config = json.loads(
        re.search(r'<script id="jupyter-config-data" type="application/json">(.*?)</script>',
                  page, re.S).group(1)  # type: ignore[union-attr]
    )  # fmt: skip
    assert locked in config["disabledExtensions"] and locked in config["lockedExtensions"]

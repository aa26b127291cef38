"""The workspace server's command-line arguments that switch the guard on.

Command-line settings outrank every config file, so a user's own configuration cannot undo
them; the spawners of both backends append these.
"""

from __future__ import annotations

import sys


def guard_server_args(python_prefix: str = sys.prefix) -> list[str]:
    return [
        "--ServerApp.jpserver_extensions=cloisonne.workspace.guard=True",
        # no language servers are installed in workspaces; skipping it saves ~0.5 s at start
        "--ServerApp.jpserver_extensions=jupyter_lsp=False",
        "--ServerApp.reraise_server_extension_failures=True",
        "--ServerApp.contents_manager_class=cloisonne.workspace.guard.contents.GuardedContentsManager",
        "--ServerApp.kernel_websocket_connection_class="
        "cloisonne.workspace.guard.meter.MeteredKernelConnection",
        "--ContentsManager.files_handler_class=cloisonne.workspace.guard.routes.GuardedFilesHandler",
        "--ContentsManager.allow_hidden=False",
        # only the platform's kernel (with its audit hook; found first through JUPYTER_PATH,
        # which the spawner pins), never a user-installed kernelspec
        "--KernelSpecManager.allowed_kernelspecs=python3",
        # only the labextensions installed with the platform, never a user-writable folder
        f"--LabApp.labextensions_path={python_prefix}/share/jupyter/labextensions",
    ]

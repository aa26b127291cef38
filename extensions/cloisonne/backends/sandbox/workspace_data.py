"""The project's research data in its workspace: the provisioned extract and the S3 bucket.

Runs in the hub at each spawn (the spawner calls ``WorkspaceData(parent=spawner).project_data``
and plans the workspace with the result):
the extract is mounted when it has been provisioned, and the project's bucket and scoped
credential are created (or re-applied) live in the store, so a project added after the hub
started works at its first spawn. The secret goes only into that workspace's environment.
"""

from __future__ import annotations

from pathlib import Path

from traitlets import Integer, Unicode
from traitlets.config import LoggingConfigurable

from ...core.plan import ProjectData
from ...data.s3 import (
    DEFAULT_BASE_PORT,
    Credential,
    S3Error,
    S3Store,
    StorePorts,
    s3_endpoint,
    workspace_env,
)
from ...data.workspace import data_mount
from ..gate import SpawnRefused

# Credentials this hub process has applied, by (store folder, project, store pid): re-applying
# one is a `weed shell` run (0.2-0.4 s) on every spawn, needed again only after the store
# restarts (a new pid) and loses nothing in between (its identities persist in its filer).
_applied: dict[tuple[str, str, int], Credential] = {}


class WorkspaceData(LoggingConfigurable):
    project_data_root = Unicode(
        "",
        config=True,
        help="Folder of provisioned extracts (`cloisonne data provision`): <root>/<project> "
        "is mounted read-only at /data when it exists. Empty: no extracts.",
    )
    s3_root = Unicode(
        "",
        config=True,
        help="State folder of the running S3 store (SeaweedFS; its conf/ holds the admin "
        "certificate and credentials). Empty: workspaces get no S3.",
    )
    s3_host = Unicode(
        "127.0.0.1",
        config=True,
        help="Address the store listens on; workspaces may reach its S3 port there, only.",
    )
    s3_port = Integer(DEFAULT_BASE_PORT, config=True, help="The store's S3 (base) port.")

    def project_data(self, project: str) -> ProjectData:
        """The project's extract and S3 access (blocking: call in a thread)."""
        extract = None
        if self.project_data_root:
            mount = data_mount(project, self.project_data_root)
            if Path(mount.source).is_dir():
                extract = mount
        if not self.s3_root:
            return ProjectData(extract=extract)
        store = S3Store(self.s3_root, host=self.s3_host, ports=StorePorts(self.s3_port))
        pid = store.pid()
        if pid is None:
            raise SpawnRefused(
                503,
                f"The project's S3 store is not running ({store.log_file}); an administrator "
                "must restart the platform.",
            )
        key = (str(store.root), project, pid)
        try:
            credential = _applied.get(key) or store.ensure_project(project)
            _applied[key] = credential
        except S3Error as exc:
            self.log.error("S3 credential for project %s: %s", project, exc)
            raise SpawnRefused(
                503, f"The S3 bucket of project '{project}' could not be prepared."
            ) from None
        return ProjectData(
            extract=extract,
            s3=s3_endpoint(store.host, store.ports.s3),
            s3_env=tuple(sorted(workspace_env(credential, store.endpoint_url).items())),
        )

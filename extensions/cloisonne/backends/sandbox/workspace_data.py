"""The project's research data in its workspace: the provisioned extract and the S3 bucket.

Runs in the hub at each spawn (the spawner calls ``WorkspaceData(parent=spawner).apply``):
the extract is mounted when it has been provisioned, and the project's bucket and scoped
credential are created (or re-applied) live in the store, so a project added after the hub
started works at its first spawn. The secret goes only into that workspace's environment.
"""

from __future__ import annotations

from pathlib import Path

from traitlets import Integer, Unicode
from traitlets.config import LoggingConfigurable

from ...core.plan import WorkspacePlan
from ...data.s3 import (
    DEFAULT_BASE_PORT,
    Credential,
    S3Error,
    S3Store,
    StorePorts,
    s3_endpoint,
    workspace_env,
)
from ...data.workspace import data_mount, with_project_data
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

    def apply(self, plan: WorkspacePlan) -> WorkspacePlan:
        """``plan`` with the project's extract and S3 access (blocking: call in a thread)."""
        try:
            return self._apply(plan)
        except ValueError as exc:  # e.g. a dataset named like the extract's mount point
            raise SpawnRefused(500, f"Project '{plan.project}': {exc}") from None

    def _apply(self, plan: WorkspacePlan) -> WorkspacePlan:
        extract = None
        if self.project_data_root:
            mount = data_mount(plan.project, self.project_data_root)
            if Path(mount.source).is_dir():
                extract = mount
        if not self.s3_root:
            return with_project_data(plan, extract=extract)
        store = S3Store(self.s3_root, host=self.s3_host, ports=StorePorts(self.s3_port))
        pid = store.pid()
        if pid is None:
            raise SpawnRefused(
                503,
                f"The project's S3 store is not running ({store.log_file}); an administrator "
                "must restart the platform.",
            )
        key = (str(store.root), plan.project, pid)
        try:
            credential = _applied.get(key) or store.ensure_project(plan.project)
            _applied[key] = credential
        except S3Error as exc:
            self.log.error("S3 credential for project %s: %s", plan.project, exc)
            raise SpawnRefused(
                503, f"The S3 bucket of project '{plan.project}' could not be prepared."
            ) from None
        return with_project_data(
            plan,
            extract=extract,
            s3=s3_endpoint(store.host, store.ports.s3),
            s3_env=workspace_env(credential, store.endpoint_url),
        )

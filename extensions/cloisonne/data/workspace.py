"""What the research-data part gives a WorkspacePlan, as pure functions for the spawners.

* ``data_mount``: the project's pseudonymised extract, read-only at ``/data``;
* ``s3.s3_endpoint`` / ``s3.workspace_env``: the one store port to allow and the S3 variables;
* ``store_ports_to_refuse``: every other port of the store, which a workspace must not reach
  (the integration test connects to each from inside a sandbox and expects a refusal);
* ``core.plan.ProjectData`` carries them into ``plan_workspace``.
"""

from __future__ import annotations

from ..core.plan import DATA_DIR, Endpoint, Mount
from ..core.projects import PROJECT_ID
from .s3 import HTTP_PORTS, StorePorts


def data_mount(project_id: str, project_data_root: str) -> Mount:
    """``<project_data_root>/<project>`` read-only at /data (a PVC sub-path on Kubernetes)."""
    if not PROJECT_ID.match(project_id):
        raise ValueError(f"invalid project id {project_id!r}")
    return Mount(
        source=f"{project_data_root.rstrip('/')}/{project_id}",
        target=DATA_DIR,
        read_only=True,
        volume="dataset",
        sub_path=project_id,
    )


def store_ports_to_refuse(host: str, ports: StorePorts) -> tuple[Endpoint, ...]:
    """The store's internal HTTP and gRPC ports: never in a workspace's allowlist."""
    internal = [n for n in HTTP_PORTS if n != "s3"]
    return tuple(
        [Endpoint(host, ports.http(n), f"store {n} HTTP (must be refused)") for n in internal]
        + [Endpoint(host, ports.grpc(n), f"store {n} gRPC (must be refused)") for n in HTTP_PORTS]
    )

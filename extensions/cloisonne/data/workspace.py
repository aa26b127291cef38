"""What the research-data part adds to a WorkspacePlan, as pure functions for the spawners.

* ``data_mount``: the project's pseudonymised extract, read-only at ``/data``;
* ``s3.s3_endpoint`` / ``s3.workspace_env``: the one store port to allow and the S3 variables;
* ``store_ports_to_refuse``: every other port of the store, which a workspace must not reach
  (the integration test connects to each from inside a sandbox and expects a refusal);
* ``with_project_data``: a plan with the extract, the S3 endpoint and variables added.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

from ..core.plan import DATA_DIR, Endpoint, Mount, WorkspacePlan
from ..core.projects import PROJECT_ID
from .s3 import HTTP_PORTS, StorePorts

# Where the extract goes when the project also lists datasets, which take /data/<name>: a
# read-only bind at /data would leave no place to create their mount points.
EXTRACT_BESIDE_DATASETS = f"{DATA_DIR}/extract"


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


def extract_target(plan: WorkspacePlan) -> str:
    """/data, unless the plan already mounts datasets under it (then /data/extract)."""
    taken = {m.target for m in plan.mounts if m.target.startswith(DATA_DIR + "/")}
    if not taken:
        return DATA_DIR
    if EXTRACT_BESIDE_DATASETS in taken:
        raise ValueError(
            f"project {plan.project!r} has a dataset named 'extract', which is where its "
            "provisioned extract goes: rename the dataset"
        )
    return EXTRACT_BESIDE_DATASETS


def with_project_data(
    plan: WorkspacePlan,
    *,
    extract: Mount | None = None,
    s3: Endpoint | None = None,
    s3_env: Mapping[str, str] | None = None,
) -> WorkspacePlan:
    """The plan plus the project's extract (read-only), its S3 port and S3 variables.

    ``CLOISONNE_DATA_DIR`` names where the extract is, so notebooks find it either way.
    """
    mounts, env, allow = list(plan.mounts), plan.env_dict(), list(plan.allow)
    if extract is not None:
        if not extract.read_only:
            raise ValueError(f"the extract {extract.source} must be mounted read-only")
        extract = dataclasses.replace(extract, target=extract_target(plan))
        mounts.append(extract)
        env["CLOISONNE_DATA_DIR"] = extract.target
    if s3 is not None:
        allow.append(s3)
    env.update(s3_env or {})
    return dataclasses.replace(
        plan, mounts=tuple(mounts), env=tuple(sorted(env.items())), allow=tuple(allow)
    )

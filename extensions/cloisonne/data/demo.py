"""Demo research data for `cloisonne up`: a small synthetic warehouse and each project's extract.

Projects whose ``extract`` reads the demo warehouse get it provisioned (pseudonymised with the
project's key, audited) before the hub starts, so their workspaces show it under /data at once.
Both steps are idempotent: an existing warehouse is kept, an unchanged extract is not rewritten.
"""

from __future__ import annotations

from pathlib import Path

from ..core.projects import ProjectSpec
from .audit import JsonlAudit
from .keys import project_key
from .layout import layout
from .provision import provision
from .schema import WAREHOUSE_MANIFEST
from .synth import write_warehouse

DEMO_WAREHOUSE = "snds-synth"
DEMO_PATIENTS = 8000  # ~1 s to write and provision; enough for the example notebooks' checks
DEMO_SEED = 1


def provision_demo(
    specs: list[ProjectSpec], *, state: Path, datasets: Path, data_root: Path
) -> list[str]:
    """Write the demo warehouse if missing and provision the projects that read it (keys and
    audit file where ``cloisonne data provision`` keeps them)."""

    paths = layout(state)
    wanted = [s.project for s in specs if s.project.extract is not None
              and s.project.extract.source == DEMO_WAREHOUSE]  # fmt: skip
    if not wanted:
        return []
    warehouse = datasets / DEMO_WAREHOUSE
    if not (warehouse / WAREHOUSE_MANIFEST).exists():
        write_warehouse(warehouse, DEMO_PATIENTS, DEMO_SEED)
    for project in wanted:
        provision(project, warehouse=warehouse, data_root=data_root,
                  key=project_key(paths["keys"], project.id),
                  audit=JsonlAudit(paths["audit"]))  # fmt: skip
    return [p.id for p in wanted]

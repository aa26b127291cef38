"""Where data lives in the local platform's state folder: written once, read by the data
commands, the S3 store's supervisor and the hub's settings (the Helm chart maps the same roles
to PersistentVolumeClaims)."""

from __future__ import annotations

from pathlib import Path


def layout(state: Path) -> dict[str, Path]:
    state = Path(state)
    return {
        "datasets": state / "datasets",  # warehouses (hub side, never mounted as such)
        "project_data": state / "project-data",  # <project>/: mounted read-only at /data
        "keys": state / "hub" / "data-keys",  # <project>.key, 0600
        "audit": state / "hub" / "data-audit.jsonl",  # the data commands' own audit trail
        "s3": state / "s3",  # SeaweedFS data, config, certificates
    }

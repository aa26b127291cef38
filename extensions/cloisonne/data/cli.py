"""``cloisonne data ...``: synthesise the warehouse, provision projects, manage the S3 store.

``add_parser(subparsers)`` registers the ``data`` command group on the main ``cloisonne``
parser; ``main(argv)`` runs it standalone (``python -m cloisonne.data ...``).
Paths default to the local platform's layout under ``--state`` (``./state``).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path

from ..core.projects import ProjectError, load_projects, project_from_properties
from .layout import layout

DEFAULT_STATE = Path("state")
DEFAULT_PROJECTS = Path("hub_config/projects.yaml")


def _progress_bar(enabled: bool) -> tuple[Callable[[int, int], None] | None, Callable[[], None]]:
    if not enabled:
        return None, lambda: None
    from tqdm import tqdm

    bar = tqdm(unit="rows", unit_scale=True, file=sys.stderr, dynamic_ncols=True)

    def update(done: int, total: int) -> None:
        bar.total = total
        bar.update(done - bar.n)

    return update, bar.close


def cmd_synth(args: argparse.Namespace) -> int:
    from .synth import write_warehouse

    out = args.out or layout(args.state)["datasets"] / args.name
    manifest = write_warehouse(
        out, args.patients, args.seed, progress=lambda m: print(m, file=sys.stderr)
    )
    rows = sum(t["rows"] for t in manifest["tables"].values())
    print(f"{out}: {args.patients:,} patients, {rows:,} rows (seed {args.seed})")
    return 0


def _load_project(args: argparse.Namespace):  # noqa: ANN202
    if args.properties:
        return project_from_properties(args.project, json.loads(args.properties))
    specs = {s.project.id: s.project for s in load_projects(args.projects)}
    if args.project not in specs:
        raise ProjectError(f"no project {args.project!r} in {args.projects}")
    return specs[args.project]


def cmd_provision(args: argparse.Namespace) -> int:
    from .audit import JsonlAudit
    from .keys import project_key
    from .provision import ProvisionError, provision

    paths = layout(args.state)
    try:
        project = _load_project(args)
        if project.extract is None:
            raise ProvisionError(f"project {project.id!r} has no 'extract' property")
        progress, close = _progress_bar(not args.no_progress and sys.stderr.isatty())
        try:
            manifest = provision(
                project,
                warehouse=(args.datasets or paths["datasets"]) / project.extract.source,
                data_root=args.data_root or paths["project_data"],
                key=project_key(args.keys_dir or paths["keys"], project.id),
                audit=JsonlAudit(args.audit_log or paths["audit"]),
                progress=progress,
            )
        finally:
            close()
    except (ProjectError, ProvisionError, PermissionError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    rows = sum(t["rows"] for t in manifest["tables"].values())
    state = "provisioned" if manifest["changed"] else "already up to date"
    print(f"{project.id}: {state}, {len(manifest['tables'])} tables, {rows:,} rows")
    return 0


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``data`` and its subcommands; each sets ``func(args) -> exit code``."""
    data = subparsers.add_parser("data", help="research data: warehouse, provisioning, S3")
    data.add_argument("--state", type=Path, default=DEFAULT_STATE, help="state directory")
    sub = data.add_subparsers(dest="data_command", required=True)

    synth = sub.add_parser("synth", help="write a synthetic SNDS-like warehouse (Parquet)")
    synth.add_argument("--patients", type=int, default=10_000)
    synth.add_argument("--seed", type=int, default=0)
    synth.add_argument("--name", default="snds-synth", help="dataset name under datasets/")
    synth.add_argument("--out", type=Path, help="write here instead of datasets/NAME")
    synth.set_defaults(func=cmd_synth)

    prov = sub.add_parser("provision", help="copy a project's authorised extract, pseudonymised")
    prov.add_argument("project")
    prov.add_argument("--projects", type=Path, default=DEFAULT_PROJECTS, help="projects.yaml")
    prov.add_argument("--properties", help="the project's group properties as JSON (hub API)")
    prov.add_argument("--datasets", type=Path, help="warehouses root (default state/datasets)")
    prov.add_argument("--data-root", type=Path, help="project data root")
    prov.add_argument("--keys-dir", type=Path, help="pseudonymisation keys (hub side)")
    prov.add_argument("--audit-log", type=Path, help="JSON-lines audit file")
    prov.add_argument("--no-progress", action="store_true")
    prov.set_defaults(func=cmd_provision)

    try:
        from .s3cli import add_s3_parser
    except ImportError:  # pragma: no cover - s3 support is optional
        pass
    else:
        add_s3_parser(sub)
    return data


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="cloisonne")
    add_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["data", *(sys.argv[1:] if argv is None else argv)])
    return args.func(args)

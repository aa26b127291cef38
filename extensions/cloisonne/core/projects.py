"""Projects: the model, its validation, and its mapping to JupyterHub groups.

A project is a JupyterHub group (members are its researchers) whose ``properties`` hold the
project's settings; a ``<id>-leads`` group names its leads. Projects are seeded from
``projects.yaml`` and may be edited later in the admin panel, so the same validation runs on
load (the hub refuses to start) and again at spawn (the spawn fails with a clear message).
"""

from __future__ import annotations

import datetime
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from . import values
from .governance import GOVERNANCE_KEYS, STATE_KEYS, Governance, GovernanceError, parse_governance
from .packages import AllowListError, parse_list
from .values import format_size

PROJECT_ID = re.compile(r"^[a-z][a-z0-9-]{0,30}[a-z0-9]$")
DATASET_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
USER_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
LEADS_SUFFIX = "-leads"
PROJECT_KIND = "project"


# Bounds keep a typo ("memory: 2" meaning 2 bytes, "cpu: 200") from producing a useless or
# host-starving workspace.
MIN_MEMORY = 256 * 1024**2
MIN_PIDS = 64
MAX_PIDS = 65536
MAX_CPU = 256.0
MAX_GPUS = 16
MAX_APPROVALS = 10


class ProjectError(ValueError):
    """A project definition is wrong; the message names where (file, project, field)."""

    def __init__(self, message: str, *, source: str = "", project: str = "", field: str = ""):
        self.reason, self.source, self.project, self.field = message, source, project, field
        where = ", ".join(
            part
            for part in (
                source,
                f"project '{project}'" if project else "",
                f"field '{field}'" if field else "",
            )
            if part
        )
        super().__init__(f"{where}: {message}" if where else message)


@dataclass(frozen=True)
class Limits:
    cpu: float = 1.0
    memory_bytes: int = 2 * 1024**3
    pids: int = 512
    gpus: int = 0


@dataclass(frozen=True)
class Egress:
    """An extra endpoint a project's workspaces may reach (e.g. a licence server)."""

    host: str
    port: int


DEFAULT_DATE_SHIFT_DAYS = 183  # about six months either way
DEFAULT_AMOUNT_NOISE = 0.05


@dataclass(frozen=True)
class Extract:
    """What of the research warehouse a project is authorised to receive (pseudonymised).

    ``tables`` maps a table to the columns granted (``None``: every column); ``start`` and
    ``end`` (inclusive) bound each table's date column. Whether the names exist in the
    warehouse is checked when provisioning, which has the warehouse at hand.
    """

    source: str
    tables: tuple[tuple[str, tuple[str, ...] | None], ...]
    start: datetime.date | None = None
    end: datetime.date | None = None
    # Unlinkability (two projects' extracts of one warehouse cannot be joined on exact values):
    # every date of a patient moves by one secret offset in [-date_shift_days, +date_shift_days]
    # (intervals within the patient stay exact); amounts are multiplied by a secret factor in
    # [1 - amount_noise, 1 + amount_noise]. 0 turns either off.
    date_shift_days: int = DEFAULT_DATE_SHIFT_DAYS
    amount_noise: float = DEFAULT_AMOUNT_NOISE

    def to_property(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "source": self.source,
            "tables": {t: ("*" if cols is None else list(cols)) for t, cols in self.tables},
        }
        if self.start:
            out["start"] = self.start.isoformat()
        if self.end:
            out["end"] = self.end.isoformat()
        out["date_shift_days"] = self.date_shift_days
        out["amount_noise"] = self.amount_noise
        return out


@dataclass(frozen=True)
class Project:
    id: str
    title: str = ""
    datasets: tuple[str, ...] = ()
    limits: Limits = field(default_factory=Limits)
    approvals_required: int = 2
    egress: tuple[Egress, ...] = ()
    extract: Extract | None = None
    governance: Governance = field(default_factory=Governance)
    # the project's package allow-list (added to the site's): "name" or "name<range>"
    packages: tuple[str, ...] = ()
    # where `pip install` puts packages: each member's home ("home") or the project's shared
    # folder ("shared": one environment for all members)
    package_env: str = "home"

    @property
    def leads_group(self) -> str:
        return self.id + LEADS_SUFFIX

    def to_properties(self) -> dict[str, Any]:
        """The JupyterHub group ``properties`` for this project (JSON-native values)."""
        return {
            "kind": PROJECT_KIND,
            "title": self.title,
            "datasets": list(self.datasets),
            "cpu": self.limits.cpu,
            "memory": format_size(self.limits.memory_bytes),
            "pids": self.limits.pids,
            "gpus": self.limits.gpus,
            "approvals_required": self.approvals_required,
            "egress": [f"{e.host}:{e.port}" for e in self.egress],
            # only when set, so properties of projects without an extract are unchanged
            **({"extract": self.extract.to_property()} if self.extract else {}),
            **self.governance.to_properties(),
            **({"packages": list(self.packages)} if self.packages else {}),
            **({"package_env": self.package_env} if self.package_env != "home" else {}),
        }


@dataclass(frozen=True)
class ProjectSpec:
    """A project as declared in projects.yaml: the project plus who is in it."""

    project: Project
    members: tuple[str, ...] = ()
    leads: tuple[str, ...] = ()


def parse_size(value: object, *, field: str) -> int:
    try:
        return values.parse_size(value)
    except ValueError as exc:
        raise ProjectError(str(exc), field=field) from None


def _as_list(value: object, *, field: str) -> list[str]:
    """Accept a list, a JSON list in a string, or a comma-separated string.

    The admin panel edits group properties as text, so every list may arrive as a string.
    """
    if value is None or value == "":
        return []
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            try:
                value = json.loads(text)
            except json.JSONDecodeError as exc:
                raise ProjectError(f"not a valid JSON list: {exc.msg}", field=field) from None
        else:
            return [part.strip() for part in text.split(",") if part.strip()]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ProjectError(f"expected a list of names, got {value!r}", field=field)
    return list(value)


def _as_number(value: object, kind: type, *, field: str, low: float, high: float) -> Any:
    if isinstance(value, bool):
        raise ProjectError(f"expected a number, got {value!r}", field=field)
    try:
        number = kind(value)
    except (TypeError, ValueError):
        raise ProjectError(f"expected a number, got {value!r}", field=field) from None
    if kind is int and isinstance(value, float | str) and float(value) != number:
        raise ProjectError(f"expected a whole number, got {value!r}", field=field)
    if not low <= number <= high:
        raise ProjectError(f"must be between {low:g} and {high:g}, got {value!r}", field=field)
    return number


def _parse_egress(items: list[str]) -> tuple[Egress, ...]:
    out = []
    for item in items:
        try:
            out.append(Egress(*values.parse_host_port(item)))
        except ValueError as exc:
            raise ProjectError(str(exc), field="egress") from None
    return tuple(out)


COLUMN_NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
EXTRACT_KEYS = {"source", "tables", "start", "end", "date_shift_days", "amount_noise"}


def _parse_packages(items: list[str]) -> tuple[str, ...]:
    try:
        return tuple(str(entry) for entry in parse_list(items))
    except AllowListError as exc:
        raise ProjectError(str(exc), field="packages") from None


PACKAGE_ENVS = ("home", "shared")


def _parse_package_env(value: object) -> str:
    if value not in PACKAGE_ENVS:
        raise ProjectError(
            f"expected 'home' (each member's own) or 'shared' (one for the project), got {value!r}",
            field="package_env",
        )
    return str(value)


def _parse_date(value: object, *, field: str) -> datetime.date | None:
    if value is None or value == "":
        return None
    if isinstance(value, datetime.datetime):
        value = value.date()
    if isinstance(value, datetime.date):
        return value
    try:
        return datetime.date.fromisoformat(str(value))
    except ValueError:
        raise ProjectError(
            f"expected a date such as 2020-01-31, got {value!r}", field=field
        ) from None


def parse_extract(value: object) -> Extract | None:
    """Validate the ``extract`` property: a mapping, or the same as JSON text (admin panel)."""
    field_name = "extract"
    if value is None or value == "":
        return None
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as exc:
            raise ProjectError(f"not a valid JSON object: {exc.msg}", field=field_name) from None
    if not isinstance(value, dict):
        raise ProjectError("expected a mapping with 'source' and 'tables'", field=field_name)
    unknown = sorted(set(value) - EXTRACT_KEYS)
    if unknown:
        raise ProjectError(
            f"unknown key(s) {', '.join(unknown)}; allowed: {', '.join(sorted(EXTRACT_KEYS))}",
            field=f"{field_name}.{unknown[0]}",
        )
    source = value.get("source")
    if not isinstance(source, str) or not DATASET_NAME.match(source):
        raise ProjectError(f"invalid source dataset {source!r}", field=f"{field_name}.source")
    tables = value.get("tables")
    if not isinstance(tables, dict) or not tables:
        raise ProjectError(
            "expected a non-empty mapping of table to a list of columns or '*'",
            field=f"{field_name}.tables",
        )
    parsed: list[tuple[str, tuple[str, ...] | None]] = []
    for table, columns in sorted(tables.items()):
        where = f"{field_name}.tables.{table}"
        if not isinstance(table, str) or not COLUMN_NAME.match(table):
            raise ProjectError(f"invalid table name {table!r}", field=where)
        if columns == "*":
            parsed.append((table, None))
            continue
        names = _as_list(columns, field=where)
        if not names:
            raise ProjectError("grant at least one column, or '*' for all", field=where)
        for name in names:
            if not COLUMN_NAME.match(name):
                raise ProjectError(f"invalid column name {name!r}", field=where)
        if len(set(names)) != len(names):
            raise ProjectError("a column is listed twice", field=where)
        parsed.append((table, tuple(names)))
    start = _parse_date(value.get("start"), field=f"{field_name}.start")
    end = _parse_date(value.get("end"), field=f"{field_name}.end")
    if start and end and start > end:
        raise ProjectError(f"start {start} is after end {end}", field=f"{field_name}.start")
    shift = value.get("date_shift_days", DEFAULT_DATE_SHIFT_DAYS)
    if isinstance(shift, bool) or not isinstance(shift, int) or not 0 <= shift <= 3650:
        raise ProjectError(f"expected a number of days from 0 to 3650, got {shift!r}",
                           field=f"{field_name}.date_shift_days")  # fmt: skip
    noise = value.get("amount_noise", DEFAULT_AMOUNT_NOISE)
    if isinstance(noise, bool) or not isinstance(noise, int | float) or not 0 <= noise <= 0.5:
        raise ProjectError(f"expected a fraction from 0 to 0.5, got {noise!r}",
                           field=f"{field_name}.amount_noise")  # fmt: skip
    return Extract(source=source, tables=tuple(parsed), start=start, end=end,
                   date_shift_days=shift, amount_noise=float(noise))  # fmt: skip


PROJECT_KEYS = {
    "kind", "title", "datasets", "cpu", "memory", "pids", "gpus", "approvals_required", "egress",
    "extract", "packages", "package_env",
} | GOVERNANCE_KEYS  # fmt: skip


def project_from_properties(project_id: str, properties: Mapping[str, Any]) -> Project:
    """Build and validate a project from group properties (as stored or as edited by an admin)."""
    try:
        if not PROJECT_ID.match(project_id):
            raise ProjectError(
                "a project id is 2-32 characters: lowercase letters, digits and '-', "
                "starting with a letter",
                field="id",
            )
        unknown = sorted(set(properties) - PROJECT_KEYS)
        if unknown:
            raise ProjectError(
                f"unknown key(s) {', '.join(unknown)}; allowed: {', '.join(sorted(PROJECT_KEYS))}",
                field=unknown[0],
            )
        datasets = _as_list(properties.get("datasets"), field="datasets")
        for name in datasets:
            if not DATASET_NAME.match(name):
                raise ProjectError(f"invalid dataset name {name!r}", field="datasets")
        if len(set(datasets)) != len(datasets):
            raise ProjectError("a dataset is listed twice", field="datasets")
        defaults = Limits()
        memory = parse_size(properties.get("memory", defaults.memory_bytes), field="memory")
        if memory < MIN_MEMORY:
            raise ProjectError(
                f"must be at least {format_size(MIN_MEMORY)}, got {properties.get('memory')!r}",
                field="memory",
            )
        limits = Limits(
            cpu=_as_number(
                properties.get("cpu", defaults.cpu), float, field="cpu", low=0.1, high=MAX_CPU
            ),
            memory_bytes=memory,
            pids=_as_number(
                properties.get("pids", defaults.pids),
                int,
                field="pids",
                low=MIN_PIDS,
                high=MAX_PIDS,
            ),
            gpus=_as_number(properties.get("gpus", 0), int, field="gpus", low=0, high=MAX_GPUS),
        )
        return Project(
            id=project_id,
            title=str(properties.get("title") or project_id),
            datasets=tuple(datasets),
            limits=limits,
            approvals_required=_as_number(
                properties.get("approvals_required", 2),
                int,
                field="approvals_required",
                low=1,
                high=MAX_APPROVALS,
            ),
            egress=_parse_egress(_as_list(properties.get("egress"), field="egress")),
            extract=parse_extract(properties.get("extract")),
            governance=parse_governance(properties),
            packages=_parse_packages(_as_list(properties.get("packages"), field="packages")),
            package_env=_parse_package_env(properties.get("package_env", "home")),
        )
    except GovernanceError as exc:
        raise ProjectError(exc.reason, project=project_id, field=exc.field) from None
    except ProjectError as exc:
        raise ProjectError(exc.reason, project=project_id, field=exc.field) from None


FILE_KEYS = {"projects"}
# A project's lifecycle state (suspended, closed) is set at run time, never in the file.
SPEC_KEYS = {"id", "members", "leads", "limits"} | (
    PROJECT_KEYS - {"kind", "cpu", "memory", "pids", *STATE_KEYS}
)
LIMIT_KEYS = {"cpu", "memory", "pids"}


def _names(value: object, *, field: str) -> tuple[str, ...]:
    names = _as_list(value, field=field)
    for name in names:
        if not USER_NAME.match(name):
            raise ProjectError(f"invalid user name {name!r}", field=field)
    return tuple(names)


def parse_projects(
    data: object,
    *,
    source: str = "projects.yaml",
    dataset_exists: Callable[[str], bool] | None = None,
) -> list[ProjectSpec]:
    """Validate the parsed content of projects.yaml.

    ``dataset_exists`` checks that each dataset folder is there; it is passed in so that this
    function stays pure and testable.
    """

    def fail(message: str, project: str = "", field: str = "") -> ProjectError:
        return ProjectError(message, source=source, project=project, field=field)

    if not isinstance(data, dict):
        raise fail("expected a mapping with a 'projects' list at the top")
    unknown = sorted(set(data) - FILE_KEYS)
    if unknown:
        raise fail(f"unknown top-level key(s) {', '.join(unknown)}", field=unknown[0])
    entries = data.get("projects")
    if not isinstance(entries, list) or not entries:
        raise fail("'projects' must be a non-empty list", field="projects")

    specs: list[ProjectSpec] = []
    seen: set[str] = set()
    for index, entry in enumerate(entries):
        label = f"#{index + 1}"
        if not isinstance(entry, dict):
            raise fail("each project must be a mapping", project=label)
        project_id = entry.get("id")
        if not isinstance(project_id, str) or not project_id:
            raise fail("missing 'id'", project=label, field="id")
        unknown = sorted(set(entry) - SPEC_KEYS)
        if unknown:
            raise fail(
                f"unknown key(s) {', '.join(unknown)}; allowed: {', '.join(sorted(SPEC_KEYS))}",
                project=project_id,
                field=unknown[0],
            )
        if project_id in seen:
            raise fail("duplicate project id", project=project_id, field="id")
        seen.add(project_id)
        limits = entry.get("limits") or {}
        if not isinstance(limits, dict):
            raise fail("'limits' must be a mapping", project=project_id, field="limits")
        unknown = sorted(set(limits) - LIMIT_KEYS)
        if unknown:
            raise fail(
                f"unknown limit(s) {', '.join(unknown)}; allowed: {', '.join(sorted(LIMIT_KEYS))}",
                project=project_id,
                field=f"limits.{unknown[0]}",
            )
        properties = {
            k: v for k, v in entry.items() if k not in {"id", "members", "leads", "limits"}
        }
        properties.update(limits)
        try:
            project = project_from_properties(project_id, properties)
            members = _names(entry.get("members"), field="members")
            leads = _names(entry.get("leads"), field="leads")
        except ProjectError as exc:
            field_name = f"limits.{exc.field}" if exc.field in LIMIT_KEYS else exc.field
            raise fail(exc.reason, project=project_id, field=field_name) from None
        if dataset_exists is not None:
            for name in project.datasets:
                if not dataset_exists(name):
                    raise fail(
                        f"dataset folder '{name}' does not exist", project=project_id,
                        field="datasets",
                    )  # fmt: skip
        specs.append(ProjectSpec(project=project, members=members, leads=leads))
    return specs


def load_projects(
    path: str | Path, *, datasets_root: str | Path | None = None
) -> list[ProjectSpec]:
    """Read and validate projects.yaml; raises ProjectError naming the file on any problem."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise ProjectError(f"cannot read: {exc.strerror}", source=str(path)) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ProjectError(f"not valid YAML: {exc}", source=str(path)) from None
    exists = None
    if datasets_root is not None:
        root = Path(datasets_root)
        exists = lambda name: (root / name).is_dir()  # noqa: E731
    return parse_projects(data, source=str(path), dataset_exists=exists)


def is_project_group(name: str, properties: Mapping[str, Any] | None) -> bool:
    return (
        bool(properties)
        and properties.get("kind") == PROJECT_KIND
        and not name.endswith(LEADS_SUFFIX)
    )

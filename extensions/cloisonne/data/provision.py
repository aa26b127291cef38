"""Provision a project's data area: its authorised extract of the warehouse, pseudonymised.

For each authorised table: read the granted columns (plus the table's date column when a time
window applies), keep the rows in the window, replace every identifier with its keyed pseudonym
(pseudonymise.py), order rows by pseudonym within each batch, and write Parquet. Files are
written into a fresh directory that replaces the data area only once complete, with a manifest
(rows and SHA-256 per file). A rerun with the same inputs (warehouse files, extract, key, code
version) finds the manifest's fingerprint unchanged, checks the files and writes nothing.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ..core.projects import Extract, Project
from .audit import Audit, no_audit
from .pseudonymise import (
    PSEUDONYM_HEX,
    Keyed,
    Pseudonymiser,
    compact_dictionary,
    keyed_permutation,
)
from .schema import WAREHOUSE_MANIFEST
from .synth import sha256_file
from .unlink import AMOUNT_PREFIX, patient_offsets, perturb_amounts, shift_dates

PROVISION_VERSION = 2  # bump when the output for the same inputs changes
MANIFEST = "MANIFEST.json"
BATCH_ROWS = 1 << 20


class ProvisionError(ValueError):
    """The extract cannot be provisioned from this warehouse (names the table/column)."""


@dataclass(frozen=True)
class TableJob:
    table: str
    source: Path
    columns: tuple[str, ...]  # written, in warehouse order
    identifiers: tuple[tuple[str, str], ...]  # (column, domain) among ``columns``
    date_column: str  # filtered on ("" = no window for this table)
    rows_in: int
    patient_column: str = ""  # whose pseudonym keys the date shift ("" = no dates to shift)


def load_warehouse_manifest(warehouse: Path) -> dict[str, Any]:
    path = warehouse / WAREHOUSE_MANIFEST
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise ProvisionError(f"{path} is missing: is {warehouse} a warehouse?") from None


def plan_tables(extract: Extract, warehouse: Path, manifest: dict[str, Any]) -> list[TableJob]:
    """Check the extract against the warehouse and list what to copy."""
    jobs = []
    for table, granted in extract.tables:
        entry = manifest["tables"].get(table)
        if entry is None:
            raise ProvisionError(
                f"table {table!r} is not in warehouse {warehouse} "
                f"(has: {', '.join(sorted(manifest['tables']))})"
            )
        source = warehouse / entry["file"]
        file_schema = pq.read_schema(source)
        available = list(file_schema.names)
        identifiers = dict(entry["identifiers"])
        undeclared = [c for c in available if c.endswith("_id") and c not in identifiers]
        if undeclared:
            raise ProvisionError(
                f"table {table!r} has identifier-like column(s) {undeclared} that the warehouse "
                "manifest does not declare; refusing to copy them in clear"
            )
        if granted is None:
            columns = available
        else:
            unknown = [c for c in granted if c not in available]
            if unknown:
                raise ProvisionError(f"table {table!r} has no column(s) {unknown}")
            columns = [c for c in available if c in granted]
        windowed = extract.start is not None or extract.end is not None
        jobs.append(
            TableJob(
                table=table,
                source=source,
                columns=tuple(columns),
                identifiers=tuple((c, d) for c, d in identifiers.items() if c in columns),
                date_column=entry["date_column"] if windowed else "",
                rows_in=pq.read_metadata(source).num_rows,
                patient_column=next((c for c, d in identifiers.items() if d == "patient"), ""),
            )
        )
    return jobs


def _window_mask(batch: pa.RecordBatch, column: str, extract: Extract) -> pa.Array | None:
    dates = batch.column(column)
    mask = None
    if extract.start is not None:
        mask = pc.greater_equal(dates, pa.scalar(extract.start, pa.date32()))
    if extract.end is not None:
        upper = pc.less_equal(dates, pa.scalar(extract.end, pa.date32()))
        mask = upper if mask is None else pc.and_(mask, upper)
    return pc.fill_null(mask, False) if mask is not None else None


def copy_table(
    job: TableJob,
    extract: Extract,
    pseudonymiser: Pseudonymiser,
    dest: Path,
    *,
    progress: Callable[[int], None] = lambda n: None,
) -> int:
    """Write ``dest`` from the job; returns the rows written."""
    read = list(job.columns)
    if job.date_column and job.date_column not in read:
        read.append(job.date_column)
    ids = dict(job.identifiers)
    file_schema = pq.read_schema(job.source)
    dates = [c for c in job.columns if pa.types.is_date32(file_schema.field(c).type)]
    shift = extract.date_shift_days if dates and job.patient_column else 0
    if shift and job.patient_column not in read:
        read.append(job.patient_column)  # keys the shift, even when not granted
    amounts = [
        c for c in job.columns
        if extract.amount_noise and c.startswith(AMOUNT_PREFIX)
        and pa.types.is_floating(file_schema.field(c).type)
    ]  # fmt: skip
    # Every string column is read and written dictionary-encoded: identifiers so that each
    # distinct value is hashed once; codes (ATC, ICD-10, ...) so that the row shuffle moves
    # small integers rather than strings. With store_schema=False readers see plain strings.
    strings = [c for c in read if pa.types.is_string(file_schema.field(c).type)]
    source = pq.ParquetFile(job.source, read_dictionary=strings)
    schema = pa.schema(
        [
            pa.field(c, pa.dictionary(pa.int32(), pa.string()))
            if c in strings
            else file_schema.field(c)
            for c in job.columns
        ]
    )
    rows = 0
    with pq.ParquetWriter(dest, schema, store_schema=False) as writer:
        for number, batch in enumerate(source.iter_batches(batch_size=BATCH_ROWS, columns=read)):
            progress(batch.num_rows)
            filtered = False
            if job.date_column:
                mask = _window_mask(batch, job.date_column, extract)
                if mask is not None and not pc.all(mask).as_py():
                    batch, filtered = batch.filter(mask), True
            if not batch.num_rows:
                continue
            offsets = None
            if shift:
                patients = pseudonymiser.column(batch.column(job.patient_column), "patient")
                offsets = patient_offsets(pseudonymiser.keyed, patients, shift)
            arrays = []
            for name in job.columns:
                column = batch.column(name)
                if name in ids:
                    column = pseudonymiser.column(column, ids[name])
                elif filtered and name in strings:
                    # no codes from rows outside the window in the output's dictionary pages
                    column = compact_dictionary(column)
                elif offsets is not None and name in dates:
                    column = shift_dates(column, offsets)
                elif name in amounts:
                    column = perturb_amounts(pseudonymiser.keyed, f"{job.table}:{number}:{name}",
                                             column, extract.amount_noise)  # fmt: skip
                arrays.append(column)
            shuffle = keyed_permutation(pseudonymiser.keyed, f"{job.table}:{number}", len(batch))
            out = pa.RecordBatch.from_arrays(arrays, names=list(job.columns)).take(shuffle)
            writer.write_batch(out)
            rows += out.num_rows
    return rows


def fingerprint(
    project: Project, keyed: Keyed, warehouse_manifest: dict[str, Any], jobs: list[TableJob]
) -> str:
    """Everything the output depends on; an unchanged fingerprint means nothing to redo."""
    assert project.extract is not None
    inputs = {
        "version": PROVISION_VERSION,
        "project": project.id,
        "extract": project.extract.to_property(),
        "key": keyed.fingerprint,
        "sources": {j.table: warehouse_manifest["tables"][j.table]["sha256"] for j in jobs},
        # the manifest's hashes name the files as written; size and mtime catch a file changed
        # since without re-hashing the whole warehouse on every run
        "files": {j.table: _stat(j.source) for j in jobs},
    }
    return hashlib.sha256(json.dumps(inputs, sort_keys=True).encode()).hexdigest()


def _stat(path: Path) -> list[int]:
    info = path.stat()
    return [info.st_size, info.st_mtime_ns]


def _up_to_date(dest: Path, fp: str) -> dict[str, Any] | None:
    try:
        manifest = json.loads((dest / MANIFEST).read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None
    if manifest.get("fingerprint") != fp:
        return None
    for entry in manifest["tables"].values():
        path = dest / entry["file"]
        if not path.is_file() or sha256_file(path) != entry["sha256"]:
            return None
    return manifest


def _replace_dir(new: Path, dest: Path) -> None:
    """Put ``new`` at ``dest``; the old one (if any) is moved aside, then removed."""
    old = dest.with_name(f".{dest.name}.old-{os.getpid()}")
    if dest.exists():
        dest.rename(old)
    new.rename(dest)
    if old.exists():
        shutil.rmtree(old)


def provision(
    project: Project,
    *,
    warehouse: Path,
    data_root: Path,
    key: bytes,
    audit: Audit = no_audit,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    """Provision ``<data_root>/<project.id>``; returns its manifest (``changed`` says if written).

    ``progress(done_rows, total_rows)`` is called per batch (the CLI draws a bar with it).
    """
    if project.extract is None:
        raise ProvisionError(f"project {project.id!r} has no 'extract' property: nothing to copy")
    extract = project.extract
    keyed = Keyed(key)
    warehouse_manifest = load_warehouse_manifest(warehouse)
    jobs = plan_tables(extract, warehouse, warehouse_manifest)
    fp = fingerprint(project, keyed, warehouse_manifest, jobs)
    dest = data_root / project.id
    current = _up_to_date(dest, fp)
    if current is not None:
        audit(
            "data.provisioned", project=project.id, changed=False, fingerprint=fp,
            key=keyed.fingerprint, rows=sum(t["rows"] for t in current["tables"].values()),
        )  # fmt: skip
        return {**current, "changed": False}

    if not data_root.exists():
        # root only: a workspace sees its own project's directory through its bind mount
        data_root.mkdir(parents=True, mode=0o700)
    work = data_root / f".{project.id}.new-{os.getpid()}"
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(mode=0o755)
    total = sum(j.rows_in for j in jobs)
    done = 0

    def step(n: int) -> None:
        nonlocal done
        done += n
        if progress:
            progress(done, total)

    pseudonymiser = Pseudonymiser(keyed)
    tables: dict[str, Any] = {}
    try:
        for job in jobs:
            path = work / f"{job.table}.parquet"
            rows = copy_table(job, extract, pseudonymiser, path, progress=step)
            path.chmod(0o444)
            tables[job.table] = {
                "file": path.name,
                "rows": rows,
                "sha256": sha256_file(path),
                "columns": list(job.columns),
                "pseudonymised": [c for c, _ in job.identifiers],
            }
        manifest = {
            "kind": "cloisonne-project-extract",
            "project": project.id,
            "fingerprint": fp,
            "key": keyed.fingerprint,
            "pseudonym": f"hex(HMAC-SHA256(project key, domain || 0x00 || id))[:{PSEUDONYM_HEX}]",
            # what was done to the values, never how to undo it (the offsets need the key)
            "unlinking": {
                "dates": f"every date of a patient shifted by one keyed offset within "
                f"±{extract.date_shift_days} days (intervals within a patient exact)",
                "amounts": f"amount_* columns times a keyed factor within "
                f"±{extract.amount_noise:.0%}, rounded to the cent",
            },
            "extract": extract.to_property(),
            "source": {
                "patients": warehouse_manifest.get("patients"),
                "seed": warehouse_manifest.get("seed"),
                "sha256": {j.table: warehouse_manifest["tables"][j.table]["sha256"] for j in jobs},
            },
            "provisioned_at": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
            "tables": tables,
        }
        (work / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
        (work / MANIFEST).chmod(0o444)
        _replace_dir(work, dest)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    audit(
        "data.provisioned", project=project.id, changed=True, fingerprint=fp,
        key=keyed.fingerprint, rows=sum(t["rows"] for t in tables.values()),
        tables={name: {"rows": t["rows"], "sha256": t["sha256"]} for name, t in tables.items()},
    )  # fmt: skip
    return {**manifest, "changed": True}

"""Provisioning throughput against a plain Parquet copy and a naive per-row HMAC loop.

One run, same machine, same synthetic warehouse (>= 10 million rows), same columns:

* copy      - pyarrow reads each table in batches and writes it again: the I/O floor.
* provision - cloisonne.data.provision (window check, keyed pseudonyms, keyed row order,
              manifest with SHA-256 per file).
* naive     - the same read/write, with each identifier re-keyed by ``hmac.new`` per row.

and the pseudonymisation step alone (no I/O): ``Pseudonymiser.column`` against the per-row
``hmac.new`` loop over the same identifier columns, already in memory.

Writes bench/results-data.json (a list of rows) and bench/BENCHMARKS-data.md (a table fragment).
Usage: python bench/data_bench.py [--patients 140000] [--work bench/work/data]
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import os
import platform
import shutil
import sys
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from cloisonne.core.projects import project_from_properties
from cloisonne.data.provision import BATCH_ROWS, provision
from cloisonne.data.pseudonymise import PSEUDONYM_HEX, Keyed, Pseudonymiser
from cloisonne.data.schema import TABLES
from cloisonne.data.synth import write_warehouse

HERE = Path(__file__).resolve().parent
MIN_ROWS = 10_000_000


TITLE = "Research data: provisioning throughput (issue 6)"


def timed(label: str, fn, *args, **kwargs):  # noqa: ANN001, ANN202
    start = time.perf_counter()
    result = fn(*args, **kwargs)
    seconds = time.perf_counter() - start
    print(f"{label}: {seconds:.2f} s", file=sys.stderr, flush=True)
    return result, seconds


def plain_copy(warehouse: Path, out: Path) -> int:
    out.mkdir(parents=True, exist_ok=True)
    rows = 0
    for name in TABLES:
        source = pq.ParquetFile(warehouse / f"{name}.parquet")
        with pq.ParquetWriter(out / f"{name}.parquet", source.schema_arrow) as writer:
            for batch in source.iter_batches(batch_size=1 << 20):
                writer.write_batch(batch)
                rows += batch.num_rows
    return rows


def naive_rekey(values: list[str], key: bytes, domain: str) -> list[str]:
    prefix = domain.encode() + b"\0"
    return [
        hmac.new(key, prefix + v.encode(), hashlib.sha256).hexdigest()[:PSEUDONYM_HEX]
        for v in values
    ]


def naive_provision(warehouse: Path, out: Path, key: bytes) -> int:
    out.mkdir(parents=True, exist_ok=True)
    rows = 0
    for name, table in TABLES.items():
        ids = table.identifier_domains()
        source = pq.ParquetFile(warehouse / f"{name}.parquet")
        with pq.ParquetWriter(out / f"{name}.parquet", source.schema_arrow) as writer:
            for batch in source.iter_batches(batch_size=1 << 20):
                arrays = [
                    pa.array(naive_rekey(col.to_pylist(), key, ids[n]), pa.string())
                    if n in ids
                    else col
                    for n, col in zip(batch.schema.names, batch.columns, strict=True)
                ]
                writer.write_batch(pa.RecordBatch.from_arrays(arrays, schema=batch.schema))
                rows += batch.num_rows
    return rows


def identifier_batches(warehouse: Path) -> list[tuple[str, pa.Array]]:
    """The identifier columns as provisioning reads them (same batches), held in memory."""
    out = []
    for name, table in TABLES.items():
        for column, domain in table.identifiers:
            source = pq.ParquetFile(warehouse / f"{name}.parquet", read_dictionary=[column])
            for batch in source.iter_batches(batch_size=BATCH_ROWS, columns=[column]):
                out.append((domain, batch.column(0)))
    return out


def kernel_ours(batches: list[tuple[str, pa.Array]], key: bytes) -> int:
    pseudonymiser = Pseudonymiser(Keyed(key))
    for domain, column in batches:
        pseudonymiser.column(column, domain)
    return sum(len(column) for _, column in batches)


def kernel_naive(batches: list[tuple[str, pa.Array]], key: bytes) -> int:
    for domain, column in batches:
        naive_rekey(column.dictionary_decode().to_pylist(), key, domain)
    return sum(len(column) for _, column in batches)


def row(
    name: str, value: float, baseline: str, baseline_value: float, target: float
) -> dict[str, object]:
    ratio = value / baseline_value
    return {
        "name": name,
        "value": round(value),
        "unit": "rows/s",
        "baseline": baseline,
        "baseline_value": round(baseline_value),
        "ratio": round(ratio, 2),
        "target": f">= {target:g}",
        "met": ratio >= target,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=140_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--work", type=Path, default=HERE / "work" / "data")
    parser.add_argument("--out", type=Path, default=HERE)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)

    shutil.rmtree(args.work, ignore_errors=True)
    warehouse = args.work / "warehouse"
    manifest, synth_s = timed("synth", write_warehouse, warehouse, args.patients, args.seed)
    total = sum(t["rows"] for t in manifest["tables"].values())
    print(f"warehouse: {total:,} rows", file=sys.stderr)
    if total < MIN_ROWS:
        print(f"need >= {MIN_ROWS:,} rows; raise --patients", file=sys.stderr)
        return 2
    key = os.urandom(32)
    project = project_from_properties(
        "bench",
        {"extract": {"source": "warehouse", "tables": {name: "*" for name in TABLES}}},
    )

    # Copy and provision alternate, best of --repeat each: this 2-core machine is shared, and
    # alternating exposes both to the same background load.
    copy_s = prov_s = float("inf")
    for _attempt in range(args.repeat):
        shutil.rmtree(args.work / "projects", ignore_errors=True)
        copied, seconds = timed("plain copy", plain_copy, warehouse, args.work / "copy")
        copy_s = min(copy_s, seconds)
        result, seconds = timed(
            "provision",
            provision,
            project,
            warehouse=warehouse,
            data_root=args.work / "projects",
            key=key,
        )
        assert result["changed"], "each attempt must really provision"
        prov_s = min(prov_s, seconds)
    provisioned = sum(t["rows"] for t in result["tables"].values())
    naive_rows, naive_s = timed(
        "naive provision", naive_provision, warehouse, args.work / "naive", key
    )
    columns = identifier_batches(warehouse)
    kernel_s = float("inf")
    for _attempt in range(args.repeat):
        id_rows, seconds = timed("pseudonymise step (ours)", kernel_ours, columns, key)
        kernel_s = min(kernel_s, seconds)
    _, kernel_naive_s = timed("pseudonymise step (naive)", kernel_naive, columns, key)
    assert copied == provisioned == naive_rows == total

    rows = [
        row(
            f"provision, {total / 1e6:.1f}M rows end to end",
            total / prov_s,
            "plain Parquet copy of the same columns (pyarrow)",
            total / copy_s,
            0.5,
        ),
        row(
            f"provision, {total / 1e6:.1f}M rows end to end",
            total / prov_s,
            "naive provisioning: same I/O, hmac.new per row",
            total / naive_s,
            20,
        ),
        row(
            f"pseudonymise step alone, {id_rows / 1e6:.1f}M identifier values",
            id_rows / kernel_s,
            "hmac.new per row over the same values (in memory)",
            id_rows / kernel_naive_s,
            20,
        ),
    ]
    machine = f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}"
    (args.out / "results-data.json").write_text(json.dumps(rows, indent=2) + "\n")
    lines = [
        f"Data provisioning ({machine}; warehouse {args.patients:,} patients, {total:,} rows, "
        f"synthesised in {synth_s:.1f} s; `make bench`):",
        "",
        "| benchmark | value | baseline | baseline value | ratio | target | met |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['name']} | {r['value']:,} rows/s | {r['baseline']} | "
            f"{r['baseline_value']:,} rows/s | {r['ratio']}x | {r['target']} | "
            f"{'yes' if r['met'] else 'no'} |"
        )
    bound = naive_s / copy_s
    lines += [
        "",
        f"End to end, no pipeline that reads and writes Parquet like the plain copy can beat the "
        f"naive one by more than naive time / copy time = {naive_s:.1f} s / {copy_s:.1f} s = "
        f"{bound:.1f}x on this machine, so the 20x target is only reachable by the "
        "pseudonymisation step itself (third row), where the per-row loop's cost lives. "
        "Best of 3 alternating runs for copy, provision and the step; the machine is shared.",
    ]
    (args.out / "BENCHMARKS-data.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    shutil.rmtree(args.work, ignore_errors=True)
    return 0


def run() -> list[dict]:
    """For bench/run.py: the same figures, returned as rows."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        main(["--out", tmp])
        return json.loads((Path(tmp) / "results-data.json").read_text())


if __name__ == "__main__":
    sys.exit(main())

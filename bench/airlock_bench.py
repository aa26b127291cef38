"""Export airlock: time from submission to checks complete, and disclosure-check throughput
against ACRO.

Submission: the cloisonne service's real application (tornado, SQLite hub database, the
content-addressed store on local disk, the audit chain) in this process, with the hub's login
stood in for; a workspace's request is POSTed over HTTP (JSON, base64) and timed until the
answer, which comes once the files are stored, the request row committed and the automated
checks attached. Cases: one 10 MB CSV of aggregated counts (~330,000 rows), and a request of
100 small CSV files. Median of 3 rounds, each on a fresh service.

Throughput: the same job for both tools on the same synthetic microdata (500,000 records:
region × age band, a cost per record): build the region × age-band table of totals and check
it for small counts (threshold 10), p-ratio and nk-dominance (n=2, k=0.9). ACRO 1.x
(`acro.crosstab(..., values=cost, aggfunc="sum")`, its defaults) does both in one call;
Cloisonné aggregates with pandas (count, sum, largest and second-largest contribution per
cell) and runs `cloisonne.sdc.check_table` on the result, which is what it does with an output
file that carries top1/top2 columns. rows/s = microdata records / seconds (median of 3); ratio =
Cloisonné / ACRO. A further row times the check of the output table alone. The check rate on
the 10 MB file is lower because every rule runs on every row (identifier search per cell:
most of the time, in `sdc.rules.identifiers`).
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "airlock"))  # the API tests' in-process service

from api_helpers import Service, upload  # noqa: E402
from cloisonne.sdc import SDCSettings  # noqa: E402
from cloisonne.sdc.rules import check_table  # noqa: E402

TITLE = "Export airlock: submission to checks complete; check throughput against ACRO (issue 4)"
ROUNDS = 3
RECORDS = 500_000


def row(name: str, value: float, unit: str, baseline: str = "",
        baseline_value: float | None = None, target: str = "") -> dict[str, Any]:  # fmt: skip
    return {
        "name": name,
        "value": round(value, 3),
        "unit": unit,
        "baseline": baseline,
        "baseline_value": round(baseline_value, 3) if baseline_value is not None else None,
        "ratio": round(value / baseline_value, 3) if baseline_value else None,
        "target": target,
        "met": None,
    }


def big_csv(target_bytes: int = 10 * 1024**2) -> bytes:
    rng = np.random.default_rng(1)
    n = target_bytes // 31
    table = pd.DataFrame({
        "region": rng.integers(1, 100, n).astype(str),
        "age_band": rng.choice(["0-17", "18-39", "40-59", "60-79", "80+"], n),
        "sexe": rng.choice(["F", "M"], n),
        "annee": rng.integers(2015, 2025, n),
        "n": rng.integers(11, 5000, n),
    })  # fmt: skip
    data = table.to_csv(index=False).encode()
    return data[: data.rfind(b"\n", 0, target_bytes) + 1]


def small_csvs(count: int = 100) -> list[tuple[str, bytes]]:
    rng = np.random.default_rng(2)
    out = []
    for i in range(count):
        t = pd.DataFrame({"region": [f"r{j}" for j in range(50)],
                          "n": rng.integers(11, 900, 50)})  # fmt: skip
        out.append((f"outputs/table_{i:03d}.csv", t.to_csv(index=False).encode()))
    return out


async def _submit_once(files: list[tuple[str, bytes]]) -> tuple[float, float]:
    with tempfile.TemporaryDirectory(prefix="cloisonne-bench-airlock-") as tmp:
        svc = Service(Path(tmp), max_file_bytes=64 * 1024**2, max_files=500)
        try:
            body = [upload(name, data) for name, data in files]
            started = time.perf_counter()
            r = await svc.client.submit("ws:alice:cardio", body)
            elapsed = time.perf_counter() - started
            assert r.code == 201 and r.json()["state"] == "checked", r.body[:300]
            return elapsed, r.json()["checks"]["seconds"]
        finally:
            svc.stop()


def submission_rows() -> list[dict[str, Any]]:
    rows = []
    for label, files in (("one 10 MB CSV", [("outputs/big.csv", big_csv())]),
                         ("100 CSV files", small_csvs())):  # fmt: skip
        runs = [asyncio.run(_submit_once(files)) for _ in range(ROUNDS)]
        total = statistics.median(r[0] for r in runs)
        checks = statistics.median(r[1] for r in runs)
        rows.append(row(f"submission to checks complete, {label} (p50 of {ROUNDS})", total, "s"))
        rows.append(row(f"  of which the disclosure checks, {label}", checks, "s"))
        if len(files) == 1:
            lines = files[0][1].count(b"\n") - 1
            rows.append(row(f"  check rate on that file ({lines:,} rows, every rule)",
                            lines / checks, "rows/s"))  # fmt: skip
    return rows


def microdata(n: int = RECORDS) -> pd.DataFrame:
    rng = np.random.default_rng(3)
    return pd.DataFrame({
        "region": rng.choice([f"R{i:02d}" for i in range(20)], n),
        "age_band": rng.choice(["0-17", "18-39", "40-59", "60-79", "80+"], n),
        "cost": rng.gamma(2.0, 400.0, n).round(2),
    })  # fmt: skip


def cloisonne_table(data: pd.DataFrame) -> pd.DataFrame:
    ordered = data.sort_values("cost", ascending=False)
    groups = ordered.groupby(["region", "age_band"], sort=True)["cost"]
    table = groups.agg(n="size", total_cost="sum").reset_index()
    table["top1"] = groups.nth(0).groupby([ordered["region"], ordered["age_band"]]).sum().values
    table["top2"] = groups.nth(1).groupby([ordered["region"], ordered["age_band"]]).sum().values
    return table


def _median_time(fn: Any) -> float:
    times = []
    for _ in range(ROUNDS):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def throughput_rows() -> list[dict[str, Any]]:
    from acro import ACRO

    for name in ("acro", "acro:records"):  # it logs every table it makes
        logging.getLogger(name).setLevel(logging.WARNING)
    data = microdata()
    settings = SDCSettings()
    with contextlib.redirect_stdout(io.StringIO()):
        acro = ACRO(suppress=False)
    sink = io.StringIO()

    def run_acro() -> None:
        with contextlib.redirect_stdout(sink):
            acro.crosstab(data.region, data.age_band, values=data.cost, aggfunc="sum")

    def run_cloisonne() -> None:
        check_table(cloisonne_table(data), settings)

    table = cloisonne_table(data)
    acro_s = _median_time(run_acro)
    ours_s = _median_time(run_cloisonne)
    check_s = _median_time(lambda: check_table(table, settings))
    return [
        row(
            f"check throughput, {RECORDS:,} records → region × age-band totals",
            RECORDS / ours_s,
            "rows/s",
            "ACRO 1.x crosstab(values, aggfunc='sum'), same data",
            RECORDS / acro_s,
        ),  # fmt: skip
        row(f"  the check of the output table alone ({len(table)} cells)", check_s * 1000, "ms"),
    ]


def run() -> list[dict[str, Any]]:
    os.environ.setdefault("MPLBACKEND", "Agg")  # ACRO imports matplotlib
    return submission_rows() + throughput_rows()


if __name__ == "__main__":
    for r in run():
        print(r)

"""Audit store throughput: appends/s on SQLite (and PostgreSQL when its binaries are here).

    .venv/bin/python bench/audit_bench.py [--events 5000] [--rounds 3] [--no-postgres]

Writes bench/results-audit.json: rows {name, value, unit, baseline, baseline_value, ratio,
target, met}; each append figure is the median of ``--rounds`` runs. The baseline of each
append row is the same database doing one bare INSERT per transaction with the same settings
(no chain, no head lock, no SQLAlchemy), so ``ratio`` is the share of the raw speed the chained
store keeps. The target (2,000 appends/s on SQLite, one appender) is issue 3's.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "audit"))  # pgcluster: the tests' private PostgreSQL

from cloisonne.audit.events import NewEvent  # noqa: E402
from cloisonne.audit.store import AuditStore  # noqa: E402

TITLE = "Audit log: appends per second (issue 3)"

FIELDS = {"request": "r-000123", "file": "outputs/table1.csv", "sha256": "ab" * 32, "size": 4096}
TARGET_SQLITE = 2000.0


def row(
    name: str,
    value: float,
    unit: str,
    baseline: str = "",
    baseline_value: float | None = None,
    target: float | None = None,
) -> dict[str, Any]:
    ratio = round(value / baseline_value, 3) if baseline_value else None
    return {
        "name": name,
        "value": round(value, 1),
        "unit": unit,
        "baseline": baseline,
        "baseline_value": round(baseline_value, 1) if baseline_value else None,
        "ratio": ratio,
        "target": target,
        "met": None if target is None else value >= target,
    }


def median(measure: Callable[[], float], rounds: int) -> float:
    return statistics.median(measure() for _ in range(rounds))


def paired(
    baseline: Callable[[], float], measure: Callable[[], float], rounds: int
) -> tuple[float, float]:
    """Medians of the baseline and the measure, run alternately so that a burst of contention
    lands on both rather than on one."""
    pairs = [(baseline(), measure()) for _ in range(rounds)]
    return statistics.median(p[0] for p in pairs), statistics.median(p[1] for p in pairs)


def raw_sqlite(path: Path, n: int, synchronous: str) -> float:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute(f"PRAGMA synchronous={synchronous}")
    conn.execute("CREATE TABLE t (seq INTEGER PRIMARY KEY, body TEXT)")
    body = json.dumps(FIELDS)
    start = time.perf_counter()
    for i in range(n):
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("INSERT INTO t VALUES (?, ?)", (i, body))
        conn.execute("COMMIT")
    elapsed = time.perf_counter() - start
    conn.close()
    return n / elapsed


def store_appends(url: str, n: int, **kwargs: Any) -> float:
    store = AuditStore(url, **kwargs)
    store.append("bench.warmup")
    start = time.perf_counter()
    for i in range(n):
        store.append("airlock.file.downloaded", user="alice", project="diabete",
                     fields={**FIELDS, "i": i})  # fmt: skip
    elapsed = time.perf_counter() - start
    store.close()
    return n / elapsed


def store_batches(url: str, n: int, batch: int) -> float:
    store = AuditStore(url)
    start = time.perf_counter()
    for b in range(0, n, batch):
        store.append_many(
            NewEvent("workspace.kernel.output", "alice", "diabete", {**FIELDS, "i": i})
            for i in range(b, min(n, b + batch))
        )
    elapsed = time.perf_counter() - start
    store.close()
    return n / elapsed


def _worker(url: str, n: int) -> None:
    store = AuditStore(url)
    for i in range(n):
        store.append("bench.concurrent", user="w", fields={"i": i})
    store.close()


def concurrent(url: str, processes: int, n_each: int) -> tuple[float, bool]:
    AuditStore(url).close()
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_worker, args=(url, n_each)) for _ in range(processes)]
    start = time.perf_counter()
    for p in procs:
        p.start()
    for p in procs:
        p.join()
    elapsed = time.perf_counter() - start
    store = AuditStore(url)
    ok = store.verify().ok
    store.close()
    # Process start-up (~0.3 s each, imports) is included: a lower bound on the append rate.
    return processes * n_each / elapsed, ok


def verify_rate(url: str) -> float:
    store = AuditStore(url)
    start = time.perf_counter()
    result = store.verify()
    elapsed = time.perf_counter() - start
    store.close()
    assert result.ok
    return result.count / elapsed


def raw_postgres(url: str, n: int) -> float:
    import psycopg

    with psycopg.connect(url.replace("postgresql+psycopg", "postgresql")) as conn:
        conn.execute("DROP TABLE IF EXISTS raw_t")
        conn.execute("CREATE TABLE raw_t (seq BIGINT PRIMARY KEY, body TEXT)")
        conn.commit()
        body = json.dumps(FIELDS)
        start = time.perf_counter()
        for i in range(n):
            conn.execute("INSERT INTO raw_t VALUES (%s, %s)", (i, body))
            conn.commit()
        return n / (time.perf_counter() - start)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=3, help="runs per figure (median)")
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument("--output", default=str(ROOT / "bench" / "results-audit.json"))
    args = parser.parse_args(argv)
    n, rounds = args.events, args.rounds
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="cloisonne-audit-bench-") as tmp:
        d = Path(tmp)
        fresh = iter(range(10**6))

        def db() -> Path:
            return d / f"db{next(fresh)}.db"

        # Each figure is the median of --rounds runs, the bare baseline and the store
        # interleaved on fresh files, so a burst of disk or CPU contention skews both alike.
        raw_normal, one = paired(
            lambda: raw_sqlite(db(), n, "NORMAL"),
            lambda: store_appends(f"sqlite:///{db()}", n),
            rounds,
        )
        rows.append(row(
            "sqlite_append_one_appender", one, "appends/s",
            "bare sqlite3 INSERT per transaction, WAL, synchronous=NORMAL", raw_normal,
            TARGET_SQLITE,
        ))  # fmt: skip
        raw_full, full = paired(
            lambda: raw_sqlite(db(), n, "FULL"),
            lambda: store_appends(f"sqlite:///{db()}", n, sqlite_synchronous="FULL"),
            rounds,
        )
        rows.append(row(
            "sqlite_append_synchronous_full", full, "appends/s",
            "bare sqlite3 INSERT per transaction, WAL, synchronous=FULL", raw_full,
        ))  # fmt: skip
        batches = median(lambda: store_batches(f"sqlite:///{db()}", n, 100), rounds)
        rows.append(row(
            "sqlite_append_many_batches_of_100", batches, "appends/s",
            "bare sqlite3 INSERT per transaction, WAL, synchronous=NORMAL", raw_normal,
        ))  # fmt: skip
        url = f"sqlite:///{db()}"
        rate, ok = concurrent(url, 4, n // 4)
        rows.append(row(
            "sqlite_append_4_processes_total_incl_startup", rate, "appends/s",
            "one appender, same store", one,
        ) | {"chain_verified": ok})  # fmt: skip
        rows.append(row("sqlite_verify", verify_rate(url), "events/s"))
        if not args.no_postgres:
            import pgcluster

            if pgcluster.available():
                cluster = pgcluster.start(fsync=True)
                try:
                    m = max(n // 5, 100)
                    raw, store_rate = paired(
                        lambda: raw_postgres(cluster.url, m),
                        lambda: store_appends(cluster.url, m),
                        rounds,
                    )
                    rows.append(row(
                        "postgresql_append_one_appender_fsync_on", store_rate, "appends/s",
                        "bare psycopg INSERT per transaction, same server", raw,
                    ))  # fmt: skip
                    rows.append(row("postgresql_verify", verify_rate(cluster.url), "events/s"))
                finally:
                    cluster.stop()
            else:
                print("PostgreSQL binaries not found: apt-get install -y postgresql",
                      file=sys.stderr)  # fmt: skip
    Path(args.output).write_text(json.dumps(rows, indent=2) + "\n")
    for r in rows:
        extra = f" (baseline {r['baseline_value']}, ratio {r['ratio']})" if r["ratio"] else ""
        met = "" if r["met"] is None else ("  target met" if r["met"] else "  TARGET MISSED")
        print(f"{r['name']:48} {r['value']:>10} {r['unit']}{extra}{met}")
    return 0 if all(r["met"] is not False for r in rows) else 1


def run() -> list[dict[str, Any]]:
    """For bench/run.py: the same figures, returned as rows."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "rows.json"
        main(["--output", str(out)])
        return json.loads(out.read_text())


if __name__ == "__main__":
    sys.exit(main())

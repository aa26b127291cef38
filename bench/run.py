"""Run the benchmarks and write BENCHMARKS.md and bench/results.json.

Each benchmark module (bench/*_bench.py) exposes TITLE, a module docstring saying what is
measured against what, and run() -> list of rows {name, value, unit, baseline, baseline_value,
ratio, target, met}. Rows of benchmarks not run this time are kept from the previous results.

  python bench/run.py            all benchmarks
  python bench/run.py spawn      only bench/spawn_bench.py
"""

from __future__ import annotations

import datetime
import importlib
import json
import os
import platform
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "results.json"
REPORT = ROOT / "BENCHMARKS.md"


def machine() -> str:
    cpu = "unknown CPU"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    mem_kib = int(Path("/proc/meminfo").read_text().split()[1])
    return (f"{os.cpu_count()} cores ({cpu}), {mem_kib / 2**20:.0f} GiB RAM, "
            f"Linux {platform.release()}, Python {platform.python_version()}")  # fmt: skip


def fmt(value: object) -> str:
    if value is None or value == "":
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "**no**"
    if isinstance(value, float):
        return f"{value:,.3f}".rstrip("0").rstrip(".")
    return str(value)


def main(argv: list[str]) -> int:
    sys.path.insert(0, str(HERE))
    names = argv or sorted(p.stem.removesuffix("_bench") for p in HERE.glob("*_bench.py"))
    previous = json.loads(RESULTS.read_text()) if RESULTS.exists() else []
    sections = {}
    rows_by_bench: dict[str, list[dict]] = {}
    for row in previous:
        rows_by_bench.setdefault(row.get("benchmark", "?"), []).append(row)
    for name in names:
        module = importlib.import_module(f"{name}_bench")
        print(f"== {module.TITLE}", flush=True)
        rows = module.run()
        for row in rows:
            row["benchmark"] = name
            print(f"   {row['name']}: {fmt(row['value'])} {row['unit']}"
                  + (f" (baseline {fmt(row['baseline_value'])}, ratio {fmt(row['ratio'])})"
                     if row.get("baseline_value") is not None else ""), flush=True)  # fmt: skip
        rows_by_bench[name] = rows
    for name in sorted(rows_by_bench):
        try:
            module = importlib.import_module(f"{name}_bench")
            sections[name] = (module.TITLE, (module.__doc__ or "").strip())
        except ImportError:
            sections[name] = (name, "")
    all_rows = [row for name in sorted(rows_by_bench) for row in rows_by_bench[name]]
    RESULTS.write_text(json.dumps(all_rows, indent=2) + "\n")

    today = datetime.date.today().isoformat()
    lines = [
        "# Benchmarks",
        "",
        f"Written by `make bench` on {today}; machine: {machine()}.",
        "Every figure is measured in the same run as its baseline; `ratio` = value / baseline.",
        "Raw rows: [bench/results.json](bench/results.json).",
        "",
    ]
    for name in sorted(rows_by_bench):
        title, doc = sections[name]
        lines += [f"## {title}", "", doc, ""]
        lines += ["| measure | value | baseline | baseline value | ratio | target | met |",
                  "|---|---|---|---|---|---|---|"]  # fmt: skip
        for r in rows_by_bench[name]:
            lines.append(
                f"| {r['name']} | {fmt(r['value'])} {r['unit']} | {fmt(r['baseline'])} | "
                f"{fmt(r['baseline_value'])} | {fmt(r['ratio'])} | {fmt(r['target'])} | "
                f"{fmt(r['met'])} |"
            )
        lines.append("")
    REPORT.write_text("\n".join(lines))
    print(f"wrote {REPORT} and {RESULTS}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""Run the example notebooks with nbclient and check what they computed, not only that they ran.

Each notebook ends with assertions (e.g. the model's AUC on the planted signal is above a
floor) and prints one line ``CLOISONNE_RESULT {json}``; this runner executes the notebooks in
a fresh kernel each, parses that line and checks the key numbers again.

    python notebooks/run.py                      # make a small warehouse + extract, run a b d
    python notebooks/run.py --data-dir /data a b # in a workspace, on the project's extract
    python notebooks/run.py c                    # the cuDF notebook (falls back to pandas)

Executed copies are written to --out (default: a temporary directory).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

HERE = Path(__file__).resolve().parent
NOTEBOOKS = {
    "a": "a_cohort_care_pathway.ipynb",
    "b": "b_heart_failure_prediction.ipynb",
    "c": "c_heart_failure_gpu_cudf.ipynb",
    "d": "d_disclosure_safe_export.ipynb",
}
AUC_FLOOR = 0.65


def check(name: str, result: dict) -> list[str]:
    """What must hold in each notebook's result line."""
    problems = []
    if result.get("cohort", 1) < 300 and name in "abc":
        problems.append(f"cohort of {result.get('cohort')} is too small")
    if name == "a" and result["cohort"] != result["dask_cohort"]:
        problems.append("dask and duckdb disagree on the cohort")
    if name == "b":
        if result["auc_logistic"] < AUC_FLOOR:
            problems.append(f"logistic AUC {result['auc_logistic']} < {AUC_FLOOR}")
        if result["auc_torch"] < AUC_FLOOR - 0.03:
            problems.append(f"torch AUC {result['auc_torch']} < {AUC_FLOOR - 0.03}")
        if result["hf_rate_anticoagulant"] <= result["hf_rate_other"]:
            problems.append("the planted anticoagulant signal is missing")
    if name == "c" and result["auc"] < AUC_FLOOR - 0.03:
        problems.append(f"AUC {result['auc']} < {AUC_FLOOR - 0.03}")
    if name == "d" and result["cells"] <= result["withheld"]:
        problems.append("every cell withheld: nothing to export")
    return problems


def run(name: str, data_dir: Path, out: Path, timeout: int = 600) -> dict:
    path = HERE / NOTEBOOKS[name]
    nb = nbformat.read(path, as_version=4)
    os.environ["CLOISONNE_DATA_DIR"] = str(data_dir)  # the kernel inherits it
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3",
                            resources={"metadata": {"path": str(out)}})  # fmt: skip
    try:
        client.execute()
    finally:
        nbformat.write(nb, out / path.name)
    lines = [
        line
        for cell in nb.cells
        if cell.cell_type == "code"
        for output in cell.get("outputs", [])
        if output.get("name") == "stdout"
        for line in output["text"].splitlines()
        if line.startswith("CLOISONNE_RESULT ")
    ]
    if not lines:
        raise RuntimeError(f"{path.name} printed no CLOISONNE_RESULT line")
    return json.loads(lines[-1].split(" ", 1)[1])


def demo_extract(root: Path, patients: int) -> Path:
    """A small warehouse and one project's extract of all of it (outside any workspace)."""
    from cloisonne.data.provision import provision
    from cloisonne.data.schema import TABLES
    from cloisonne.data.synth import write_warehouse
    from cloisonne.core.projects import project_from_properties

    write_warehouse(root / "datasets" / "snds-synth", patients, seed=1)
    project = project_from_properties(
        "demo", {"extract": {"source": "snds-synth", "tables": {t: "*" for t in TABLES}}}
    )
    # A fixed key: the extract (and so the notebooks' train/test splits) is the same each run.
    key = hashlib.sha256(b"cloisonne example notebooks").digest()
    provision(project, warehouse=root / "datasets" / "snds-synth",
              data_root=root / "project-data", key=key)  # fmt: skip
    return root / "project-data" / "demo"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", default=["a", "b", "d"], choices=sorted(NOTEBOOKS))
    parser.add_argument("--data-dir", type=Path, help="an existing extract (e.g. /data)")
    parser.add_argument("--patients", type=int, default=8000)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="cloisonne-nb-") as tmp:
        out = args.out or Path(tmp) / "executed"
        out.mkdir(parents=True, exist_ok=True)
        os.environ.setdefault("CLOISONNE_EXPORT_DIR", str(out / "exports"))
        data_dir = args.data_dir or demo_extract(Path(tmp), args.patients)
        failed = 0
        for name in args.notebooks:
            started = time.perf_counter()
            try:
                result = run(name, data_dir, out)
                problems = check(name, result)
            except (CellExecutionError, RuntimeError) as exc:
                result, problems = {}, [str(exc).strip().splitlines()[-1]]
            seconds = time.perf_counter() - started
            status = "ok" if not problems else "FAILED: " + "; ".join(problems)
            print(f"notebook {name} ({NOTEBOOKS[name]}): {status} in {seconds:.1f} s {json.dumps(result)}")  # noqa: E501
            failed += bool(problems)
        print(f"{len(args.notebooks) - failed} passed, {failed} failed")
        return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

"""The example notebooks run on a small extract and compute what they should (nbclient)."""

import importlib.util
import json
from pathlib import Path

import pytest

pytestmark = pytest.mark.server  # starts Jupyter kernels: not in `make unit`

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"


def load_runner():
    spec = importlib.util.spec_from_file_location("notebooks_run", NOTEBOOKS / "run.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_notebooks_run_and_their_results_hold(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    # the runner sets these for its kernels; monkeypatch restores them afterwards
    monkeypatch.setenv("CLOISONNE_EXPORT_DIR", str(tmp_path / "exports"))
    monkeypatch.setenv("CLOISONNE_DATA_DIR", "/nonexistent")
    runner = load_runner()
    code = runner.main(["a", "b", "c", "d", "--patients", "8000", "--out", str(tmp_path)])
    out = capsys.readouterr().out
    assert code == 0, out
    results = {
        line.split()[1]: json.loads(line[line.index("{") :])
        for line in out.splitlines()
        if line.startswith("notebook ")
    }
    assert results["a"]["cohort"] == results["a"]["dask_cohort"] > 300
    assert results["b"]["auc_logistic"] >= runner.AUC_FLOOR
    assert results["b"]["hf_rate_anticoagulant"] > results["b"]["hf_rate_other"]
    assert results["c"]["fallback"] is True  # no GPU here: the pandas path ran and said so
    assert results["d"]["withheld"] < results["d"]["cells"]
    assert (tmp_path / "exports" / "hf_30d_by_age_sex.csv").is_file()
    for name in runner.NOTEBOOKS.values():  # executed copies with their outputs (and plots)
        assert (tmp_path / name).is_file()


def test_notebooks_are_committed_without_outputs():
    import nbformat

    for path in NOTEBOOKS.glob("*.ipynb"):
        nb = nbformat.read(path, as_version=4)
        assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code"), path

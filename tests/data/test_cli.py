"""``cloisonne data`` as a command: synth then provision, standalone (python -m)."""

import json
import subprocess
import sys

from cloisonne.data.cli import main


def test_synth_then_provision_twice(tmp_path, capsys):
    state = tmp_path / "state"
    assert main(["--state", str(state), "synth", "--patients", "300", "--seed", "2"]) == 0
    props = json.dumps({"extract": {"source": "snds-synth", "tables": {"pmsi_mco_stays": "*"}}})
    argv = ["--state", str(state), "provision", "cardio", "--properties", props]
    assert main(argv) == 0
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "cardio: provisioned" in out and "cardio: already up to date" in out
    assert (state / "project-data" / "cardio" / "pmsi_mco_stays.parquet").is_file()
    events = (state / "hub" / "data-audit.jsonl").read_text().splitlines()
    assert [json.loads(e)["changed"] for e in events] == [True, False]


def test_provision_errors_are_one_line(tmp_path, capsys):
    props = json.dumps({"extract": {"source": "missing", "tables": {"x": "*"}}})
    code = main(["--state", str(tmp_path), "provision", "cardio", "--properties", props])
    assert code == 1
    assert capsys.readouterr().err.startswith("error: ")


def test_runs_as_module(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "cloisonne.data", "--state", str(tmp_path), "synth",
         "--patients", "50"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "50 patients" in result.stdout


def test_s3_status_and_project_when_stopped(tmp_path, capsys):
    base = ["--state", str(tmp_path), "s3", "--base-port", "21990"]
    assert main([*base, "status"]) == 3
    assert "stopped" in capsys.readouterr().out
    assert main([*base, "project", "cardio"]) == 1
    assert "not running" in capsys.readouterr().err
    assert main([*base, "down"]) == 0  # idempotent

"""Demo site content for `make up`: small synthetic datasets and demo logins.

The datasets are tiny CSV files generated deterministically from a seed; they contain no real
person. The research-data tooling (`cloisonne data`) builds larger SNDS-like warehouses.
"""

from __future__ import annotations

import csv
import random
from pathlib import Path

DEMO_USERS = {
    "alice": "alice-demo",
    "bob": "bob-demo",
    "carol": "carol-demo",
    "dave": "dave-demo",
    "admin": "admin-demo",
}
DEMO_ADMINS = ("admin",)

ATC = ["C03CA01", "C07AB07", "C09AA05", "C10AA05", "B01AC06", "N02BE01", "A10BA02"]
ICD10 = ["I50.0", "I50.1", "I21.4", "J18.9", "E11.9", "C50.9", "C34.1", "N18.3"]


def _write(path: Path, header: list[str], rows: list[list[object]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)


def make_demo_datasets(root: Path, seed: int = 7, patients: int = 200) -> list[str]:
    """Create the demo datasets used by hub_config/projects.yaml (idempotent)."""
    rng = random.Random(seed)
    ids = [f"P{n:06d}" for n in range(patients)]
    _write(
        root / "dcir-sample" / "dispensings.csv",
        ["patient_id", "date", "atc", "amount_eur"],
        [
            [
                rng.choice(ids),
                f"2023-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}",
                rng.choice(ATC),
                round(rng.uniform(2, 120), 2),
            ]
            for _ in range(patients * 5)
        ],  # fmt: skip
    )
    _write(
        root / "pmsi-sample" / "stays.csv",
        ["patient_id", "admission", "length_of_stay", "diagnosis"],
        [
            [
                rng.choice(ids),
                f"2023-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}",
                rng.randint(1, 20),
                rng.choice(ICD10),
            ]
            for _ in range(patients)
        ],  # fmt: skip
    )
    _write(
        root / "cancer-registry-sample" / "cases.csv",
        ["patient_id", "diagnosis_year", "site", "stage"],
        [
            [
                rng.choice(ids),
                rng.randint(2015, 2023),
                rng.choice(["C50.9", "C34.1", "C18.7"]),
                rng.choice(["I", "II", "III", "IV"]),
            ]
            for _ in range(patients // 2)
        ],  # fmt: skip
    )
    for path in root.rglob("*"):
        path.chmod(0o755 if path.is_dir() else 0o644)
    root.chmod(0o755)
    return sorted(p.name for p in root.iterdir() if p.is_dir())

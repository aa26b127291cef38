"""Unlinkable extracts: two projects' extracts of one warehouse cannot be joined on exact
dates, amounts and codes, while every interval within a patient stays exact."""

from __future__ import annotations

import json
import os

import pandas as pd
import pyarrow.parquet as pq
import pytest
from cloisonne.core.projects import ProjectError, project_from_properties
from cloisonne.data.provision import MANIFEST, provision
from cloisonne.data.pseudonymise import reference_pseudonym
from cloisonne.data.schema import TABLES

ALL = {name: "*" for name in TABLES}
JOIN_RATE_LIMIT = 0.01  # stated in docs/data.md: below 1 % of rows joinable


def _provision(warehouse, root, pid: str, key: bytes, **extract) -> None:
    proj = project_from_properties(
        pid, {"extract": {"source": "snds-synth", "tables": ALL, **extract}}
    )
    provision(proj, warehouse=warehouse, data_root=root, key=key, audit=lambda *a, **k: None)


def _read(root, pid: str, table: str) -> pd.DataFrame:
    return pq.read_table(root / pid / f"{table}.parquet").to_pandas()


def _link_rate(a: pd.DataFrame, b: pd.DataFrame, on: list[str], truth: dict[str, str]) -> float:
    """Share of A's rows that an attacker holding both extracts lines up with the right
    patient's row in B: rows unique on ``on`` in each, matched on it, where the two pseudonyms
    are the same person (``truth`` maps every pseudonym of both projects to the source id)."""
    ua = a.drop_duplicates(on, keep=False)
    ub = b.drop_duplicates(on, keep=False)
    pairs = ua.merge(ub, on=on, suffixes=("_a", "_b"))
    right = pairs.patient_id_a.map(truth) == pairs.patient_id_b.map(truth)
    return float(right.sum()) / len(a)


@pytest.fixture(scope="module")
def extracts(warehouse, tmp_path_factory):
    root = tmp_path_factory.mktemp("unlink")
    keys = {p: os.urandom(32) for p in ("proj-a", "proj-b", "plain-a", "plain-b")}
    for pid, key in keys.items():
        off = {"date_shift_days": 0, "amount_noise": 0} if pid.startswith("plain") else {}
        _provision(warehouse, root, pid, key, **off)
    return root, keys


@pytest.fixture(scope="module")
def truth(warehouse, extracts) -> dict[str, str]:
    _, keys = extracts
    ids = pq.read_table(warehouse / "beneficiaries.parquet").column("patient_id").to_pylist()
    return {reference_pseudonym(key, i, "patient"): i for key in keys.values() for i in ids}


COMBINATIONS = [
    ["dispensing_date", "atc_code", "amount_paid"],
    ["dispensing_date", "amount_paid"],
    ["dispensing_date", "atc_code", "quantity"],
    ["amount_paid", "amount_reimbursed", "atc_code"],
]


@pytest.mark.parametrize("on", COMBINATIONS, ids=["-".join(c) for c in COMBINATIONS])
def test_two_projects_cannot_be_joined_on_dates_amounts_and_codes(extracts, truth, on) -> None:
    root, _ = extracts
    a, b = (_read(root, p, "dcir_dispensings") for p in ("proj-a", "proj-b"))
    assert _link_rate(a, b, on, truth) < JOIN_RATE_LIMIT
    if "dispensing_date" in on:  # without unlinking, the same join finds people: it can fail
        plain_a, plain_b = (_read(root, p, "dcir_dispensings") for p in ("plain-a", "plain-b"))
        assert _link_rate(plain_a, plain_b, on, truth) > 0.02


def _signatures(df: pd.DataFrame) -> pd.Series:
    """Each patient's dispensings as one value: the set of (date, ATC code)."""
    events = list(zip(df.dispensing_date, df.atc_code, strict=True))
    return pd.Series(events, index=df.patient_id).groupby(level=0).agg(frozenset)


def test_patients_cannot_be_linked_by_their_dated_events(extracts, truth) -> None:
    root, _ = extracts

    def linked(pa_: str, pb: str) -> float:
        a, b = (_signatures(_read(root, p, "dcir_dispensings")) for p in (pa_, pb))
        a, b = a[~a.duplicated(keep=False)], b[~b.duplicated(keep=False)]
        by_signature = {sig: pid for pid, sig in b.items()}
        right = sum(truth[pid] == truth.get(by_signature.get(sig, ""), None)
                    for pid, sig in a.items())  # fmt: skip
        return right / len(a)

    assert linked("plain-a", "plain-b") > 0.5  # the attack works on plain extracts
    assert linked("proj-a", "proj-b") < JOIN_RATE_LIMIT


def test_each_patient_moves_as_one_and_intervals_stay_exact(warehouse, extracts) -> None:
    root, keys = extracts
    src = pq.read_table(warehouse / "pmsi_mco_stays.parquet").to_pandas()
    out = _read(root, "proj-a", "pmsi_mco_stays")
    src["patient_id"] = [reference_pseudonym(keys["proj-a"], v, "patient") for v in src.patient_id]
    src["stay_id"] = [reference_pseudonym(keys["proj-a"], v, "stay") for v in src.stay_id]
    merged = src.merge(out, on="stay_id", suffixes=("_src", "_out"))
    assert len(merged) == len(src)
    shift = (pd.to_datetime(merged.admission_date_out)
             - pd.to_datetime(merged.admission_date_src)).dt.days  # fmt: skip
    per_patient = shift.groupby(merged.patient_id_src).nunique()
    assert (per_patient == 1).all()  # one offset per patient, across all their stays
    assert shift.abs().max() <= 183 and shift.nunique() > 100  # offsets spread over the range
    stay_src = pd.to_datetime(merged.discharge_date_src) - pd.to_datetime(merged.admission_date_src)
    stay_out = pd.to_datetime(merged.discharge_date_out) - pd.to_datetime(merged.admission_date_out)
    assert (stay_src == stay_out).all()


def test_amounts_move_within_the_noise_and_the_manifest_says_what_was_done(
    warehouse, extracts
) -> None:
    root, _ = extracts
    src = pq.read_table(warehouse / "dcir_dispensings.parquet").to_pandas()
    out = _read(root, "proj-a", "dcir_dispensings")
    assert abs(out.amount_paid.sum() / src.amount_paid.sum() - 1) < 0.005  # totals kept
    assert sorted(out.amount_paid.round(2)) != sorted(src.amount_paid.round(2))
    ratio = out.amount_paid.max() / src.amount_paid.max()
    assert 0.94 <= ratio <= 1.06
    unlinking = json.loads((root / "proj-a" / MANIFEST).read_text())["unlinking"]
    assert "±183 days" in unlinking["dates"] and "±5%" in unlinking["amounts"]


@pytest.mark.parametrize(
    ("extract", "message"),
    [({"date_shift_days": -1}, "date_shift_days"), ({"date_shift_days": True}, "date_shift_days"),
     ({"amount_noise": 0.9}, "amount_noise"), ({"amount_noise": "x"}, "amount_noise")],
)  # fmt: skip
def test_bad_unlinking_settings_are_refused(extract, message) -> None:
    with pytest.raises(ProjectError) as info:
        project_from_properties(
            "pp", {"extract": {"source": "snds-synth", "tables": ALL, **extract}}
        )
    assert message in str(info.value) or message in getattr(info.value, "field", "")

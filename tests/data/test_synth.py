"""The synthetic warehouse: shape, determinism, integrity and the planted signal."""

import json

import pandas as pd
import pyarrow.parquet as pq
import pytest
from cloisonne.data.schema import TABLES, WAREHOUSE_MANIFEST, undeclared_identifiers
from cloisonne.data.synth import LOOP_DIURETIC, simulate, write_warehouse


def test_files_match_the_documented_schema(warehouse):
    manifest = json.loads((warehouse / WAREHOUSE_MANIFEST).read_text())
    assert set(manifest["tables"]) == set(TABLES)
    for name, table in TABLES.items():
        assert pq.read_schema(warehouse / f"{name}.parquet").equals(table.schema)
        assert (
            manifest["tables"][name]["rows"]
            == pq.read_metadata(warehouse / f"{name}.parquet").num_rows
        )
        assert undeclared_identifiers(table) == []


def test_same_seed_same_bytes_other_seed_other_data(tmp_path, warehouse):
    again = write_warehouse(tmp_path / "again", 3000, seed=11)
    first = json.loads((warehouse / WAREHOUSE_MANIFEST).read_text())
    assert {t: v["sha256"] for t, v in again["tables"].items()} == {
        t: v["sha256"] for t, v in first["tables"].items()
    }
    other = write_warehouse(tmp_path / "other", 3000, seed=12)
    assert other["tables"]["beneficiaries"]["sha256"] != first["tables"]["beneficiaries"]["sha256"]


def test_referential_integrity_and_no_event_after_death(warehouse):
    read = {name: pq.read_table(warehouse / f"{name}.parquet").to_pandas() for name in TABLES}
    ben = read["beneficiaries"]
    assert ben.patient_id.is_unique and ben.patient_id.str.len().eq(17).all()
    for name in ("dcir_dispensings", "dcir_acts", "pmsi_mco_stays", "pmsi_mco_diagnoses"):
        assert read[name].patient_id.isin(ben.patient_id).all(), name
    stays, dx = read["pmsi_mco_stays"], read["pmsi_mco_diagnoses"]
    assert stays.stay_id.is_unique
    assert set(dx.stay_id) == set(stays.stay_id)
    assert (dx.groupby("stay_id").dx_type.apply(lambda t: (t == "DP").sum()) == 1).all()
    death = ben.set_index("patient_id").death_date.dropna()
    assert len(death) > 0
    for name, column in (("dcir_dispensings", "dispensing_date"), ("dcir_acts", "act_date")):
        events = read[name].join(death, on="patient_id", how="inner")
        assert (events[column] <= events.death_date).all(), name


def hf_cohort(tables: dict) -> pd.DataFrame:
    """The documented cohort: first loop-diuretic dispensing; HF stay 1-30 days later."""
    disp = tables["dcir_dispensings"].to_pandas()
    stays = tables["pmsi_mco_stays"].to_pandas()
    index = disp[disp.atc_code == LOOP_DIURETIC].groupby("patient_id").dispensing_date.min()
    hf = stays[stays.principal_dx.str.startswith("I50")].join(index, on="patient_id", how="inner")
    delay = (pd.to_datetime(hf.admission_date) - pd.to_datetime(hf.dispensing_date)).dt.days
    cases = set(hf.patient_id[(delay >= 1) & (delay <= 30)])
    anticoagulated = set(disp.patient_id[disp.atc_code == "B01AF01"])
    cohort = index.to_frame("index_date")
    cohort["outcome"] = cohort.index.isin(cases)
    cohort["af"] = cohort.index.isin(anticoagulated)
    return cohort


def test_planted_heart_failure_signal_is_there():
    cohort = hf_cohort(simulate(20000, seed=5))
    assert 1500 < len(cohort) < 6000
    assert 0.1 < cohort.outcome.mean() < 0.4
    by_af = cohort.groupby("af").outcome.mean()
    assert by_af[True] > 1.5 * by_af[False]


def test_rejects_empty_warehouse():
    with pytest.raises(ValueError):
        simulate(0, seed=1)

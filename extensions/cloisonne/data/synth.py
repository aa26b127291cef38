"""A synthetic warehouse shaped like the SNDS, with a planted heart-failure signal.

Everything is drawn with numpy from one seeded generator, in whole arrays (no per-patient Python
loop), so 150 000 patients (~10 million rows) take seconds and the same seed gives the same
files byte for byte. The model (conditions, drugs, the 30-day heart-failure outcome and its
coefficients) is documented in docs/data.md; change both together.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from .schema import FORMAT_VERSION, TABLES, WAREHOUSE_MANIFEST

START = np.datetime64("2019-01-01")
YEARS = 3
DAYS = int((np.datetime64(f"{2019 + YEARS}-01-01") - START).astype(int))  # 1096
LOOKBACK = 365  # index dates leave a year of history ...
FOLLOW_UP = 30  # ... and 30 days of follow-up inside the period
EPOCH_START = int((START - np.datetime64("1970-01-01")).astype(int))

HF_CODES = ("I50.0", "I50.1", "I50.9")
LOOP_DIURETIC = "C03CA01"  # furosemide: its first dispensing is the index date

# The planted outcome: among loop-diuretic initiators, P(HF stay within 30 days of the index) =
# sigmoid(OUTCOME_INTERCEPT + sum(coef * feature)); age_z = (age at index - 70) / 10.
OUTCOME_INTERCEPT = -2.8
OUTCOME_COEFS = {
    "age_z": 0.45,
    "atrial_fibrillation": 1.1,
    "chronic_kidney_disease": 0.9,
    "prior_mi": 0.8,
    "diabetes": 0.5,
    "male": 0.3,
}

# (condition, marker drugs dispensed about monthly when treated, DA code on stays)
CONDITIONS: dict[str, tuple[tuple[str, ...], str]] = {
    "hypertension": (("C09AA05", "C08CA01"), "I10"),
    "diabetes": (("A10BA02",), "E11.9"),
    "atrial_fibrillation": (("B01AF01",), "I48.9"),
    "prior_mi": (("C07AB07", "B01AC06", "C10AA05"), "I25.2"),
    "chronic_kidney_disease": ((), "N18.3"),
    "copd": (("R03AK06",), "J44.9"),
}
# prevalence: sigmoid(a + b * age_z60 + c * male)
PREVALENCE = {
    "hypertension": (-0.4, 1.2, 0.1),
    "diabetes": (-2.0, 0.6, 0.3),
    "atrial_fibrillation": (-3.4, 1.3, 0.3),
    "prior_mi": (-3.4, 0.9, 0.6),
    "chronic_kidney_disease": (-3.1, 1.1, 0.0),
    "copd": (-3.0, 0.6, 0.3),
}
TREATED = 0.85

ACUTE_DRUGS = ("N02BE01", "J01CA04", "M01AE01", "A02BC01", "R05DA09", "N05BA12", "J01DD08")
PRICE = {
    "C09AA05": 4.1, "C08CA01": 3.9, "A10BA02": 2.6, "B01AF01": 51.4, "C07AB07": 3.3,
    "B01AC06": 1.9, "C10AA05": 7.2, "R03AK06": 31.9, LOOP_DIURETIC: 2.2, "N02BE01": 1.9,
    "J01CA04": 2.9, "M01AE01": 1.6, "A02BC01": 3.1, "R05DA09": 2.3, "N05BA12": 1.5,
    "J01DD08": 9.4,
}  # fmt: skip
ACTS = {  # code: (specialty, fee)
    "G": (1, 26.5),
    "CS": (3, 50.0),
    "DEQP003": (3, 14.26),
    "DZQM006": (3, 95.16),
    "B": (38, 18.0),
}
OTHER_DX = ("J18.9", "K80.2", "S72.0", "N39.0", "K35.8", "R55", "I20.8", "C34.9", "M17.1")
DEPARTEMENTS = (
    "75", "13", "69", "59", "33", "31", "44", "67", "06", "92",
    "93", "94", "2A", "2B", "971", "974", "35", "34", "38", "62",
)  # fmt: skip
HOSPITALS = 40


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


@dataclass
class _Events:
    """Columns being built for one event table, as parallel numpy arrays."""

    cols: dict[str, list[np.ndarray]]

    def add(self, **arrays: np.ndarray) -> None:
        for name, value in arrays.items():
            self.cols.setdefault(name, []).append(value)

    def done(self) -> dict[str, np.ndarray]:
        return {name: np.concatenate(parts) for name, parts in self.cols.items()}


def _periodic(
    rng: np.random.Generator, owner: np.ndarray, first: np.ndarray, last: np.ndarray, every: int
) -> tuple[np.ndarray, np.ndarray]:
    """Days from ``first`` to ``last`` every ~``every`` days (±3), one row per occurrence."""
    count = np.maximum((last - first) // every + 1, 0)
    rows = np.repeat(np.arange(len(owner)), count)
    k = np.arange(len(rows)) - np.repeat(np.cumsum(count) - count, count)
    day = first[rows] + k * every + rng.integers(-3, 4, len(rows))
    keep = (day >= 0) & (day < DAYS)
    return owner[rows][keep], day[keep]


def _poisson_days(
    rng: np.random.Generator, rate_per_year: np.ndarray, lo: int = 0, hi: int = DAYS
) -> tuple[np.ndarray, np.ndarray]:
    """For each patient, Poisson(rate × years) days drawn uniformly in [lo, hi)."""
    count = rng.poisson(rate_per_year * (hi - lo) / 365.25)
    owner = np.repeat(np.arange(len(rate_per_year)), count)
    return owner, rng.integers(lo, hi, len(owner))


def _ids(rng: np.random.Generator, n: int, width: int = 17) -> np.ndarray:
    """Unique SNDS-like pseudonym strings (BEN_NIR_PSA is 17 characters)."""
    alphabet = np.frombuffer(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", dtype=np.uint8)
    while True:
        raw = alphabet[rng.integers(0, 36, (n, width))].view(f"S{width}").ravel()
        if len(np.unique(raw)) == n:
            return raw


def simulate(patients: int, seed: int) -> dict[str, pa.Table]:
    """Draw the warehouse; returns one Arrow table per name in ``schema.TABLES``."""
    if patients < 1:
        raise ValueError("patients must be at least 1")
    rng = np.random.default_rng(seed)
    n = patients
    pid = np.arange(n)

    # Beneficiaries and their (hidden) conditions.
    age = np.rint(18 + 77 * rng.beta(1.6, 1.3, n)).astype(np.int64)
    male = rng.random(n) < 0.48
    age_z60 = (age - 60) / 15
    cond = {}
    for name, (a, b, c) in PREVALENCE.items():
        p = _sigmoid(a + b * age_z60 + c * male)
        if name == "chronic_kidney_disease":
            p = _sigmoid(a + b * age_z60 + 0.5 * cond["diabetes"])
        cond[name] = rng.random(n) < p
    dep_weights = np.linspace(2.0, 0.5, len(DEPARTEMENTS))
    departement = rng.choice(len(DEPARTEMENTS), n, p=dep_weights / dep_weights.sum())

    # Loop-diuretic initiation (the index date) and the planted 30-day HF outcome.
    risk = (
        -2.6
        + 0.6 * age_z60
        + 0.9 * cond["atrial_fibrillation"]
        + 0.8 * cond["prior_mi"]
        + 0.5 * cond["chronic_kidney_disease"]
        + 0.4 * cond["diabetes"]
        + 0.3 * cond["hypertension"]
    )
    initiator = rng.random(n) < _sigmoid(risk)
    index_day = np.where(initiator, rng.integers(LOOKBACK, DAYS - FOLLOW_UP, n), DAYS)
    age_at_index = age + index_day / 365.25
    features = {
        "age_z": (age_at_index - 70) / 10,
        "male": male.astype(float),
        **{k: cond[k].astype(float) for k in OUTCOME_COEFS if k in cond},
    }
    logit = OUTCOME_INTERCEPT + sum(coef * features[k] for k, coef in OUTCOME_COEFS.items())
    outcome = initiator & (rng.random(n) < _sigmoid(logit))
    hf_day = np.where(outcome, index_day + rng.integers(1, FOLLOW_UP + 1, n), DAYS)

    # Hospital stays: planted outcome, later HF stays, background stays.
    stays = _Events({})
    o = pid[outcome]
    stays.add(pat=o, day=hf_day[o], kind=np.zeros(len(o), np.int8))
    later = pid[initiator & ~outcome & (rng.random(n) < 0.04)]
    later_day = index_day[later] + rng.integers(60, 400, len(later))
    stays.add(pat=later, day=later_day, kind=np.zeros(len(later), np.int8))
    af_only = pid[~initiator & cond["atrial_fibrillation"] & (rng.random(n) < 0.02)]
    stays.add(
        pat=af_only, day=rng.integers(0, DAYS, len(af_only)), kind=np.zeros(len(af_only), np.int8)
    )
    bg_owner, bg_day = _poisson_days(rng, np.exp(-2.6 + 0.5 * age_z60))
    stays.add(pat=bg_owner, day=bg_day, kind=np.ones(len(bg_owner), np.int8))
    s = stays.done()
    keep = s["day"] < DAYS
    s = {k: v[keep] for k, v in s.items()}
    is_hf = s["kind"] == 0
    los = np.where(
        is_hf, 1 + rng.geometric(0.13, len(s["day"])), rng.geometric(0.3, len(s["day"])) - 1
    )
    mode = np.where(rng.random(len(los)) < np.where(is_hf, 0.05, 0.01), 9, 8)
    mode = np.where((mode == 8) & (rng.random(len(los)) < 0.05), 7, mode)
    dp = np.where(
        is_hf,
        np.array(HF_CODES)[rng.integers(0, len(HF_CODES), len(los))],
        np.array(OTHER_DX)[rng.integers(0, len(OTHER_DX), len(los))],
    )
    # Deaths: the first stay ending in death; everything after it is removed.
    death_day = np.full(n, DAYS + 10_000)
    dead = mode == 9
    np.minimum.at(death_day, s["pat"][dead], s["day"][dead] + los[dead])

    # Outpatient dispensings.
    disp = _Events({})
    for name, (drugs, _) in CONDITIONS.items():
        treated = pid[cond[name] & (rng.random(n) < TREATED)]
        # hypertension: one of two drugs; other conditions: every marker drug
        choice = rng.integers(0, len(drugs), len(treated)) if name == "hypertension" else None
        for i, drug in enumerate(drugs):
            who = treated if choice is None else treated[choice == i]
            first = rng.integers(-30, 30, len(who))
            ow, dy = _periodic(rng, who, first, np.full(len(who), DAYS), 30)
            disp.add(pat=ow, day=dy, atc=np.full(len(ow), drug))
    ini = pid[initiator]
    ow, dy = _periodic(rng, ini, index_day[ini], np.full(len(ini), DAYS), 30)
    dy[np.r_[True, ow[1:] != ow[:-1]]] = index_day[ow[np.r_[True, ow[1:] != ow[:-1]]]]
    disp.add(pat=ow, day=dy, atc=np.full(len(ow), LOOP_DIURETIC))
    ac_owner, ac_day = _poisson_days(rng, 4.0 * np.exp(0.2 * age_z60))
    disp.add(
        pat=ac_owner,
        day=ac_day,
        atc=np.array(ACUTE_DRUGS)[rng.integers(0, len(ACUTE_DRUGS), len(ac_owner))],
    )
    d = disp.done()

    # Outpatient acts.
    acts = _Events({})
    cardiac = cond["atrial_fibrillation"] | cond["prior_mi"] | initiator
    for code, rate in (
        ("G", 5.0 * np.exp(0.2 * age_z60)),
        ("CS", np.where(cardiac, 2.0, 0.1)),
        ("DEQP003", np.where(cardiac, 1.0, 0.05)),
        ("B", np.where(cond["chronic_kidney_disease"], 8.0, 1.5)),
    ):
        ow, dy = _poisson_days(rng, rate)
        acts.add(pat=ow, day=dy, code=np.full(len(ow), code))
    echo = pid[initiator & (rng.random(n) < 0.5)]
    acts.add(
        pat=echo,
        day=index_day[echo] - rng.integers(0, 30, len(echo)),
        code=np.full(len(echo), "DZQM006"),
    )
    a = acts.done()

    # Build the tables (events after death removed; event tables sorted by date, then patient).
    ids = pa.array(_ids(rng, n)).cast(pa.string())

    def date(days: np.ndarray) -> pa.Array:
        return pa.array((days + EPOCH_START).astype(np.int32), pa.date32())

    def alive(owner: np.ndarray, day: np.ndarray) -> np.ndarray:
        return (day >= 0) & (day < DAYS) & (day <= death_day[owner])

    death = np.where(death_day < DAYS, death_day, -1)
    tables: dict[str, pa.Table] = {}
    tables["beneficiaries"] = pa.table(
        {
            "patient_id": ids,
            "birth_year": pa.array((2019 - age).astype(np.int16)),
            "sex": pa.array(np.where(male, 1, 2).astype(np.int8)),
            "departement": pa.array(np.array(DEPARTEMENTS)[departement]),
            "death_date": pa.array(
                (death + EPOCH_START).astype(np.int32), pa.date32(), mask=death < 0
            ),
        },
        schema=TABLES["beneficiaries"].schema,
    )

    keep = alive(d["pat"], d["day"])
    order = np.lexsort((d["pat"][keep], d["day"][keep]))
    pat, day, atc = d["pat"][keep][order], d["day"][keep][order], d["atc"][keep][order]
    qty = np.where(rng.random(len(pat)) < 0.15, 3, 1).astype(np.int16)
    price = np.vectorize(PRICE.get, otypes=[float])(np.unique(atc))
    paid = (price[np.searchsorted(np.unique(atc), atc)] * qty).astype(np.float32)
    cardio_drug = np.isin(atc, ["B01AF01", "C07AB07", LOOP_DIURETIC])
    spec = np.where(cardio_drug & (rng.random(len(pat)) < 0.3), 3, 1).astype(np.int8)
    tables["dcir_dispensings"] = pa.table(
        {
            "patient_id": ids.take(pa.array(pat)),
            "dispensing_date": date(day),
            "atc_code": pa.array(atc),
            "quantity": pa.array(qty),
            "amount_paid": pa.array(paid),
            "amount_reimbursed": pa.array(np.round(paid * 0.65, 2).astype(np.float32)),
            "prescriber_specialty": pa.array(spec),
        },
        schema=TABLES["dcir_dispensings"].schema,
    )

    keep = alive(a["pat"], a["day"])
    order = np.lexsort((a["pat"][keep], a["day"][keep]))
    pat, day, code = a["pat"][keep][order], a["day"][keep][order], a["code"][keep][order]
    spec = np.array([ACTS[c][0] for c in ACTS], np.int8)
    fee = np.array([ACTS[c][1] for c in ACTS])
    ci = np.searchsorted(np.array(list(ACTS)), code, sorter=np.argsort(list(ACTS)))
    ci = np.argsort(list(ACTS))[ci]
    paid = (fee[ci] * rng.uniform(1.0, 1.3, len(ci))).round(2).astype(np.float32)
    tables["dcir_acts"] = pa.table(
        {
            "patient_id": ids.take(pa.array(pat)),
            "act_date": date(day),
            "act_code": pa.array(code),
            "provider_specialty": pa.array(spec[ci]),
            "amount_paid": pa.array(paid),
            "amount_reimbursed": pa.array(np.round(paid * 0.7, 2).astype(np.float32)),
        },
        schema=TABLES["dcir_acts"].schema,
    )

    keep = alive(s["pat"], s["day"]) | (mode == 9)
    keep &= s["day"] <= death_day[s["pat"]]
    order = np.lexsort((s["pat"][keep], s["day"][keep]))
    pat, day = s["pat"][keep][order], s["day"][keep][order]
    los, mode, dp = los[keep][order], mode[keep][order], dp[keep][order]
    hospital = rng.integers(0, HOSPITALS, len(pat))
    finess = 750_000_000 + 1_013 * hospital
    seq = np.zeros(len(pat), np.int64)
    for h in range(HOSPITALS):  # per-hospital running number, like RSA_NUM within ETA_NUM
        seq[hospital == h] = np.arange(int((hospital == h).sum()))
    stay_ids = np.char.add(
        np.char.add(finess.astype("U9"), "-"), np.char.zfill(seq.astype("U10"), 10)
    )
    tables["pmsi_mco_stays"] = pa.table(
        {
            "stay_id": pa.array(stay_ids),
            "patient_id": ids.take(pa.array(pat)),
            "admission_date": date(day),
            "discharge_date": date(day + los),
            "length_of_stay": pa.array(los.astype(np.int16)),
            "principal_dx": pa.array(dp),
            "discharge_mode": pa.array(mode.astype(np.int8)),
        },
        schema=TABLES["pmsi_mco_stays"].schema,
    )

    # Diagnoses: the DP, then a DA for each of the patient's conditions (coded 60% of the time).
    rows = [np.arange(len(pat))]
    codes = [dp]
    types = [np.full(len(pat), "DP")]
    for name, (_, da) in CONDITIONS.items():
        hit = np.flatnonzero(cond[name][pat] & (rng.random(len(pat)) < 0.6))
        rows.append(hit)
        codes.append(np.full(len(hit), da))
        types.append(np.full(len(hit), "DA"))
    r = np.concatenate(rows)
    order = np.argsort(r, kind="stable")
    r = r[order]
    tables["pmsi_mco_diagnoses"] = pa.table(
        {
            "stay_id": pa.array(stay_ids[r]),
            "patient_id": ids.take(pa.array(pat[r])),
            "admission_date": date(day[r]),
            "dx_code": pa.array(np.concatenate(codes)[order]),
            "dx_type": pa.array(np.concatenate(types)[order]),
        },
        schema=TABLES["pmsi_mco_diagnoses"].schema,
    )
    return tables


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


ROW_GROUP = 1 << 20
# Large enough that a row group's identifiers stay dictionary-encoded (at most 2^20 distinct
# values of ~20 bytes): readers then get each distinct identifier once per row group, which is
# what lets provisioning hash per distinct value without re-encoding (see pseudonymise.py).
DICTIONARY_PAGE = 64 << 20


def write_warehouse(
    out: Path,
    patients: int,
    seed: int,
    *,
    progress: Callable[[str], None] | None = None,
) -> dict:
    """Simulate and write ``<out>/<table>.parquet`` plus ``MANIFEST.json``; returns the manifest."""
    out.mkdir(parents=True, exist_ok=True, mode=0o700)  # hub side: never world-readable
    tables = simulate(patients, seed)
    files = {}
    for name, table in tables.items():
        path = out / f"{name}.parquet"
        tmp = path.with_suffix(".parquet.tmp")
        pq.write_table(
            table, tmp, row_group_size=ROW_GROUP, dictionary_pagesize_limit=DICTIONARY_PAGE
        )
        tmp.replace(path)
        files[name] = {
            "file": path.name,
            "rows": table.num_rows,
            "sha256": sha256_file(path),
            "identifiers": dict(TABLES[name].identifiers),
            "date_column": TABLES[name].date_column,
        }
        if progress:
            progress(f"{name}: {table.num_rows:,} rows")
    manifest = {
        "kind": "cloisonne-synthetic-warehouse",
        "format": FORMAT_VERSION,
        "patients": patients,
        "seed": seed,
        "period": [str(START), str(START + DAYS - 1)],
        "tables": files,
    }
    (out / WAREHOUSE_MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return manifest

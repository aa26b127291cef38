"""Provisioning: only the authorised extract, re-keyed per project, idempotent, audited."""

import datetime
import json
import os
import re

import pyarrow.parquet as pq
import pytest
from cloisonne.core.projects import project_from_properties
from cloisonne.data.provision import MANIFEST, ProvisionError, provision
from cloisonne.data.pseudonymise import reference_pseudonym
from cloisonne.data.schema import TABLES
from cloisonne.data.synth import sha256_file

ALL = {name: "*" for name in TABLES}


def project(pid: str, **extract):
    return project_from_properties(
        pid, {"extract": {"source": "snds-synth", "tables": ALL, **extract}}
    )


def run(proj, warehouse, root, key, events=None):
    def audit(event_type, **fields):
        if events is not None:
            events.append((event_type, fields))

    return provision(proj, warehouse=warehouse, data_root=root, key=key, audit=audit)


def read(root, pid, table):
    return pq.read_table(root / pid / f"{table}.parquet").to_pandas()


def source(warehouse, table):
    return pq.read_table(warehouse / f"{table}.parquet").to_pandas()


@pytest.fixture(scope="module")
def two_projects(warehouse, tmp_path_factory):
    """Projects A and B with the same extract, provisioned under their own keys."""
    root = tmp_path_factory.mktemp("project-data")
    keys = {"proj-a": os.urandom(32), "proj-b": os.urandom(32)}
    for pid, key in keys.items():
        run(project(pid), warehouse, root, key)
    return root, keys


def test_every_identifier_is_the_project_keyed_hmac(warehouse, two_projects):
    root, keys = two_projects
    for pid, key in keys.items():
        for name, table in TABLES.items():
            out, src = read(root, pid, name), source(warehouse, name)
            assert len(out) == len(src)
            for column, domain in table.identifiers:
                expected = {reference_pseudonym(key, v, domain) for v in src[column]}
                assert set(out[column]) == expected, (pid, name, column)


def test_two_projects_pseudonyms_differ_for_every_patient(two_projects):
    root, _ = two_projects
    a = set(read(root, "proj-a", "beneficiaries").patient_id)
    b = set(read(root, "proj-b", "beneficiaries").patient_id)
    assert len(a) == len(b) > 0
    assert a.isdisjoint(b)


def test_rows_cannot_be_lined_up_by_position(warehouse, two_projects):
    """Same extract in two projects: row i is not the same source row in both."""
    root, keys = two_projects
    src = set(source(warehouse, "beneficiaries").patient_id)
    back = {}
    for pid, key in keys.items():
        reverse = {reference_pseudonym(key, s, "patient"): s for s in src}
        back[pid] = [reverse[p] for p in read(root, pid, "dcir_dispensings").patient_id]
    same = sum(x == y for x, y in zip(back["proj-a"], back["proj-b"], strict=True))
    assert same < 0.01 * len(back["proj-a"])


def test_stable_across_tables_within_a_project(two_projects):
    root, _ = two_projects
    patients = set(read(root, "proj-a", "beneficiaries").patient_id)
    for name in ("dcir_dispensings", "dcir_acts", "pmsi_mco_stays", "pmsi_mco_diagnoses"):
        assert set(read(root, "proj-a", name).patient_id) <= patients, name
    stays = read(root, "proj-a", "pmsi_mco_stays")
    dx = read(root, "proj-a", "pmsi_mco_diagnoses")
    assert set(dx.stay_id) == set(stays.stay_id)
    joined = dx.merge(stays, on="stay_id", suffixes=("", "_stay"))
    assert (joined.patient_id == joined.patient_id_stay).all()


def test_no_source_identifier_in_the_output(warehouse, two_projects):
    root, _ = two_projects
    secrets = set()
    for name, table in TABLES.items():
        for column, _ in table.identifiers:
            secrets |= set(source(warehouse, name)[column])
    for pid in ("proj-a", "proj-b"):
        for name in TABLES:
            out = read(root, pid, name)
            for column in out.columns:
                if out[column].dtype == object or str(out[column].dtype).startswith("str"):
                    assert not secrets & set(out[column].dropna()), (pid, name, column)
        # and not in the raw bytes either (files are snappy-compressed; strings of this
        # length stay literal there, and the manifest is plain text)
        blobs = b"\n".join(p.read_bytes() for p in (root / pid).iterdir())
        tokens = set(re.findall(rb"[A-Z0-9]{17}|[0-9]{9}-[0-9]{10}", blobs))
        assert not {s.encode() for s in secrets} & tokens


def test_rerun_is_idempotent_and_stable(warehouse, tmp_path, key):
    events = []
    first = run(project("cardio"), warehouse, tmp_path, key, events)
    files = {
        p.name: (p.stat().st_mtime_ns, sha256_file(p)) for p in (tmp_path / "cardio").iterdir()
    }
    second = run(project("cardio"), warehouse, tmp_path, key, events)
    assert first["changed"] and not second["changed"]
    assert files == {
        p.name: (p.stat().st_mtime_ns, sha256_file(p)) for p in (tmp_path / "cardio").iterdir()
    }
    assert [e[1]["changed"] for e in events] == [True, False]
    # A damaged output is noticed and rewritten, with the same pseudonyms (same key).
    target = tmp_path / "cardio" / "dcir_acts.parquet"
    target.chmod(0o644)
    target.write_bytes(b"damaged")
    third = run(project("cardio"), warehouse, tmp_path, key, events)
    assert third["changed"]
    assert {n: t["sha256"] for n, t in third["tables"].items()} == {
        n: t["sha256"] for n, t in first["tables"].items()
    }
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no leftovers


def test_manifest_rows_and_sha256(warehouse, tmp_path, key):
    manifest = run(project("cardio"), warehouse, tmp_path, key)
    on_disk = json.loads((tmp_path / "cardio" / MANIFEST).read_text())
    assert on_disk["fingerprint"] == manifest["fingerprint"]
    for _name, entry in on_disk["tables"].items():
        path = tmp_path / "cardio" / entry["file"]
        assert entry["sha256"] == sha256_file(path)
        assert entry["rows"] == pq.read_metadata(path).num_rows
    assert (
        on_disk["key"] != key.hex()
        and key.hex() not in (tmp_path / "cardio" / MANIFEST).read_text()
    )


def test_only_authorised_tables_columns_and_window(warehouse, tmp_path, key):
    proj = project_from_properties(
        "narrow",
        {
            "extract": {
                "source": "snds-synth",
                "tables": {"dcir_dispensings": ["patient_id", "atc_code"], "beneficiaries": "*"},
                "start": "2020-03-01",
                "end": "2020-06-30",
            }
        },
    )
    events = []
    manifest = run(proj, warehouse, tmp_path, key, events)
    assert sorted(p.name for p in (tmp_path / "narrow").iterdir()) == [
        MANIFEST, "beneficiaries.parquet", "dcir_dispensings.parquet",
    ]  # fmt: skip
    out = read(tmp_path, "narrow", "dcir_dispensings")
    assert list(out.columns) == ["patient_id", "atc_code"]
    src = source(warehouse, "dcir_dispensings")
    in_window = src[
        (src.dispensing_date >= datetime.date(2020, 3, 1))
        & (src.dispensing_date <= datetime.date(2020, 6, 30))
    ]
    assert len(out) == len(in_window) == manifest["tables"]["dcir_dispensings"]["rows"]
    assert sorted(out.atc_code) == sorted(in_window.atc_code)
    # the (undated) beneficiaries table is copied whole
    assert len(read(tmp_path, "narrow", "beneficiaries")) == len(source(warehouse, "beneficiaries"))
    ((event_type, fields),) = events
    assert event_type == "data.provisioned" and fields["project"] == "narrow"
    assert fields["rows"] == sum(t["rows"] for t in manifest["tables"].values())
    assert "dcir_dispensings" in fields["tables"]


def test_changed_extract_reprovisions(warehouse, tmp_path, key):
    run(project("cardio"), warehouse, tmp_path, key)
    narrower = project_from_properties(
        "cardio", {"extract": {"source": "snds-synth", "tables": {"dcir_acts": "*"}}}
    )
    assert run(narrower, warehouse, tmp_path, key)["changed"]
    assert sorted(p.name for p in (tmp_path / "cardio").iterdir()) == [
        MANIFEST,
        "dcir_acts.parquet",
    ]


@pytest.mark.parametrize(
    ("tables", "message"),
    [
        ({"nope": "*"}, "not in warehouse"),
        ({"dcir_acts": ["patient_id", "ssn"]}, "no column"),
    ],
)
def test_extract_not_in_warehouse_refused(warehouse, tmp_path, key, tables, message):
    proj = project_from_properties(
        "cardio", {"extract": {"source": "snds-synth", "tables": tables}}
    )
    with pytest.raises(ProvisionError, match=message):
        run(proj, warehouse, tmp_path, key)
    assert not (tmp_path / "cardio").exists()


def test_undeclared_identifier_column_refused(warehouse, tmp_path, key):
    copy = tmp_path / "wh"
    copy.mkdir()
    for p in warehouse.iterdir():
        (copy / p.name).write_bytes(p.read_bytes())
    manifest = json.loads((copy / "MANIFEST.json").read_text())
    manifest["tables"]["pmsi_mco_stays"]["identifiers"] = {"patient_id": "patient"}
    (copy / "MANIFEST.json").write_text(json.dumps(manifest))
    with pytest.raises(ProvisionError, match="stay_id"):
        run(project("cardio"), copy, tmp_path / "out", key)


def test_project_without_extract_refused(warehouse, tmp_path, key):
    with pytest.raises(ProvisionError, match="no 'extract'"):
        run(project_from_properties("cardio", {}), warehouse, tmp_path, key)


def test_changed_warehouse_file_is_noticed(warehouse, tmp_path, key):
    copy = tmp_path / "wh"
    copy.mkdir()
    for p in warehouse.iterdir():
        (copy / p.name).write_bytes(p.read_bytes())
    assert run(project("cardio"), copy, tmp_path / "out", key)["changed"]
    assert not run(project("cardio"), copy, tmp_path / "out", key)["changed"]
    table = pq.read_table(copy / "pmsi_mco_stays.parquet").slice(0, 10)
    pq.write_table(table, copy / "pmsi_mco_stays.parquet")  # manifest not updated
    again = run(project("cardio"), copy, tmp_path / "out", key)
    assert again["changed"] and again["tables"]["pmsi_mco_stays"]["rows"] == 10
    assert (tmp_path / "out").stat().st_mode & 0o077 == 0

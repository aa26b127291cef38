"""The ``extract`` project property: what of the warehouse a project may receive."""

import datetime

import pytest
from cloisonne.core.projects import (
    Extract,
    ProjectError,
    parse_projects,
    project_from_properties,
)

GOOD = {
    "source": "snds-synth",
    "tables": {"beneficiaries": "*", "dcir_dispensings": ["patient_id", "atc_code"]},
    "start": "2020-01-01",
    "end": "2021-06-30",
}


def test_absent_extract_keeps_old_properties_unchanged():
    project = project_from_properties("cardio", {"kind": "project"})
    assert project.extract is None
    assert "extract" not in project.to_properties()


def test_extract_parsed_and_round_trips():
    project = project_from_properties("cardio", {"extract": GOOD})
    assert project.extract == Extract(
        source="snds-synth",
        tables=(("beneficiaries", None), ("dcir_dispensings", ("patient_id", "atc_code"))),
        start=datetime.date(2020, 1, 1),
        end=datetime.date(2021, 6, 30),
    )
    again = project_from_properties("cardio", project.to_properties())
    assert again == project


def test_extract_as_json_text_from_admin_panel():
    text = '{"source": "snds-synth", "tables": {"dcir_acts": "patient_id, act_date"}}'
    project = project_from_properties("cardio", {"extract": text})
    assert project.extract.tables == (("dcir_acts", ("patient_id", "act_date")),)
    assert project.extract.start is None and project.extract.end is None


@pytest.mark.parametrize(
    ("extract", "field", "words"),
    [
        ("{not json", "extract", "JSON"),
        (["x"], "extract", "mapping"),
        ({**GOOD, "where": "x"}, "extract.where", "unknown"),
        ({**GOOD, "source": "../etc"}, "extract.source", "source"),
        ({**GOOD, "tables": {}}, "extract.tables", "non-empty"),
        ({**GOOD, "tables": {"Bad-Name": "*"}}, "extract.tables.Bad-Name", "table"),
        ({**GOOD, "tables": {"dcir_acts": []}}, "extract.tables.dcir_acts", "at least one"),
        ({**GOOD, "tables": {"dcir_acts": ["a", "a"]}}, "extract.tables.dcir_acts", "twice"),
        ({**GOOD, "tables": {"dcir_acts": ["x;drop"]}}, "extract.tables.dcir_acts", "column"),
        ({**GOOD, "start": "2020-13-01"}, "extract.start", "date"),
        ({**GOOD, "start": "2022-01-01"}, "extract.start", "after"),
    ],
)
def test_bad_extract_names_the_field(extract, field, words):
    with pytest.raises(ProjectError) as info:
        project_from_properties("cardio", {"extract": extract})
    assert info.value.field == field
    assert words in str(info.value)
    assert "cardio" in str(info.value)


def test_projects_yaml_accepts_extract_with_yaml_dates():
    data = {
        "projects": [
            {
                "id": "cardio",
                "members": ["alice"],
                "extract": {
                    "source": "snds-synth",
                    "tables": {"beneficiaries": "*"},
                    "start": datetime.date(2020, 1, 1),
                },
            }
        ]
    }
    (spec,) = parse_projects(data)
    assert spec.project.extract.start == datetime.date(2020, 1, 1)

"""The synthetic warehouse's tables: names, columns, identifiers and date columns.

One place that synthesis, provisioning and the docs (docs/data.md) agree on. A column is an
*identifier* when it can link rows to a person or a record across extracts; provisioning re-keys
every identifier and refuses a table with an ``*_id`` column that is not declared here.
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa

WAREHOUSE_MANIFEST = "MANIFEST.json"
FORMAT_VERSION = 1


@dataclass(frozen=True)
class Table:
    name: str
    schema: pa.Schema
    # column name -> identifier domain ("patient", "stay"); the domain is part of the keyed
    # hash so that equal strings in two domains never get the same pseudonym.
    identifiers: tuple[tuple[str, str], ...]
    # the column a project's time window applies to ("" = the table is not windowed)
    date_column: str
    description: str

    @property
    def columns(self) -> tuple[str, ...]:
        return tuple(self.schema.names)

    def identifier_domains(self) -> dict[str, str]:
        return dict(self.identifiers)


TABLES: dict[str, Table] = {
    t.name: t
    for t in (
        Table(
            "beneficiaries",
            pa.schema(
                [
                    ("patient_id", pa.string()),
                    ("birth_year", pa.int16()),
                    ("sex", pa.int8()),
                    ("departement", pa.string()),
                    ("death_date", pa.date32()),
                ]
            ),
            (("patient_id", "patient"),),
            "",
            "one row per beneficiary (like SNDS IR_BEN_R)",
        ),
        Table(
            "dcir_dispensings",
            pa.schema(
                [
                    ("patient_id", pa.string()),
                    ("dispensing_date", pa.date32()),
                    ("atc_code", pa.string()),
                    ("quantity", pa.int16()),
                    ("amount_paid", pa.float32()),
                    ("amount_reimbursed", pa.float32()),
                    ("prescriber_specialty", pa.int8()),
                ]
            ),
            (("patient_id", "patient"),),
            "dispensing_date",
            "outpatient drug dispensings (like DCIR ER_PHA_F joined to ER_PRS_F)",
        ),
        Table(
            "dcir_acts",
            pa.schema(
                [
                    ("patient_id", pa.string()),
                    ("act_date", pa.date32()),
                    ("act_code", pa.string()),
                    ("provider_specialty", pa.int8()),
                    ("amount_paid", pa.float32()),
                    ("amount_reimbursed", pa.float32()),
                ]
            ),
            (("patient_id", "patient"),),
            "act_date",
            "outpatient consultations and technical acts (like DCIR ER_PRS_F / ER_CAM_F)",
        ),
        Table(
            "pmsi_mco_stays",
            pa.schema(
                [
                    ("stay_id", pa.string()),
                    ("patient_id", pa.string()),
                    ("admission_date", pa.date32()),
                    ("discharge_date", pa.date32()),
                    ("length_of_stay", pa.int16()),
                    ("principal_dx", pa.string()),
                    ("discharge_mode", pa.int8()),
                ]
            ),
            (("stay_id", "stay"), ("patient_id", "patient")),
            "admission_date",
            "acute-care hospital stays (like PMSI MCO T_MCOaaB + T_MCOaaC)",
        ),
        Table(
            "pmsi_mco_diagnoses",
            pa.schema(
                [
                    ("stay_id", pa.string()),
                    ("patient_id", pa.string()),
                    ("admission_date", pa.date32()),
                    ("dx_code", pa.string()),
                    ("dx_type", pa.string()),
                ]
            ),
            (("stay_id", "stay"), ("patient_id", "patient")),
            "admission_date",
            "diagnoses of each stay: principal (DP), related (DR), associated (DA) "
            "(like PMSI MCO T_MCOaaB / T_MCOaaD)",
        ),
    )
}


def undeclared_identifiers(table: Table) -> list[str]:
    """Columns that look like identifiers (``*_id``) but are not declared as such."""
    declared = table.identifier_domains()
    return [c for c in table.columns if c.endswith("_id") and c not in declared]

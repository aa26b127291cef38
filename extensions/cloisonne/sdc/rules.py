"""The disclosure rules on tables: each a small pure function over a pandas DataFrame.

Every table rule has the signature ``rule(table, structure, settings) -> list[Finding]``
(``structure`` from ``columns.classify``) and is listed in ``TABLE_RULES``; the arithmetic of
dominance on one cell's contributions is in ``dominance``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence

import pandas as pd

from .columns import TableStructure, as_numbers, classify
from .dominance import cells_from_contributions, cells_from_top, is_contributor_level
from .findings import Finding, Status
from .identifiers import (
    day_precise_share,
    distinct_share,
    is_birth_name,
    is_id_name,
    looks_like_nir,
    looks_like_pseudonyms,
)
from .settings import SDCSettings

TableRule = Callable[[pd.DataFrame, TableStructure, SDCSettings], list[Finding]]


# -- helpers ----------------------------------------------------------------------------------


def cell_name(table: pd.DataFrame, labels: Sequence[str], row: int, column: object) -> str:
    """``row 3 (sexe=F, age=60+), column 'n'``: rows counted from 1, as a spreadsheet shows."""
    named = [c for c in labels if not str(c).startswith("Unnamed:")]
    coords = ", ".join(f"{c}={table.iloc[row][c]}" for c in named[:4])
    return f"row {row + 1}" + (f" ({coords})" if coords else "") + f", column '{column}'"


def _finding(
    rule: str,
    status: Status,
    message: str,
    table: pd.DataFrame,
    structure: TableStructure,
    column: object,
    rows: Sequence[int],
    settings: SDCSettings,
) -> Finding:
    locations = tuple(
        cell_name(table, structure.labels, r, column) for r in rows[: settings.max_locations]
    )
    return Finding(rule, status, message, f"column '{column}'", len(rows), locations)


def _positions(mask: pd.Series) -> list[int]:
    return [i for i, flagged in enumerate(mask.tolist()) if flagged]


# -- table rules ------------------------------------------------------------------------------


def threshold(table: pd.DataFrame, s: TableStructure, settings: SDCSettings) -> list[Finding]:
    """Count cells above zero and below the minimum count (fewer than 11 people)."""
    out = []
    for column in s.counts:
        values = as_numbers(table[column])
        rows = _positions((values > 0) & (values < settings.min_count))
        if rows:
            out.append(_finding(
                "threshold", Status.FAIL,
                f"{len(rows)} cell(s) in count column '{column}' below {settings.min_count}",
                table, s, column, rows, settings,
            ))  # fmt: skip
    return out


def zeros(table: pd.DataFrame, s: TableStructure, settings: SDCSettings) -> list[Finding]:
    """Zero counts can disclose (everyone in a group shares a trait): a reviewer decides."""
    if not settings.zeros_are_disclosive:
        return []
    out = []
    for column in s.counts:
        rows = _positions(as_numbers(table[column]) == 0)
        if rows:
            out.append(_finding(
                "zeros", Status.REVIEW,
                f"{len(rows)} zero cell(s) in count column '{column}': structural, or "
                "disclosing that everyone in a group shares a trait?",
                table, s, column, rows, settings,
            ))  # fmt: skip
    return out


def row_cap(table: pd.DataFrame, s: TableStructure, settings: SDCSettings) -> list[Finding]:
    """A table longer than the cap looks like record-level data rather than results."""
    if len(table) <= settings.max_rows:
        return []
    return [Finding(
        "row-cap", Status.FAIL,
        f"{len(table)} rows, more than the cap of {settings.max_rows}: record-level data?",
    )]  # fmt: skip


def unclear_structure(
    table: pd.DataFrame, s: TableStructure, settings: SDCSettings
) -> list[Finding]:
    """Whole-number columns that are not named as counts, labels or amounts: a person must say
    what they are; if they are counts, say how many cells would fail the threshold."""
    out = []
    for column in s.unclear:
        values = as_numbers(table[column])
        rows = _positions((values > 0) & (values < settings.min_count))
        hint = (
            f"; if it holds counts, {len(rows)} cell(s) are below {settings.min_count}"
            if rows
            else ""
        )
        out.append(_finding(
            "structure", Status.REVIEW,
            f"column '{column}' holds whole numbers but its name does not say what they are "
            f"(name count columns n/count/effectif..., or list them in count_columns){hint}",
            table, s, column, rows, settings,
        ))  # fmt: skip
    if len(table) and not (s.counts or s.magnitudes or s.unclear or s.statistics):
        out.append(Finding(
            "structure", Status.REVIEW,
            "no numeric column: a list of labels, to be read by a reviewer",
        ))  # fmt: skip
    return out


def dominance(table: pd.DataFrame, s: TableStructure, settings: SDCSettings) -> list[Finding]:
    """nk-dominance and p-ratio for each magnitude column, where the table lets us check them:
    from top1/top2 columns, or from contributor-level rows (grouped by the labels, which also
    gives each cell's number of contributors). An aggregated magnitude without them cannot be
    checked here and is marked for review."""
    out: list[Finding] = []
    for column in s.magnitudes:
        values = as_numbers(table[column])
        if s.top1 is not None:
            top2 = as_numbers(table[s.top2]) if s.top2 is not None else None
            cells = cells_from_top(values, as_numbers(table[s.top1]), top2, settings)
        elif is_contributor_level(table, s.labels):
            cells = cells_from_contributions(table, s.labels, values, settings)
        else:
            out.append(Finding(
                "dominance", Status.REVIEW,
                f"magnitude column '{column}': nk-dominance ({settings.nk_n}, {settings.nk_k}) "
                f"and p-ratio ({settings.p_ratio}) need each cell's largest contributions, "
                "which an aggregated table does not carry; check with ACRO in the workspace "
                "(its results.json is shown beside these checks) or by hand",
                f"column '{column}'",
            ))  # fmt: skip
            continue
        if cells.few:
            out.append(_finding(
                "threshold", Status.FAIL,
                f"{len(cells.few)} cell(s) of '{column}' built from fewer than "
                f"{settings.min_count} contributions (rows are contributions: the labels "
                "repeat)",
                table, s, column, cells.few, settings,
            ))  # fmt: skip
        if cells.nk:
            out.append(_finding(
                "nk-dominance", Status.FAIL,
                f"{len(cells.nk)} cell(s) of '{column}' where the {settings.nk_n} largest "
                f"contributions are more than {settings.nk_k:.0%} of the total",
                table, s, column, cells.nk, settings,
            ))  # fmt: skip
        if cells.p:
            out.append(_finding(
                "p-ratio", Status.FAIL,
                f"{len(cells.p)} cell(s) of '{column}' where the rest after the two largest "
                f"contributions is less than {settings.p_ratio:.0%} of the largest",
                table, s, column, cells.p, settings,
            ))  # fmt: skip
    return out


def identifiers(table: pd.DataFrame, s: TableStructure, settings: SDCSettings) -> list[Finding]:
    """Columns that look like identifiers: NIR-like numbers, pseudonyms, exact birth dates."""
    out: list[Finding] = []
    for column in table.columns:
        values = table[column]
        present = values.dropna()
        if present.empty:
            continue
        nir_rows = _positions(values.map(lambda v: v is not None and looks_like_nir(v)))
        if nir_rows:
            out.append(_finding(
                "nir", Status.FAIL,
                f"{len(nir_rows)} NIR-like number(s) (French social security number) in "
                f"column '{column}'",
                table, s, column, nir_rows, settings,
            ))  # fmt: skip
            continue
        distinct = distinct_share(values)
        many = len(present) >= 2
        if looks_like_pseudonyms(values):
            out.append(Finding(
                "identifier", Status.FAIL,
                f"column '{column}' holds opaque, distinct tokens: pseudonymous identifiers?",
                f"column '{column}'", len(present),
            ))  # fmt: skip
        elif is_id_name(column):
            status = Status.FAIL if distinct >= 0.9 and many else Status.REVIEW
            out.append(Finding(
                "identifier", status,
                f"column '{column}' is named like an identifier"
                + (" and its values are distinct" if status is Status.FAIL else ""),
                f"column '{column}'", len(present),
            ))  # fmt: skip
        elif is_birth_name(column) and day_precise_share(values) >= 0.5:
            out.append(Finding(
                "birth-date", Status.FAIL,
                f"column '{column}' holds exact dates of birth (give the year or an age band)",
                f"column '{column}'", len(present),
            ))  # fmt: skip
    return out


def _nested(value: object) -> bool:
    return isinstance(value, dict | list | tuple | set) or hasattr(value, "tolist")


TABLE_RULES: tuple[TableRule, ...] = (
    row_cap,
    identifiers,
    threshold,
    zeros,
    dominance,
    unclear_structure,
)


def check_table(table: pd.DataFrame, settings: SDCSettings, where: str = "") -> list[Finding]:
    """Run every table rule; ``where`` (e.g. ``sheet 'Feuil1'``) prefixes the locations."""
    table = table.reset_index(drop=True)
    table.columns = [str(c) for c in table.columns]
    for column in table.columns:
        # Nested values (JSON records, Parquet lists and structs) as text: comparable, hashable.
        if table[column].dtype == object and table[column].map(_nested).any():
            table[column] = table[column].map(lambda v: json.dumps(v, default=str) if _nested(v)
                                              else v)  # fmt: skip
    structure = classify(table, settings)
    findings = [f for rule in TABLE_RULES for f in rule(table, structure, settings)]
    if where:
        findings = [
            Finding(
                f.rule,
                f.status,
                f.message,
                f"{where}, {f.location}" if f.location else where,
                f.cells,
                tuple(f"{where}, {loc}" for loc in f.locations),
            )  # fmt: skip
            for f in findings
        ]
    return findings

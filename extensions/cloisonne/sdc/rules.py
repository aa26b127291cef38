"""The disclosure rules on tables: each a small pure function over a pandas DataFrame.

Every table rule has the signature ``rule(table, structure, settings) -> list[Finding]``
(``structure`` from ``columns.classify``) and is listed in ``TABLE_RULES``. The dominance rules
on one cell's contributions (``nk_dominated``, ``p_ratio_violated``) follow ACRO exactly: a
cell is dominated when its ``n`` largest contributions are *more than* ``k`` of its total, and
fails the p-ratio when what is left after the two largest is *less than* ``p`` of the largest;
the edge values themselves pass.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence

import pandas as pd

from .columns import TableStructure, as_numbers, classify
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


# -- one cell's contributions -----------------------------------------------------------------


def nk_dominated(contributions: Sequence[float], n: int = 2, k: float = 0.9) -> bool:
    """ACRO's nk rule: the ``n`` largest contributions make up more than ``k`` of the total."""
    values = sorted((float(v) for v in contributions), reverse=True)
    total = sum(values)
    if total <= 0:
        return False
    return sum(values[:n]) / total > k


def p_ratio_violated(contributions: Sequence[float], p: float = 0.1) -> bool:
    """ACRO's p-percent rule: the total less the two largest contributions is less than ``p``
    of the largest, so the second largest contributor can estimate the largest closely.

    A cell with fewer than two contributions or a non-positive total is disclosive (ACRO, with
    zeros disclosive)."""
    values = sorted((float(v) for v in contributions), reverse=True)
    total = sum(values)
    if len(values) < 2 or total <= 0:
        return True
    return (total - values[0] - values[1]) / values[0] < p


def p_ratio_from_top(total: float, top1: float, top2: float, p: float = 0.1) -> bool:
    """The p-percent rule when the table gives a cell's total and its two largest parts."""
    if total <= 0 or top1 <= 0:
        return True
    return (total - top1 - top2) / top1 < p


def nk_from_top(total: float, top_n_sum: float, k: float = 0.9) -> bool:
    if total <= 0:
        return False
    return top_n_sum / total > k


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


def _contributor_level(table: pd.DataFrame, s: TableStructure) -> bool:
    """Rows are individual contributions when the label combinations repeat."""
    return bool(s.labels) and table.duplicated(subset=list(s.labels)).any()


def dominance(table: pd.DataFrame, s: TableStructure, settings: SDCSettings) -> list[Finding]:
    """nk-dominance and p-ratio for each magnitude column, where the table lets us check them:
    from contributor-level rows (grouped by the labels) or from top1/top2 columns. An
    aggregated magnitude without them cannot be checked here and is marked for review."""
    out: list[Finding] = []
    for column in s.magnitudes:
        values = as_numbers(table[column])
        if s.top1 is not None:
            top1 = as_numbers(table[s.top1]).fillna(0)
            top2 = (
                as_numbers(table[s.top2]).fillna(0)
                if s.top2 is not None
                else pd.Series(0.0, index=table.index)
            )
            top_n = top1 + (top2 if settings.nk_n >= 2 else 0)
            nk_rows = [
                i for i in range(len(table))
                if nk_from_top(values.iloc[i], top_n.iloc[i], settings.nk_k)
            ]  # fmt: skip
            p_rows = (
                [
                    i
                    for i in range(len(table))
                    if p_ratio_from_top(
                        values.iloc[i], top1.iloc[i], top2.iloc[i], settings.p_ratio
                    )
                ]  # fmt: skip
                if s.top2 is not None
                else []
            )
        elif _contributor_level(table, s):
            groups = pd.DataFrame({"g": table.groupby(list(s.labels), sort=False).ngroup(),
                                   "v": values})  # fmt: skip
            nk_groups = {
                g
                for g, part in groups.groupby("g")["v"]
                if nk_dominated(part.dropna().tolist(), settings.nk_n, settings.nk_k)
            }
            p_groups = {
                g
                for g, part in groups.groupby("g")["v"]
                if p_ratio_violated(part.dropna().tolist(), settings.p_ratio)
            }
            small = {g for g, part in groups.groupby("g")["v"]
                     if 0 < part.notna().sum() < settings.min_count}  # fmt: skip
            first = ~groups["g"].duplicated()
            nk_rows = [i for i in _positions(first) if groups["g"].iloc[i] in nk_groups]
            p_rows = [i for i in _positions(first) if groups["g"].iloc[i] in p_groups]
            small_rows = [i for i in _positions(first) if groups["g"].iloc[i] in small]
            if small_rows:
                out.append(_finding(
                    "threshold", Status.FAIL,
                    f"{len(small_rows)} cell(s) of '{column}' built from fewer than "
                    f"{settings.min_count} contributions (rows are contributions: the labels "
                    "repeat)",
                    table, s, column, small_rows, settings,
                ))  # fmt: skip
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
        if nk_rows:
            out.append(_finding(
                "nk-dominance", Status.FAIL,
                f"{len(nk_rows)} cell(s) of '{column}' where the {settings.nk_n} largest "
                f"contributions are more than {settings.nk_k:.0%} of the total",
                table, s, column, nk_rows, settings,
            ))  # fmt: skip
        if p_rows:
            out.append(_finding(
                "p-ratio", Status.FAIL,
                f"{len(p_rows)} cell(s) of '{column}' where the rest after the two largest "
                f"contributions is less than {settings.p_ratio:.0%} of the largest",
                table, s, column, p_rows, settings,
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

"""Dominance of a cell by its largest contributors, as ACRO defines it. Pure arithmetic.

A cell is nk-dominated when its ``n`` largest contributions are *more than* ``k`` of its total,
and fails the p-ratio (p-percent rule) when what is left after the two largest is *less than*
``p`` of the largest, so the second largest contributor could estimate the largest closely.
The edge values themselves pass, as in ACRO. At ACRO's defaults (n=2, k=0.9, p=0.1) a p-ratio
failure always implies an nk one: the rest is under 10% of the largest, so of the total too.

A results file gives contributions in two ways: ``top1``/``top2`` columns beside a cell's
total (``cells_from_top``; n is then at most 2), or one row per contribution, the cell's
labels repeating (``cells_from_contributions``, which also counts each cell's contributors).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import pandas as pd

from .settings import SDCSettings


def nk_dominated(contributions: Sequence[float], n: int = 2, k: float = 0.9) -> bool:
    """The ``n`` largest contributions make up more than ``k`` of the total."""
    values = sorted((float(v) for v in contributions), reverse=True)
    total = sum(values)
    if total <= 0:
        return False
    return sum(values[:n]) / total > k


def p_ratio_violated(contributions: Sequence[float], p: float = 0.1) -> bool:
    """The total less the two largest contributions is less than ``p`` of the largest. A cell
    with fewer than two contributions or a non-positive total is disclosive (ACRO, with zeros
    disclosive)."""
    values = sorted((float(v) for v in contributions), reverse=True)
    total = sum(values)
    if len(values) < 2 or total <= 0:
        return True
    return (total - values[0] - values[1]) / values[0] < p


def nk_from_top(total: float, top_n_sum: float, k: float = 0.9) -> bool:
    if total <= 0:
        return False
    return top_n_sum / total > k


def p_ratio_from_top(total: float, top1: float, top2: float, p: float = 0.1) -> bool:
    if total <= 0 or top1 <= 0:
        return True
    return (total - top1 - top2) / top1 < p


@dataclass(frozen=True)
class DominatedCells:
    """Row positions (0-based) of the cells that fail; ``few``: built from fewer than the
    minimum count of contributions."""

    nk: list[int] = field(default_factory=list)
    p: list[int] = field(default_factory=list)
    few: list[int] = field(default_factory=list)


def cells_from_top(
    totals: pd.Series, top1: pd.Series, top2: pd.Series | None, settings: SDCSettings
) -> DominatedCells:
    """One row per cell, its total and its largest one or two contributions. Without ``top2``
    the p-ratio cannot be computed and only nk is checked."""
    first = top1.fillna(0).tolist()
    second = top2.fillna(0).tolist() if top2 is not None else [0.0] * len(first)
    cells = DominatedCells()
    for i, total in enumerate(totals.tolist()):
        top_n = first[i] + (second[i] if settings.nk_n >= 2 else 0.0)
        if nk_from_top(total, top_n, settings.nk_k):
            cells.nk.append(i)
        if top2 is not None and p_ratio_from_top(total, first[i], second[i], settings.p_ratio):
            cells.p.append(i)
    return cells


def is_contributor_level(table: pd.DataFrame, labels: Sequence[str]) -> bool:
    """Rows are individual contributions when the label combinations repeat."""
    return bool(labels) and bool(table.duplicated(subset=list(labels)).any())


def cells_from_contributions(
    table: pd.DataFrame, labels: Sequence[str], values: pd.Series, settings: SDCSettings
) -> DominatedCells:
    """One row per contribution; a cell is a combination of labels, reported at its first row."""
    group = table.groupby(list(labels), sort=False).ngroup()
    cells = DominatedCells()
    for first_label, group_id in group.drop_duplicates().items():
        parts = values[group == group_id].dropna().tolist()
        row = table.index.get_loc(first_label)
        if 0 < len(parts) < settings.min_count:
            cells.few.append(row)
        if nk_dominated(parts, settings.nk_n, settings.nk_k):
            cells.nk.append(row)
        if p_ratio_violated(parts, settings.p_ratio):
            cells.p.append(row)
    return cells

"""How a results table's columns are recognised: labels, counts, magnitudes, contributors.

A results file does not say which of its numbers are counts, so the rules go by the column
names, with the site's own lists on top:

- **count** columns: whole-number columns (integers, or floats that are all whole) whose name
  is a count word or starts or ends with one: ``n``, ``nb``, ``count``, ``effectif``,
  ``nombre``, ``freq``, ``frequency``, ``patients``... (``n_patients``, ``nb_sejours``,
  ``effectif_total``, ``count_2024``), or listed in ``SDCSettings.count_columns``. Cells marked
  as suppressed (``<11``, ``*``, ``s``, ``secret``, empty) are allowed in a count column.
- **magnitude** columns: numeric columns named as amounts (``montant``, ``amount``, ``sum``,
  ``somme``, ``cost``, ``cout``, ``depense``, ``remboursement``, ``total_amount``...) or listed
  in ``SDCSettings.magnitude_columns``. Dominance needs each cell's largest contributions, so a
  magnitude column is checked only where the table carries them: contributor-level rows (the
  same labels repeat) or ``top1``/``top2`` columns (also ``max1``/``max2``, ``largest``/
  ``second_largest``, optionally prefixed with the magnitude's name).
- **label** columns: text, categorical, boolean and date columns (the cells' coordinates), and
  numeric columns named as coordinates (``annee``, ``year``, ``age``, ``mois``, ``code``,
  ``region``, ``departement``, ``classe``, ``tranche``...), and a saved row index
  (``Unnamed: 0`` or ``index`` holding 0..n-1 or 1..n).
- **statistic** columns: other numeric columns whose values are not all whole (means, rates,
  coefficients): no cell rule applies to them.
- **unclear** columns: whole-number columns with none of these names. A table with any is
  marked ``review``: its small cells may be counts (the message says how many are below the
  threshold if they are), and naming the column settles it.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

import pandas as pd

from .settings import SDCSettings

COUNT_WORDS = frozenset({
    "n", "nb", "nbr", "nbre", "count", "counts", "cnt", "effectif", "effectifs", "eff",
    "nombre", "freq", "frequency", "frequence", "patients", "individus", "persons", "people",
    "cases", "cas", "events", "evenements", "deces", "deaths", "sejours", "stays",
})  # fmt: skip
MAGNITUDE_WORDS = frozenset({
    "montant", "montants", "amount", "amounts", "sum", "somme", "cost", "costs", "cout",
    "couts", "depense", "depenses", "expenditure", "remboursement", "rembourse", "revenue",
    "income", "revenu", "revenus", "salary", "salaire", "turnover", "magnitude",
})  # fmt: skip
LABEL_WORDS = frozenset({
    "annee", "year", "an", "yr", "age", "mois", "month", "semaine", "week", "jour", "day",
    "trimestre", "quarter", "code", "region", "departement", "dept", "dep", "commune",
    "categorie", "category", "classe", "class", "groupe", "group", "tranche", "rang", "rank",
})  # fmt: skip
TOP1_NAMES = ("top1", "max1", "largest", "max")
TOP2_NAMES = ("top2", "max2", "second_largest", "second")

SUPPRESSED = re.compile(
    r"^\s*(<\s*\d+|\*+|s|c|x|nd|n\.d\.|na|n/a|secret|masque|suppressed|-)?\s*$", re.IGNORECASE
)


def normalise(name: object) -> str:
    """``'Effectif (2024)'`` -> ``'effectif_2024'``: lower case, no accents, ``_`` separators."""
    text = unicodedata.normalize("NFKD", str(name)).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")


def _tokens(name: str) -> list[str]:
    return [t for t in name.split("_") if t]


def _names_word(name: str, words: frozenset[str]) -> bool:
    tokens = _tokens(name)
    return bool(tokens) and (tokens[0] in words or tokens[-1] in words)


def is_count_name(name: object, settings: SDCSettings) -> bool:
    return str(name) in settings.count_columns or _names_word(normalise(name), COUNT_WORDS)


def is_magnitude_name(name: object, settings: SDCSettings) -> bool:
    return str(name) in settings.magnitude_columns or _names_word(normalise(name), MAGNITUDE_WORDS)


def is_label_name(name: object) -> bool:
    return _names_word(normalise(name), LABEL_WORDS)


def as_numbers(column: pd.Series) -> pd.Series | None:
    """The column as numbers, suppression marks as missing; None if it is not numeric."""
    if pd.api.types.is_bool_dtype(column):
        return None
    if pd.api.types.is_numeric_dtype(column):
        return column.astype("float64")
    if not (pd.api.types.is_object_dtype(column) or pd.api.types.is_string_dtype(column)):
        return None
    values = column.dropna()
    if values.empty:
        return None
    text = values.astype(str)
    marked = text.str.match(SUPPRESSED)
    numbers = pd.to_numeric(text[~marked].str.replace(",", ".", regex=False), errors="coerce")
    if numbers.isna().any() or numbers.empty:
        return None
    out = pd.Series(float("nan"), index=column.index, dtype="float64")
    out[numbers.index] = numbers.astype("float64")
    return out


def is_whole(values: pd.Series) -> bool:
    present = values.dropna()
    return not present.empty and bool(((present % 1) == 0).all())


def is_row_number(name: object, values: pd.Series) -> bool:
    """A saved DataFrame index (``Unnamed: 0`` holding 0..n-1, or a column of 1..n): a label."""
    present = values.dropna()
    if len(present) != len(values) or present.empty or not is_whole(present):
        return False
    numbers = present.astype("int64").tolist()
    start = numbers[0]
    return (
        start in (0, 1)
        and numbers == list(range(start, start + len(numbers)))
        and (str(name).startswith("Unnamed:") or normalise(name) in {"", "index", "row", "ligne"})
    )


@dataclass(frozen=True)
class TableStructure:
    labels: tuple[str, ...]
    counts: tuple[str, ...]
    magnitudes: tuple[str, ...]
    top1: str | None
    top2: str | None
    statistics: tuple[str, ...]
    unclear: tuple[str, ...]


def classify(table: pd.DataFrame, settings: SDCSettings) -> TableStructure:
    labels: list[str] = []
    counts: list[str] = []
    magnitudes: list[str] = []
    statistics: list[str] = []
    unclear: list[str] = []
    top1 = top2 = None
    for name in table.columns:
        values = as_numbers(table[name])
        key = normalise(name)
        if (
            values is None
            or (is_label_name(name) and not is_count_name(name, settings))
            or is_row_number(name, values)
        ):
            labels.append(name)
        elif any(key == t or key.endswith("_" + t) for t in TOP1_NAMES) and top1 is None:
            top1 = name
        elif any(key == t or key.endswith("_" + t) for t in TOP2_NAMES) and top2 is None:
            top2 = name
        elif is_magnitude_name(name, settings):
            magnitudes.append(name)
        elif is_count_name(name, settings) and (is_whole(values) or values.dropna().empty):
            counts.append(name)
        elif is_whole(values):
            unclear.append(name)
        else:
            statistics.append(name)
    return TableStructure(
        labels=tuple(labels),
        counts=tuple(counts),
        magnitudes=tuple(magnitudes),
        top1=top1,
        top2=top2,
        statistics=tuple(statistics),
        unclear=tuple(unclear),
    )

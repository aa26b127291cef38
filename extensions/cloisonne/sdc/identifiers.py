"""Recognising values that identify people: NIR-like numbers, pseudonyms, exact birth dates.

- **NIR** (French social security number): 13 digits (sex 1/2, or 3/4/7/8 for temporary
  numbers; year; month; département, ``2A``/``2B`` for Corsica; commune; order) optionally
  followed by the 2-digit key ``97 - (number mod 97)`` (Corsica counted as 19 and 18). With a
  key, the key must check; without one, the structure must fit.
- **pseudonyms**: SNDS-style pseudonymous ids (``BEN_NIR_PSA``, ``BEN_IDT_ANO``...) and hashes
  are long opaque tokens: hashes, or 12+ characters of letters and digits all of one length
  (ids are fixed-width, labels are not), nearly all distinct (``looks_like_pseudonyms``).
  Columns named like identifiers (``id``, ``*_id``, ``pseudo``, ``nir``, ``ben_nir_psa``,
  ``num_enq``, ``ipp``...) are flagged too: fail when their values are distinct, else review.
- **exact birth dates**: a column named like a birth date (``date_naissance``, ``ddn``,
  ``birth``, ``dob``...) holding day-precise dates. Years or months of birth are fine.
"""

from __future__ import annotations

import re

import pandas as pd

from .columns import normalise

NIR = re.compile(
    # sex, year, month, département (2A/2B: Corsica), commune, order, optional key; a space or
    # a dot may separate the groups, as when the number is written out.
    r"(?<![0-9A-Za-z.,])([1-478])[ .]?(\d{2})[ .]?(0[1-9]|1[0-2]|[2-9]\d)[ .]?(\d{2}|2[AaBb])"
    r"[ .]?(\d{3})[ .]?(\d{3})(?:[ .]?(\d{2}))?(?![0-9A-Za-z]|[.,]\d)"
)
TOKEN_CHARS = re.compile(r"^[A-Za-z0-9+/=_-]{12,}$")
HEX = re.compile(r"^[0-9a-fA-F]{32,}$")
ID_NAME = re.compile(
    r"(^|_)(id|ids|ident|identifiant|identifier|pseudo|pseudonyme|pseudonym|nir|ssn|ipp|nip|"
    r"ben_nir_psa|ben_idt_ano|nir_ano|num_enq|patient_id|person_id|subject_id)($|_)"
)
BIRTH_NAME = re.compile(r"(naiss|birth|(^|_)dob($|_)|(^|_)ddn($|_)|born|date_nais)")
DAY_DATE = re.compile(
    r"^\s*(\d{4}-\d{2}-\d{2}([ T]\d{2}:\d{2}(:\d{2}(\.\d+)?)?)?|\d{1,2}[/.-]\d{1,2}[/.-]\d{4})\s*$"
)


def nir_key_ok(first13: str, key: str) -> bool:
    digits = first13.upper().replace("2A", "19").replace("2B", "18")
    return 97 - (int(digits) % 97) == int(key)


def find_nirs(text: str) -> list[str]:
    """NIR-like numbers in free text (spaces or dots between the groups allowed)."""
    found = []
    for match in NIR.finditer(text):
        first13, key = "".join(match.groups()[:6]), match.group(7)
        if key is None or nir_key_ok(first13, key):
            found.append(match.group(0))
    return found


def looks_like_nir(value: object) -> bool:
    """Whether a cell holds a NIR-like number. Numbers count only when whole (a NIR read by
    pandas as an integer, or a float that is one); decimals never do."""
    if isinstance(value, bool):
        return False
    if isinstance(value, float):
        if not value.is_integer():
            return False
        value = int(value)
    if not isinstance(value, str | int):
        try:
            if float(value) != int(value):  # numpy numbers
                return False
            value = int(value)
        except (TypeError, ValueError, OverflowError):
            value = str(value)
    return bool(find_nirs(str(value)))


def is_id_name(name: object) -> bool:
    return bool(ID_NAME.search(normalise(name)))


def is_birth_name(name: object) -> bool:
    return bool(BIRTH_NAME.search(normalise(name)))


def is_opaque_token(text: str) -> bool:
    """A hash, or 12+ characters where letters and digits are mixed throughout (not a label
    such as ``diabetes2024`` or ``E11_type2``): at least 3 of each and 4 letter/digit switches.
    """
    if HEX.match(text):
        return True
    if not TOKEN_CHARS.match(text):
        return False
    kinds = ["d" if c.isdigit() else "a" if c.isalpha() else "" for c in text]
    kinds = [k for k in kinds if k]
    switches = sum(1 for a, b in zip(kinds, kinds[1:], strict=False) if a != b)
    return kinds.count("d") >= 3 and kinds.count("a") >= 3 and switches >= 4


def looks_like_pseudonyms(values: pd.Series) -> bool:
    """A column of pseudonymous ids: 90% or more of its values are hashes, or tokens of 12+
    characters with letters and digits, of one length (ids are fixed-width; labels are not),
    and distinct. A single value must pass the stricter ``is_opaque_token``."""
    text = values.dropna().astype(str)
    if text.empty:
        return False
    if len(text) == 1:
        return is_opaque_token(text.iloc[0])
    if text.map(lambda t: bool(HEX.match(t))).mean() >= 0.9:
        return distinct_share(text) >= 0.9
    tokenish = text.map(
        lambda t: (
            bool(TOKEN_CHARS.match(t))
            and any(c.isdigit() for c in t)
            and any(c.isalpha() for c in t)
        )
    )
    same_length = text.str.len().value_counts(normalize=True).iloc[0] >= 0.9
    return tokenish.mean() >= 0.9 and same_length and distinct_share(text) >= 0.9


def distinct_share(values: pd.Series) -> float:
    present = values.dropna()
    return 0.0 if present.empty else present.nunique() / len(present)


def day_precise_share(values: pd.Series) -> float:
    """Share of non-missing values that are dates to the day."""
    present = values.dropna()
    if present.empty:
        return 0.0
    if pd.api.types.is_datetime64_any_dtype(present):
        return 1.0
    return float(present.astype(str).str.match(DAY_DATE).mean())

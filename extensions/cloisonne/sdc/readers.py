"""Turning a file's bytes into tables (pandas DataFrames). Malformed input raises ReadError.

CSV files from French tools often use ``;`` and Windows-1252: the delimiter is sniffed among
``, ; tab |`` and the text decoded as UTF-8, falling back to Windows-1252.
"""

from __future__ import annotations

import csv
import io
import json
from typing import Any

import pandas as pd


class ReadError(ValueError):
    """The file could not be read as what its name says it is."""


def decode_text(data: bytes) -> str:
    for encoding in ("utf-8-sig", "cp1252"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise ReadError("not text in UTF-8 or Windows-1252")


def sniff_delimiter(text: str, default: str = ",") -> str:
    sample = text[:65536]
    try:
        return csv.Sniffer().sniff(sample, delimiters=",;\t|").delimiter
    except csv.Error:
        return default


def read_delimited(data: bytes, *, delimiter: str | None = None) -> pd.DataFrame:
    text = decode_text(data)
    if "\x00" in text:
        raise ReadError("binary content (NUL bytes) in a text table")
    if not text.strip():
        raise ReadError("the file is empty")
    sep = delimiter or sniff_delimiter(text)
    try:
        return pd.read_csv(io.StringIO(text), sep=sep, on_bad_lines="error")
    except (pd.errors.ParserError, pd.errors.EmptyDataError, ValueError) as exc:
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ReadError(first_line) from None


def read_parquet(data: bytes) -> pd.DataFrame:
    try:
        return pd.read_parquet(io.BytesIO(data))
    except Exception as exc:  # pyarrow raises several types for corrupt files
        raise ReadError(f"not a readable Parquet file ({type(exc).__name__}: {exc})") from None


def read_xlsx(data: bytes) -> dict[str, pd.DataFrame]:
    """Every sheet, by name."""
    try:
        sheets = pd.read_excel(io.BytesIO(data), sheet_name=None, engine="openpyxl")
    except Exception as exc:  # openpyxl/zipfile raise many types for corrupt files
        raise ReadError(f"not a readable Excel workbook ({type(exc).__name__}: {exc})") from None
    return dict(sheets)


def read_json(data: bytes) -> Any:
    try:
        return json.loads(decode_text(data))
    except json.JSONDecodeError as exc:
        raise ReadError(f"not valid JSON: {exc.msg} at line {exc.lineno}") from None


def json_table(value: Any) -> pd.DataFrame | None:
    """A table if the JSON is one (a list of records, or a mapping of equal-length lists)."""
    if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
        return pd.DataFrame.from_records(value)
    if (
        isinstance(value, dict)
        and value
        and all(isinstance(v, list) for v in value.values())
        and len({len(v) for v in value.values()}) == 1
    ):
        return pd.DataFrame(value)
    return None

"""Checks on a Jupyter notebook's saved outputs (the code is not run).

A notebook carries whatever its cells printed: tables shown with more rows than the cap are
flagged (pandas' HTML and text forms both say how many rows a table has, even when the display
is truncated), images in outputs go to manual review, and every output's text is searched for
NIR-like numbers.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from .findings import Finding, Status
from .identifiers import find_nirs
from .settings import SDCSettings

PANDAS_SHAPE_TEXT = re.compile(r"\[(\d+) rows x (\d+) columns\]")
PANDAS_SHAPE_HTML = re.compile(r"<p>(\d+) rows × (\d+) columns</p>")
_TABLE_ROW = re.compile(r"<tr[\s>]", re.IGNORECASE)
_THEAD = re.compile(r"<thead.*?</thead>", re.IGNORECASE | re.DOTALL)


def _text(value: Any) -> str:
    return "".join(value) if isinstance(value, list) else str(value or "")


def outputs(notebook: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(location, output) for every output of every code cell."""
    for c, cell in enumerate(notebook.get("cells") or [], start=1):
        if not isinstance(cell, dict):
            continue
        for o, output in enumerate(cell.get("outputs") or [], start=1):
            if isinstance(output, dict):
                yield f"cell {c}, output {o}", output


def table_rows(output: dict[str, Any]) -> int | None:
    """How many rows the table shown in an output has, if it shows one."""
    data = output.get("data") or {}
    texts = [_text(output.get("text")), _text(data.get("text/plain"))]
    html = _text(data.get("text/html"))
    rows: list[int] = []
    if (shape := PANDAS_SHAPE_HTML.search(html)) is not None:
        rows.append(int(shape.group(1)))
    elif "<table" in html.lower():
        rows.append(len(_TABLE_ROW.findall(_THEAD.sub("", html))))
    for text in texts:
        rows += [int(m.group(1)) for m in PANDAS_SHAPE_TEXT.finditer(text)]
    resource = data.get("application/vnd.dataresource+json")
    if isinstance(resource, dict) and isinstance(resource.get("data"), list):
        rows.append(len(resource["data"]))
    return max(rows) if rows else None


def check_notebook(notebook: dict[str, Any], settings: SDCSettings) -> list[Finding]:
    if not isinstance(notebook, dict) or not isinstance(notebook.get("cells"), list):
        return [Finding("readable", Status.FAIL, "could not be read: not a Jupyter notebook")]
    findings: list[Finding] = []
    big: list[str] = []
    images: list[str] = []
    nirs: list[str] = []
    for where, output in outputs(notebook):
        rows = table_rows(output)
        if rows is not None and rows > settings.max_rows:
            big.append(f"{where} ({rows} rows)")
        data = output.get("data") or {}
        if any(str(kind).startswith("image/") for kind in data):
            images.append(where)
        text = " ".join(
            [_text(output.get("text"))] + [_text(v) for k, v in data.items() if "text" in k]
        )
        if find_nirs(text):
            nirs.append(where)
    if big:
        findings.append(Finding(
            "notebook-table", Status.FAIL,
            f"{len(big)} output(s) show a table with more than {settings.max_rows} rows",
            "outputs", len(big), tuple(big[: settings.max_locations]),
        ))  # fmt: skip
    if nirs:
        findings.append(Finding(
            "nir", Status.FAIL, f"NIR-like numbers in {len(nirs)} output(s)",
            "outputs", len(nirs), tuple(nirs[: settings.max_locations]),
        ))  # fmt: skip
    if images:
        findings.append(Finding(
            "image", Status.REVIEW, f"{len(images)} image output(s): review by eye",
            "outputs", len(images), tuple(images[: settings.max_locations]),
        ))  # fmt: skip
    return findings

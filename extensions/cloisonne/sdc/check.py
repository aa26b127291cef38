"""Entry points: ``check_file`` (one file's bytes) and ``check_request`` (all of a request's).

Dispatch is by the file name's extension. Every file gets the type and size rules; then tables
(csv, tsv, parquet, xlsx, tabular json) get the table rules, notebooks their output checks,
images a magic-number check and manual review, text a NIR search. A file that cannot be read
is reported "could not be read" with status fail; nothing here raises on bad input.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from pathlib import PurePosixPath

from .acro import acro_outputs, is_acro_results, outputs_for_file
from .findings import FileReport, Finding, RequestReport, Status
from .identifiers import find_nirs
from .notebooks import PANDAS_SHAPE_TEXT, check_notebook
from .readers import (
    ReadError,
    decode_text,
    json_table,
    read_delimited,
    read_json,
    read_parquet,
    read_xlsx,
)
from .rules import check_table
from .settings import SDCSettings

ALIASES = {"jpeg": "jpg", "markdown": "md", "text": "txt"}
MAGIC = {"png": b"\x89PNG\r\n\x1a\n", "jpg": b"\xff\xd8\xff"}

ContentCheck = Callable[[bytes, SDCSettings], list[Finding]]


def file_kind(name: str) -> str:
    suffix = PurePosixPath(name).suffix.lower().lstrip(".")
    return ALIASES.get(suffix, suffix)


def check_type(kind: str, settings: SDCSettings) -> list[Finding]:
    if kind in settings.allowed_types:
        return []
    allowed = ", ".join(sorted(settings.allowed_types))
    shown = f"'.{kind}'" if kind else "no extension"
    return [Finding("file-type", Status.REVIEW, f"file type {shown} is not in the allowlist "
                    f"({allowed})")]  # fmt: skip


def check_size(size: int, settings: SDCSettings) -> list[Finding]:
    if size <= settings.max_file_bytes:
        return []
    return [Finding(
        "file-size", Status.FAIL,
        f"{size} bytes, over the cap of {settings.max_file_bytes} bytes; contents not checked",
    )]  # fmt: skip


def _csv(data: bytes, settings: SDCSettings) -> list[Finding]:
    return check_table(read_delimited(data), settings)


def _tsv(data: bytes, settings: SDCSettings) -> list[Finding]:
    return check_table(read_delimited(data, delimiter="\t"), settings)


def _parquet(data: bytes, settings: SDCSettings) -> list[Finding]:
    return check_table(read_parquet(data), settings)


def _xlsx(data: bytes, settings: SDCSettings) -> list[Finding]:
    return [
        finding
        for sheet, table in read_xlsx(data).items()
        for finding in check_table(table, settings, where=f"sheet '{sheet}'")
    ]


def _text_findings(text: str, settings: SDCSettings) -> list[Finding]:
    out = []
    nirs = find_nirs(text)
    if nirs:
        out.append(Finding("nir", Status.FAIL, f"{len(nirs)} NIR-like number(s) in the text",
                           cells=len(nirs)))  # fmt: skip
    rows = [int(m.group(1)) for m in PANDAS_SHAPE_TEXT.finditer(text)]
    if rows and max(rows) > settings.max_rows:
        out.append(Finding("row-cap", Status.FAIL,
                           f"a printed table of {max(rows)} rows, more than the cap of "
                           f"{settings.max_rows}"))  # fmt: skip
    return out


def _json(data: bytes, settings: SDCSettings) -> list[Finding]:
    value = read_json(data)
    if is_acro_results(value):
        return []  # ACRO's own record: its statuses are shown beside ours
    table = json_table(value)
    if table is not None:
        return check_table(table, settings)
    return [
        *_text_findings(json.dumps(value, ensure_ascii=False), settings),
        Finding("structure", Status.REVIEW, "JSON that is not a table: read by a reviewer"),
    ]


def _text(data: bytes, settings: SDCSettings) -> list[Finding]:
    return _text_findings(decode_text(data), settings)


def _image(kind: str) -> ContentCheck:
    def check(data: bytes, settings: SDCSettings) -> list[Finding]:
        if not data.startswith(MAGIC[kind]):
            return [
                Finding(
                    "readable",
                    Status.FAIL,
                    f"could not be read: the content is not a {kind.upper()} image",
                )
            ]
        return [Finding("image", Status.REVIEW, "images are reviewed by eye")]  # fmt: skip

    return check


def _notebook(data: bytes, settings: SDCSettings) -> list[Finding]:
    return check_notebook(read_json(data), settings)


CONTENT_CHECKS: Mapping[str, ContentCheck] = {
    "csv": _csv,
    "tsv": _tsv,
    "parquet": _parquet,
    "xlsx": _xlsx,
    "json": _json,
    "txt": _text,
    "md": _text,
    "png": _image("png"),
    "jpg": _image("jpg"),
    "ipynb": _notebook,
}


def check_file(name: str, data: bytes, settings: SDCSettings | None = None) -> FileReport:
    """All the rules that apply to one file. Never raises on bad content."""
    settings = settings or SDCSettings()
    kind = file_kind(name)
    findings = [*check_type(kind, settings), *check_size(len(data), settings)]
    content = CONTENT_CHECKS.get(kind)
    if content is not None and len(data) <= settings.max_file_bytes:
        try:
            findings += content(data, settings)
        except ReadError as exc:
            findings.append(Finding("readable", Status.FAIL, f"could not be read: {exc}"))
        except Exception as exc:  # a reader's bug must not stop the other files' checks
            findings.append(Finding(
                "readable", Status.FAIL, f"could not be read ({type(exc).__name__}: {exc})"
            ))  # fmt: skip
    return FileReport(name=name, size=len(data), kind=kind, findings=tuple(findings))


def check_request(
    files: Mapping[str, bytes] | Iterable[tuple[str, bytes]],
    settings: SDCSettings | None = None,
) -> RequestReport:
    """Check every file; if one is an ACRO ``results.json``, show its statuses beside ours."""
    settings = settings or SDCSettings()
    items = list(files.items() if isinstance(files, Mapping) else files)
    reports = [check_file(name, data, settings) for name, data in items]
    outputs: list[dict] = []
    for name, data in items:
        if file_kind(name) != "json" or len(data) > settings.max_file_bytes:
            continue
        try:
            outputs += acro_outputs(read_json(data))
        except ReadError:
            continue
    if outputs:
        reports = [replace(r, acro=tuple(outputs_for_file(outputs, r.name))) for r in reports]
    return RequestReport(files=tuple(reports), acro_outputs=tuple(outputs))

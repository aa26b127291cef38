"""check_file / check_request on real file bytes: dispatch, bad input, notebooks, ACRO."""

from __future__ import annotations

import io
import json

import pandas as pd
import pytest
from cloisonne.sdc import SDCSettings, Status, check_file, check_request
from cloisonne.sdc.check import file_kind

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32
JPG = b"\xff\xd8\xff\xe0" + b"\x00" * 32
GOOD_CSV = b"sexe,age,n\nF,<50,120\nF,50+,45\nH,<50,98\nH,50+,33\n"
SMALL_CSV = b"sexe,age,n\nF,<50,120\nF,50+,10\nH,<50,11\nH,50+,0\n"


def rules(report) -> list[tuple[str, str]]:
    return [(f.rule, f.status.value) for f in report.findings]


def parquet_bytes(table: pd.DataFrame) -> bytes:
    buffer = io.BytesIO()
    table.to_parquet(buffer)
    return buffer.getvalue()


def xlsx_bytes(sheets: dict[str, pd.DataFrame]) -> bytes:
    buffer = io.BytesIO()
    with pd.ExcelWriter(buffer, engine="openpyxl") as writer:
        for name, table in sheets.items():
            table.to_excel(writer, sheet_name=name, index=False)
    return buffer.getvalue()


# -- type and size ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "kind"),
    [("a.CSV", "csv"), ("fig.jpeg", "jpg"), ("dir/x.tar.gz", "gz"), ("README", ""),
     ("notes.markdown", "md")],
)  # fmt: skip
def test_file_kind(name: str, kind: str) -> None:
    assert file_kind(name) == kind


def test_good_csv_passes() -> None:
    report = check_file("table1.csv", GOOD_CSV)
    assert report.status is Status.PASS and report.findings == () and report.kind == "csv"


@pytest.mark.parametrize("name", ["model.pkl", "data.zip", "script.py", "README"])
def test_types_outside_the_allowlist_are_flagged(name: str) -> None:
    report = check_file(name, b"whatever")
    assert rules(report) == [("file-type", "review")]


def test_allowlist_is_a_setting() -> None:
    settings = SDCSettings(allowed_types=frozenset({"csv"}))
    assert rules(check_file("a.png", PNG, settings))[0] == ("file-type", "review")


def test_size_cap_edges() -> None:
    settings = SDCSettings(max_file_bytes=len(GOOD_CSV))
    assert check_file("a.csv", GOOD_CSV, settings).status is Status.PASS
    report = check_file("a.csv", GOOD_CSV + b"\n", settings)
    assert rules(report) == [("file-size", "fail")]  # contents not parsed when over the cap


def test_default_size_cap_is_16_mib() -> None:
    big = b"x" * (16 * 1024 * 1024 + 1)
    assert rules(check_file("big.txt", big)) == [("file-size", "fail")]


# -- tables -----------------------------------------------------------------------------------


def test_csv_small_cells_and_zeros() -> None:
    report = check_file("t.csv", SMALL_CSV)
    assert rules(report) == [("threshold", "fail"), ("zeros", "review")]
    assert report.findings[0].locations == ("row 2 (sexe=F, age=50+), column 'n'",)
    assert report.status is Status.FAIL


def test_french_excel_csv_semicolon_cp1252() -> None:
    data = "région;effectif\nÎle-de-France;250\nCôte-d'Or;7\n".encode("cp1252")
    report = check_file("t.csv", data)
    assert rules(report) == [("threshold", "fail")]
    assert "Côte-d'Or" in report.findings[0].locations[0]


def test_tsv() -> None:
    assert rules(check_file("t.tsv", b"g\tn\na\t3\nb\t40\n")) == [("threshold", "fail")]


@pytest.mark.parametrize(
    "data",
    [
        b'a,b\n1,2\n"unclosed,3\n',  # quote never closed
        b"a,b\n1,2\n3,4,5,6\n",  # too many fields
        b"",  # empty
        b"\x00\x01\x02\x03binary",  # not text
        bytes(range(256)) * 4,
    ],
    ids=["quote", "fields", "empty", "nul", "binary"],
)
def test_malformed_csv_is_reported_not_raised(data: bytes) -> None:
    report = check_file("broken.csv", data)
    assert report.status is Status.FAIL
    assert report.findings[-1].rule == "readable"
    assert report.findings[-1].message.startswith("could not be read")


def test_parquet() -> None:
    table = pd.DataFrame({"sexe": ["F", "H"], "n": [5, 200]})
    assert rules(check_file("t.parquet", parquet_bytes(table))) == [("threshold", "fail")]


@pytest.mark.parametrize("data", [b"PAR1garbagePAR1", b"", b"not parquet at all"])
def test_malformed_parquet(data: bytes) -> None:
    report = check_file("t.parquet", data)
    assert rules(report) == [("readable", "fail")]


def test_xlsx_every_sheet_is_checked() -> None:
    data = xlsx_bytes({
        "Résumé": pd.DataFrame({"g": ["a", "b"], "n": [40, 50]}),
        "Détail": pd.DataFrame({"g": ["a", "b"], "n": [40, 2]}),
    })  # fmt: skip
    report = check_file("t.xlsx", data)
    assert rules(report) == [("threshold", "fail")]
    assert report.findings[0].location == "sheet 'Détail', column 'n'"


def test_malformed_xlsx() -> None:
    assert rules(check_file("t.xlsx", b"PK\x03\x04 not a zip")) == [("readable", "fail")]


def test_json_table_records() -> None:
    data = json.dumps([{"age": "<50", "n": 4}, {"age": "50+", "n": 40}]).encode()
    assert rules(check_file("t.json", data)) == [("threshold", "fail")]


def test_json_not_a_table_is_for_review() -> None:
    data = json.dumps({"auc": 0.81, "model": "logit"}).encode()
    assert rules(check_file("metrics.json", data)) == [("structure", "review")]


def test_malformed_json() -> None:
    report = check_file("t.json", b'{"a": ')
    assert rules(report) == [("readable", "fail")] and "line 1" in report.findings[0].message


def test_row_cap_on_a_file() -> None:
    data = b"x\n" + b"".join(f"{i}.5\n".encode() for i in range(1001))
    assert ("row-cap", "fail") in rules(check_file("t.csv", data))


# -- text and images --------------------------------------------------------------------------


def test_text_with_a_nir_fails() -> None:
    first13 = "1841275123456"
    key = 97 - int(first13) % 97
    text = f"Patient {first13[0]} {first13[1:3]} {first13[3:5]} {first13[5:7]} " \
           f"{first13[7:10]} {first13[10:]} {key:02d} was seen.".encode()  # fmt: skip
    assert rules(check_file("notes.txt", text)) == [("nir", "fail")]
    assert check_file("notes.md", b"# Results\n\nOdds ratio 1.8 (1.2-2.4)\n").findings == ()


def test_printed_big_table_in_text() -> None:
    assert rules(check_file("log.txt", b"...\n[5000 rows x 3 columns]\n")) == [("row-cap", "fail")]


def test_images_are_for_manual_review() -> None:
    assert rules(check_file("fig.png", PNG)) == [("image", "review")]
    assert rules(check_file("fig.jpg", JPG)) == [("image", "review")]
    assert rules(check_file("fig.jpeg", JPG)) == [("image", "review")]


def test_image_with_other_content_fails() -> None:
    report = check_file("fig.png", GOOD_CSV)
    assert rules(report) == [("readable", "fail")] and "not a PNG" in report.findings[0].message


# -- notebooks --------------------------------------------------------------------------------


def notebook(*outputs: dict) -> bytes:
    cell = {"cell_type": "code", "source": "df", "outputs": list(outputs), "metadata": {}}
    return json.dumps({"cells": [{"cell_type": "markdown", "source": "x"}, cell],
                       "nbformat": 4, "nbformat_minor": 5, "metadata": {}}).encode()  # fmt: skip


def html_table(rows: int, truncated_to: int | None = None) -> str:
    shown = truncated_to or rows
    body = "".join(f"<tr><th>{i}</th><td>{i}</td></tr>" for i in range(shown))
    note = f"<p>{rows} rows × 2 columns</p>" if truncated_to else ""
    return f"<div><table><thead><tr><th></th><th>x</th></tr></thead><tbody>{body}</tbody>" \
           f"</table>{note}</div>"  # fmt: skip


def display(html: str, text: str = "") -> dict:
    return {"output_type": "execute_result", "data": {"text/html": html, "text/plain": text}}


def test_notebook_type_is_flagged_and_small_outputs_pass() -> None:
    report = check_file("analysis.ipynb", notebook(display(html_table(5))))
    assert rules(report) == [("file-type", "review")]


def test_notebook_table_over_the_cap() -> None:
    settings = SDCSettings(max_rows=10)
    assert ("notebook-table", "fail") not in rules(
        check_file("a.ipynb", notebook(display(html_table(10))), settings)
    )
    report = check_file("a.ipynb", notebook(display(html_table(11))), settings)
    assert ("notebook-table", "fail") in rules(report)
    assert report.findings[-1].locations == ("cell 2, output 1 (11 rows)",)


def test_notebook_truncated_display_still_counts_all_rows() -> None:
    out = display(html_table(5000, truncated_to=10), "...\n[5000 rows x 2 columns]")
    report = check_file("a.ipynb", notebook(out))
    assert ("notebook-table", "fail") in rules(report)
    stream = {"output_type": "stream", "name": "stdout", "text": ["[2000 rows x 5 columns]\n"]}
    assert ("notebook-table", "fail") in rules(check_file("b.ipynb", notebook(stream)))


def test_notebook_images_and_nirs() -> None:
    image = {"output_type": "display_data", "data": {"image/png": "iVBORw0KGgo="}}
    first13 = "2690599123456"
    nir = first13 + f"{97 - int(first13) % 97:02d}"
    printed = {"output_type": "stream", "name": "stdout", "text": f"id {nir}\n"}
    found = rules(check_file("a.ipynb", notebook(image, printed)))
    assert ("image", "review") in found and ("nir", "fail") in found


@pytest.mark.parametrize("data", [b"{not json", b"[1, 2]", b'{"cells": "nope"}'])
def test_malformed_notebook(data: bytes) -> None:
    assert ("readable", "fail") in rules(check_file("a.ipynb", data))


# -- request and ACRO -------------------------------------------------------------------------


ACRO_RESULTS = {
    "version": "0.4.8",
    "results": {
        "output_0": {
            "uid": "output_0", "status": "fail", "type": "table",
            "summary": "fail; threshold: 2 cells suppressed; ",
            "files": [{"name": "output_0_0.csv", "sdc": {}}], "exception": "",
        },
        "output_1": {
            "uid": "output_1", "status": "pass", "type": "regression",
            "summary": "pass; dof=120 >= 10", "output": ["output_1_0.csv"],
        },
    },
}  # fmt: skip


def test_request_report_with_acro_beside_ours() -> None:
    report = check_request({
        "outputs/output_0_0.csv": SMALL_CSV,
        "outputs/output_1_0.csv": b"term,coef\nage,0.12\n",
        "outputs/results.json": json.dumps(ACRO_RESULTS).encode(),
        "figure.png": PNG,
    })  # fmt: skip
    by_name = {f.name: f for f in report.files}
    assert report.status is Status.FAIL
    assert by_name["outputs/output_0_0.csv"].acro == (
        {"uid": "output_0", "status": "fail", "summary": "fail; threshold: 2 cells suppressed; "},
    )
    assert by_name["outputs/output_1_0.csv"].acro[0]["status"] == "pass"
    assert by_name["outputs/results.json"].findings == ()
    assert by_name["figure.png"].acro == ()
    assert [o["uid"] for o in report.acro_outputs] == ["output_0", "output_1"]
    assert report.file_statuses() == {
        "outputs/output_0_0.csv": "fail",
        "outputs/output_1_0.csv": "pass",
        "outputs/results.json": "pass",
        "figure.png": "review",
    }
    data = report.to_dict()
    assert json.loads(json.dumps(data)) == data


def test_request_report_without_acro() -> None:
    report = check_request([("a.csv", GOOD_CSV), ("b.csv", b"x,y\n")])
    assert report.acro_outputs == () and report.status is Status.PASS


def test_request_survives_a_broken_acro_file() -> None:
    report = check_request({"results.json": b"{broken", "a.csv": GOOD_CSV})
    assert report.acro_outputs == ()
    assert report.file_statuses() == {"results.json": "fail", "a.csv": "pass"}


def test_nested_json_records_and_parquet_lists() -> None:
    records = [{"g": "a", "n": 4, "meta": {"k": [1, 2]}}, {"g": "b", "n": 40, "meta": {"k": []}}]
    report = check_file("t.json", json.dumps(records).encode())
    assert rules(report) == [("threshold", "fail")]
    table = pd.DataFrame({"g": ["a", "b"], "tags": [[1, 2], [3]], "n": [12, 13]})
    assert check_file("t.parquet", parquet_bytes(table)).findings == ()

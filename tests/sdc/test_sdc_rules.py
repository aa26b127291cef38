"""Each table rule on hand-made tables whose correct answer is known, edge values included."""

from __future__ import annotations

import pandas as pd
import pytest
from cloisonne.sdc.columns import classify, normalise
from cloisonne.sdc.dominance import nk_dominated, p_ratio_violated
from cloisonne.sdc.findings import Status
from cloisonne.sdc.rules import (
    check_table,
    dominance,
    identifiers,
    row_cap,
    threshold,
    unclear_structure,
    zeros,
)
from cloisonne.sdc.settings import SDCSettings

S = SDCSettings()


def run(rule, table: pd.DataFrame, settings: SDCSettings = S):
    return rule(table, classify(table, settings), settings)


def rules_of(findings) -> list[tuple[str, str]]:
    return [(f.rule, f.status.value) for f in findings]


# -- contributions: ACRO's definitions and their edges ----------------------------------------


@pytest.mark.parametrize(
    ("contributions", "expected"),
    [
        ([45, 45, 10], False),  # the two largest are exactly 90%: passes (strictly more fails)
        ([46, 45, 9], True),  # 91%
        ([90, 5, 5], True),
        ([30, 30, 20, 20], False),
        ([100], True),  # one contributor is the whole cell
        ([0, 0, 0], False),  # nothing to dominate
        ([], False),
    ],
)
def test_nk_dominance(contributions: list[float], expected: bool) -> None:
    assert nk_dominated(contributions, n=2, k=0.9) is expected


def test_nk_parameters() -> None:
    assert nk_dominated([60, 20, 20], n=1, k=0.5) is True
    assert nk_dominated([50, 25, 25], n=1, k=0.5) is False  # exactly k


@pytest.mark.parametrize(
    ("contributions", "expected"),
    [
        ([100, 50, 10], False),  # rest is exactly 10% of the largest: passes
        ([100, 50, 9], True),  # 9%
        ([100, 50, 40, 30], False),
        ([100, 5], True),  # nothing left after the two largest
        ([100], True),  # a single contributor
        ([0, 0], True),  # zeros are disclosive (ACRO)
    ],
)
def test_p_ratio(contributions: list[float], expected: bool) -> None:
    assert p_ratio_violated(contributions, p=0.1) is expected


# -- column recognition -----------------------------------------------------------------------


def test_normalise() -> None:
    assert normalise("Effectif (2024)") == "effectif_2024"
    assert normalise("Côte-d'Or") == "cote_d_or"


def test_classify_recognises_counts_labels_and_statistics() -> None:
    table = pd.DataFrame({
        "région": ["IDF", "ARA"], "annee": [2023, 2024], "Effectif": [120, 45],
        "nb_patients": [30, 12], "N": [12, 13], "count_2024": [11, 11],
        "taux": [0.12, 0.5], "18-39": [50, 60],
    })  # fmt: skip
    s = classify(table, S)
    assert s.labels == ("région", "annee")
    assert s.counts == ("Effectif", "nb_patients", "N", "count_2024")
    assert s.statistics == ("taux",)
    assert s.unclear == ("18-39",)


def test_count_name_with_fractional_values_is_not_a_count() -> None:
    s = classify(pd.DataFrame({"n": [1.5, 2.25]}), S)
    assert s.counts == () and s.statistics == ("n",)


def test_suppressed_marks_are_allowed_in_a_count_column() -> None:
    table = pd.DataFrame({"sexe": ["F", "H", "F"], "n": ["<11", "25", "*"]})
    assert classify(table, S).counts == ("n",)
    assert run(threshold, table) == []


# -- threshold --------------------------------------------------------------------------------


def test_threshold_edges_10_fails_11_passes() -> None:
    table = pd.DataFrame({"age": ["0-17", "18-39", "40-59", "60+"], "n": [10, 11, 500, 1]})
    (finding,) = run(threshold, table)
    assert finding.status is Status.FAIL and finding.cells == 2
    assert finding.locations == (
        "row 1 (age=0-17), column 'n'",
        "row 4 (age=60+), column 'n'",
    )


def test_threshold_follows_the_setting() -> None:
    table = pd.DataFrame({"n": [10, 11]})
    assert run(threshold, table, SDCSettings(min_count=10)) == []  # ACRO's default
    assert run(threshold, table, SDCSettings(min_count=12))[0].cells == 2


def test_threshold_ignores_zeros_and_missing() -> None:
    assert run(threshold, pd.DataFrame({"n": [0, None, 20]})) == []


def test_listed_count_column() -> None:
    table = pd.DataFrame({"sexe": ["F", "H"], "18-39": [5, 40]})
    settings = SDCSettings(count_columns=frozenset({"18-39"}))
    (finding,) = run(threshold, table, settings)
    assert finding.cells == 1 and finding.locations == ("row 1 (sexe=F), column '18-39'",)


def test_locations_are_capped_but_counted() -> None:
    table = pd.DataFrame({"n": [1] * 50})
    (finding,) = run(threshold, table)
    assert finding.cells == 50 and len(finding.locations) == S.max_locations


# -- zeros ------------------------------------------------------------------------------------


def test_zeros_are_for_review() -> None:
    table = pd.DataFrame({"n": [0, 12, 0]})
    (finding,) = run(zeros, table)
    assert finding.status is Status.REVIEW and finding.cells == 2
    assert run(zeros, table, SDCSettings(zeros_are_disclosive=False)) == []


# -- row cap ----------------------------------------------------------------------------------


def test_row_cap_edges() -> None:
    assert run(row_cap, pd.DataFrame({"x": range(1000)})) == []
    (finding,) = run(row_cap, pd.DataFrame({"x": range(1001)}))
    assert finding.status is Status.FAIL and "1001 rows" in finding.message


# -- unclear structure ------------------------------------------------------------------------


def test_unnamed_whole_numbers_are_for_review_with_a_hint() -> None:
    table = pd.DataFrame({"sexe": ["F", "H"], "18-39": [120, 8], "40+": [55, 60]})
    findings = run(unclear_structure, table)
    assert rules_of(findings) == [("structure", "review"), ("structure", "review")]
    assert "1 cell(s) are below 11" in findings[0].message
    assert "below" not in findings[1].message


def test_labels_only_table_is_for_review() -> None:
    findings = run(unclear_structure, pd.DataFrame({"code": ["A", "B"]}))
    assert rules_of(findings) == [("structure", "review")]


def test_clear_table_has_no_structure_finding() -> None:
    assert run(unclear_structure, pd.DataFrame({"sexe": ["F"], "n": [20], "taux": [0.2]})) == []


# -- dominance --------------------------------------------------------------------------------


def test_aggregated_magnitude_cannot_be_checked_here() -> None:
    table = pd.DataFrame({"region": ["A", "B"], "montant": [1000.0, 2000.0], "n": [20, 30]})
    (finding,) = run(dominance, table)
    assert finding.rule == "dominance" and finding.status is Status.REVIEW


def test_dominance_from_top_columns_edges() -> None:
    table = pd.DataFrame({
        "region": ["A", "B", "C", "D"],
        "montant": [100.0, 100.0, 160.0, 159.0],
        "top1": [45.0, 46.0, 100.0, 100.0],
        "top2": [45.0, 45.0, 50.0, 50.0],
    })  # fmt: skip
    findings = {f.rule: f for f in run(dominance, table)}
    # nk: A (45+45)/100 = 0.9 exactly: passes; B 0.91 fails; C 150/160 and D 150/159 fail.
    assert findings["nk-dominance"].locations == tuple(
        f"row {i} (region={r}), column 'montant'" for i, r in ((2, "B"), (3, "C"), (4, "D"))
    )
    # p-ratio: C (160-150)/100 = 0.10 exactly: passes; D 0.09 fails; A 10/45 and B 9/46 pass.
    # (At these defaults a p-ratio failure always implies an nk one: the rest is under 10% of
    # the largest part, so under 10% of the total too.)
    assert findings["p-ratio"].locations == ("row 4 (region=D), column 'montant'",)
    assert classify(table, S).labels == ("region",)


def test_dominance_from_contributor_level_rows() -> None:
    big = [1000.0] + [1.0] * 11  # 12 contributions, one dominates
    even = [10.0] * 12
    few = [5.0, 5.0, 5.0]
    table = pd.DataFrame({
        "etablissement": ["A"] * 12 + ["B"] * 12 + ["C"] * 3,
        "montant": big + even + few,
    })  # fmt: skip
    findings = {(f.rule, f.locations) for f in run(dominance, table)}
    a = ("row 1 (etablissement=A), column 'montant'",)
    c = ("row 25 (etablissement=C), column 'montant'",)
    assert ("nk-dominance", a) in findings
    assert ("p-ratio", a) in findings
    assert ("threshold", c) in findings
    assert not any("etablissement=B" in loc for _, locs in findings for loc in locs)


def test_listed_magnitude_column() -> None:
    table = pd.DataFrame({"g": ["A"], "valeur": [5.0]})
    settings = SDCSettings(magnitude_columns=frozenset({"valeur"}))
    assert rules_of(run(dominance, table, settings)) == [("dominance", "review")]


# -- identifiers ------------------------------------------------------------------------------


def nir(first13: str) -> str:
    digits = first13.replace("2A", "19").replace("2B", "18")
    return f"{first13}{97 - int(digits) % 97:02d}"


def test_nir_with_valid_key_fails() -> None:
    table = pd.DataFrame({"x": [nir("1841275123456"), "abc"], "n": [20, 30]})
    (finding,) = run(identifiers, table)
    assert (finding.rule, finding.status, finding.cells) == ("nir", Status.FAIL, 1)


def test_nir_corsica_and_as_integers() -> None:
    assert run(identifiers, pd.DataFrame({"x": [nir("269052A123456")]}))[0].rule == "nir"
    assert run(identifiers, pd.DataFrame({"x": [int(nir("1841275123456"))]}))[0].rule == "nir"


def test_nir_with_wrong_key_or_shape_passes() -> None:
    good = nir("1841275123456")
    wrong = good[:-2] + f"{(int(good[-2:]) + 1) % 100:02d}"
    table = pd.DataFrame({"x": [wrong, "1841375123456", "5841275123456"]})
    assert run(identifiers, table) == []


def test_pseudonym_tokens_fail() -> None:
    ids = ["a8Fz02kLm9QwErT1", "b7Gy13jKn8PvDsU2", "c6Hx24iJo7OuCtV3"]
    (finding,) = run(identifiers, pd.DataFrame({"ref": ids}))
    assert finding.rule == "identifier" and finding.status is Status.FAIL


def test_sha256_pseudonyms_fail() -> None:
    import hashlib

    ids = [hashlib.sha256(str(i).encode()).hexdigest() for i in range(3)]
    assert run(identifiers, pd.DataFrame({"h": ids}))[0].status is Status.FAIL


def test_identifier_names() -> None:
    distinct = run(identifiers, pd.DataFrame({"patient_id": [101, 102, 103]}))
    repeated = run(identifiers, pd.DataFrame({"region_id": [1, 1, 2, 2]}))
    assert rules_of(distinct) == [("identifier", "fail")]
    assert rules_of(repeated) == [("identifier", "review")]
    assert run(identifiers, pd.DataFrame({"idea": ["a", "b"], "valid": [1, 2]})) == []


def test_exact_birth_dates_fail_years_pass() -> None:
    exact = pd.DataFrame({"date_naissance": ["1984-12-03", "1990-01-31"]})
    french = pd.DataFrame({"DDN": ["03/12/1984", "31/01/1990"]})
    years = pd.DataFrame({"annee_naissance": ["1984", "1990"]})
    assert rules_of(run(identifiers, exact)) == [("birth-date", "fail")]
    assert rules_of(run(identifiers, french)) == [("birth-date", "fail")]
    assert run(identifiers, years) == []
    dates = pd.DataFrame({"birth": pd.to_datetime(["1984-12-03", "1990-01-31"])})
    assert rules_of(run(identifiers, dates)) == [("birth-date", "fail")]


# -- all together -----------------------------------------------------------------------------


def test_check_table_clean_table_passes() -> None:
    table = pd.DataFrame({
        "sexe": ["F", "F", "H", "H"], "age": ["<50", "50+", "<50", "50+"],
        "n": [120, 45, 98, 33], "pct": [0.31, 0.12, 0.26, 0.09],
    })  # fmt: skip
    assert check_table(table, S) == []


def test_check_table_prefixes_locations() -> None:
    (finding,) = check_table(pd.DataFrame({"n": [3]}), S, where="sheet 'S1'")
    assert finding.location == "sheet 'S1', column 'n'"
    assert finding.locations == ("sheet 'S1', row 1, column 'n'",)


def test_settings_are_validated() -> None:
    with pytest.raises(ValueError):
        SDCSettings(min_count=0)
    with pytest.raises(ValueError):
        SDCSettings(nk_k=1.5)
    with pytest.raises(ValueError):
        SDCSettings(p_ratio=-0.1)
    assert SDCSettings().min_count == 11 and SDCSettings().max_file_bytes == 16 * 1024 * 1024


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a8Fz02kLm9QwErT1", True),
        ("0123456789abcdef0123456789abcdef", True),
        ("AB12CD34EF56GH78", True),
        ("diabetes2024type", False),
        ("E11_type2_diabete", True),  # alone it looks random: columns also need one length
        ("hospitalisation", False),
        ("2024-01-15", False),
    ],
)
def test_opaque_tokens(text: str, expected: bool) -> None:
    from cloisonne.sdc.identifiers import is_opaque_token

    assert is_opaque_token(text) is expected


def test_distinct_labels_are_not_identifiers() -> None:
    table = pd.DataFrame({
        "diagnostic": ["E11_type2_diabete", "I10_hypertension", "J45_asthme"], "n": [40, 50, 60],
    })  # fmt: skip
    assert run(identifiers, table) == []
    assert run(identifiers, pd.DataFrame({"code": ["diabetes2024type"]})) == []


def test_decimals_are_never_nirs() -> None:
    from cloisonne.sdc.identifiers import find_nirs, looks_like_nir

    table = pd.DataFrame({"montant": [12.345678901234, 1841275123456.5, 0.1841275123456]})
    assert run(identifiers, table) == []
    assert not looks_like_nir(12.345678901234)
    assert find_nirs("3.1841275123456") == [] and find_nirs("1841275123456.5") == []
    assert find_nirs("NIR 1.84.12.75.123.456") == ["1.84.12.75.123.456"]


def test_saved_row_index_is_a_label() -> None:
    table = pd.DataFrame({"Unnamed: 0": [0, 1, 2], "sexe": ["F", "H", "F"], "n": [20, 30, 40]})
    s = classify(table, S)
    assert s.labels == ("Unnamed: 0", "sexe") and s.unclear == ()
    assert classify(pd.DataFrame({"Unnamed: 0": [3, 1, 2]}), S).unclear == ("Unnamed: 0",)


def test_top1_only_checks_nk_not_p() -> None:
    from cloisonne.sdc.dominance import cells_from_top

    totals = pd.Series([100.0, 100.0])
    top1 = pd.Series([91.0, 90.0])
    cells = cells_from_top(totals, top1, None, SDCSettings(nk_n=1))
    assert cells.nk == [0] and cells.p == []  # 91% > 90%; exactly 90% passes

"""Keyed pseudonyms: equal to the HMAC definition, per key and domain, cached correctly."""

import hashlib
import hmac
import os

import pyarrow as pa
import pyarrow.compute as pc
import pytest
from cloisonne.data.pseudonymise import (
    PSEUDONYM_HEX,
    Keyed,
    Pseudonymiser,
    keyed_permutation,
    reference_pseudonym,
)


def test_keyed_equals_stdlib_hmac(key):
    for message in (b"", b"x", b"A" * 200):
        assert Keyed(key).digest(message) == hmac.new(key, message, hashlib.sha256).digest()
    long_key = os.urandom(100)  # longer than a block: hashed first, as HMAC says
    assert Keyed(long_key).digest(b"m") == hmac.new(long_key, b"m", hashlib.sha256).digest()


def test_short_key_refused():
    with pytest.raises(ValueError):
        Keyed(b"short")


def test_column_equals_reference_and_keeps_rows(key):
    values = ["AAA", "BBB", "AAA", "CCC", "BBB"]
    out = Pseudonymiser(Keyed(key)).column(pa.array(values), "patient")
    assert out.to_pylist() == [reference_pseudonym(key, v, "patient") for v in values]
    assert all(len(p) == PSEUDONYM_HEX for p in out.to_pylist())


def test_domains_and_keys_separate(key):
    p = Pseudonymiser(Keyed(key))
    patient = p.column(pa.array(["X1"]), "patient").to_pylist()
    stay = p.column(pa.array(["X1"]), "stay").to_pylist()
    other = Pseudonymiser(Keyed(os.urandom(32))).column(pa.array(["X1"]), "patient").to_pylist()
    assert len({patient[0], stay[0], other[0]}) == 3


def test_each_distinct_value_hashed_once_across_batches(key):
    p = Pseudonymiser(Keyed(key))
    first = p.column(pa.array(["a", "b", "a"]), "patient")
    second = p.column(pc.dictionary_encode(pa.array(["b", "c", "b", "a"])), "patient")
    assert p.hashed == 3
    assert first.to_pylist()[1] == second.to_pylist()[0]
    assert second.to_pylist() == [reference_pseudonym(key, v, "patient") for v in "bcba"]


def test_dictionary_only_holds_pseudonyms_in_use(key):
    encoded = pc.dictionary_encode(pa.array(["keep", "drop", "keep"]))
    kept = encoded.filter(pa.array([True, False, True]))
    assert len(kept.dictionary) == 2  # Arrow keeps unused dictionary values...
    out = Pseudonymiser(Keyed(key)).column(kept, "patient")
    assert out.dictionary.to_pylist() == [reference_pseudonym(key, "keep", "patient")]


def test_shared_row_group_dictionary_reused_correctly(key):
    """Batches cut from one row group share a dictionary; the cache must map each correctly."""
    encoded = pc.dictionary_encode(pa.array(["a", "b", "c", "d"]))
    p = Pseudonymiser(Keyed(key))
    first = p.column(encoded.slice(0, 2), "patient")
    second = p.column(encoded.slice(2, 2), "patient")
    assert first.to_pylist() == [reference_pseudonym(key, v, "patient") for v in "ab"]
    assert second.to_pylist() == [reference_pseudonym(key, v, "patient") for v in "cd"]
    stay = p.column(encoded.slice(2, 2), "stay")  # same dictionary, other domain
    assert stay.to_pylist() == [reference_pseudonym(key, v, "stay") for v in "cd"]


def test_missing_identifier_refused(key):
    with pytest.raises(ValueError, match="missing"):
        Pseudonymiser(Keyed(key)).column(pa.array(["a", None]), "patient")


def test_permutation_depends_on_key_and_label_and_is_stable(key):
    keyed = Keyed(key)
    a = keyed_permutation(keyed, "t:0", 1000)
    assert sorted(a) == list(range(1000))
    assert (a == keyed_permutation(keyed, "t:0", 1000)).all()
    assert (a != keyed_permutation(keyed, "t:1", 1000)).any()
    assert (a != keyed_permutation(Keyed(os.urandom(32)), "t:0", 1000)).any()


def test_compact_dictionary_drops_values_of_filtered_rows():
    from cloisonne.data.pseudonymise import compact_dictionary

    codes = pc.dictionary_encode(pa.array(["I50.0", "RARE", "I50.0", None]))
    kept = codes.filter(pa.array([True, False, True, True]))
    out = compact_dictionary(kept)
    assert out.dictionary.to_pylist() == ["I50.0"]
    assert out.to_pylist() == ["I50.0", "I50.0", None]


def test_dictionaries_sharing_a_data_buffer_are_not_confused(key):
    """Same character buffer and length, other offsets: another dictionary, other pseudonyms."""
    data = pa.py_buffer(b"aabb")
    short = pa.StringArray.from_buffers(1, pa.py_buffer(b"\x00\x00\x00\x00\x02\x00\x00\x00"), data)
    full = pa.StringArray.from_buffers(1, pa.py_buffer(b"\x00\x00\x00\x00\x04\x00\x00\x00"), data)
    index = pa.array([0], pa.int32())
    p = Pseudonymiser(Keyed(key))
    first = p.column(pa.DictionaryArray.from_arrays(index, short), "patient")
    second = p.column(pa.DictionaryArray.from_arrays(index, full), "patient")
    assert first.to_pylist() == [reference_pseudonym(key, "aa", "patient")]
    assert second.to_pylist() == [reference_pseudonym(key, "aabb", "patient")]

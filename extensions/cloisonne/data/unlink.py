"""Make two projects' extracts of one warehouse unjoinable on exact values.

Pseudonyms already differ between projects, but a patient's exact dates and amounts are a
fingerprint that would join two extracts (docs/data.md). Here, each patient's dates all move by
one offset, a keyed function of the project's key and the patient's pseudonym — so intervals,
orders and trajectories within a patient stay exact — and each amount is multiplied by a keyed
factor close to 1. Neither offsets nor factors can be recomputed without the project's key,
which never enters a workspace. Pure: arrays in, arrays out.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .pseudonymise import Keyed

AMOUNT_PREFIX = "amount_"


def patient_offsets(keyed: Keyed, pseudonyms: pa.Array, max_days: int) -> pa.Array:
    """Days (int32) in [-max_days, max_days] for each pseudonym (a string or dictionary
    array), the same for every row of one patient."""
    span = 2 * max_days + 1

    def offset(value: str | None) -> int:
        if value is None:
            return 0
        digest = keyed.digest(b"cloisonne date shift v1\0" + value.encode())
        return int.from_bytes(digest[:8], "big") % span - max_days

    if pa.types.is_dictionary(pseudonyms.type):
        table = pa.array([offset(v) for v in pseudonyms.dictionary.to_pylist()], pa.int32())
        return pc.fill_null(pc.take(table, pseudonyms.indices), 0)
    return pa.array([offset(v) for v in pseudonyms.to_pylist()], pa.int32())


def shift_dates(dates: pa.Array, offsets: pa.Array) -> pa.Array:
    days = pc.add(dates.cast(pa.int32()), offsets)
    return days.cast(pa.date32())


def perturb_amounts(keyed: Keyed, label: str, amounts: pa.Array, noise: float) -> pa.Array:
    """Each amount times a keyed factor in [1 - noise, 1 + noise], rounded to the cent. The
    factors are drawn per row from a generator seeded by the key and ``label`` (table and
    batch), so a rerun writes the same values."""
    seed = keyed.digest(f"cloisonne amounts v1\0{label}".encode())
    rng = np.random.default_rng(int.from_bytes(seed[:16], "big"))
    factors = 1.0 + rng.uniform(-noise, noise, len(amounts))
    values = amounts.to_numpy(zero_copy_only=False).astype(np.float64) * factors
    out = pa.array(np.round(values, 2), mask=amounts.is_null().to_numpy(zero_copy_only=False))
    return out.cast(amounts.type)

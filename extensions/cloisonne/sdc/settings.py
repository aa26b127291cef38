"""Settings of the disclosure checks, with the defaults a site starts from."""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_TYPES = frozenset({"csv", "tsv", "parquet", "xlsx", "json", "txt", "md", "png", "jpg"})


@dataclass(frozen=True)
class SDCSettings:
    """Thresholds and lists used by the rules.

    ``min_count`` is 11, French practice ("aucune case < 11": HDH, CASD); ACRO's default is 10.
    The dominance and p-ratio parameters and ``zeros_are_disclosive`` are ACRO's defaults.
    ``count_columns`` and ``magnitude_columns`` name columns the name patterns miss (see
    ``sdc.columns``); ``max_rows`` is the size above which a table looks like record-level data.
    """

    allowed_types: frozenset[str] = DEFAULT_TYPES
    max_file_bytes: int = 16 * 1024 * 1024
    min_count: int = 11
    zeros_are_disclosive: bool = True
    nk_n: int = 2
    nk_k: float = 0.9
    p_ratio: float = 0.1
    max_rows: int = 1000
    count_columns: frozenset[str] = frozenset()
    magnitude_columns: frozenset[str] = frozenset()
    max_locations: int = 10
    """How many cell locations a finding lists (the count is always complete)."""

    def __post_init__(self) -> None:
        if self.min_count < 1:
            raise ValueError("min_count must be at least 1")
        if not 0 < self.nk_k <= 1 or self.nk_n < 1:
            raise ValueError("nk-dominance needs n >= 1 and 0 < k <= 1")
        if not 0 <= self.p_ratio < 1:
            raise ValueError("p_ratio must be in [0, 1)")
        if self.max_rows < 1 or self.max_file_bytes < 1:
            raise ValueError("max_rows and max_file_bytes must be positive")

"""Product attributes that carry a household's taste across categories: brand tier and relative size.

A household that buys the store's own brand for bread probably wants it for olive oil too; one that
buys the big packs of cereal probably wants the big bottle of oil. To compare across categories, each
product gets two static attributes from the catalogue (the canonical ``brand`` and ``size`` columns):

- ``private``: 1 for a private-label (store) brand, 0 for a national one, NaN when the brand is unknown;
- ``rel_size``: the product's log amount as a z-score among its level-3 category's products of the same
  kind of amount (weight/volume in ounces, or a count), NaN when unknown or the category has no spread.

Datasets without brand or size (Ta-Feng) get NaN everywhere, and every feature built on them is 0 there.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

PRIVATE_BRANDS = frozenset({"private", "private label", "store brand", "own brand"})
"""Canonical ``brand`` values meaning the retailer's own label (Complete Journey: ``Private``)."""
NATIONAL_BRANDS = frozenset({"national"})
"""Brand *tiers* that are not a brand name; any other named brand counts as national too."""

# Ounce equivalents of the weight/volume units retail sizes use (fluid and weight ounces are mixed in
# real catalogues: "16 OZ" is either; comparing within one category keeps that harmless).
_OUNCES = {"OZ": 1.0, "FL OZ": 1.0, "Z": 1.0, "LB": 16.0, "LD": 16.0, "G": 0.035274, "GR": 0.035274,
           "KG": 35.274, "ML": 0.033814, "L": 33.814, "LT": 33.814, "LTR": 33.814, "QT": 32.0, "PT": 16.0,
           "GAL": 128.0, "GA": 128.0}
_COUNTS = {"CT": 1.0, "PK": 1.0, "PC": 1.0, "EA": 1.0, "COUNT": 1.0, "DZ": 12.0, "ROLL": 1.0, "ROLLS": 1.0}
_MIXED = re.compile(r"(\d+)\s+(\d)/(\d)\b")  # "13 1/2 OZ"
_AMOUNT = re.compile(r"(\d+(?:\.\d+)?|\.\d+)(?:\s*/\s*(\d+(?:\.\d+)?))?\s*(FL OZ|[A-Z]+)\b")


def parse_size(size: str | None) -> tuple[str, float] | None:
    """``("oz", ounces)`` or ``("count", n)`` of a package size ("16 OZ", "12 PK/12 OZ", "1/2 GAL"), or None.

    Multipacks multiply ("12 PK/12 OZ" is 144 oz); "N/M unit" reads as N packs of M (or the fraction
    1/2 for a single-digit numerator over 2-8: "1/2 GAL").
    """
    if not size:
        return None
    ounces = count = None
    text = _MIXED.sub(lambda m: f"{int(m[1]) + int(m[2]) / max(int(m[3]), 1):g}", size.upper())
    for number, over, unit in _AMOUNT.findall(text):
        value = float(number)
        if over:
            a, b = value, float(over)
            value = a / b if a < b and b <= 8 else a * b
        if unit in _OUNCES and ounces is None:
            ounces = value * _OUNCES[unit]
        elif unit in _COUNTS and count is None:
            count = value * _COUNTS[unit]
    if ounces is not None and ounces > 0:
        return "oz", ounces * (count if count and count < 100 else 1.0)
    if count is not None and 0 < count < 1000:
        return "count", count
    return None


@dataclass(frozen=True)
class ProductTaste:
    """[P] arrays aligned with the catalogue (NaN = unknown)."""

    private: np.ndarray  # float32 1 private label, 0 national
    rel_size: np.ndarray  # float32 z-score of log amount within (category, kind of amount)

    @classmethod
    def from_columns(cls, brands: list[str | None], sizes: list[str | None], cat_of: np.ndarray) -> "ProductTaste":
        n = len(cat_of)
        private = np.full(n, np.nan, dtype=np.float32)
        for i, b in enumerate(brands):
            if b:
                private[i] = 1.0 if b.strip().lower() in PRIVATE_BRANDS else 0.0
        kind = np.full(n, -1, dtype=np.int64)
        log_amount = np.zeros(n)
        for i, s in enumerate(sizes):
            parsed = parse_size(s)
            if parsed is not None:
                kind[i] = 0 if parsed[0] == "oz" else 1
                log_amount[i] = np.log(parsed[1])
        rel = np.full(n, np.nan, dtype=np.float32)
        known = np.flatnonzero(kind >= 0)
        if len(known):
            group = cat_of[known] * 2 + kind[known]
            _, inv = np.unique(group, return_inverse=True)
            m = np.bincount(inv, weights=log_amount[known]) / np.bincount(inv)
            sq = np.bincount(inv, weights=log_amount[known] ** 2) / np.bincount(inv)
            sd = np.sqrt(np.maximum(sq - m ** 2, 0.0))
            spread = sd[inv] > 1e-6
            rel[known[spread]] = ((log_amount[known] - m[inv]) / np.where(spread, sd[inv], 1.0))[spread]
        return cls(private, rel)

    @property
    def known(self) -> bool:
        """Whether the catalogue has any brand tier or size at all (False on Ta-Feng)."""
        return bool(np.isfinite(self.private).any() or np.isfinite(self.rel_size).any())

"""The few statistics the suite quotes: medians of repeated runs, ratios to
native and geometric means of ratios (the right mean for ratios: a 2x win
and a 2x loss cancel out)."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence


def median(values: Sequence[float]) -> float | None:
    """The median, or None when there is nothing to take it of."""
    return statistics.median(values) if values else None


def ratio(value: float | None, base: float | None) -> float | None:
    """value / base, or None when either is missing or base is not positive."""
    if value is None or base is None or base <= 0:
        return None
    return value / base


def geomean(values: Sequence[float]) -> float | None:
    """The geometric mean of positive values, or None when there are none."""
    if not values:
        return None
    if any(v <= 0 for v in values):
        raise ValueError(f"geometric mean of non-positive values: {list(values)}")
    return math.exp(sum(math.log(v) for v in values) / len(values))

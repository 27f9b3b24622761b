"""Latency statistics: one definition of median and p95 for every report."""

from __future__ import annotations

import statistics
from collections.abc import Sequence


def percentile(values: Sequence[float], q: float) -> float:
    """The nearest-rank ``q`` quantile (0 <= q <= 1) of ``values``, which must not be empty."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def latency_stats(values: Sequence[float], digits: int = 2) -> dict[str, float | None]:
    """Median and p95 (nearest rank) in milliseconds; None for no values."""
    if not values:
        return {"median_ms": None, "p95_ms": None}
    return {
        "median_ms": round(statistics.median(values), digits),
        "p95_ms": round(percentile(values, 0.95), digits),
    }

"""Percentiles and latency summaries, the same arithmetic for every figure of the harness."""

from __future__ import annotations

import math
import os
from collections.abc import Sequence


def percentile(values: Sequence[float], share: float) -> float:
    """The `share` (0-1) percentile by nearest rank; 0.0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, math.ceil(share * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def latency_summary(seconds: Sequence[float]) -> dict[str, float | int]:
    """Count and p50/p95/p99/max of some durations, in milliseconds."""
    return {
        "count": len(seconds),
        "p50_ms": round(percentile(seconds, 0.50) * 1000, 2),
        "p95_ms": round(percentile(seconds, 0.95) * 1000, 2),
        "p99_ms": round(percentile(seconds, 0.99) * 1000, 2),
        "max_ms": round(max(seconds, default=0.0) * 1000, 2),
    }


def load_average() -> list[float]:
    """The 1, 5 and 15 minute load averages (the machine may be shared: every figure has them)."""
    return [round(value, 2) for value in os.getloadavg()]


def ratio(numerator: float, denominator: float, digits: int = 3) -> float | None:
    """numerator / denominator, rounded; None when the denominator is zero."""
    if denominator == 0:
        return None
    return round(numerator / denominator, digits)

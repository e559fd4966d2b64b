"""Percentiles of latencies and medians over repetitions."""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

PERCENTILES = (("p50", 50), ("p95", 95), ("p99", 99))


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default)."""
    if not sorted_values:
        return math.nan
    pos = (len(sorted_values) - 1) * q / 100
    low, high = math.floor(pos), math.ceil(pos)
    return sorted_values[low] + (sorted_values[high] - sorted_values[low]) * (pos - low)


def summary_ms(seconds: Iterable[float]) -> dict[str, Any]:
    """n, p50, p95, p99 and max, in milliseconds; None when there are no values."""
    values = sorted(s * 1000 for s in seconds)
    out: dict[str, Any] = {"n": len(values)}
    for name, q in PERCENTILES:
        out[name] = round(percentile(values, q), 1) if values else None
    out["max"] = round(values[-1], 1) if values else None
    return out


def median_of(summaries: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The median of each statistic over repetitions (n is summed)."""
    out: dict[str, Any] = {"n": sum(s.get("n", 0) for s in summaries)}
    for key in ("p50", "p95", "p99", "max"):
        values = [s[key] for s in summaries if s.get(key) is not None]
        out[key] = round(statistics.median(values), 1) if values else None
    return out


def median(values: Iterable[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return round(statistics.median(present), 2) if present else None


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    if numerator is None or denominator is None or denominator <= 0:
        return None
    return round(numerator / denominator, 2)


def difference(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else round(a - b, 1)

"""Means over seeds with their 95% t-intervals: how every study reports a number that supports a conclusion."""

from __future__ import annotations

import numpy as np
from scipy import stats

SMOKE_TEST = (
    "**Smoke test (`--quick`).** One seed, a tiny MLP and a few epochs on `digits`: this checks that the study runs "
    "end to end and draws its figures. Its numbers mean nothing about the method; run the study without `--quick` "
    "for results with several seeds and intervals."
)


INTERVAL = "mean ± half-width of the 95% t-interval"
"""How a `cell` reads, said beside every number printed with one (the terminal's and the reports' alike)."""


def mean_interval(values) -> tuple[float, float]:
    """Mean and the half-width of its 95% t-interval, t(0.975, n−1)·s/√n (0 for a single value)."""
    v = np.asarray(values, float)
    if len(v) < 2:
        return float(v.mean()), 0.0
    return float(v.mean()), float(stats.t.ppf(0.975, len(v) - 1) * v.std(ddof=1) / np.sqrt(len(v)))


def cell(values, digits: int = 4) -> str:
    """ "mean ± half-width" for a report table; a single run is shown as such, with no interval."""
    m, h = mean_interval(values)
    return f"{m:.{digits}f} ± {h:.{digits}f}" if len(values) > 1 else f"{m:.{digits}f} (one run)"

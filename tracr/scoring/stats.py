"""Uncertainty for benchmark pass rates, the way olmOCR-Bench reports it, but seeded.

* ``overall`` is the mean of per-category pass rates (olmOCR: one category per JSONL
  file), so a large category does not drown the small ones.
* ``bootstrap_intervals`` resamples tests *within* each category (olmOCR's
  ``calculate_bootstrap_ci`` with splits) and takes percentile intervals.
* ``paired_test`` compares two models on the *same* tests. olmOCR's permutation test
  shuffles scores between the two candidates as if they were independent samples; with
  the pairing known a sign-flip test is the exact randomisation test and has more
  power: under the null each test's difference is equally likely to have either sign.

Everything takes a ``seed`` and uses ``numpy.random.default_rng``, so reruns agree.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

__all__ = ["Interval", "PassRates", "overall_score", "bootstrap_intervals", "PairedTest", "paired_test"]

Scores = Mapping[str, Sequence[float]]


@dataclass(frozen=True)
class Interval:
    """A point estimate with its confidence interval."""

    estimate: float
    low: float
    high: float

    @property
    def half_width(self) -> float:
        return (self.high - self.low) / 2


@dataclass(frozen=True)
class PassRates:
    """Per-category and overall (mean of categories) pass rates with bootstrap intervals."""

    categories: dict[str, Interval]
    overall: Interval
    n_tests: int


def _arrays(scores: Scores) -> dict[str, npt.NDArray[np.float64]]:
    out = {name: np.asarray(values, dtype=np.float64) for name, values in scores.items()}
    return {name: values for name, values in out.items() if values.size}


def overall_score(scores: Scores) -> float:
    """Mean of per-category means (categories without tests are left out)."""
    arrays = _arrays(scores)
    return float(np.mean([a.mean() for a in arrays.values()])) if arrays else 0.0


def bootstrap_intervals(scores: Scores, *, n_boot: int = 1000, level: float = 0.95, seed: int = 0) -> PassRates:
    """Percentile bootstrap, resampling within categories; scores are per-test 0/1 (or fractions)."""
    arrays = _arrays(scores)
    if not arrays:
        empty = Interval(0.0, 0.0, 0.0)
        return PassRates({}, empty, 0)
    rng = np.random.default_rng(seed)
    alpha = (1.0 - level) / 2
    boot_means = np.empty((n_boot, len(arrays)))
    categories: dict[str, Interval] = {}
    for k, (name, values) in enumerate(arrays.items()):
        idx = rng.integers(0, values.size, size=(n_boot, values.size))
        boot_means[:, k] = values[idx].mean(axis=1)
        lo, hi = np.quantile(boot_means[:, k], [alpha, 1 - alpha])
        categories[name] = Interval(float(values.mean()), float(lo), float(hi))
    overall_boot = boot_means.mean(axis=1)
    lo, hi = np.quantile(overall_boot, [alpha, 1 - alpha])
    return PassRates(categories, Interval(overall_score(scores), float(lo), float(hi)), sum(a.size for a in arrays.values()))


@dataclass(frozen=True)
class PairedTest:
    """``difference`` = overall(A) - overall(B); ``p_value`` two-sided."""

    difference: float
    p_value: float
    n_tests: int
    n_permutations: int


def paired_test(a: Scores, b: Scores, *, n_permutations: int = 10_000, seed: int = 0) -> PairedTest:
    """Sign-flip randomisation test on per-test differences, statistic = mean of category mean differences.

    ``a`` and ``b`` must list the same categories with the same tests in the same order.
    The p-value counts the observed assignment too, ``(hits + 1) / (n + 1)``, so it is never 0.
    """
    if set(a) != set(b):
        raise ValueError(f"categories differ: {sorted(set(a) ^ set(b))}")
    diffs: list[npt.NDArray[np.float64]] = []
    for name in a:
        x = np.asarray(a[name], dtype=np.float64)
        y = np.asarray(b[name], dtype=np.float64)
        if x.shape != y.shape:
            raise ValueError(f"category {name!r}: {x.size} tests for A but {y.size} for B")
        if x.size:
            diffs.append(x - y)
    if not diffs:
        return PairedTest(0.0, 1.0, 0, 0)
    observed = float(np.mean([d.mean() for d in diffs]))
    rng = np.random.default_rng(seed)
    stat = np.zeros(n_permutations)
    for d in diffs:
        signs = rng.choice(np.array([-1.0, 1.0]), size=(n_permutations, d.size))
        stat += (signs * d).mean(axis=1)
    stat /= len(diffs)
    hits = int(np.count_nonzero(np.abs(stat) >= abs(observed) - 1e-12))
    return PairedTest(observed, (hits + 1) / (n_permutations + 1), sum(d.size for d in diffs), n_permutations)

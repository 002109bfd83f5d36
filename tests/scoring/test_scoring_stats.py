"""Bootstrap intervals and the paired sign-flip test: values that follow from the definitions."""

from __future__ import annotations

import numpy as np
import pytest

from tracr.scoring.stats import bootstrap_intervals, overall_score, paired_test


def test_overall_is_mean_of_category_means_not_pooled() -> None:
    scores = {"a": [1, 1, 1, 1, 0], "b": [0, 1]}
    assert overall_score(scores) == pytest.approx(0.65)
    assert overall_score(scores) != pytest.approx(5 / 7)
    assert overall_score({"a": [], "b": [1, 0]}) == 0.5


def test_resampling_within_categories_keeps_fixed_categories_fixed() -> None:
    # Pooled resampling would move the overall; within-category resampling cannot.
    rates = bootstrap_intervals({"all_pass": [1.0] * 20, "all_fail": [0.0] * 5}, seed=1)
    assert (rates.overall.low, rates.overall.estimate, rates.overall.high) == (0.5, 0.5, 0.5)
    assert rates.categories["all_pass"].low == 1.0


def test_interval_width_matches_binomial_error_and_is_seeded() -> None:
    rng = np.random.default_rng(3)
    scores = {"c": rng.integers(0, 2, size=1000).astype(float).tolist()}
    rates = bootstrap_intervals(scores, n_boot=2000, seed=5)
    p = rates.overall.estimate
    expected_half = 1.96 * np.sqrt(p * (1 - p) / 1000)
    assert rates.overall.low < p < rates.overall.high
    assert rates.overall.half_width == pytest.approx(expected_half, rel=0.15)
    assert bootstrap_intervals(scores, n_boot=2000, seed=5) == rates
    assert bootstrap_intervals(scores, n_boot=2000, seed=6) != rates
    assert rates.n_tests == 1000


def test_overall_interval_is_narrower_than_each_category() -> None:
    rng = np.random.default_rng(0)
    scores = {name: rng.integers(0, 2, size=200).tolist() for name in "abcd"}
    rates = bootstrap_intervals(scores, seed=0)
    assert all(rates.overall.half_width < c.half_width for c in rates.categories.values())


def test_paired_test_identical_and_clear_difference() -> None:
    same = paired_test({"a": [1, 0, 1]}, {"a": [1, 0, 1]}, seed=0)
    assert same.difference == 0 and same.p_value == 1.0
    clear = paired_test({"a": [1] * 30}, {"a": [0] * 30}, n_permutations=5000, seed=0)
    assert clear.difference == 1.0 and clear.p_value == pytest.approx(1 / 5001)


def test_paired_test_exact_distribution_on_a_small_case() -> None:
    # d = (1, 1, 0): sign flips give means 2/3, 0, 0, -2/3 equally often, so P(|T| >= 2/3) = 1/2.
    result = paired_test({"a": [1, 1, 0]}, {"a": [0, 0, 0]}, n_permutations=20_000, seed=2)
    assert result.p_value == pytest.approx(0.5, abs=0.02)


def test_pairing_detects_a_small_consistent_gain() -> None:
    rng = np.random.default_rng(1)
    base = rng.integers(0, 2, size=300)
    better = base.copy()
    better[np.flatnonzero(base == 0)[:15]] = 1  # A fixes 15 of B's failures, breaks none
    result = paired_test({"c": better.tolist()}, {"c": base.tolist()}, seed=0)
    assert result.difference == pytest.approx(15 / 300)
    assert result.p_value < 0.001


def test_paired_test_rejects_mismatched_inputs() -> None:
    with pytest.raises(ValueError, match="categories differ"):
        paired_test({"a": [1]}, {"b": [1]})
    with pytest.raises(ValueError, match="2 tests for A but 1 for B"):
        paired_test({"a": [1, 0]}, {"a": [1]})

import numpy as np
import pytest

from radfair.fairness._coverage import SETTINGS, simulate_coverage
from radfair.fairness._intervals import bias_corrected, max_t_band, ratio_interval, spread_interval


def test_spread_interval_is_range_over_the_box():
    low, high = np.array([0.1, 0.5, np.nan]), np.array([0.3, 0.6, np.nan])
    lo, hi = spread_interval(low, high, axis=0)
    assert lo == pytest.approx(0.2) and hi == pytest.approx(0.5)
    lo, hi = spread_interval(np.array([0.1, 0.2]), np.array([0.3, 0.4]), axis=0)  # overlapping: can be 0
    assert lo == 0 and hi == pytest.approx(0.3)
    assert np.isnan(spread_interval(np.array([0.1, np.nan]), np.array([0.2, np.nan]), axis=0)[0])
    # brute force: max - min of random vectors inside the box stays inside the projected interval
    rng = np.random.default_rng(0)
    low = rng.random((5, 1))
    high = low + rng.random((5, 1)) * 0.3
    lo, hi = spread_interval(low, high, axis=0)
    draws = low + rng.random((5, 20000)) * (high - low)
    spreads = np.ptp(draws, axis=0)
    assert spreads.min() >= lo[0] - 1e-12 and spreads.max() <= hi[0] + 1e-12
    assert spreads.min() - lo[0] < 0.05 and hi[0] - spreads.max() < 0.05


def test_ratio_interval_brackets_ratios():
    lo, hi = ratio_interval(np.array([0.1, 0.2]), np.array([0.15, 0.3]), axis=0)
    assert lo == pytest.approx(max(0.2 / 0.15, 1)) and hi == pytest.approx(3.0)


def test_max_t_band_is_simultaneous_and_contains_point():
    rng = np.random.default_rng(1)
    point = np.array([[0.5, 0.2], [0.6, np.nan], [0.7, 0.3]])
    reps = point + rng.normal(0, [[0.01], [0.05], [0.02]], size=(2000, 3, 2))
    lo, hi = max_t_band(point, reps, level=0.95, family_axes=(0,))
    assert np.all((lo <= point) | np.isnan(point)) and np.all((hi >= point) | np.isnan(point))
    assert np.isnan(lo[1, 1]) and np.isnan(hi[1, 1])
    inside = np.all((reps >= lo) & (reps <= hi) | np.isnan(point), axis=1)  # whole column at once
    assert np.all(inside.mean(axis=0) >= 0.945)
    # wider than the marginal 95% interval (1.96 se) for a family of three
    assert np.all((hi[:, 0] - point[:, 0]) > 1.96 * np.std(reps[:, :, 0], axis=0))


def test_max_t_band_binomial_floor_for_constant_replicates():
    point = np.array([1.0, 0.5])
    reps = np.tile(point, (200, 1))  # a group of 20 positives all detected: replicates never vary
    lo, hi = max_t_band(point, reps, n=np.array([20, 20]), level=0.95)
    assert lo[0] < 0.95 and hi[1] - lo[1] > 0.2


def test_bias_corrected_is_clipped_into_interval():
    reps = np.array([[0.3], [0.5], [0.4]])
    assert bias_corrected(np.array([0.2]), reps, np.array([0.15]), np.array([0.5]))[0] == pytest.approx(0.15)
    assert bias_corrected(np.array([0.45]), reps, np.array([0.0]), np.array([1.0]))[0] == pytest.approx(0.5)


@pytest.mark.slow
def test_max_minus_min_intervals_cover_planted_truth():
    """Smaller version of the docs/intervals.md simulation: >= 0.90 coverage at the 95% level everywhere."""
    table = simulate_coverage(SETTINGS, n_sims=40, bootstrap=200, seed=7)
    assert (table["coverage"] >= 0.90).all(), table.to_string()
    assert (table["plug_in_outside"] == 0).all() and (table["bc_outside"] == 0).all()
    # the bias correction removes most of the upward bias of the plug-in where groups are small
    race = table[(table["setting"].str.startswith("race")) & (table["statistic"] == "eop")].iloc[0]
    assert abs(race["bc_bias"]) < race["plug_in_bias"]


def test_segmentation_estimates_inside_their_intervals():
    from radfair.fairness import segmentation_audit

    rng = np.random.default_rng(3)
    group = np.repeat([0, 1, 2], [200, 30, 8])
    dice_values = np.clip(rng.normal(np.array([0.85, 0.8, 0.75])[group], 0.1), 0, 1)
    out = segmentation_audit(dice_values, group, ["a", "b", "c"], bootstrap=300, seed=1)
    for name in ("delta_dice", "ser"):
        r = out[name]
        assert r["ci_low"] <= r["value"] <= r["ci_high"] and r["ci_low"] <= r["value_bc"] <= r["ci_high"]

import numpy as np
import pytest
from scipy import stats

from radfair.fairness import benjamini_hochberg, bootstrap_p_value, holm, mean_ci_over_seeds, percentile_ci


def test_holm_hand_computed():
    p = np.array([0.01, 0.04, 0.03, np.nan, 0.005])
    # sorted: 0.005*4=0.02, 0.01*3=0.03, 0.03*2=0.06, 0.04*1=0.04 -> monotone 0.06
    assert holm(p)[[4, 0, 2, 1]] == pytest.approx([0.02, 0.03, 0.06, 0.06])
    assert np.isnan(holm(p)[3])


def test_bh_matches_scipy():
    rng = np.random.default_rng(0)
    p = rng.random(50) ** 2
    assert benjamini_hochberg(p) == pytest.approx(stats.false_discovery_control(p, method="bh"))


def test_t_interval_over_five_seeds_uses_t4():
    values = np.array([0.80, 0.82, 0.81, 0.79, 0.83])
    mean, low, high = mean_ci_over_seeds(values)
    half = 2.7764451 * values.std(ddof=1) / np.sqrt(5)
    assert mean == pytest.approx(0.81) and high - mean == pytest.approx(half, rel=1e-6)


def test_percentile_ci_and_centred_p_value():
    reps = np.linspace(-1, 1, 1001)
    low, high = percentile_ci(reps)
    assert low == pytest.approx(-0.95) and high == pytest.approx(0.95)
    # estimate 0 -> every centred replicate is at least as extreme -> p = 1
    assert bootstrap_p_value(np.array(0.0), reps) == pytest.approx(1.0)
    # estimate far from 0 relative to the spread -> tiny p
    assert bootstrap_p_value(np.array(5.0), reps + 5.0) == pytest.approx(1 / 1002)


def test_vectorised_percentile_interval_equals_numpy_nanquantile():
    import warnings

    from radfair.fairness._stats import nan_quantiles, percentile_ci

    rng = np.random.default_rng(0)
    x = rng.random((200, 4, 3))
    x[rng.random(x.shape) < 0.2] = np.nan
    x[:, 0, 0] = np.nan  # an all-NaN slice
    x[:199, 1, 1] = np.nan  # one finite value
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = np.nanquantile(x, [0.025, 0.975], axis=0)
    np.testing.assert_allclose(nan_quantiles(x, [0.025, 0.975]), expected, equal_nan=True)
    low, high = percentile_ci(x)
    np.testing.assert_allclose(low, expected[0], equal_nan=True)
    np.testing.assert_allclose(np.moveaxis(nan_quantiles(x, [0.5], axis=2)[0], 0, 0), np.nanmedian(x, axis=2), equal_nan=True)


def test_normal_quantile_and_two_sided_p_equal_scipy_without_importing_it():
    from radfair.fairness._stats import normal_quantile, two_sided_normal_p

    for q in (0.5, 0.6, 0.9, 0.975, 0.995, 1 - 1e-12):
        assert normal_quantile(q) == pytest.approx(stats.norm.ppf(q), rel=1e-13, abs=1e-15)
    z = np.array([[0.0, 0.3, -1.96], [5.0, 20.0, 37.0], [38.0, np.nan, np.inf]])
    p = two_sided_normal_p(z)
    assert p.shape == z.shape and p.dtype == float
    reference = 2 * stats.norm.sf(np.abs(z))
    assert np.isnan(p[2, 1]) and p[2, 2] == 0.0
    ok = np.isfinite(z) & (reference > 0)
    np.testing.assert_allclose(p[ok], reference[ok], rtol=1e-11)
    assert 0 < p[2, 0] < 1e-300  # full precision in the far tail: Holm over any family can still fire

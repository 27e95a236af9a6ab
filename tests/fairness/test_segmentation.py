import numpy as np
import pytest
import torch
from monai.metrics import DiceMetric

from radfair.fairness import dice, group_dice, segmentation_fairness


def test_dice_hand_computed_and_empty_is_nan():
    pred = np.array([[1, 1, 0, 0], [0, 0, 0, 0], [1, 0, 0, 0]], bool)
    target = np.array([[1, 0, 0, 0], [0, 0, 0, 0], [0, 1, 0, 0]], bool)
    d = dice(pred, target)
    assert d[0] == pytest.approx(2 / 3) and np.isnan(d[1]) and d[2] == 0


def test_dice_matches_monai():
    rng = np.random.default_rng(0)
    pred = rng.random((6, 1, 8, 8)) > 0.5
    target = rng.random((6, 1, 8, 8)) > 0.4
    monai = DiceMetric(include_background=True, reduction="none")(torch.tensor(pred).float(), torch.tensor(target).float())
    assert dice(pred, target) == pytest.approx(monai.numpy().ravel(), abs=1e-6)


def test_group_dice_ser_and_delta():
    d = np.array([0.9, 0.8, 0.6, np.nan])
    groups = np.array([0, 0, 1, 1])
    gd = group_dice(d, groups, 2)[0]
    assert gd == pytest.approx([0.85, 0.6])
    fair = segmentation_fairness(gd)
    assert fair["delta_dice"] == pytest.approx(0.25)
    assert fair["ser"] == pytest.approx(0.4 / 0.15)


def test_segmentation_audit_intervals_cover_point_and_flag_gap():
    from radfair.fairness import segmentation_audit

    rng = np.random.default_rng(0)
    groups = rng.integers(0, 2, 300)
    d = np.clip(np.where(groups == 0, 0.85, 0.75) + rng.normal(0, 0.05, 300), 0, 1)
    out = segmentation_audit(d, groups, ["Male", "Female"], bootstrap=200)
    for g in ("Male", "Female"):
        assert out["groups"][g]["ci_low"] <= out["groups"][g]["dice"] <= out["groups"][g]["ci_high"]
    assert out["delta_dice"]["ci_low"] > 0.05
    assert out["ser"]["value"] == pytest.approx((1 - out["groups"]["Female"]["dice"]) / (1 - out["groups"]["Male"]["dice"]))


def _paired_dice(seed: int, shift: float, n: int = 120):
    """Clean Dice per patient, and reconstructed Dice that drops by ``shift`` in group 1 only (plus noise)."""
    rng = np.random.default_rng(seed)
    group = rng.integers(0, 2, n)
    clean = np.clip(rng.normal(0.75, 0.08, n), 0, 1)
    recon = np.clip(clean - shift * (group == 1) + rng.normal(0, 0.03, n), 0, 1)
    return clean, recon, group


def test_paired_segmentation_comparison_detects_a_planted_widening_gap_with_the_right_sign():
    from radfair.fairness import paired_segmentation_comparison

    clean, recon, group = _paired_dice(0, 0.08)
    rows = {r["metric"]: r for r in paired_segmentation_comparison(clean, recon, group, ["a", "b"], bootstrap=500, seed=1)}
    assert rows["dice"]["delta"] < 0 and rows["dice"]["ci_high"] < 0
    assert rows["delta_dice"]["delta"] > 0 and rows["delta_dice"]["p_value"] < 0.01
    assert rows["ser"]["delta"] > 0 and rows["ser"]["ci_low"] > 0
    # hand check of the point values: group means and their difference
    a0, a1 = clean[group == 0].mean(), clean[group == 1].mean()
    b0, b1 = recon[group == 0].mean(), recon[group == 1].mean()
    assert rows["delta_dice"]["value_a"] == pytest.approx(abs(a0 - a1))
    assert rows["delta_dice"]["value_b"] == pytest.approx(abs(b0 - b1))
    assert rows["ser"]["value_b"] == pytest.approx(max(1 - b0, 1 - b1) / min(1 - b0, 1 - b1))


@pytest.mark.slow
def test_paired_segmentation_p_values_are_roughly_uniform_under_the_null():
    from radfair.fairness import paired_segmentation_comparison

    p = np.array([{r["metric"]: r for r in paired_segmentation_comparison(*_paired_dice(s, 0.0)[:2], _paired_dice(s, 0.0)[2],
                                                                         ["a", "b"], bootstrap=200, seed=s)}["dice"]["p_value"]
                  for s in range(100)])
    assert 0.01 <= np.mean(p < 0.05) <= 0.11
    assert 0.35 < np.mean(p) < 0.65

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

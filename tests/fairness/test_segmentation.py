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


def test_dice_empty_truth_conventions_match_monai_by_name():
    import torch
    from monai.metrics import DiceMetric

    from radfair.fairness import EMPTY_CONVENTIONS, per_class_dice

    rng = np.random.default_rng(0)
    target = rng.integers(0, 3, (6, 12, 12))
    pred = np.where(rng.random((6, 12, 12)) < 0.8, target, rng.integers(0, 3, (6, 12, 12)))
    target[0] = 0  # no class 1 or 2 in the truth of sample 0
    pred[1][pred[1] == 2] = 0
    target[1][target[1] == 2] = 0  # class 2 empty in both for sample 1
    classes = [1, 2]
    for convention, ignore_empty in (("ignore_empty", True), ("empty_is_one", False)):
        ours = per_class_dice(pred, target, classes, empty=convention)
        onehot = lambda a: torch.nn.functional.one_hot(torch.as_tensor(a), 3).permute(0, 3, 1, 2).float()  # noqa: E731
        metric = DiceMetric(include_background=False, reduction="none", ignore_empty=ignore_empty)
        theirs = metric(onehot(pred), onehot(target)).numpy()
        np.testing.assert_allclose(ours, theirs, equal_nan=True)
    both = per_class_dice(pred, target, classes)  # radfair's default: NaN only when both are empty
    assert np.isnan(both[1, 1]) and both[0, 0] == 0.0  # sample 0 predicts class 1 on an empty truth: 0, not NaN
    assert set(EMPTY_CONVENTIONS) == {"both_empty_nan", "ignore_empty", "empty_is_one"}
    with pytest.raises(ValueError, match="empty-truth convention"):
        per_class_dice(pred, target, classes, empty="skip")


def test_surface_distances_and_group_means_with_intervals():
    from monai.metrics import compute_hausdorff_distance

    from radfair.fairness import group_means, surface_distances

    pred = np.zeros((4, 20, 20), bool)
    target = np.zeros((4, 20, 20), bool)
    for i in range(4):
        target[i, 5:12, 5:12] = True
        pred[i, 5 + i:12 + i, 5:12] = True  # shifted by i pixels
    out = surface_distances(pred, target)
    import torch
    ref = compute_hausdorff_distance(torch.as_tensor(pred)[:, None].float(), torch.as_tensor(target)[:, None].float(),
                                     include_background=True, percentile=95)[:, 0].numpy()
    np.testing.assert_allclose(out["hd95"], ref)
    assert out["hd95"][0] == 0 and np.all(np.diff(out["hd95"]) >= 0) and np.all(out["asd"] >= 0)
    empty = surface_distances(np.zeros((1, 8, 8), bool), np.ones((1, 8, 8), bool))
    assert np.isnan(empty["hd95"][0])
    table = group_means(out["hd95"], np.array([0, 0, 1, 1]), ["a", "b"], bootstrap=50)
    row = table.set_index("group").loc["b"]
    assert row["mean"] == pytest.approx(out["hd95"][2:].mean()) and row["ci_low"] <= row["mean"] <= row["ci_high"]

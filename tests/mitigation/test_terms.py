"""The differentiable terms, the reweighting weights and the λ rule on hand examples."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from radfair.fairness import equalized_odds
from radfair.mitigation import (
    MitigationBatches,
    RunningThreshold,
    attribute_targets,
    choose_weight,
    fallback_weight,
    soft_dice,
    soft_dice_gap,
    soft_eodd,
    soft_predictions,
    squared_correlation,
    subgroup_weights,
)


def _hard_eodd_worst(pred, y, groups):
    """Worst-case EODD from radfair.fairness on hard predictions (groups × labels rates)."""
    worst = []
    for a in range(groups.shape[1]):
        codes = np.unique(groups[:, a][groups[:, a] >= 0])
        tpr = np.array([[pred[(groups[:, a] == g) & (y[:, k] == 1), k].mean() for k in range(y.shape[1])] for g in codes])
        fpr = np.array([[pred[(groups[:, a] == g) & (y[:, k] == 0), k].mean() for k in range(y.shape[1])] for g in codes])
        worst.append(np.nanmax(equalized_odds(tpr, fpr)["eodd_worst"]))
    return max(worst)


def test_soft_eodd_at_small_temperature_equals_hard_worst_case_eodd():
    p = torch.tensor([[0.9, 0.2], [0.6, 0.7], [0.3, 0.8], [0.1, 0.4], [0.8, 0.9], [0.45, 0.1], [0.7, 0.65], [0.2, 0.3],
                      [0.55, 0.35]], dtype=torch.float64)
    y = torch.tensor([[1, 0], [1, 1], [0, 1], [0, 0], [1, 1], [1, 0], [0, 1], [0, 0], [1, 0]], dtype=torch.float64)
    groups = torch.tensor([[0, 0], [0, 1], [0, 2], [0, 0], [1, 1], [1, 2], [1, 0], [1, 1], [1, 2]])
    tau = torch.tensor([0.5, 0.5], dtype=torch.float64)
    soft = soft_predictions(p, tau, temperature=1e-4)
    hard = (p >= tau).double().numpy()
    expected = _hard_eodd_worst(hard, y.numpy(), groups.numpy())
    assert float(soft_eodd(soft, y, groups)) == pytest.approx(expected, abs=1e-6)
    # by hand: attribute 0, label 0: TPR 2/2 vs 2/3, FPR 0/2 vs 1/2; attribute 1 (three groups, max over pairs),
    # label 0: TPR 1, 1, 1/2 and FPR 1/2, 0, 0; label 1 has no gap. Worst case = 1/2.
    assert expected == pytest.approx(0.5)


def test_soft_eodd_skips_cells_without_positives_or_negatives_and_masks_missing():
    soft = torch.tensor([[0.9], [0.1], [0.8], [0.3]], requires_grad=True)
    y = torch.tensor([[1.0], [0.0], [float("nan")], [0.0]])
    groups = torch.tensor([[0], [0], [1], [1]])  # group 1 has no known positive: TPR gap undefined
    value = soft_eodd(soft, y, groups)
    assert float(value.detach()) == pytest.approx(abs(0.1 - 0.3))  # only the FPR gap
    value.backward()
    assert torch.isfinite(soft.grad).all()
    missing = soft_eodd(soft, y, torch.tensor([[0], [-1], [-1], [-1]]))  # one group only -> no gap, zero, no NaN
    assert float(missing.detach()) == 0.0 and missing.requires_grad


def test_running_threshold_moves_by_momentum_towards_balanced_threshold_and_is_a_buffer():
    from radfair.fairness import choose_threshold

    rt = RunningThreshold(2, momentum=0.1, initial=0.5)
    p = torch.tensor([[0.1, 0.2], [0.4, 0.3], [0.35, 0.9], [0.8, 0.1]])
    y = torch.tensor([[0, 1], [1, 1], [0, 1], [1, 1]], dtype=torch.float32)  # label 1: no negatives -> kept
    rt.update(p, y)
    batch_tau = choose_threshold(y[:, 0].numpy(), p[:, 0].numpy(), "balanced")
    assert float(rt.tau[0]) == pytest.approx(0.9 * 0.5 + 0.1 * batch_tau)
    assert float(rt.tau[1]) == pytest.approx(0.5)
    rt.eval()
    before = rt.tau.clone()
    rt.update(p, y)
    assert torch.equal(rt.tau, before)  # validation never moves τ
    assert "tau" in rt.state_dict()
    fixed = RunningThreshold(2, momentum=0.1, initial=0.5, fixed=True)  # the paper's τ = 0.5
    fixed.update(p, y)
    assert fixed.tau.tolist() == [0.5, 0.5]


def test_the_mitigation_config_chooses_a_fixed_or_running_threshold():
    from tests.mitigation.conftest import make_step

    assert make_step("unet", "eodd", threshold="fixed").threshold.fixed
    assert not make_step("unet", "eodd").threshold.fixed  # radfair's default: running balanced threshold


def test_squared_correlation_and_binary_coding():
    groups = torch.tensor([[0, 2], [1, 0], [1, 1], [0, -1], [1, 2], [0, 0]])
    target, known = attribute_targets(groups, [2, 3])
    assert target.shape == (6, 4) and known[:, 0].all() and not known[3, 1:].any()
    assert torch.equal(target[:, 0], torch.tensor([0, 1, 1, 0, 1, 0.0]))
    perfect = target.clone()
    assert float(squared_correlation(perfect, target, known)) == pytest.approx(1.0, abs=1e-6)
    assert float(squared_correlation(-3 * perfect + 1, target, known)) == pytest.approx(1.0, abs=1e-6)
    assert float(squared_correlation(torch.ones(6, 4), target, known)) == pytest.approx(0.0, abs=1e-6)


def test_soft_dice_gap_is_the_worst_case_group_gap_and_differentiable():
    prob = torch.rand(6, 1, 8, 8, requires_grad=True)
    mask = (torch.rand(6, 1, 8, 8) > 0.5).float()
    groups = torch.tensor([[0, 1], [0, 0], [1, 1], [1, 0], [1, -1], [0, 1]])
    dice = soft_dice(prob, mask)
    gap = soft_dice_gap(dice, groups)
    d = dice.detach()
    by_attr = [max(d[groups[:, a] == g].mean() for g in (0, 1)) - min(d[groups[:, a] == g].mean() for g in (0, 1)) for a in (0, 1)]
    assert float(gap.detach()) == pytest.approx(float(max(by_attr)), abs=1e-6)
    gap.backward()
    assert prob.grad.abs().sum() > 0


def test_subgroup_weights_are_inverse_joint_frequency():
    groups = np.array([[0, 0]] * 6 + [[0, 1]] * 3 + [[1, 0]] * 1 + [[1, -1]] * 2)
    w = subgroup_weights(groups)
    assert w.sum() == pytest.approx(1.0)
    for cell in ([0, 0], [0, 1], [1, 0], [1, -1]):
        assert w[(groups == cell).all(1)].sum() == pytest.approx(1 / 4)


def test_weighted_draws_give_uniform_joint_subgroups_and_replay_exactly():
    sizes = [60, 25, 10, 5]
    groups = np.concatenate([np.full((n, 2), [i // 2, i % 2]) for i, n in enumerate(sizes)])
    n = len(groups)
    images = np.zeros((n, 4, 4), np.uint8)
    labels = np.zeros((n, 1), np.float32)
    source = MitigationBatches(images, images, labels, groups, 10, shuffle=True, seed=3, weights=subgroup_weights(groups))
    epochs = 100
    cell = groups[:, 0] * 2 + groups[:, 1]
    drawn = np.concatenate([cell[source.order(e).numpy()] for e in range(epochs)])
    freq = np.bincount(drawn, minlength=4) / len(drawn)
    se = np.sqrt(0.25 * 0.75 / len(drawn))
    assert np.all(np.abs(freq - 0.25) < 4 * se), freq
    assert torch.equal(source.order(7), source.order(7)) and not torch.equal(source.order(7), source.order(8))
    first = [b["index"] for b in source.epoch(2)]
    resumed = [b["index"] for b in source.epoch(2, start=3)]
    assert all(torch.equal(a, b) for a, b in zip(first[3:], resumed, strict=True))


SWEEP = pd.DataFrame({"weight": [0.01, 0.1, 1.0, 10.0], "val_psnr": [30.0, 29.9, 29.6, 27.0],
                      "val_auroc": [0.80, 0.80, 0.795, 0.70], "val_eodd": [0.10, 0.08, 0.05, 0.01]})
BASE = {"val_psnr": 30.0, "val_auroc": 0.80, "val_eodd": 0.10}


def test_choose_weight_takes_largest_reduction_within_tolerances():
    weight, reason = choose_weight(SWEEP, BASE, max_psnr_drop_db=0.5, max_performance_drop=0.01)
    assert weight == 1.0 and "0.05" in reason  # 10.0 loses 3 dB and 0.1 AUROC
    assert choose_weight(SWEEP, BASE, max_psnr_drop_db=0.2, max_performance_drop=0.01)[0] == 0.1


def test_choose_weight_ties_go_to_the_smaller_weight_and_nan_never_qualifies():
    table = pd.DataFrame({"weight": [3.0, 1.0, 0.3], "val_psnr": [30.0] * 3, "val_auroc": [0.8] * 3,
                          "val_eodd": [0.05, 0.05, float("nan")]})
    assert choose_weight(table, BASE)[0] == 1.0


def test_choose_weight_returns_none_with_the_reason():
    worse = SWEEP.assign(val_eodd=0.2)
    weight, reason = choose_weight(worse, BASE)
    assert weight is None and "no λ reduces validation EODD" in reason
    weight, reason = choose_weight(SWEEP.assign(val_psnr=20.0), BASE)
    assert weight is None and "PSNR" in reason
    with pytest.raises(ValueError, match="missing columns"):
        choose_weight(SWEEP.drop(columns="val_auroc"), BASE)


def test_choose_weight_on_the_segmenter_keys_uses_dice_and_its_gap():
    sweep = SWEEP.rename(columns={"val_auroc": "val_dice", "val_eodd": "val_dice_gap"})
    base = {"val_psnr": 30.0, "val_dice": 0.80, "val_dice_gap": 0.10}
    weight, reason = choose_weight(sweep, base, max_performance_drop=0.01, performance="val_dice", fairness="val_dice_gap")
    assert weight == 1.0 and "ΔDice" in reason and "Dice -0.005" in reason
    assert "loses more than 0.001 Dice" in choose_weight(sweep.assign(val_dice=0.5), base, max_performance_drop=0.001,
                                                         performance="val_dice", fairness="val_dice_gap")[1]


def test_fallback_carries_forward_the_least_violation_not_the_lowest_gap():
    # every λ breaks a tolerance; the largest one "wins" on EODD only because it wrecks the image
    wrecked = pd.DataFrame({"weight": [0.01, 0.1, 1.0], "val_psnr": [29.4, 28.0, 23.0], "val_auroc": [0.80, 0.79, 0.74],
                            "val_eodd": [0.11, 0.06, 0.01]})
    assert choose_weight(wrecked, BASE, max_psnr_drop_db=0.5)[0] is None
    weight, reason = fallback_weight(wrecked, BASE, max_psnr_drop_db=0.5, max_performance_drop=0.01)
    assert weight == 0.01 and "least exceeds" in reason and "PSNR -0.6 dB" in reason
    # equal violation (none): the lower gap, then the smaller λ; a missing metric comes last
    calm = pd.DataFrame({"weight": [0.1, 1.0, 3.0], "val_psnr": [30.0, 30.0, float("nan")], "val_auroc": [0.80] * 3,
                         "val_eodd": [0.12, 0.11, 0.0]})
    assert fallback_weight(calm, BASE)[0] == 1.0

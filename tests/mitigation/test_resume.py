"""A mitigated fine-tuning killed mid-epoch resumes to exactly the weights of an uninterrupted run
(sampler draws, adversary and its optimiser, running τ, IR-SDE generator all restored from last.pt)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from radfair.mitigation import MitigationBatches, subgroup_weights
from radfair.training.loop import LoopConfig, fit

from .conftest import make_step


class Killed(RuntimeError):
    pass


def _data(n: int = 12):
    rng = np.random.default_rng(0)
    clean = rng.integers(0, 255, (n, 32, 32), dtype=np.uint8)
    degraded = np.clip(clean.astype(int) + rng.integers(-20, 20, clean.shape), 0, 255).astype(np.uint8)
    labels = np.tile([[1, 1], [0, 1], [1, 0], [0, 0]], (n // 4, 1)).astype(np.float32)
    groups = np.array([0] * (n - 4) + [1] * 4)[:, None]
    return degraded, clean, labels, groups


def _fit(strategy: str, run_dir, kill_at: int | None = None):
    degraded, clean, labels, groups = _data()
    weights = subgroup_weights(groups) if strategy == "reweighting" else None
    train = MitigationBatches(degraded, clean, labels, groups, 4, shuffle=True, seed=1, weights=weights)
    val = MitigationBatches(degraded[:8], clean[:8], labels[:8], groups[:8], 4, shuffle=False)
    step = make_step("irsde", strategy, weight=5.0)
    calls = {"n": 0}
    original = step.train_step

    def train_step(batch):
        calls["n"] += 1
        if kill_at is not None and calls["n"] == kill_at:
            raise Killed
        return original(batch)

    step.train_step = train_step
    config = LoopConfig(epochs=2, patience=None, monitor="objective", checkpoint_minutes=1e-9, amp=False)
    result = fit(step, train, val, config, run_dir, progress=False, log=lambda m: None)
    return step, result, calls["n"]


@pytest.mark.parametrize("strategy", ["reweighting", "eodd", "adversarial"])
def test_killed_mid_epoch_then_resumed_equals_uninterrupted(strategy, tmp_path):
    reference, _, _ = _fit(strategy, tmp_path / "a")
    with pytest.raises(Killed):
        _fit(strategy, tmp_path / "b", kill_at=5)  # epoch 2, second batch
    resumed, result, calls = _fit(strategy, tmp_path / "b")
    assert result.resumed_from == (1, 1) and calls == 2  # it resumed inside epoch 2, not from scratch
    for name, module in reference.modules.items():
        for key, value in module.state_dict().items():
            torch.testing.assert_close(resumed.modules[name].state_dict()[key], value, rtol=0, atol=0)

"""The shared training loop: best checkpoint, early stopping, exact resume, cosine schedule."""

from __future__ import annotations

import math

import pytest
import torch

from radfair.models import build_classifier
from radfair.training import ClassifierStep, LoopConfig, OptimConfig, fit, make_optimizer
from radfair.training.checkpoint import load_checkpoint
from radfair.training.inputs import EmbeddingBatches


def toy_data(n=600, d=20, labels=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=g)
    w = torch.randn(d, labels, generator=g)
    y = (x @ w + 0.5 * torch.randn(n, labels, generator=g) > 0).float()
    y[::17, 1] = float("nan")  # unknown labels are masked out of the loss
    return x, y


def make_step(seed=0, lr=3e-3, d=20, labels=3):
    torch.manual_seed(seed)
    model = build_classifier("mlp", labels, in_features=d, hidden=(16, 8), dropout=0.3)
    return ClassifierStep(model, make_optimizer(model.parameters(), OptimConfig(lr=lr)))


def batches(x, y, seed=0):
    return EmbeddingBatches(x[:480], y[:480], 32, shuffle=True, seed=seed), EmbeddingBatches(x[480:], y[480:], 64, shuffle=False)


def weights(step):
    return {k: v.clone() for k, v in step.model.state_dict().items()}


def quiet(_):
    return None


def test_best_checkpoint_is_the_best_epoch_and_is_its_own_file(tmp_path):
    x, y = toy_data()
    step = make_step()
    train, val = batches(x, y)
    result = fit(step, train, val, LoopConfig(epochs=8, patience=None), tmp_path, progress=False, log=quiet)
    losses = [row["val_loss"] for row in result.history]
    best = load_checkpoint(tmp_path / "checkpoints" / "best.pt")
    assert best["epoch"] == result.best_epoch == 1 + min(range(len(losses)), key=losses.__getitem__)
    assert best["score"] == pytest.approx(min(losses))
    # the best weights reproduce the best epoch's validation loss
    from radfair.training import evaluate

    step.model.load_state_dict(best["modules"]["model"])
    assert evaluate(step, val)["loss"] == pytest.approx(min(losses), rel=1e-6)


def test_early_stopping_stops_after_patience_epochs_without_improvement(tmp_path):
    x, y = toy_data()
    step = make_step(lr=5e-2)  # overfits quickly
    train, val = batches(x, y)
    result = fit(step, train, val, LoopConfig(epochs=60, patience=2), tmp_path, progress=False, log=quiet)
    assert result.stopped_early
    assert len(result.history) == result.best_epoch + 2
    last = load_checkpoint(tmp_path / "checkpoints" / "last.pt")
    assert last["done"] and last["stopped_early"]


def test_cosine_schedule_decays_to_zero_per_batch(tmp_path):
    x, y = toy_data()
    step = make_step()
    train, val = batches(x, y)
    result = fit(step, train, val, LoopConfig(epochs=4, patience=None), tmp_path, progress=False, log=quiet)
    lrs = [row["lr"] for row in result.history]
    total = 4 * len(train)
    assert lrs[0] == pytest.approx(3e-3 * (1 + math.cos(math.pi * len(train) / total)) / 2)
    assert lrs[-1] == pytest.approx(0.0, abs=1e-12)


def test_linear_decay_schedule_is_constant_for_half_the_steps_then_linear_to_zero(tmp_path):
    """Pix2Pix's schedule (Isola et al. 2017): epochs 1-2 of 4 at the initial rate, then linear decay to 0; resumable."""
    x, y = toy_data()
    step = make_step()
    train, val = batches(x, y)
    result = fit(step, train, val, LoopConfig(epochs=4, patience=None, schedule="linear-decay"), tmp_path, progress=False, log=quiet)
    lrs = [row["lr"] for row in result.history]
    n, total = len(train), 4 * len(train)
    assert lrs[0] == 3e-3  # after epoch 1: still constant
    assert lrs[2] == pytest.approx(3e-3 * (1 - (3 * n - total // 2) / (total - total // 2)))
    assert lrs[-1] == pytest.approx(0.0, abs=1e-12)


class Crash(RuntimeError):
    pass


class CrashingStep(ClassifierStep):
    """Raises at a given global batch, like a process killed mid-epoch."""

    def __init__(self, step, crash_at):
        super().__init__(step.model, step.optimizers["model"])
        self.calls, self.crash_at = 0, crash_at

    def train_step(self, batch):
        self.calls += 1
        if self.calls == self.crash_at:
            raise Crash
        return super().train_step(batch)


@pytest.mark.parametrize("crash_at", [7, 15 + 3])  # inside epoch 1, inside epoch 2
def test_resume_mid_epoch_ends_with_exactly_the_uninterrupted_weights(tmp_path, crash_at):
    x, y = toy_data()
    config = LoopConfig(epochs=3, patience=None, checkpoint_minutes=1e-9)  # checkpoint after every batch
    train, val = batches(x, y)
    torch.manual_seed(123)
    reference = make_step()
    fit(reference, train, val, config, tmp_path / "a", progress=False, log=quiet)

    torch.manual_seed(123)
    crashing = CrashingStep(make_step(), crash_at)
    with pytest.raises(Crash):
        fit(crashing, train, val, config, tmp_path / "b", progress=False, log=quiet)
    state = load_checkpoint(tmp_path / "b" / "checkpoints" / "last.pt")
    assert state["batch"] > 0  # a mid-epoch checkpoint exists
    torch.manual_seed(999)  # a different process state: everything must come from the checkpoint
    resumed = make_step(seed=5)
    logs = []
    result = fit(resumed, train, val, config, tmp_path / "b", progress=False, log=logs.append)
    assert result.resumed_from == (state["epoch"], state["batch"])
    assert any("resumed from" in line for line in logs)
    for key, value in weights(reference).items():
        assert torch.equal(value, weights(resumed)[key]), key


def test_a_finished_fit_is_not_trained_again(tmp_path):
    x, y = toy_data()
    train, val = batches(x, y)
    fit(make_step(), train, val, LoopConfig(epochs=2, patience=None), tmp_path, progress=False, log=quiet)
    again = make_step(seed=1)
    result = fit(again, train, val, LoopConfig(epochs=2, patience=None), tmp_path, progress=False, log=quiet)
    assert result.seconds == 0.0 and len(result.history) == 2
    untouched = weights(make_step(seed=1))
    assert all(torch.equal(untouched[k], v) for k, v in weights(again).items())  # not retrained (its weights: best.pt)
    last = load_checkpoint(tmp_path / "checkpoints" / "last.pt")
    assert last["done"] and not {"modules", "optimizers", "schedulers"} & set(last)  # no weights kept once finished
    assert (tmp_path / "checkpoints" / "last.pt").stat().st_size < (tmp_path / "checkpoints" / "best.pt").stat().st_size


def test_epoch_order_is_a_fixed_permutation_per_seed_and_epoch():
    x, y = toy_data()
    b = EmbeddingBatches(x, y, 50, shuffle=True, seed=3)
    first = torch.cat([batch["index"] for batch in b.epoch(0)])
    again = torch.cat([batch["index"] for batch in b.epoch(0)])
    other = torch.cat([batch["index"] for batch in b.epoch(1)])
    assert torch.equal(first, again) and not torch.equal(first, other)
    assert sorted(first.tolist()) == list(range(600))
    skipped = torch.cat([batch["index"] for batch in b.epoch(0, start=3)])
    assert torch.equal(skipped, first[150:])


def test_a_single_leftover_sample_is_not_a_training_batch():
    x, y = toy_data(n=65)
    assert len(EmbeddingBatches(x, y, 32, shuffle=True)) == 2
    assert len(EmbeddingBatches(x, y, 32, shuffle=False)) == 3

"""Seeds trained together (issue 19 item 5): each seed's init, data order, gradients, Adam, early stopping and best
checkpoint equal its own sequential run; an interrupted ensemble resumes to the same bits."""

from __future__ import annotations

import pytest
import torch

from radfair.models import StackedHead, build_classifier
from radfair.training import ClassifierStep, LoopConfig, OptimConfig, fit, make_optimizer
from radfair.training.checkpoint import load_checkpoint
from radfair.training.inputs import EmbeddingBatches, IndexBatches, MemberBatches
from radfair.training.steps import EnsembleClassifierStep

from .test_loop import quiet, toy_data

SEEDS = [0, 1, 2, 3]


def head(seed: int, dropout: float, linear: bool = False):
    torch.manual_seed(seed)
    if linear:
        return build_classifier("linear", 3, in_features=20)
    return build_classifier("mlp", 3, in_features=20, hidden=(16, 8), dropout=dropout)


def ensemble_step(lr: float, dropout: float = 0.0, linear: bool = False) -> EnsembleClassifierStep:
    members = [head(seed, dropout, linear) for seed in SEEDS]  # as the ensemble run builds them
    model = StackedHead(members)
    return EnsembleClassifierStep(model, make_optimizer(model.parameters(), OptimConfig(lr=lr)), [f"seed{s}" for s in SEEDS])


def val_batches(x, y):
    return EmbeddingBatches(x[480:], y[480:], 64, shuffle=False)


def sequential(seed: int, lr: float, config: LoopConfig, run_dir, x, y, linear: bool = False):
    model = head(seed, 0.0, linear)
    step = ClassifierStep(model, make_optimizer(model.parameters(), OptimConfig(lr=lr)))
    result = fit(step, EmbeddingBatches(x[:480], y[:480], 32, shuffle=True, seed=seed), val_batches(x, y), config, run_dir,
                 progress=False, log=quiet)
    return model.state_dict(), result


def assert_close_states(a: dict, b: dict, atol: float = 1e-5):
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key].float(), b[key].float(), atol=atol, rtol=1e-5, msg=key)


def test_member_batches_are_each_seeds_own_order():
    x, y = toy_data()
    members = MemberBatches(x[:480], y[:480], 32, seeds=SEEDS)
    own = [IndexBatches(x[:480], y[:480], 32, shuffle=True, seed=s) for s in SEEDS]
    assert len(members) == len(own[0])
    for batch, *singles in zip(members.epoch(3, start=2), *(o.epoch(3, start=2) for o in own), strict=True):
        for s, single in enumerate(singles):
            assert torch.equal(batch["index"][s], single["index"])
            assert torch.equal(batch["x"][s], single["x"])
            torch.testing.assert_close(batch["y"][s], single["y"], rtol=0, atol=0, equal_nan=True)


@pytest.mark.parametrize("linear", [False, True])
def test_without_dropout_each_member_equals_its_sequential_run(tmp_path, linear):
    x, y = toy_data()
    config = LoopConfig(epochs=3, patience=None)
    step = ensemble_step(3e-3, linear=linear)
    result = fit(step, MemberBatches(x[:480], y[:480], 32, seeds=SEEDS), val_batches(x, y), config, tmp_path / "ens",
                 progress=False, log=quiet)
    for i, seed in enumerate(SEEDS):
        weights, own = sequential(seed, 3e-3, config, tmp_path / f"seq{seed}", x, y, linear)
        assert_close_states(step.model.member_state_dict(i), weights)  # init, data order, gradients, Adam: per seed
        mine = result.members[f"seed{seed}"]
        assert [r["val_loss"] for r in mine.history] == pytest.approx([r["val_loss"] for r in own.history], abs=1e-6)
        assert [r["train_loss"] for r in mine.history] == pytest.approx([r["train_loss"] for r in own.history], abs=1e-6)
        assert mine.best_epoch == own.best_epoch
    assert [r["members"] for r in result.history] == [len(SEEDS)] * 3


def test_each_member_stops_early_on_its_own_and_keeps_its_best_epoch(tmp_path):
    x, y = toy_data()
    config = LoopConfig(epochs=40, patience=2)
    step = ensemble_step(2e-2)  # overfits within a few epochs; the seeds stop at different epochs
    result = fit(step, MemberBatches(x[:480], y[:480], 32, seeds=SEEDS), val_batches(x, y), config, tmp_path / "ens",
                 progress=False, log=quiet)
    stops = []
    for seed in SEEDS:
        name = f"seed{seed}"
        mine = result.members[name]
        weights, own = sequential(seed, 2e-2, config, tmp_path / f"seq{seed}", x, y)
        assert mine.stopped_early and own.stopped_early
        assert len(mine.history) == len(own.history) == mine.best_epoch + 2  # the history ends where its own run stops
        assert mine.best_epoch == own.best_epoch
        best = load_checkpoint(tmp_path / "ens" / "checkpoints" / f"best-{name}.pt")
        own_best = load_checkpoint(tmp_path / f"seq{seed}" / "checkpoints" / "best.pt")
        assert best["epoch"] == own_best["epoch"] == mine.best_epoch
        assert_close_states(best["modules"]["model"], own_best["modules"]["model"])  # scored with its best epoch's weights
        assert best["score"] == pytest.approx(min(r["val_loss"] for r in mine.history))
        stops.append(len(mine.history))
    assert len(set(stops)) > 1  # members stopped at different epochs: the stopped ones left the stacked model
    assert len(result.history) == max(stops) and result.stopped_early
    assert [r["members"] for r in result.history] == [sum(s > e for s in stops) for e in range(max(stops))]
    assert step.model.n_members == 1 and step.active == [stops.index(max(stops))]


class Crash(RuntimeError):
    pass


class CrashingBatches(MemberBatches):
    """Raises at batch ``at`` of epoch ``epoch`` (a killed process, after the last in-epoch checkpoint)."""

    def __init__(self, *args, epoch: int, at: int, **kwargs):
        super().__init__(*args, **kwargs)
        self.crash = (epoch, at)

    def epoch(self, epoch: int, start: int = 0):
        for i, batch in enumerate(super().epoch(epoch, start), start=start):
            if (epoch, i) == self.crash:
                raise Crash()
            yield batch


def test_an_interrupted_ensemble_resumes_to_the_bits_of_an_uninterrupted_one(tmp_path):
    x, y = toy_data()
    config = LoopConfig(epochs=20, patience=2, checkpoint_minutes=0)
    train = MemberBatches(x[:480], y[:480], 32, seeds=SEEDS)
    whole = ensemble_step(2e-2, dropout=0.3)
    uninterrupted = fit(whole, train, val_batches(x, y), config, tmp_path / "whole", progress=False, log=quiet)
    stops = sorted(len(r.history) for r in uninterrupted.members.values())
    assert stops[0] < stops[-1]
    crash_epoch = stops[0] + 1  # an epoch index after a member has stopped and left the stacked model

    def crash_after(epoch_number: int):  # a crash between epochs, right after the epoch's checkpoint
        def log(message: str):
            if message.startswith(f"epoch {epoch_number}/"):
                raise Crash()
        return log

    run_dir = tmp_path / "resumed"
    with pytest.raises(Crash):
        fit(ensemble_step(2e-2, dropout=0.3), train, val_batches(x, y), config, run_dir, progress=False, log=crash_after(crash_epoch))
    every_batch = config.model_copy(update={"checkpoint_minutes": 1e-9})  # last.pt after every batch (numbers unchanged)
    crashing = CrashingBatches(x[:480], y[:480], 32, seeds=SEEDS, epoch=crash_epoch, at=5)
    with pytest.raises(Crash):  # killed inside an epoch
        fit(ensemble_step(2e-2, dropout=0.3), crashing, val_batches(x, y), every_batch, run_dir, progress=False, log=quiet)
    last = load_checkpoint(run_dir / "checkpoints" / "last.pt")
    assert (last["epoch"], last["batch"]) == (crash_epoch, 5)
    resumed_step = ensemble_step(2e-2, dropout=0.3)  # a fresh process: every member at full size again
    resumed = fit(resumed_step, train, val_batches(x, y), config, run_dir, progress=False, log=quiet)
    assert resumed.resumed_from == (crash_epoch, 5)
    assert resumed_step.active == whole.active
    for key, value in whole.model.state_dict().items():
        assert torch.equal(resumed_step.model.state_dict()[key], value), key
    for name, member in uninterrupted.members.items():
        again = resumed.members[name]
        assert again.best_epoch == member.best_epoch
        assert [r["val_loss"] for r in again.history] == [r["val_loss"] for r in member.history]
        a = load_checkpoint(tmp_path / "whole" / "checkpoints" / f"best-{name}.pt")["modules"]["model"]
        b = load_checkpoint(run_dir / "checkpoints" / f"best-{name}.pt")["modules"]["model"]
        assert all(torch.equal(a[k], b[k]) for k in a)


def test_stacking_checks_its_members():
    with pytest.raises(ValueError, match="same shapes"):
        StackedHead([head(0, 0.0), build_classifier("mlp", 3, in_features=20, hidden=(16, 4))])
    with pytest.raises(TypeError, match="only MLPHead and LinearProbe"):
        StackedHead([torch.nn.Linear(3, 2)])


def test_ensemble_runs_name_one_output_per_seed_and_refuse_image_models(tmp_path):
    from radfair.errors import RadfairInputError
    from radfair.execution import RunStore
    from radfair.training.classify import TRAIN_CLASSIFIER_ENSEMBLE, EnsembleRunConfig, resolve_config

    cohort = tmp_path / "split.parquet"
    cohort.write_bytes(b"stand-in: only its checksum enters the run id")
    settings = dict(cohort=str(cohort), input="embeddings", model="mlp", root=str(tmp_path), labels=["edema"])
    spec = TRAIN_CLASSIFIER_ENSEMBLE.spec(resolve_config(EnsembleRunConfig, seeds=[0, 3], **settings), {"cohort": str(cohort)})
    store = RunStore(tmp_path / "runs")
    assert store.output(spec, "scored-seed3") == store.path(spec) / "seed3" / "scored.parquet"  # known before the run exists
    assert store.output(spec, "best_checkpoint-seed0") == store.path(spec) / "checkpoints" / "best-seed0.pt"
    with pytest.raises(RadfairInputError, match="no output 'scored-seed1'"):
        store.output(spec, "scored-seed1")
    with pytest.raises(RadfairInputError, match="ensemble.*densenet121.*mlp, linear"):
        resolve_config(EnsembleRunConfig, seeds=[0, 1], **{**settings, "input": "images", "model": "densenet121"})
    with pytest.raises(RadfairInputError, match="seeds.*distinct"):
        resolve_config(EnsembleRunConfig, seeds=[1, 1], **settings)

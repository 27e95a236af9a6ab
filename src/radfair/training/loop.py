"""One training loop for every model radfair trains (DESIGN.md "The study engine").

The loop knows nothing about losses: a model kind supplies a *step* object (:class:`Step`) that owns its
modules and optimisers and performs one optimisation step on a batch (a classifier's BCE, a GAN's two
optimisers, a diffusion model's noise-matching loss). The loop supplies what every kind needs:

* a per-batch learning-rate schedule for every optimiser: cosine decay to 0 over all steps, constant, or
  ``linear-decay`` (Pix2Pix's: constant for the first half of the steps, then linear to 0; Isola et al. 2017 §4);
* validation after every epoch and early stopping on a monitored validation value with a patience;
* ``best.pt`` (the best epoch's weights, its own file) and ``last.pt`` (full state, every epoch and every
  ``checkpoint_minutes`` inside an epoch), so that a run killed at any point resumes and ends with exactly
  the weights of an uninterrupted run (on CPU; see :mod:`radfair.training.checkpoint`). Once training ends,
  ``last.pt`` keeps only the history and early-stopping state (no weights, no optimiser moments: three quarters
  of a run's checkpoint bytes); a finished fit called again returns that history without touching the step, whose
  weights every caller loads from ``best.pt``;
* bf16 autocast on CUDA, a rich progress bar with samples/s and the ETA, and a log line per epoch;
* for a step that trains several members together (the seeds of an ensemble, :class:`radfair.training.steps.EnsembleClassifierStep`),
  the same early stopping, best checkpoint and history per member, as if each member were its own run.

Each epoch's batch order comes from a generator seeded by (seed, epoch) (see :mod:`radfair.training.inputs`),
so a resumed epoch replays the same order and skips the batches already done.
"""

from __future__ import annotations

import contextlib
import math
import statistics
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Protocol

import torch
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from ..config import StrictModel
from .checkpoint import load_checkpoint, rng_state, save_checkpoint, set_rng_state


class Batches(Protocol):
    """An epoch-addressable source of batches (dicts of tensors with an int ``size``)."""

    n_samples: int

    def __len__(self) -> int: ...

    def epoch(self, epoch: int, start: int = 0) -> Iterator[dict]: ...


class Step(Protocol):
    """What a model kind gives the loop."""

    modules: dict[str, torch.nn.Module]
    optimizers: dict[str, torch.optim.Optimizer]

    def train_step(self, batch: dict) -> dict[str, torch.Tensor]:
        """Forward, backward and optimiser step(s); return detached scalar losses (batch means)."""

    def eval_step(self, batch: dict) -> dict[str, torch.Tensor]:
        """Validation values of a batch (batch means); must hold the monitored key."""

    # Optional: ``extra_state() -> dict`` and ``load_extra_state(dict)`` for state beyond modules and
    # optimisers (e.g. a step's own random generator); saved in ``last.pt`` and restored on resume.
    #
    # Optional, for several members trained together (the seeds of an ensemble): ``members`` (their names); then
    # ``train_step``/``eval_step`` return one value per member still training (a vector in ``members`` order),
    # ``member_state(name) -> {module name: state_dict}`` gives a member's weights (saved as its best checkpoint) and
    # ``stop_members(names)`` is called when members stop early (they need no more steps).


class LoopConfig(StrictModel):
    epochs: int = 20
    patience: int | None = 5
    min_delta: float = 0.0
    monitor: str = "loss"
    mode: Literal["min", "max"] = "min"
    schedule: Literal["cosine", "constant", "linear-decay"] = "cosine"
    checkpoint_minutes: float = 10.0
    amp: bool = True


@dataclass
class FitResult:
    """What :func:`fit` did. For a step with members, ``history`` holds the ensemble's rows (members trained, mean
    losses, wall time), ``best_epoch``/``best_score`` are 0/NaN and ``members`` holds each member's own result."""

    history: list[dict]
    best_epoch: int
    best_score: float
    resumed_from: tuple[int, int] | None
    stopped_early: bool
    seconds: float
    samples_per_s: float = field(default=math.nan)
    members: dict[str, FitResult] = field(default_factory=dict)


def _schedulers(step: Step, config: LoopConfig, total_steps: int) -> dict:
    if config.schedule == "constant":
        return {}
    if config.schedule == "linear-decay":
        return {name: torch.optim.lr_scheduler.LambdaLR(opt, linear_decay(total_steps)) for name, opt in step.optimizers.items()}
    return {name: torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(total_steps, 1))
            for name, opt in step.optimizers.items()}


def linear_decay(total_steps: int) -> Callable[[int], float]:
    """Learning-rate factor of step ``t``: 1 for the first half of ``total_steps``, then linear to 0 at the last step
    (Pix2Pix: 100 epochs at the initial rate, 100 decaying to zero)."""
    half = total_steps // 2
    rest = max(total_steps - half, 1)
    return lambda t: 1.0 if t < half else max(0.0, 1.0 - (t - half) / rest)


def _progress(enabled: bool) -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TextColumn("{task.fields[rate]}"), TimeRemainingColumn(), disable=not enabled, transient=True)


def _better(score: float, best: float, config: LoopConfig) -> bool:
    if math.isnan(score):
        return False
    if math.isnan(best):
        return True
    return score < best - config.min_delta if config.mode == "min" else score > best + config.min_delta


@dataclass
class _Track:
    """Early stopping of one model, or of one member of a step with members: its history, best epoch and patience."""

    history: list[dict] = field(default_factory=list)
    best: float = math.nan
    best_epoch: int = 0
    bad: int = 0
    stopped: bool = False

    def state(self) -> dict:
        return {"history": self.history, "best_score": self.best, "best_epoch": self.best_epoch, "bad_epochs": self.bad,
                "stopped_early": self.stopped}

    @classmethod
    def from_state(cls, state: dict) -> _Track:
        return cls(list(state["history"]), state["best_score"], state["best_epoch"], state["bad_epochs"], state["stopped_early"])

    def close_epoch(self, row: dict, score: float, config: LoopConfig) -> bool:
        """Record the epoch's row and validation score; True if it is the best so far."""
        self.history.append(row)
        improved = _better(score, self.best, config)
        if improved:
            self.best, self.best_epoch, self.bad = score, row["epoch"], 0
        else:
            self.bad += 1
        self.stopped = config.patience is not None and self.bad >= config.patience
        return improved

    def result(self, resumed_from, seconds: float, samples_per_s: float) -> FitResult:
        return FitResult(self.history, self.best_epoch, self.best, resumed_from, self.stopped, seconds, samples_per_s)


class _Means:
    """Size-weighted running means of detached scalar or per-member vector tensors (no device sync per batch)."""

    def __init__(self, sums: dict | None = None, count: int = 0, device: torch.device | str = "cpu"):
        # python floats, or tensors on the values' device (a saved vector comes back as a float64 tensor)
        self.sums: dict = {k: torch.tensor(v, dtype=torch.float64, device=device) if isinstance(v, list) else v
                           for k, v in (sums or {}).items()}
        self.count = count

    def add(self, values: dict[str, torch.Tensor], size: int) -> None:
        for key, value in values.items():
            self.sums[key] = self.sums.get(key, 0.0) + value.detach().double() * size
        self.count += size

    def state(self) -> dict:
        return {k: v.tolist() if torch.is_tensor(v) and v.dim() else float(v) for k, v in self.sums.items()}

    def means(self, prefix: str) -> dict:
        """``{prefix + key: mean}``: a float, or a list of floats (one per member)."""
        return {f"{prefix}{k}": [x / max(self.count, 1) for x in v] if isinstance(v, list) else v / max(self.count, 1)
                for k, v in self.state().items()}


def fit(step: Step, train: Batches, val: Batches, config: LoopConfig, run_dir: str | Path, *,
        device: torch.device | str = "cpu", progress: bool = True, log: Callable[[str], None] = print) -> FitResult:
    """Train ``step`` until ``config.epochs`` or early stopping; resume from ``run_dir/checkpoints/last.pt``.

    A step with ``members`` (see :class:`Step`) is early-stopped per member: each member has its own best epoch, best
    checkpoint (``checkpoints/best-<member>.pt``, the format of ``best.pt``), patience and history, whose rows end
    where the member stops, as its own run's would; training ends when every member has stopped or at the last epoch.
    """
    device = torch.device(device)
    ckpt_dir = Path(run_dir) / "checkpoints"
    last_path = ckpt_dir / "last.pt"
    schedulers = _schedulers(step, config, config.epochs * len(train))
    autocast = (lambda: torch.autocast("cuda", dtype=torch.bfloat16)) if device.type == "cuda" and config.amp else contextlib.nullcontext
    names = list(getattr(step, "members", None) or [])
    keys = names or [""]  # "": the one model of a step without members
    tracks = {key: _Track() for key in keys}
    ensemble_history: list[dict] = []

    def best_path(key: str) -> Path:
        return ckpt_dir / (f"best-{key}.pt" if key else "best.pt")

    def result(resumed, seconds: float, samples_per_s: float) -> FitResult:
        if not names:
            return tracks[""].result(resumed, seconds, samples_per_s)
        return FitResult(ensemble_history, 0, math.nan, resumed, all(t.stopped for t in tracks.values()), seconds, samples_per_s,
                         members={k: t.result(resumed, seconds, samples_per_s) for k, t in tracks.items()})

    state = load_checkpoint(last_path)
    epoch0, batch0 = 0, 0
    partial = _Means()
    resumed_from = None
    if state is not None:
        if names:
            tracks = {k: _Track.from_state(state["members"][k]) for k in keys}
            ensemble_history = list(state["history"])
        else:
            tracks = {"": _Track.from_state(state)}
        if state["done"]:  # a finished fit: its weights are in best.pt, which every caller loads
            return result((state["epoch"], state["batch"]), 0.0, math.nan)
        for name, module in step.modules.items():
            module.load_state_dict(state["modules"][name])
        for name, opt in step.optimizers.items():
            opt.load_state_dict(state["optimizers"][name])
        for name, sched in schedulers.items():
            sched.load_state_dict(state["schedulers"][name])
        set_rng_state(state["rng"])
        if hasattr(step, "load_extra_state") and "extra" in state:
            step.load_extra_state(state["extra"])
        epoch0, batch0 = state["epoch"], state["batch"]
        partial = _Means(state["partial_sums"], state["partial_count"], device)
        resumed_from = (epoch0, batch0)
        log(f"resumed from epoch {epoch0 + 1}, batch {batch0} of {len(train)}")

    def checkpoint(epoch: int, batch: int, done: bool, means: _Means) -> None:
        progress_state = ({"history": ensemble_history, "members": {k: t.state() for k, t in tracks.items()},
                           "stopped_early": all(t.stopped for t in tracks.values())} if names else tracks[""].state())
        if done:  # nothing left to resume: the history and early-stopping state only, no weights or optimiser moments
            save_checkpoint(last_path, {"epoch": epoch, "batch": batch, "done": True, **progress_state})
            return
        save_checkpoint(last_path, {
            "epoch": epoch, "batch": batch, "done": done, **progress_state,
            "modules": {n: m.state_dict() for n, m in step.modules.items()},
            "optimizers": {n: o.state_dict() for n, o in step.optimizers.items()},
            "schedulers": {n: s.state_dict() for n, s in schedulers.items()},
            "rng": rng_state(), "extra": step.extra_state() if hasattr(step, "extra_state") else {},
            "partial_sums": means.state(), "partial_count": means.count,
        })

    start_all, trained_samples = time.perf_counter(), 0
    with _progress(progress) as bar:
        for epoch in range(epoch0, config.epochs):
            active = [k for k in keys if not tracks[k].stopped]  # members still training (stops happen between epochs)
            for module in step.modules.values():
                module.train()
            means = partial if epoch == epoch0 else _Means()
            first = batch0 if epoch == epoch0 else 0
            task = bar.add_task(f"epoch {epoch + 1}/{config.epochs}", total=len(train), completed=first, rate="")
            t_epoch = t_ckpt = time.perf_counter()
            seen = 0
            for index, batch in enumerate(train.epoch(epoch, first), start=first):
                with autocast():
                    values = step.train_step(batch)
                for sched in schedulers.values():
                    sched.step()
                means.add(values, batch["size"])
                seen += batch["size"]
                bar.update(task, advance=1, rate=f"{seen * len(active) / (time.perf_counter() - t_epoch):,.0f} samples/s")
                if config.checkpoint_minutes and time.perf_counter() - t_ckpt > 60 * config.checkpoint_minutes and index + 1 < len(train):
                    checkpoint(epoch, index + 1, False, means)
                    t_ckpt = time.perf_counter()
            train_seconds = time.perf_counter() - t_epoch
            trained_samples += seen * len(active)
            bar.remove_task(task)
            val_means = {f"val_{k}": v for k, v in evaluate(step, val, autocast).items()}
            train_means = means.means("train_")
            lr = next(iter(step.optimizers.values())).param_groups[0]["lr"] if step.optimizers else math.nan
            rate = seen * len(active) / train_seconds if train_seconds else math.nan
            improved = []
            for i, key in enumerate(active):
                # a member's row: its own losses; its share of the epoch's wall time (members train together)
                row = {"epoch": epoch + 1, **{k: v[i] if names else v for k, v in {**train_means, **val_means}.items()},
                       "lr": lr, "train_seconds": train_seconds / len(active), "samples_per_s": rate}
                if tracks[key].close_epoch(row, row[f"val_{config.monitor}"], config):
                    improved.append(key)
                    modules = step.member_state(key) if names else {n: m.state_dict() for n, m in step.modules.items()}
                    save_checkpoint(best_path(key), {"epoch": epoch + 1, "score": row[f"val_{config.monitor}"], "modules": modules})
            stopping = [k for k in active if tracks[k].stopped]
            everyone_stopped = all(t.stopped for t in tracks.values())
            if names:
                ensemble_history.append({"epoch": epoch + 1, "members": len(active),
                                         **{k: statistics.fmean(v) for k, v in {**train_means, **val_means}.items()},
                                         "lr": lr, "train_seconds": train_seconds, "samples_per_s": rate})
                if stopping and not everyone_stopped:
                    step.stop_members(stopping)
            done = everyone_stopped or epoch + 1 == config.epochs
            checkpoint(epoch + 1, 0, done, _Means())
            if names:
                summary = (f"{len(active)} members, mean train_{config.monitor} {statistics.fmean(train_means['train_' + config.monitor]):.4f}, "
                           f"mean val_{config.monitor} {statistics.fmean(val_means['val_' + config.monitor]):.4f}"
                           + (f", best {', '.join(improved)}" if improved else "") + (f" -> {', '.join(stopping)} stopped" if stopping else ""))
            else:
                row = tracks[""].history[-1]
                summary = ", ".join(f"{k} {v:.4f}" for k, v in row.items() if k.startswith(("train_", "val_")) and k != "train_seconds")
                summary += " (best)" if improved else ""
            log(f"epoch {epoch + 1}/{config.epochs}: {summary}, lr {lr:.2e}, {train_seconds:.1f}s, {rate:,.0f} samples/s"
                + (" -> early stop" if everyone_stopped else ""))
            if everyone_stopped:
                break
    seconds = time.perf_counter() - start_all
    return result(resumed_from, seconds, trained_samples / seconds if seconds else math.nan)


@torch.no_grad()
def evaluate(step: Step, batches: Batches, autocast=contextlib.nullcontext) -> dict[str, float]:
    """Size-weighted means of ``step.eval_step`` over every batch, in eval mode."""
    for module in step.modules.values():
        module.eval()
    means = _Means()
    for batch in batches.epoch(0):
        with autocast():
            means.add(step.eval_step(batch), batch["size"])
    return means.means("")

"""One training loop for every model radfair trains (DESIGN.md "The study engine").

The loop knows nothing about losses: a model kind supplies a *step* object (:class:`Step`) that owns its
modules and optimisers and performs one optimisation step on a batch (a classifier's BCE, a GAN's two
optimisers, a diffusion model's noise-matching loss). The loop supplies what every kind needs:

* a per-batch learning-rate schedule for every optimiser: cosine decay to 0 over all steps, constant, or
  ``linear-decay`` (Pix2Pix's: constant for the first half of the steps, then linear to 0; Isola et al. 2017 §4);
* validation after every epoch and early stopping on a monitored validation value with a patience;
* ``best.pt`` (the best epoch's weights, its own file) and ``last.pt`` (full state, every epoch and every
  ``checkpoint_minutes`` inside an epoch), so that a run killed at any point resumes and ends with exactly
  the weights of an uninterrupted run (on CPU; see :mod:`radfair.training.checkpoint`);
* bf16 autocast on CUDA, a rich progress bar with samples/s and the ETA, and a log line per epoch.

Each epoch's batch order comes from a generator seeded by (seed, epoch) (see :mod:`radfair.training.inputs`),
so a resumed epoch replays the same order and skips the batches already done.
"""

from __future__ import annotations

import contextlib
import math
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
    history: list[dict]
    best_epoch: int
    best_score: float
    resumed_from: tuple[int, int] | None
    stopped_early: bool
    seconds: float
    samples_per_s: float = field(default=math.nan)


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


class _Means:
    """Size-weighted running means of detached scalar tensors (no device sync per batch)."""

    def __init__(self, sums: dict | None = None, count: int = 0):
        self.sums: dict = dict(sums or {})  # python floats, or tensors on the values' device
        self.count = count

    def add(self, values: dict[str, torch.Tensor], size: int) -> None:
        for key, value in values.items():
            self.sums[key] = self.sums.get(key, 0.0) + value.detach().double() * size
        self.count += size

    def state(self) -> dict:
        return {k: float(v) for k, v in self.sums.items()}

    def means(self, prefix: str) -> dict[str, float]:
        return {f"{prefix}{k}": float(v) / max(self.count, 1) for k, v in self.sums.items()}


def fit(step: Step, train: Batches, val: Batches, config: LoopConfig, run_dir: str | Path, *,
        device: torch.device | str = "cpu", progress: bool = True, log: Callable[[str], None] = print) -> FitResult:
    """Train ``step`` until ``config.epochs`` or early stopping; resume from ``run_dir/checkpoints/last.pt``."""
    device = torch.device(device)
    ckpt_dir = Path(run_dir) / "checkpoints"
    last_path, best_path = ckpt_dir / "last.pt", ckpt_dir / "best.pt"
    schedulers = _schedulers(step, config, config.epochs * len(train))
    autocast = (lambda: torch.autocast("cuda", dtype=torch.bfloat16)) if device.type == "cuda" and config.amp else contextlib.nullcontext

    state = load_checkpoint(last_path)
    epoch0, batch0, history, best, best_epoch, bad = 0, 0, [], math.nan, 0, 0
    partial = _Means()
    resumed_from = None
    if state is not None:
        for name, module in step.modules.items():
            module.load_state_dict(state["modules"][name])
        for name, opt in step.optimizers.items():
            opt.load_state_dict(state["optimizers"][name])
        for name, sched in schedulers.items():
            sched.load_state_dict(state["schedulers"][name])
        set_rng_state(state["rng"])
        if hasattr(step, "load_extra_state") and "extra" in state:
            step.load_extra_state(state["extra"])
        epoch0, batch0, history = state["epoch"], state["batch"], list(state["history"])
        best, best_epoch, bad = state["best_score"], state["best_epoch"], state["bad_epochs"]
        partial = _Means(state["partial_sums"], state["partial_count"])
        resumed_from = (epoch0, batch0)
        if state["done"]:
            return FitResult(history, best_epoch, best, resumed_from, state["stopped_early"], 0.0)
        log(f"resumed from epoch {epoch0 + 1}, batch {batch0} of {len(train)}")

    def checkpoint(epoch: int, batch: int, done: bool, stopped: bool, means: _Means) -> None:
        save_checkpoint(last_path, {
            "epoch": epoch, "batch": batch, "done": done, "stopped_early": stopped,
            "modules": {n: m.state_dict() for n, m in step.modules.items()},
            "optimizers": {n: o.state_dict() for n, o in step.optimizers.items()},
            "schedulers": {n: s.state_dict() for n, s in schedulers.items()},
            "rng": rng_state(), "extra": step.extra_state() if hasattr(step, "extra_state") else {}, "history": history, "best_score": best, "best_epoch": best_epoch,
            "bad_epochs": bad, "partial_sums": means.state(), "partial_count": means.count,
        })

    start_all, trained_samples, stopped = time.perf_counter(), 0, False
    with _progress(progress) as bar:
        for epoch in range(epoch0, config.epochs):
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
                bar.update(task, advance=1, rate=f"{seen / (time.perf_counter() - t_epoch):,.0f} samples/s")
                if config.checkpoint_minutes and time.perf_counter() - t_ckpt > 60 * config.checkpoint_minutes and index + 1 < len(train):
                    checkpoint(epoch, index + 1, False, False, means)
                    t_ckpt = time.perf_counter()
            train_seconds = time.perf_counter() - t_epoch
            trained_samples += seen
            bar.remove_task(task)
            val_means = evaluate(step, val, autocast)
            row = {"epoch": epoch + 1, **means.means("train_"), **{f"val_{k}": v for k, v in val_means.items()},
                   "lr": next(iter(step.optimizers.values())).param_groups[0]["lr"] if step.optimizers else math.nan,
                   "train_seconds": train_seconds, "samples_per_s": seen / train_seconds if train_seconds else math.nan}
            history.append(row)
            score = val_means[config.monitor]
            if _better(score, best, config):
                best, best_epoch, bad = score, epoch + 1, 0
                save_checkpoint(best_path, {"epoch": epoch + 1, "score": score,
                                            "modules": {n: m.state_dict() for n, m in step.modules.items()}})
            else:
                bad += 1
            stopped = config.patience is not None and bad >= config.patience
            done = stopped or epoch + 1 == config.epochs
            checkpoint(epoch + 1, 0, done, stopped, _Means())
            losses = ", ".join(f"{k} {v:.4f}" for k, v in row.items() if k.startswith(("train_", "val_")) and k != "train_seconds")
            log(f"epoch {epoch + 1}/{config.epochs}: {losses}, lr {row['lr']:.2e}, {train_seconds:.1f}s, "
                f"{row['samples_per_s']:,.0f} samples/s" + (" (best)" if best_epoch == epoch + 1 else "")
                + (" -> early stop" if stopped else ""))
            if stopped:
                break
    seconds = time.perf_counter() - start_all
    return FitResult(history, best_epoch, best, resumed_from, stopped, seconds,
                     trained_samples / seconds if seconds else math.nan)


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

"""Make any reconstructor step (U-Net, Pix2Pix, IR-SDE) mitigated (reconstruction paper §3.5).

:func:`attach_mitigation` wraps a step of :mod:`radfair.training.reconstruction` in a :class:`MitigatedStep`
that sets the step's ``extra_loss`` hook. The hook receives the reconstruction (for IR-SDE the x0 implied by the
predicted noise), which is differentiable in the reconstructor's parameters, and returns::

    standard     0
    reweighting  task_weight · task                       (rows drawn ∝ 1/|joint subgroup| by the batch source)
    eodd         task_weight · task + λ · soft_eodd²
    adversarial  task_weight · task + λ · Corr²            (after one adversary step that maximises Corr²)

where ``task`` is the frozen downstream model's loss on the reconstruction (masked multi-label BCE; or
1 − mean soft Dice for a segmenter, over the batch's tumour slices, whose fairness term is then the worst-case
soft-Dice gap and whose adversary reads the U-Net's pooled bottleneck, :meth:`UNet.features`). The
downstream model is frozen (``requires_grad_(False)``, eval mode, never in ``modules``) but gradients flow
through its input. "Fairness term" of reweighting: none — its fairness lever is the sampler alone.

Validation key ``objective`` (minimised, :data:`VALIDATION_KEY`): the reconstructor's validation loss (×
``l1_weight`` for Pix2Pix, as in its training loss, without the GAN term) + the same extra term on the
validation output (batch-size-weighted mean over validation batches, τ frozen, adversary not updated).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..training.inputs import scale_pixels
from ..training.steps import masked_bce
from ._adversarial import Adversary, attribute_targets, n_target_columns, squared_correlation
from ._config import MitigationConfig
from ._eodd import RunningThreshold, soft_dice, soft_dice_gap, soft_eodd, soft_predictions

VALIDATION_KEY = "objective"


class FrozenDownstream(nn.Module):
    """A frozen downstream model fed with reconstructions in [0, 1].

    The input is resized (bilinear, differentiable) to ``image_size`` and mapped with the classifier's pixel
    ``scaling`` (:data:`radfair.training.inputs.PIXEL_SCALINGS`, e.g. ``standard``: ``(x − 0.5) / 0.25``); None
    feeds [0, 1] unchanged (the segmenter).
    """

    def __init__(self, model: nn.Module, image_size: int | None = None, scaling: str | None = "standard"):
        super().__init__()
        self.model = model.eval().requires_grad_(False)
        self.image_size, self.scaling = image_size, scaling

    def train(self, mode: bool = True) -> FrozenDownstream:
        return super().train(False)  # frozen: BatchNorm statistics and dropout never switch to training

    def prepare(self, x: torch.Tensor) -> torch.Tensor:
        if self.image_size is not None and x.shape[-1] != self.image_size:
            x = F.interpolate(x, size=(self.image_size, self.image_size), mode="bilinear", align_corners=False,
                              antialias=x.shape[-1] > self.image_size)
        return scale_pixels(x, self.scaling) if self.scaling is not None else x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(self.prepare(x))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.model.features(self.prepare(x))


class MitigatedStep:
    """A reconstructor step fine-tuned with a mitigation strategy; a :class:`~radfair.training.loop.Step`.

    ``modules``/``optimizers`` are the base step's plus ``threshold`` (EODD: the running τ buffer) and
    ``adversary`` (adversarial: module and optimiser), so :func:`~radfair.training.loop.fit` checkpoints them.
    """

    def __init__(self, base, config: MitigationConfig, downstream: FrozenDownstream | None, *,
                 label_index: Sequence[int] | None = None, group_sizes: Sequence[int] | None = None,
                 feature_dim: int | None = None):
        self.base, self.config, self.downstream = base, config, downstream
        self.label_index = None if label_index is None else list(label_index)
        self.modules = dict(base.modules)
        self.optimizers = dict(base.optimizers)
        self.recon_scale = float(getattr(base, "l1_weight", 1.0))
        self.threshold = self.adversary = None
        self.group_sizes = list(group_sizes) if group_sizes is not None else None
        self._last: dict[str, torch.Tensor] = {}
        device = next(base.net.parameters()).device
        if config.strategy != "standard" and downstream is None:
            raise ValueError(f"strategy {config.strategy!r} needs the frozen downstream model")
        if config.strategy == "eodd" and config.task == "classification":
            if self.label_index is None:
                raise ValueError("eodd needs label_index (the downstream outputs used as labels)")
            self.threshold = RunningThreshold(len(self.label_index), config.momentum, config.initial_threshold,
                                              fixed=config.threshold == "fixed").to(device)
            self.modules["threshold"] = self.threshold
        if config.strategy == "adversarial":
            if self.group_sizes is None or feature_dim is None:
                raise ValueError("adversarial needs group_sizes (categories per attribute) and feature_dim")
            self.adversary = Adversary(feature_dim, n_target_columns(self.group_sizes), config.adversary_hidden).to(device)
            self.modules["adversary"] = self.adversary
            self.optimizers["adversary"] = torch.optim.Adam(self.adversary.parameters(), lr=config.adversary_lr)
        # reweighting acts through the sampler: with no task loss it never needs the downstream model's pass
        self.uses_downstream = config.strategy not in ("standard", "reweighting") or config.task_weight != 0
        base.extra_loss = self.extra_loss if self.uses_downstream else None

    # --- the terms ------------------------------------------------------------------------------------
    def _logits(self, output: torch.Tensor) -> torch.Tensor:
        logits = self.downstream(output).float()
        return logits[:, self.label_index] if self.label_index is not None and logits.ndim == 2 else logits

    def tumour_dice(self, batch: dict, output: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Soft Dice of the frozen segmenter on the batch's rows whose mask holds tumour, and those rows' groups.

        The mask is resized (nearest) to the segmenter's output size. Slices without tumour are left out of this
        training term: their soft Dice is 0 for any positive prediction and 0/0 for none, so it would only push the
        segmenter's output down (the reported Dice, per inference slice, counts them through false positives only:
        ``empty_slices`` of :class:`radfair.training.segmenter.SegmenterRunConfig`).
        """
        probabilities = torch.sigmoid(self._logits(output))
        mask = batch["mask"]
        if mask.shape[-2:] != probabilities.shape[-2:]:
            mask = F.interpolate(mask, size=probabilities.shape[-2:], mode="nearest")
        tumour = mask.flatten(1).sum(1) > 0
        return soft_dice(probabilities[tumour], mask[tumour]), batch["groups"][tumour]

    def task_loss(self, batch: dict, output: torch.Tensor) -> torch.Tensor:
        """Frozen downstream model's loss on the reconstruction (BCE, or 1 − mean soft Dice over tumour slices)."""
        if self.config.task == "segmentation":
            dice, _ = self.tumour_dice(batch, output)
            return 1 - dice.mean() if len(dice) else output.sum() * 0.0
        return masked_bce(self._logits(output), batch["labels"])

    def adversary_objective(self, batch: dict, features: torch.Tensor) -> torch.Tensor:
        """Corr² between the adversary's prediction from ``features`` and the binary-coded attributes."""
        target, known = attribute_targets(batch["groups"], self.group_sizes)
        return squared_correlation(self.adversary(features), target, known)

    def fairness_term(self, batch: dict, output: torch.Tensor, *, update: bool = False) -> torch.Tensor:
        """The strategy's fairness term on ``output`` (before λ; EODD not yet squared); 0 for standard/reweighting."""
        strategy = self.config.strategy
        if strategy in ("standard", "reweighting"):
            return output.new_zeros(())
        if strategy == "adversarial":
            return self.adversary_objective(batch, self.downstream.features(output))
        if self.config.task == "segmentation":
            return soft_dice_gap(*self.tumour_dice(batch, output))
        p = torch.sigmoid(self._logits(output))
        if update:
            self.threshold.update(p, batch["labels"])
        soft = soft_predictions(p, self.threshold.tau, self.config.temperature)
        return soft_eodd(soft, batch["labels"], batch["groups"])

    def penalty(self, fair: torch.Tensor) -> torch.Tensor:
        """λ · fairness (λ · EODD² for eodd)."""
        return self.config.weight * (fair ** 2 if self.config.strategy == "eodd" else fair)

    def adversary_step(self, batch: dict, output: torch.Tensor) -> torch.Tensor:
        """One adversary update that **maximises** Corr² (minimises −Corr²) on detached features."""
        with torch.no_grad():
            features = self.downstream.features(output.detach())
        opt = self.optimizers["adversary"]
        opt.zero_grad(set_to_none=True)
        objective = self.adversary_objective(batch, features)
        (-objective).backward()
        opt.step()
        return objective.detach()

    def extra_loss(self, batch: dict, output: torch.Tensor) -> torch.Tensor:
        """The hook set on the base step (training): what the reconstructor adds to its loss."""
        training = self.base.net.training
        if self.adversary is not None and training:
            self._last["adversary"] = self.adversary_step(batch, output)
            self.adversary.requires_grad_(False)  # the reconstructor's step must not touch the adversary
        try:
            task = self.task_loss(batch, output)
            fair = self.fairness_term(batch, output, update=training)
        finally:
            if self.adversary is not None:
                self.adversary.requires_grad_(True)
        self._last.update(task=task.detach(), fair=fair.detach())
        return self.config.task_weight * task + self.penalty(fair)

    # --- the Step protocol ----------------------------------------------------------------------------
    def train_step(self, batch: dict) -> dict[str, torch.Tensor]:
        self._last = {}
        values = self.base.train_step(batch)
        return {**values, **self._last}

    def eval_step(self, batch: dict) -> dict[str, torch.Tensor]:
        values, output = self.base.eval_output(batch)
        objective = values["loss"] * self.recon_scale
        if self.uses_downstream:
            task = self.task_loss(batch, output)
            fair = self.fairness_term(batch, output)
            values.update(task=task, fair=fair)
            objective = objective + self.config.task_weight * task + self.penalty(fair)
        values[VALIDATION_KEY] = objective
        return values

    def reconstruct(self, degraded: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        return self.base.reconstruct(degraded, generator)

    def to(self, device) -> MitigatedStep:
        if hasattr(self.base, "to"):
            self.base.to(device)
        if self.downstream is not None:
            self.downstream.to(device)
        return self

    def extra_state(self) -> dict:
        return self.base.extra_state() if hasattr(self.base, "extra_state") else {}

    def load_extra_state(self, state: dict) -> None:
        if hasattr(self.base, "load_extra_state"):
            self.base.load_extra_state(state)


def attach_mitigation(step, config: MitigationConfig, downstream: nn.Module | None, *, image_size: int | None = None,
                      scaling: str | None = "standard", label_index: Sequence[int] | None = None,
                      group_sizes: Sequence[int] | None = None) -> MitigatedStep:
    """Make a reconstructor step mitigated (§3.5).

    Parameters
    ----------
    step : UNetStep, Pix2PixStep or IRSDEStep
        From :func:`radfair.training.reconstruction.build_reconstructor`; its ``extra_loss`` is set.
    config : MitigationConfig
    downstream : nn.Module
        The downstream classifier (logits (B, L), ``features(x)``) or segmenter (logits (B, 1, H, W)); it is
        frozen here. May be None for ``standard``.
    image_size : int, optional
        Input size of the downstream model (reconstructions are resized to it, differentiably).
    scaling : str or None
        The downstream classifier's pixel scaling (:data:`radfair.training.inputs.PIXEL_SCALINGS`); None: [0, 1]
        unchanged (a segmenter).
    label_index : sequence of int, optional
        Downstream outputs that correspond to the batch's ``labels`` columns (default: all).
    group_sizes : sequence of int, optional
        Number of categories of each attribute (adversarial).

    Returns
    -------
    MitigatedStep
        Train it with :func:`radfair.training.loop.fit`, monitoring ``"objective"`` (mode ``"min"``). For
        reweighting, pair it with :class:`MitigationBatches` built with :func:`subgroup_weights`.
    """
    frozen = None
    feature_dim = None
    if downstream is not None:
        frozen = downstream if isinstance(downstream, FrozenDownstream) else FrozenDownstream(downstream, image_size, scaling)
        frozen.to(next(step.net.parameters()).device)
        if config.strategy == "adversarial":
            size = frozen.image_size or 32
            with torch.no_grad():
                probe = torch.zeros(2, 1, size, size, device=next(step.net.parameters()).device)
                feature_dim = int(frozen.features(probe).flatten(1).shape[1])
        if label_index is None and config.task == "classification":
            with torch.no_grad():
                size = frozen.image_size or 32
                probe = torch.zeros(2, 1, size, size, device=next(step.net.parameters()).device)
                label_index = list(range(frozen(probe).shape[1]))
    return MitigatedStep(step, config, frozen, label_index=label_index, group_sizes=group_sizes, feature_dim=feature_dim)

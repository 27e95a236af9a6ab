"""Settings of one mitigation fine-tuning (reconstruction paper §3.5, appendix "Reconstruction Hyperparameters")."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from ..config import StrictModel


class MitigationConfig(StrictModel):
    """How a reconstructor is fine-tuned for downstream fairness.

    Parameters
    ----------
    strategy : {"standard", "reweighting", "eodd", "adversarial"}
        ``standard``: fine-tune with the reconstruction loss only (the baseline with the same budget);
        ``reweighting``: rows drawn ∝ 1/|joint subgroup| (§3.5 "Sample Reweighting"), loss = reconstruction
        + ``task_weight`` · task loss; ``eodd``: + ``weight`` · soft_eodd² (§3.5 "Differentiable
        Equalized-Odds"; for a segmenter the worst-case soft-Dice gap, squared); ``adversarial``: + ``weight`` ·
        Corr² of an adversary (§3.5 "Adversarial Loss").
    weight : float
        λ_fair, multiplying the fairness term. Never normalised away (REFERENCE.md bug 11).
    task_weight : float
        Weight of the frozen downstream model's task loss (multi-label BCE, or 1 − soft Dice for a
        segmenter). The paper adds it inside λ·EMA(BCE + EODD²); radfair keeps it separate and drops the
        EMA normalisation, because dividing a loss by its own running mean makes λ cancel.
    temperature, threshold, momentum, initial_threshold
        Soft prediction temperature T = 0.3 and threshold τ (appendix). ``threshold="fixed"``: τ stays at
        ``initial_threshold`` (the paper's τ = 0.5); ``"running"`` (radfair's default): τ follows the batches'
        balanced threshold with ``momentum`` 0.1 from ``initial_threshold`` — a fixed 0.5 lies above almost every
        probability of a rare finding, so its soft predictions saturate at 0 and the EODD term has no gradient.
        (The paper's momentum 0.1 is its loss EMA's, which radfair drops: REFERENCE.md bug 11.)
    adversary_hidden, adversary_lr
        Width(s) of the adversary MLP on the frozen model's ``features`` and its Adam learning rate.
    attributes : list of str
        Sensitive attribute columns (e.g. ``["sex", "age_group", "race"]``).
    task : {"classification", "segmentation"}
        Kind of downstream model.
    """

    strategy: Literal["standard", "reweighting", "eodd", "adversarial"]
    weight: float = Field(1.0, ge=0.0)
    task_weight: float = Field(1.0, ge=0.0)
    temperature: float = Field(0.3, gt=0.0)
    threshold: Literal["fixed", "running"] = "running"
    momentum: float = Field(0.1, gt=0.0, le=1.0)
    initial_threshold: float = 0.5
    adversary_hidden: list[int] = [128]
    adversary_lr: float = Field(1e-3, gt=0.0)
    attributes: list[str] = ["sex"]
    task: Literal["classification", "segmentation"] = "classification"

"""Step objects for the training loop (:mod:`radfair.training.loop`).

:class:`ClassifierStep`: multi-label BCE-with-logits over the labels a row has (a NaN label, e.g. an
uncertain finding under ``--uncertain ignore``, is masked out of the loss), one optimiser.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..config import StrictModel


class OptimConfig(StrictModel):
    name: str = "adam"
    lr: float = 1e-4
    weight_decay: float = 1e-5
    betas: tuple[float, float] = (0.9, 0.999)


def make_optimizer(params, config: OptimConfig) -> torch.optim.Optimizer:
    """Adam/AdamW (fused kernel: one pass over all parameters; at batch 48 the MLP's optimiser step is
    memory-bound and costs more than forward and backward together) or SGD with momentum 0.9."""
    if config.name == "adam":
        return torch.optim.Adam(params, lr=config.lr, weight_decay=config.weight_decay, betas=config.betas, fused=True)
    if config.name == "adamw":
        return torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay, betas=config.betas, fused=True)
    if config.name == "sgd":
        return torch.optim.SGD(params, lr=config.lr, weight_decay=config.weight_decay, momentum=0.9)
    raise ValueError(f"unknown optimiser {config.name!r}; expected adam, adamw or sgd")


def masked_bce(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean BCE-with-logits over the entries whose target is not NaN."""
    known = ~torch.isnan(target)
    losses = F.binary_cross_entropy_with_logits(logits.float(), torch.where(known, target, 0.0), reduction="none")
    return (losses * known).sum() / known.sum().clamp_min(1)


class ClassifierStep:
    """One multi-label classifier, one optimiser."""

    def __init__(self, model: nn.Module, optimizer: torch.optim.Optimizer):
        self.model = model
        self.modules = {"model": model}
        self.optimizers = {"model": optimizer}

    def train_step(self, batch: dict) -> dict[str, torch.Tensor]:
        optimizer = self.optimizers["model"]
        optimizer.zero_grad(set_to_none=True)
        loss = masked_bce(self.model(batch["x"]), batch["y"])
        loss.backward()
        optimizer.step()
        return {"loss": loss.detach()}

    def eval_step(self, batch: dict) -> dict[str, torch.Tensor]:
        return {"loss": masked_bce(self.model(batch["x"]), batch["y"])}

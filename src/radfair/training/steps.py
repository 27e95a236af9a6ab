"""Step objects for the training loop (:mod:`radfair.training.loop`).

:class:`ClassifierStep`: multi-label BCE-with-logits over the labels a row has (a NaN label, e.g. an
uncertain finding under ``--uncertain ignore``, is masked out of the loss), one optimiser.
:class:`EnsembleClassifierStep`: the same loss for each member of a :class:`radfair.models.StackedHead` (several seeds
trained together, issue 19 item 5), one optimiser step for all members, per-member values for the loop's per-member
early stopping.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..config import StrictModel
from ..models.ensemble import StackedHead


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


def masked_bce(logits: torch.Tensor, target: torch.Tensor, *, members: bool = False) -> torch.Tensor:
    """Mean BCE-with-logits over the entries whose target is not NaN: a scalar, or with ``members`` one mean per member
    (``logits`` and ``target`` ``[S, B, labels]`` -> ``[S]``: each member's loss exactly as its own run computes it)."""
    known = ~torch.isnan(target)
    losses = F.binary_cross_entropy_with_logits(logits.float(), torch.where(known, target, 0.0), reduction="none")
    if members:
        return (losses * known).flatten(1).sum(1) / known.flatten(1).sum(1).clamp_min(1)
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


class EnsembleClassifierStep:
    """Members of a :class:`radfair.models.StackedHead` (named ``members``, e.g. ``seed3``), one optimiser for all.

    ``train_step`` reads ``x``/``y`` of ``[S, B, ...]`` (member ``s``'s own batch, :class:`radfair.training.inputs.MemberBatches`)
    and minimises the sum over members of each member's masked BCE mean, so each member's gradient is the gradient its
    own run would compute; ``eval_step`` reads shared rows ``[B, ...]``. Both return one value per member still
    training (``[A]``, in ``members`` order). :meth:`stop_members` drops members from the stacked module and the
    optimiser state (the loop calls it when members stop early); :meth:`member_state` is a member's weights in the
    ordinary head's format, which the loop saves as that member's best checkpoint.
    """

    def __init__(self, model: StackedHead, optimizer: torch.optim.Optimizer, members: list[str]):
        if model.n_members != len(members):
            raise ValueError(f"{len(members)} member names for {model.n_members} stacked members")
        self.model = model
        self.modules = {"model": model}
        self.optimizers = {"model": optimizer}
        self.members = list(members)
        self.active = list(range(len(members)))  # indices into members of the members still training, in the model's order

    def _select(self, tensor: torch.Tensor) -> torch.Tensor:
        if len(self.active) == len(self.members):
            return tensor
        return tensor.index_select(0, torch.as_tensor(self.active, device=tensor.device))

    def train_step(self, batch: dict) -> dict[str, torch.Tensor]:
        optimizer = self.optimizers["model"]
        optimizer.zero_grad(set_to_none=True)
        losses = masked_bce(self.model(self._select(batch["x"])), self._select(batch["y"]), members=True)
        losses.sum().backward()
        optimizer.step()
        return {"loss": losses.detach()}

    def eval_step(self, batch: dict) -> dict[str, torch.Tensor]:
        logits = self.model(batch["x"])
        return {"loss": masked_bce(logits, batch["y"].expand(logits.shape[0], *batch["y"].shape), members=True)}

    def member_state(self, name: str) -> dict[str, dict]:
        """The modules' states of member ``name`` (still training) as a single head's: ``{"model": state_dict}``."""
        return {"model": self.model.member_state_dict(self.active.index(self.members.index(name)))}

    def stop_members(self, names: list[str]) -> None:
        """Stop training members ``names``: they leave the stacked module and the optimiser state."""
        drop = {self.members.index(n) for n in names}
        keep = [i for i, member in enumerate(self.active) if member not in drop]
        self.model.keep_members(keep, self.optimizers["model"])
        self.active = [self.active[i] for i in keep]

    def extra_state(self) -> dict:
        return {"active": list(self.active)}

    def load_extra_state(self, state: dict) -> None:
        self.active = list(state["active"])

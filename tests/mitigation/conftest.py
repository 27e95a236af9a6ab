"""Tiny reconstructors (32×32) and tiny frozen downstream models (classifier, tumour segmenter) for the mitigation tests."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from radfair.mitigation import MitigationConfig, attach_mitigation
from radfair.training.reconstruction import ReconstructorConfig, build_reconstructor

torch.set_num_threads(1)  # tiny tensors: thread pools only add overhead on the shared 2-core machine

KINDS = ("unet", "pix2pix", "irsde")
STRATEGIES = ("reweighting", "eodd", "adversarial")
TASKS = ("classification", "segmentation")


def recon_config(kind: str) -> ReconstructorConfig:
    return ReconstructorConfig(kind=kind, widths=[4, 8], bottleneck=8, disc_widths=[4, 8, 8], sde_steps=5, time_dim=8,
                               optim={"lr": 1e-3, "weight_decay": 0.0})


class TinyClassifier(nn.Module):
    """A stand-in for DenseNetClassifier: ``features(x)`` (8 values) and ``forward`` (2 logits)."""

    def __init__(self, n_labels: int = 2):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(1, 6, 3, padding=1), nn.Tanh(), nn.Conv2d(6, 6, 3, stride=2, padding=1),
                                  nn.Tanh(), nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Linear(24, 8), nn.Tanh())
        self.out = nn.Linear(8, n_labels)

    def features(self, x):
        return self.body(x)

    def forward(self, x):
        return self.out(self.body(x))


def make_batch(seed: int = 0, n: int = 8) -> dict:
    g = torch.Generator().manual_seed(seed)
    clean = torch.rand(n, 1, 32, 32, generator=g)
    degraded = (clean + 0.1 * torch.randn(n, 1, 32, 32, generator=g)).clamp(0, 1)
    labels = torch.tensor([[1, 1], [0, 1], [1, 0], [0, 0]] * (n // 4), dtype=torch.float32)
    groups = torch.tensor([0] * (n // 2) + [1] * (n // 2)).unsqueeze(1)
    mask = (clean > 0.6).float()  # the segmenter's "tumour"
    return {"degraded": degraded, "clean": clean, "labels": labels, "groups": groups, "mask": mask, "size": n,
            "index": torch.arange(n)}


def make_step(kind: str, strategy: str, seed: int = 0, task: str = "classification", **overrides):
    """A fresh mitigated step; identical weights (reconstructor, downstream, adversary) for identical args. The
    segmentation downstream is the radfair tumour U-Net (raw [0, 1] input, adversary on its pooled bottleneck)."""
    from radfair.models.mri import build_segmenter

    step = build_reconstructor(recon_config(kind), seed)
    torch.manual_seed(100 + seed)
    downstream = TinyClassifier() if task == "classification" else build_segmenter([4, 8], 8)
    config = MitigationConfig(strategy=strategy, task=task, **{"weight": 10.0, **overrides})
    torch.manual_seed(200 + seed)
    return attach_mitigation(step, config, downstream, image_size=32, group_sizes=[2], scaling="standard" if task == "classification" else None)


def differentiable_output(step, batch: dict, seed: int = 0) -> torch.Tensor:
    """The output the hook receives in training (IR-SDE: x0 implied by the predicted noise, fixed draw)."""
    base = step.base
    if hasattr(base, "sde"):
        return base._loss(batch, torch.Generator().manual_seed(seed))[1]
    return base.net(batch["degraded"])


@pytest.fixture
def batch():
    return make_batch()


@pytest.fixture
def last_weights(monkeypatch) -> dict:
    """The reconstructor's weights when a mitigation run's training ends (the last epoch's), captured around its
    ``fit``: a finished ``last.pt`` keeps no weights."""
    from radfair.mitigation import _run

    kept: dict = {}
    real = _run.fit

    def fit_and_keep(step, *args, **kwargs):
        result = real(step, *args, **kwargs)
        kept.update({k: v.detach().clone() for k, v in step.modules["model"].state_dict().items()})
        return result

    monkeypatch.setattr(_run, "fit", fit_and_keep)
    return kept

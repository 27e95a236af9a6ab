"""Classifiers of Study 1 (embeddings vs images) and the frozen downstream models of Study 2.

* :class:`MLPHead` is the embeddings paper's head (§3.2): 1376 -> 768 -> 256 -> 14, each hidden layer
  ``Linear, ReLU, BatchNorm1d, Dropout(0.3)``; 1376·768 + 768·256 + 256·14 = 1.257 M MACs per sample.
* :class:`LinearProbe` is one linear layer on the embeddings (a cheap third option).
* :class:`DenseNetClassifier` is MONAI's DenseNet-121 whose last layer is replaced by the same head
  (1024 features -> 768 -> 256 -> labels), as in the paper's image model.

Every classifier returns logits and exposes ``features(x)``: the representation the last layer reads
(used by the adversarial mitigation and by Grad-CAM).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

EMBEDDING_DIM = 1376
PAPER_HIDDEN = (768, 256)


class MLPHead(nn.Module):
    """``Linear -> ReLU -> BatchNorm1d -> Dropout`` per hidden width, then a linear output layer."""

    def __init__(self, in_features: int, out_features: int, hidden: Sequence[int] = PAPER_HIDDEN, dropout: float = 0.3):
        super().__init__()
        layers: list[nn.Module] = []
        width = in_features
        for h in hidden:
            layers += [nn.Linear(width, h), nn.ReLU(inplace=True), nn.BatchNorm1d(h), nn.Dropout(dropout)]
            width = h
        self.body = nn.Sequential(*layers)
        self.out = nn.Linear(width, out_features)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.body(x))


class LinearProbe(nn.Module):
    """A single linear layer on frozen embeddings."""

    def __init__(self, in_features: int, out_features: int):
        super().__init__()
        self.out = nn.Linear(in_features, out_features)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(x)


class DenseNetClassifier(nn.Module):
    """MONAI DenseNet-121 (2D) with :class:`MLPHead` in place of its last linear layer."""

    def __init__(self, out_features: int, in_channels: int = 1, hidden: Sequence[int] = PAPER_HIDDEN, dropout: float = 0.3):
        super().__init__()
        from monai.networks.nets import DenseNet121

        net = DenseNet121(spatial_dims=2, in_channels=in_channels, out_channels=1)
        width = net.class_layers.out.in_features
        net.class_layers.out = nn.Identity()
        self.backbone = net  # features -> relu -> global average pool -> flatten (1024 values)
        self.head = MLPHead(width, out_features, hidden, dropout)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.head.features(self.backbone(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.backbone(x))

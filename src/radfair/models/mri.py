"""Downstream models of Study 2 on UCSF-PDGM (reconstruction paper §3.3 and appendix "Diagnostic Hyperparameters").

* :class:`SliceClassifier`: MONAI ResNet-50 (or ResNet-18 for the demo), 2D, one input channel, one logit per
  label (tumour grade and type, trained at the slice level; patient scores are the median over slices).
  The paper's network is "ImageNet-initialised", so the stem has the ImageNet geometry: a 7x7 convolution of
  stride 2 (MONAI's default stride is 1) and downsampling convolutions without bias, which lets
  :func:`radfair.models.load_weights` read a torchvision ImageNet state dict by name (its RGB first
  convolution summed to grey). ``features(x)`` is the pooled representation the last layer reads.
* :func:`build_segmenter`: the radfair U-Net (:class:`radfair.models.reconstruction.UNet`) with one linear
  output channel (tumour logits; sigmoid and threshold 0.5 at inference).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from ..errors import BAD_OPTION, RadfairInputError
from .reconstruction import UNet

SLICE_CLASSIFIERS = ("resnet50", "resnet18")


class SliceClassifier(nn.Module):
    """A MONAI ResNet whose last linear layer is kept apart as ``out`` (so ``features`` is available)."""

    def __init__(self, name: str, n_labels: int, in_channels: int = 1, conv1_stride: int = 2):
        super().__init__()
        from monai.networks.nets import resnet18, resnet50

        if name not in SLICE_CLASSIFIERS:
            raise RadfairInputError(BAD_OPTION.format(option="model", value=name, expected=list(SLICE_CLASSIFIERS)))
        build = {"resnet50": resnet50, "resnet18": resnet18}[name]
        net = build(spatial_dims=2, n_input_channels=in_channels, num_classes=n_labels, conv1_t_stride=conv1_stride,
                    bias_downsample=False)
        self.out = net.fc
        net.fc = None  # MONAI's forward skips a missing fc: the backbone returns pooled features
        self.backbone = net

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.backbone(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.backbone(x))


def build_segmenter(widths: Sequence[int] = (64, 128, 256, 512), bottleneck: int = 1024, norm: bool = False) -> UNet:
    """A tumour segmenter: U-Net, 1 input channel in [0, 1], 1 output channel of logits; ``norm``: BatchNorm after every
    convolution (:class:`radfair.models.reconstruction.UNet`)."""
    return UNet(1, 1, widths, bottleneck, output="linear", norm=norm)


__all__ = ["SLICE_CLASSIFIERS", "SliceClassifier", "build_segmenter"]

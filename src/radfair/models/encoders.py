"""Frozen image encoders for ``radfair embed``: a TorchScript file, or a MONAI network with a state dict.

The encoder maps a batch of grey radiographs ``(B, 1, S, S)`` (standardised like the training images) to
``(B, d)`` vectors. MONAI networks return their globally pooled features: DenseNet-121 (1024),
ResNet-18 (512), ResNet-50 (2048). Weights are read with ``weights_only=True``; nothing is downloaded.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from ..errors import BAD_OPTION, MISSING_FILE, RadfairInputError
from .weights import load_weights

ARCHITECTURES = ("densenet121", "resnet18", "resnet50")


def monai_encoder(arch: str, in_channels: int = 1) -> nn.Module:
    from monai.networks.nets import DenseNet121, resnet18, resnet50

    if arch == "densenet121":
        net = DenseNet121(spatial_dims=2, in_channels=in_channels, out_channels=1)
        net.class_layers.out = nn.Identity()
        return net
    if arch in ("resnet18", "resnet50"):
        maker = resnet18 if arch == "resnet18" else resnet50
        return maker(spatial_dims=2, n_input_channels=in_channels, feed_forward=False)
    raise RadfairInputError(BAD_OPTION.format(option="--arch", value=arch, expected=list(ARCHITECTURES)))


def load_encoder(path: str | Path, arch: str | None = None) -> tuple[nn.Module, dict]:
    """The frozen encoder in eval mode and a description of where it came from."""
    path = Path(path)
    if not path.is_file():
        raise RadfairInputError(MISSING_FILE.format(path=path, what="--encoder"))
    if arch is None:
        try:
            module = torch.jit.load(str(path), map_location="cpu")
        except Exception as exc:  # noqa: BLE001 - any decoder failure is bad input
            raise RadfairInputError(f"{path}: not a TorchScript file ({type(exc).__name__}); for a state dict pass --arch "
                                    f"{'|'.join(ARCHITECTURES)}") from None
        info = {"kind": "torchscript"}
    else:
        module = monai_encoder(arch)
        counts = load_weights(module, path)
        info = {"kind": "monai", "arch": arch, **counts}
    module.eval()
    for p in module.parameters():
        p.requires_grad_(False)
    return module, info

"""Start a model from a local checkpoint; nothing is ever downloaded.

Accepted files (always read with ``torch.load(weights_only=True)``): a plain state dict, a dict
holding one under ``state_dict`` or ``model``, or a radfair checkpoint (``modules.model``). Keys
may carry a ``module.`` prefix (DataParallel). A first convolution saved for 3-channel (RGB) input
is summed over its channel axis when the model reads 1-channel radiographs, the usual way of
reusing ImageNet weights on grey images.

ImageNet files in torchvision's layout are mapped onto MONAI's networks by name (:func:`monai_key`): a
torchvision DenseNet's dense layers (``denselayer1.norm1`` and the older ``denselayer1.norm.1``) become MONAI's
``denselayer1.layers.norm1`` (MONAI's own ``_load_state_dict`` does the same for the older form); a torchvision
ResNet already has MONAI's names. The ImageNet classifier (``classifier.*``, ``fc.*`` with 1000 outputs) has no
counterpart and is left out. A file that leaves more of the model's backbone unset than its last layer gets a
warning with the count, never silence.
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import torch
from torch import nn

from ..errors import MISSING_FILE, RadfairInputError, RadfairWarning

_DENSE_LAYER = re.compile(r"^(.*denselayer\d+)\.(norm|relu|conv)\.?([12])\.(weight|bias|running_mean|running_var|num_batches_tracked)$")


def monai_key(key: str) -> str:
    """The MONAI name of a torchvision parameter name (unchanged when MONAI uses the same name).

    >>> monai_key("features.denseblock1.denselayer1.norm1.weight")
    'features.denseblock1.denselayer1.layers.norm1.weight'
    >>> monai_key("features.denseblock1.denselayer1.conv.2.weight")
    'features.denseblock1.denselayer1.layers.conv2.weight'
    >>> monai_key("layer1.0.downsample.0.weight")
    'layer1.0.downsample.0.weight'
    """
    match = _DENSE_LAYER.match(key)
    return f"{match[1]}.layers.{match[2]}{match[3]}.{match[4]}" if match else key


def _state_dict_of(obj, path: Path) -> dict[str, torch.Tensor]:
    if isinstance(obj, dict) and isinstance(obj.get("modules"), dict) and "model" in obj["modules"]:
        obj = obj["modules"]["model"]
    for key in ("state_dict", "model"):
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise RadfairInputError(f"{path}: not a state dict (expected a mapping of parameter names to tensors)")
    return {k.removeprefix("module."): v for k, v in obj.items()}


def load_weights(model: nn.Module, path: str | Path) -> dict[str, int]:
    """Copy every tensor of ``path`` whose name and shape fit ``model``; return match counts.

    Raises a one-line error when the file is missing, unreadable, or shares no tensor with the model.
    """
    path = Path(path)
    if not path.is_file():
        raise RadfairInputError(MISSING_FILE.format(path=path, what="--weights checkpoint"))
    try:
        loaded = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any decoder failure is bad input
        raise RadfairInputError(f"{path}: not a readable PyTorch checkpoint ({type(exc).__name__})") from None
    source = _state_dict_of(loaded, path)
    target = model.state_dict()
    for prefix in ("backbone.", "encoder.", "model."):  # a radfair classifier's backbone, common wrappers
        if not any(k in target for k in source) and any(k.startswith(prefix) for k in source):
            source = {k.removeprefix(prefix): v for k, v in source.items()}
    matched = {}
    for name, tensor in source.items():
        # the name as saved, then in MONAI's layout, each also under a radfair classifier's ``backbone.``
        candidates = dict.fromkeys((name, monai_key(name), f"backbone.{name}", f"backbone.{monai_key(name)}"))
        key = next((c for c in candidates if c in target), None)
        if key is None:
            continue
        want = target[key]
        if tensor.ndim == 4 and want.ndim == 4 and tensor.shape[1] == 3 and want.shape[1] == 1 and tensor.shape[0] == want.shape[0]:
            tensor = tensor.sum(dim=1, keepdim=True)
        if tensor.shape == want.shape:
            matched[key] = tensor
    if not matched:
        raise RadfairInputError(f"{path}: no tensor matches the model's parameters (expected a {type(model).__name__} state dict)")
    backbone = [k for k in target if k.startswith("backbone.")] or list(target)
    unset = [k for k in backbone if k not in matched and not k.endswith("num_batches_tracked")]
    if len(unset) > 2:  # more than a last layer's weight and bias
        warnings.warn(f"{path}: {len(unset)} of {len(backbone)} {type(model).__name__} backbone tensor(s) not in the file "
                      f"(e.g. {unset[0]}); they keep their random initialisation", RadfairWarning, stacklevel=2)
    model.load_state_dict(matched, strict=False)
    return {"matched": len(matched), "model_tensors": len(target), "file_tensors": len(source), "backbone_unset": len(unset)}

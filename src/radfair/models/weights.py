"""Start a model from a local checkpoint; nothing is ever downloaded.

Accepted files (always read with ``torch.load(weights_only=True)``): a plain state dict, a dict
holding one under ``state_dict`` or ``model``, or a radfair checkpoint (``modules.model``). Keys
may carry a ``module.`` prefix (DataParallel). A first convolution saved for 3-channel (RGB) input
is summed over its channel axis when the model reads 1-channel radiographs, the usual way of
reusing ImageNet weights on grey images.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from ..errors import MISSING_FILE, RadfairInputError


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
        want = target.get(name)
        if want is None:
            continue
        if tensor.ndim == 4 and want.ndim == 4 and tensor.shape[1] == 3 and want.shape[1] == 1 and tensor.shape[0] == want.shape[0]:
            tensor = tensor.sum(dim=1, keepdim=True)
        if tensor.shape == want.shape:
            matched[name] = tensor
    if not matched:
        raise RadfairInputError(f"{path}: no tensor matches the model's parameters (expected a {type(model).__name__} state dict)")
    model.load_state_dict(matched, strict=False)
    return {"matched": len(matched), "model_tensors": len(target), "file_tensors": len(source)}

"""Compute cost of a model, counted with ``torch.utils.flop_counter``.

Two conventions, both reported: **MACs** (multiply-accumulates; what the embeddings paper calls
"2.83 GFLOPs" for DenseNet-121 at 224²) and **FLOPs** = 2 x MACs for matmuls and convolutions (what
``FlopCounterMode`` counts: 5.67 GFLOPs for the same forward pass). Training FLOPs are counted on one
real forward + backward step (roughly 3x the forward; less when the input needs no gradient).
"""

from __future__ import annotations

import torch
from torch.utils.flop_counter import FlopCounterMode


def count_flops(model: torch.nn.Module, example: torch.Tensor) -> dict[str, float]:
    """Per-sample forward FLOPs/MACs and training (forward + backward) FLOPs/MACs, and the parameter count."""
    batch = example.shape[0]
    model.eval()
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(example)
    forward = counter.get_total_flops() / batch
    model.train()
    with FlopCounterMode(display=False) as counter:
        model(example).float().sum().backward()
    model.zero_grad(set_to_none=True)
    train = counter.get_total_flops() / batch
    return {"parameters": int(sum(p.numel() for p in model.parameters())), "forward_flops": forward,
            "forward_macs": forward / 2, "train_flops": train, "train_macs": train / 2}

"""Training throughput of the paper's models on a chosen device (the GPU runs of the throughput table).

DenseNet-121 (MONAI, 14 outputs) at 224², batch 48 (the embeddings paper's settings) and the embeddings MLP at
batch 48, each trained with radfair's own step and batch source, timed after a warm-up; medians of ``--repeats``.

    python benchmarks/bench_device.py --device cuda [--repeats 3] [--steps 20]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from radfair.models import build_classifier
from radfair.training import ClassifierStep, OptimConfig, make_optimizer
from radfair.training.inputs import EmbeddingBatches, ImageBatches


def samples_per_s(model_name: str, device: str, steps: int, batch: int = 48, size: int = 224) -> float:
    torch.manual_seed(0)
    model = build_classifier(model_name, 14).to(device)
    step = ClassifierStep(model, make_optimizer(model.parameters(), OptimConfig()))
    y = (torch.rand(batch * (steps + 1), 14) < 0.2).float()
    if model_name == "mlp":
        batches = EmbeddingBatches(torch.randn(batch * (steps + 1), 1376), y, batch, shuffle=True, seed=0)
    else:
        images = (torch.rand(batch * (steps + 1), size, size) * 255).to(torch.uint8).numpy()
        batches = ImageBatches(images, y, batch, shuffle=True, seed=0, device=device)
    model.train()
    it = batches.epoch(0)
    first = next(it)
    step.train_step({k: v.to(device) if torch.is_tensor(v) else v for k, v in first.items()})  # warm-up
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    start, seen = time.perf_counter(), 0
    for b in it:
        step.train_step({k: v.to(device) if torch.is_tensor(v) else v for k, v in b.items()})
        seen += b["size"]
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return seen / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--steps", type=int, default=20)
    args = parser.parse_args()
    name = torch.cuda.get_device_name(0) if args.device.startswith("cuda") else "cpu"
    print(f"device {args.device} ({name}), torch {torch.__version__}")
    for model_name in ("densenet121", "mlp"):
        rates = [samples_per_s(model_name, args.device, args.steps) for _ in range(args.repeats)]
        print(f"{model_name}: median {statistics.median(rates):,.0f} training samples/s (batch 48"
              f"{', 224²' if model_name != 'mlp' else ''}; runs {', '.join(f'{r:,.0f}' for r in rates)})")


if __name__ == "__main__":
    main()

"""Training throughput, side by side in one run (medians of several repeats; ratios are what count).

* MLP (the embeddings paper's head, 1376 -> 768 -> 256 -> 14) samples/s at batch 48 and 1024:
  radfair's loop (``radfair.training.fit`` with index-built batches) against a plain
  ``DataLoader(TensorDataset)`` loop with the same model, optimiser and loss.
* The machine's fp32 matmul peak, measured now (GFLOP/s of a large square matmul), and the MLP's
  achieved GFLOP/s at batch 1024 as a share of it. Training FLOPs per sample are counted with
  ``torch.utils.flop_counter`` on one real training step (forward + backward as executed).
* MONAI DenseNet-121 training images/s at 64² and 224² (batch 16).
* 5 seeds of the MLP at batch 48 (Study 1's embeddings arm): ``fit`` five times one after another against one
  ``fit`` of the seeds trained together (:class:`radfair.models.StackedHead`); samples/s = seeds x training samples
  over the training seconds of the epochs (validation excluded), interleaved repeats, medians.

Run: ``.venv/bin/python benchmarks/bench_train.py [--repeats 5] [--quick]``.
"""

from __future__ import annotations

import argparse
import math
import statistics
import tempfile
import time
from pathlib import Path

import torch
from torch.utils.data import DataLoader, TensorDataset
from torch.utils.flop_counter import FlopCounterMode

from radfair.models import StackedHead, build_classifier
from radfair.training import ClassifierStep, LoopConfig, OptimConfig, fit, make_optimizer, masked_bce
from radfair.training.inputs import EmbeddingBatches, ImageBatches, MemberBatches
from radfair.training.steps import EnsembleClassifierStep


def data(n: int, d: int = 1376, labels: int = 14, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=g)
    y = (torch.rand(n, labels, generator=g) < 0.2).float()
    return x, y


def plain_loop(x, y, batch: int, epochs: int, radfair_optimizer: bool = False) -> float:
    """The loop a user writes: DataLoader(TensorDataset), torch.optim.Adam defaults, BCEWithLogitsLoss.

    ``radfair_optimizer`` swaps in radfair's optimiser (fused Adam) to separate the two sources of speed."""
    torch.manual_seed(0)
    model = build_classifier("mlp", y.shape[1])
    if radfair_optimizer:
        opt = make_optimizer(model.parameters(), OptimConfig())
    else:
        opt = torch.optim.Adam(model.parameters(), lr=1e-4, weight_decay=1e-5)
    criterion = torch.nn.BCEWithLogitsLoss()
    loader = DataLoader(TensorDataset(x, y), batch_size=batch, shuffle=True, drop_last=True,
                        generator=torch.Generator().manual_seed(0))
    model.train()
    start = time.perf_counter()
    seen = 0
    for _ in range(epochs):
        for xb, yb in loader:
            opt.zero_grad()
            loss = criterion(model(xb), yb)
            loss.backward()
            opt.step()
            seen += len(xb)
    return seen / (time.perf_counter() - start)


def radfair_loop(x, y, batch: int, epochs: int) -> float:
    torch.manual_seed(0)
    model = build_classifier("mlp", y.shape[1])
    step = ClassifierStep(model, make_optimizer(model.parameters(), OptimConfig()))
    train = EmbeddingBatches(x, y, batch, shuffle=True, seed=0)
    val = EmbeddingBatches(x[:batch * 2], y[:batch * 2], 1024, shuffle=False)
    with tempfile.TemporaryDirectory() as tmp:
        result = fit(step, train, val, LoopConfig(epochs=epochs, patience=None, checkpoint_minutes=0), Path(tmp),
                     progress=False, log=lambda m: None)
    return statistics.median(row["samples_per_s"] for row in result.history)


def seeds_samples_per_s(x, y, seeds: list[int], *, together: bool, batch: int = 48, epochs: int = 1) -> tuple[float, float]:
    """(samples/s, samples per CPU-second) of ``len(seeds)`` MLPs trained with ``fit``: one fit per seed, or one fit of all
    seeds together. Samples count every seed's (seeds x training samples); seconds are the epochs' training seconds
    (validation excluded); CPU-seconds are this process's CPU time over the whole fits (validation included: 1,024 rows
    per epoch, about 1%), a measure that other jobs on the machine disturb far less than wall time."""
    val_x, val_y = x[:1024], y[:1024]
    config = LoopConfig(epochs=epochs, patience=None, checkpoint_minutes=0)
    models = []
    for seed in seeds:
        torch.manual_seed(seed)
        models.append(build_classifier("mlp", y.shape[1]))
    seconds, cpu = 0.0, time.process_time()
    with tempfile.TemporaryDirectory() as tmp:
        if together:
            model = StackedHead(models)
            step = EnsembleClassifierStep(model, make_optimizer(model.parameters(), OptimConfig()), [f"seed{s}" for s in seeds])
            result = fit(step, MemberBatches(x, y, batch, seeds=seeds), EmbeddingBatches(val_x, val_y, 1024, shuffle=False),
                         config, Path(tmp), progress=False, log=lambda m: None)
            seconds = sum(row["train_seconds"] for row in result.history)
        else:
            for seed, model in zip(seeds, models, strict=True):
                step = ClassifierStep(model, make_optimizer(model.parameters(), OptimConfig()))
                result = fit(step, EmbeddingBatches(x, y, batch, shuffle=True, seed=seed), EmbeddingBatches(val_x, val_y, 1024, shuffle=False),
                             config, Path(tmp) / str(seed), progress=False, log=lambda m: None)
                seconds += sum(row["train_seconds"] for row in result.history)
    cpu = time.process_time() - cpu
    trained = len(seeds) * epochs * (len(y) // batch) * batch
    return trained / seconds, trained / cpu


def matmul_peak(n: int = 2048, repeats: int = 10) -> float:
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        a @ b
        times.append(time.perf_counter() - start)
    return 2 * n**3 / min(times) / 1e9


def train_flops_per_sample(batch: int = 1024) -> float:
    x, y = data(batch)
    model = build_classifier("mlp", 14)
    with FlopCounterMode(display=False) as counter:
        masked_bce(model(x), y).backward()
    return counter.get_total_flops() / batch


def densenet_images_per_s(size: int, batch: int = 16, steps: int = 6) -> float:
    torch.manual_seed(0)
    model = build_classifier("densenet121", 14)
    step = ClassifierStep(model, make_optimizer(model.parameters(), OptimConfig()))
    images = (torch.rand(batch * steps, size, size) * 255).to(torch.uint8).numpy()
    y = (torch.rand(batch * steps, 14) < 0.2).float()
    batches = ImageBatches(images, y, batch, shuffle=True, seed=0)
    model.train()
    it = batches.epoch(0)
    step.train_step(next(it))  # warm-up
    start, seen = time.perf_counter(), 0
    for b in it:
        step.train_step(b)
        seen += b["size"]
    return seen / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="skip DenseNet-121 at 224²")
    parser.add_argument("--only-seeds", action="store_true", help="only the 5-seed comparison (sequential vs together)")
    parser.add_argument("--threads", type=int, default=0, help="intra-op threads (default: torch's)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.only_seeds:
        seeds_table(args.repeats)
        return
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    peak = statistics.median(matmul_peak() for _ in range(3))
    flops = train_flops_per_sample()
    print(f"fp32 matmul peak (2048², best of 10, median of 3): {peak:.1f} GFLOP/s; MLP training FLOPs/sample (counted): {flops / 1e6:.2f} M")
    x, y = data(20_000)
    rows = []
    for batch, epochs in ((48, 1), (1024, 3)):
        plain, plain_fused, ours = [], [], []
        for _ in range(args.repeats):  # interleaved, so drifting machine load hits all three alike
            plain.append(plain_loop(x, y, batch, epochs))
            plain_fused.append(plain_loop(x, y, batch, epochs, radfair_optimizer=True))
            ours.append(radfair_loop(x, y, batch, epochs))
        rows.append((batch, *(statistics.median(v) for v in (plain, plain_fused, ours))))
    print("\n| MLP batch | plain loop samples/s | plain loop + radfair optimiser | radfair samples/s | radfair / plain "
          "| radfair GFLOP/s | % of matmul peak |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for batch, plain, plain_fused, ours in rows:
        gflops = ours * flops / 1e9
        print(f"| {batch} | {plain:,.0f} | {plain_fused:,.0f} | {ours:,.0f} | {ours / plain:.2f}x | {gflops:.1f} | {100 * gflops / peak:.0f}% |")
    print("\n| DenseNet-121 (batch 16) | train images/s |")
    print("| --- | --- |")
    for size in (64,) if args.quick else (64, 224):
        steps = 6 if size == 64 else 3
        ips = statistics.median(densenet_images_per_s(size, steps=steps) for _ in range(3 if size == 64 else 2))
        print(f"| {size}x{size} | {ips:.1f} |")
    seeds_table(args.repeats)


def seed_step_ms(seeds: list[int], *, together: bool, steps: int = 15) -> float:
    """Fastest of ``steps`` training steps (forward, backward, fused Adam) of every seed, in ms, on random data."""
    models = []
    for seed in seeds:
        torch.manual_seed(seed)
        models.append(build_classifier("mlp", 14))
    x, y = torch.randn(len(seeds), 48, 1376), (torch.rand(len(seeds), 48, 14) < 0.2).float()
    if together:
        model = StackedHead(models)
        stepper = EnsembleClassifierStep(model, make_optimizer(model.parameters(), OptimConfig()), [f"seed{s}" for s in seeds])
        run = lambda: stepper.train_step({"x": x, "y": y})  # noqa: E731
    else:
        singles = [ClassifierStep(m, make_optimizer(m.parameters(), OptimConfig())) for m in models]
        run = lambda: [s.train_step({"x": x[i], "y": y[i]}) for i, s in enumerate(singles)]  # noqa: E731
    run()
    best = math.inf
    for _ in range(steps):
        start = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - start)
    return 1e3 * best


def seeds_table(repeats: int, n: int = 9_600) -> None:
    seeds = [0, 1, 2, 3, 4]
    steps = {False: [], True: []}
    for _ in range(4):
        for together in steps:
            steps[together].append(seed_step_ms(seeds, together=together))
    print(f"\none step of 5 seeds at batch 48, fastest of 15, 4 interleaved rounds, {torch.get_num_threads()} threads: "
          f"sequential {min(steps[False]):.2f} ms, together {min(steps[True]):.2f} ms ({min(steps[False]) / min(steps[True]):.2f}x)")
    x, y = data(n)
    runs: dict[str, list[tuple[float, float]]] = {"sequential: fit x 5": [], "together: one fit (StackedHead)": []}
    for _ in range(repeats):  # interleaved: drifting machine load hits both alike
        for name, together in zip(runs, (False, True), strict=True):
            runs[name].append(seeds_samples_per_s(x, y, seeds, together=together))
    print(f"\n5 seeds of the MLP, batch 48, {n:,} samples x 1 epoch each, {torch.get_num_threads()} threads, {repeats} interleaved "
          "repeats (samples = seeds x samples)")
    print("| 5 seeds at batch 48 | median samples/s | ratio | median samples per CPU-second | ratio | samples/s per repeat |")
    print("| --- | --- | --- | --- | --- | --- |")
    base = [statistics.median(v[i] for v in runs["sequential: fit x 5"]) for i in (0, 1)]
    for name, values in runs.items():
        wall, cpu = (statistics.median(v[i] for v in values) for i in (0, 1))
        print(f"| {name} | {wall:,.0f} | {wall / base[0]:.2f}x | {cpu:,.0f} | {cpu / base[1]:.2f}x | "
              f"{', '.join(f'{v[0]:,.0f}' for v in values)} |")


if __name__ == "__main__":
    main()

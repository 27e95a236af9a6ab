"""Benchmark: decoding real-size chest X-ray JPEGs to the network's size, before and after reduced-size decoding.

Generates ``--images`` JPEGs of 2,000-3,000 px (smooth anatomy-like fields plus mild acquisition noise, quality
95 as MIMIC-CXR-JPG), then reports, side by side in the same run (medians over ``--repeats``):

* images/s on one core: ``decode_image(path, size, reduced=False)`` (full decode, the code before issue 19)
  and ``decode_image(path, size)`` (JPEG DCT scaling first), and their ratio;
* scaling of :func:`radfair.training.inputs.image_array` (the cache build): one worker against the process pool
  over every usable core, images/s and images/s per core.

* with ``--working-size N``: N working-size grey PNGs (256 x 256, noisy as low-dose images), read in shuffled
  batches of 32 as a reconstructor reads them: from their files (:class:`radfair.training.inputs.FileImages`, no
  copy) against the image cache's memmap (:class:`radfair.training.inputs.CachedImages`, built beforehand, not timed).

    python benchmarks/bench_preprocess.py [--images 24] [--size 224] [--repeats 5] [--working-size 2048]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from radfair.training import inputs
from radfair.training.inputs import decode_image, image_array, usable_cores


def write_jpegs(folder: Path, n: int, seed: int = 0) -> list[str]:
    rng = np.random.default_rng(seed)
    paths = []
    for i in range(n):
        height, width = int(rng.integers(2000, 3001)), int(rng.integers(2000, 3001))
        coarse = Image.fromarray(rng.random((48, 48)).astype(np.float32), mode="F").resize((width, height), Image.BICUBIC)
        field = 0.3 + 0.4 * np.clip(np.asarray(coarse), 0, 1) + rng.normal(0, 0.01, (height, width))
        path = folder / f"cxr{i:03d}.jpg"
        Image.fromarray((np.clip(field, 0, 1) * 255).astype(np.uint8)).save(path, quality=95)
        paths.append(str(path))
    return paths


def median_rate(work, n: int, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    return n / statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=24)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--working-size", type=int, default=0, metavar="N", help="only the working-size PNG read benchmark")
    args = parser.parse_args()
    if args.working_size:
        working_size_reads(args.working_size, args.repeats)
        return
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        paths = write_jpegs(folder, args.images)
        mb = sum(Path(p).stat().st_size for p in paths) / len(paths) / 1e6
        print(f"{len(paths)} JPEGs, 2,000-3,000 px, mean {mb:.2f} MB, to {args.size}x{args.size}; medians of {args.repeats}")
        full = median_rate(lambda: [decode_image(p, args.size, reduced=False) for p in paths], len(paths), args.repeats)
        reduced = median_rate(lambda: [decode_image(p, args.size) for p in paths], len(paths), args.repeats)
        floor = median_rate(lambda: [_entropy_decode(p, args.size) for p in paths], len(paths), args.repeats)
        print("\n| decoding (one core) | images/s/core | ratio |\n| --- | --- | --- |")
        print(f"| full decode + resize (before) | {full:.1f} | 1.00 |")
        print(f"| reduced-size decode + resize (after) | {reduced:.1f} | {reduced / full:.2f} |")
        print(f"| libjpeg alone at the same reduced scale (the floor: Huffman decoding) | {floor:.1f} | {floor / full:.2f} |")

        cores = usable_cores()
        cohort = pd.DataFrame({"path": paths})
        rates = {}
        for kind, workers in [("threads", 1), ("threads", cores), ("process pool", cores)]:
            def build(kind=kind, workers=workers):
                run = time.perf_counter_ns()
                path = folder / f"cohort-{workers}-{run}.parquet"
                cohort.assign(run=run).to_parquet(path)
                os.environ["RADFAIR_CACHE"] = str(folder / f"cache-{kind}-{workers}-{run}")  # a cold cache each repeat
                inputs.PROCESS_POOL_FROM = 1 if kind == "process pool" else 10**12
                image_array(cohort, path, args.size, threads=workers, progress=False)
            rates[(kind, workers)] = median_rate(build, len(paths), args.repeats)
        print("\n| cache build (image_array) | workers | images/s | images/s/core | scaling |\n| --- | --- | --- | --- | --- |")
        for (kind, workers), rate in rates.items():
            print(f"| {kind} | {workers} | {rate:.1f} | {rate / workers:.1f} | {rate / rates[('threads', 1)]:.2f} |")


def working_size_reads(n: int, repeats: int, size: int = 256, batch: int = 32) -> None:
    """Shuffled batches of working-size PNGs: read from the files (FileImages) vs from the cache (CachedImages)."""
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        paths = []
        for i in range(n):
            base = Image.fromarray(rng.random((16, 16)).astype(np.float32), mode="F").resize((size, size), Image.BICUBIC)
            noisy = np.clip(0.3 + 0.4 * np.asarray(base) + rng.normal(0, 0.05, (size, size)), 0, 1)
            path = folder / f"w{i:05d}.png"
            Image.fromarray((noisy * 255).astype(np.uint8)).save(path)
            paths.append(str(path))
        cohort = pd.DataFrame({"path": paths})
        os.environ["RADFAIR_CACHE"] = str(folder / "cache")
        files = image_array(cohort, folder / "pairs.parquet", size, progress=False)
        assert isinstance(files, inputs.FileImages)
        decoded = inputs._decode_in_memory(paths, size, 2, False)  # the decoded pixels, as the cache holds them
        shard = folder / "shard.npy"
        np.save(shard, decoded)
        cached = inputs.CachedImages([np.load(shard, mmap_mode="r")], np.zeros(n, np.int64), np.arange(n), size)
        order = rng.permutation(n)
        batches = [order[k:k + batch] for k in range(0, n - batch + 1, batch)]
        assert np.array_equal(files[batches[0]], cached[batches[0]])
        rate_files = median_rate(lambda: [files[b] for b in batches], len(batches) * batch, repeats)
        rate_cache = median_rate(lambda: [cached[b] for b in batches], len(batches) * batch, repeats)
        mb = sum(Path(p).stat().st_size for p in paths) / n / 1e3
        print(f"{n} PNGs {size}x{size} (mean {mb:.0f} kB; raw {size * size / 1e3:.0f} kB), shuffled batches of {batch}, "
              f"{files.threads} threads; medians of {repeats}")
        print("\n| read | images/s | ms per batch of 32 |\n| --- | --- | --- |")
        for name, rate in (("from the PNG files (FileImages, no copy)", rate_files), ("from the cache memmap (CachedImages)", rate_cache)):
            print(f"| {name} | {rate:,.0f} | {batch / rate * 1e3:.2f} |")


def _entropy_decode(path: str, size: int) -> None:
    """libjpeg alone: decode at the reduced scale ``read_gray`` picks, no conversion, no resize."""
    with Image.open(path) as image:
        image.draft(image.mode, (size, size))
        image.load()


if __name__ == "__main__":
    main()

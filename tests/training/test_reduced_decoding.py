"""Reduced-size JPEG decoding (DCT scaling) equals the full decode within the resize's own error; the process pool
gives the same cache as the threads."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from radfair.readers import read_gray
from radfair.training import inputs
from radfair.training.inputs import decode_image, image_array


def radiograph(path, height: int, width: int, rgb: bool = False, seed: int = 0):
    """A smooth chest-like image with edges and mild noise, saved as JPEG (quality 95, as MIMIC-CXR-JPG)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width] / max(height, width)
    image = 0.45 + 0.25 * np.exp(-((x - 0.3) ** 2 + (y - 0.5) ** 2) / 0.05) + 0.25 * np.exp(-((x - 0.7) ** 2 + (y - 0.5) ** 2) / 0.05)
    image += 0.05 * np.sin(40 * y) * (x > 0.2) + 0.1 * (x > 0.9) + rng.normal(0, 0.01, (height, width))
    grey = (np.clip(image, 0, 1) * 255).astype(np.uint8)
    Image.fromarray(np.stack([grey] * 3, -1) if rgb else grey).save(path, quality=95)
    return path


@pytest.mark.parametrize(("height", "width", "rgb", "size"), [(2400, 2000, False, 224), (3000, 2500, True, 256),
                                                             (2048, 2500, False, 512)])
def test_reduced_decoding_equals_full_within_the_resizes_own_error(tmp_path, height, width, rgb, size):
    path = radiograph(tmp_path / "x.jpg", height, width, rgb)
    full = decode_image(str(path), size, reduced=False).astype(int)
    reduced = decode_image(str(path), size).astype(int)
    # the resize's own error: the same full-resolution image resized by area averaging instead of bilinear
    grey = read_gray(path)
    area = (np.clip(np.asarray(Image.fromarray(grey, mode="F").resize((size, size), Image.BOX)), 0, 1) * 255 + 0.5).astype(int)
    assert reduced.shape == full.shape == (size, size)
    # (or half a grey level, the uint8 quantisation's own error, on images so smooth that both resizes agree)
    assert np.abs(reduced - full).mean() <= max(np.abs(area - full).mean(), 0.5)
    assert np.abs(reduced - full).max() <= 8  # 3 % of the range at worst, on edges


def test_reduced_decoding_never_goes_below_the_target_and_skips_small_or_png_images(tmp_path):
    path = radiograph(tmp_path / "x.jpg", 2400, 2000)
    assert min(read_gray(path, at_least=224).shape) >= 224
    assert read_gray(path, at_least=224).shape == (300, 250)  # 1/8 scale
    small = radiograph(tmp_path / "s.jpg", 400, 300)
    assert read_gray(small, at_least=224).shape == (400, 300)  # less than twice the target: full size
    png = tmp_path / "x.png"
    Image.open(path).save(png)
    assert read_gray(png, at_least=224).shape == (2400, 2000)


def test_process_pool_builds_the_same_cache_as_threads(tmp_path, monkeypatch):
    paths = [str(radiograph(tmp_path / f"{i}.jpg", 600, 500, seed=i)) for i in range(6)]
    cohort = pd.DataFrame({"path": paths})
    cohort.to_parquet(tmp_path / "a.parquet")
    threads = np.array(image_array(cohort, tmp_path / "a.parquet", 64, progress=False))
    monkeypatch.setattr(inputs, "PROCESS_POOL_FROM", 1)
    monkeypatch.setattr(inputs, "usable_cores", lambda: 2)
    monkeypatch.setenv("RADFAIR_CACHE", str(tmp_path / "other-cache"))  # another cache folder: decoded again
    processes = np.array(image_array(cohort, tmp_path / "a.parquet", 64, progress=False))
    np.testing.assert_array_equal(processes, threads)

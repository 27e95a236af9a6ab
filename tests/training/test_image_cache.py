"""One image cache per (image, size, preprocessing), shared by every cohort, run and study that names the image."""

import os

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from radfair.errors import RadfairInputError
from radfair.training import inputs
from radfair.training.inputs import cache_bytes, decode_image, image_array, image_cache_root


def _images(folder, n, seed=0):
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        path = folder / f"img{i}.png"
        Image.fromarray(rng.integers(0, 255, (40, 36), dtype=np.uint8)).save(path)
        paths.append(str(path))
    return paths


def test_overlapping_cohorts_share_rows_and_decode_each_image_once(tmp_path, monkeypatch):
    study = tmp_path / "study"
    (study / "runs").mkdir(parents=True)
    (study / "data").mkdir()
    paths = _images(tmp_path / "imgs", 10)
    mimic, chexpert = pd.DataFrame({"path": paths[:6]}), pd.DataFrame({"path": paths[4:]})
    union = pd.DataFrame({"path": paths[::-1]})  # "ALL": both, in another order
    decoded = []
    real = inputs.decode_chunk
    monkeypatch.setattr(inputs, "decode_chunk", lambda p, size: decoded.extend(p) or real(p, size))
    a = image_array(mimic, study / "data" / "mimic.parquet", 16, progress=False)
    b = image_array(chexpert, study / "data" / "chexpert.parquet", 16, progress=False)
    c = image_array(union, study / "data" / "all.parquet", 16, progress=False)
    assert sorted(decoded) == sorted(paths)  # every image decoded exactly once over the three cohorts
    assert image_cache_root(study / "data" / "all.parquet") == study / "image-cache"
    assert image_cache_root(study / "runs" / "abc123" / "pairs.parquet") == study / "image-cache"  # never inside a run
    expected = np.stack([decode_image(p, 16) for p in paths])
    np.testing.assert_array_equal(np.asarray(c), expected[::-1])
    np.testing.assert_array_equal(a[np.array([5, 0, 2])], expected[[5, 0, 2]])
    np.testing.assert_array_equal(b[1:3], expected[5:7])
    assert len(c) == 10 and c.shape == (10, 16, 16) and c[3].shape == (16, 16)
    assert cache_bytes(study / "image-cache") < 10 * 16 * 16 + 3 * 256  # ten images' pixels, one copy (+ npy headers)


def test_a_rewritten_image_is_decoded_again_and_a_missing_one_is_named(tmp_path):
    paths = _images(tmp_path / "imgs", 3)
    cohort = pd.DataFrame({"path": paths})
    first = np.asarray(image_array(cohort, tmp_path / "c.parquet", 16, progress=False)).copy()
    Image.fromarray(np.zeros((40, 36), np.uint8)).save(paths[1])
    os.utime(paths[1], ns=(10**18, 10**18))
    second = np.asarray(image_array(cohort, tmp_path / "c.parquet", 16, progress=False))
    assert (second[1] == 0).all() and np.array_equal(second[[0, 2]], first[[0, 2]])
    with pytest.raises(RadfairInputError, match="missing.png: file not found"):
        image_array(pd.DataFrame({"path": [str(tmp_path / "missing.png")]}), tmp_path / "c.parquet", 16, progress=False)


def test_images_read_once_are_decoded_like_the_cache_but_never_cached(tmp_path):
    """persist=False (a reconstruction scored once): the cache's pixels, in memory, with nothing written to the cache."""
    study = tmp_path / "study"
    (study / "runs").mkdir(parents=True)
    (study / "data").mkdir()
    paths = _images(tmp_path / "imgs", 300)  # more than one decoding chunk of 256
    cohort, table = pd.DataFrame({"path": paths}), study / "data" / "recon.parquet"
    once = image_array(cohort, table, 16, progress=False, persist=False)
    assert isinstance(once, np.ndarray) and once.shape == (300, 16, 16) and once.dtype == np.uint8
    assert not (study / "image-cache").exists()
    np.testing.assert_array_equal(once, np.asarray(image_array(cohort, table, 16, progress=False)))
    os.remove(paths[3])
    with pytest.raises(RadfairInputError, match="img3.png"):
        image_array(cohort, table, 16, progress=False, persist=False)


def test_runs_clean_knows_the_image_cache(tmp_path):
    from typer.testing import CliRunner

    from radfair.cli import app

    study = tmp_path / "study"
    (study / "runs").mkdir(parents=True)
    paths = _images(tmp_path / "imgs", 4)
    image_array(pd.DataFrame({"path": paths}), study / "data.parquet", 16, progress=False)
    partial = study / "image-cache" / "16px-x" / "shard-abc.partial.npy"
    partial.parent.mkdir(parents=True)
    partial.write_bytes(b"x" * 100)
    r = CliRunner().invoke(app, ["runs", "clean", str(study / "runs")])
    assert r.exit_code == 0 and "unfinished shards" in r.output and not partial.exists()
    assert cache_bytes(study / "image-cache") > 0
    embeddings = study / "data" / "embedding-cache" / "mimic-abc.vectors.npy"
    embeddings.parent.mkdir(parents=True)
    embeddings.write_bytes(b"x" * 100)
    r = CliRunner().invoke(app, ["runs", "clean", str(study / "runs"), "--caches"])
    assert r.exit_code == 0 and "the whole cache" in r.output and not (study / "image-cache").exists()
    assert "the embedding cache" in r.output and not embeddings.parent.exists()


def test_pixel_scalings_standard_and_torchxrayvision():
    """xrv is TorchXRayVision's normalize(img, 255): (2 img / 255 - 1) * 1024, values in [-1024, 1024]."""
    import torch

    from radfair.training.inputs import ImageBatches, scale_pixels

    grey = np.array([[[0, 51, 255]]], dtype=np.uint8)
    expected_xrv = (2 * grey.astype(np.float64) / 255 - 1) * 1024
    for scaling, expected in (("xrv", expected_xrv), ("standard", (grey / 255 - 0.5) / 0.25)):
        batch = next(ImageBatches(grey, torch.zeros(1, 0), 1, shuffle=False, scaling=scaling).epoch(0))
        np.testing.assert_allclose(batch["x"].numpy()[0, 0], expected[0], rtol=1e-6)
    assert scale_pixels(torch.tensor([0.0, 1.0]), "xrv").tolist() == [-1024.0, 1024.0]


def test_store_vectors_read_each_image_once_per_cache_folder(tmp_path, monkeypatch):
    """MIMIC's store is one TFRecord per image: a study's data preparation and its MIMIC and ALL cohorts share one
    cache, so every vector is read from the store once; rows without a vector are asked again (never cached)."""
    read = []

    def fake_store(cohort, root):
        read.extend(cohort["image_id"])
        ids = cohort["image_id"].astype(str)
        found = ~ids.str.endswith("x").to_numpy()
        vectors = np.stack([np.full(4, float(int(i.strip("mcx"))), np.float32) for i in ids])
        return vectors * found[:, None], found

    monkeypatch.setattr(inputs, "load_cohort_embeddings", fake_store)
    store = tmp_path / "store"
    store.mkdir()
    mimic = pd.DataFrame({"dataset": "mimic", "image_id": ["m1", "m2", "m3x", "m4"]})
    vectors, found = inputs.store_vectors(mimic, store, tmp_path / "cache")
    assert read == ["m1", "m2", "m3x", "m4"] and found.tolist() == [True, True, False, True]
    both = pd.DataFrame({"dataset": ["chexpert", "mimic", "mimic", "mimic"], "image_id": ["c7", "m4", "m1", "m3x"]})
    read.clear()
    vectors, found = inputs.store_vectors(both, store, tmp_path / "cache")
    assert read == ["c7", "m3x"]  # the new dataset's row and the row that had no vector; m1 and m4 come from the cache
    assert vectors[:, 0].tolist() == [7.0, 4.0, 1.0, 0.0] and found.tolist() == [True, True, True, False]
    matrix, mask = inputs.embedding_matrix(both, tmp_path / "cache" / ".." / "split_all.parquet", store)
    assert np.array_equal(matrix, vectors) and np.array_equal(mask, found)


def test_grey_pngs_already_at_the_size_are_read_from_their_files_not_cached(tmp_path):
    """Study 2's working-size PNGs: a FileImages view (rows decoded per batch) with the cache's pixels, no cache written."""
    study = tmp_path / "study"
    (study / "runs").mkdir(parents=True)
    (study / "data").mkdir()
    rng = np.random.default_rng(1)
    paths = []
    for i in range(40):
        path = tmp_path / "work" / f"w{i}.png"
        path.parent.mkdir(exist_ok=True)
        Image.fromarray(rng.integers(0, 255, (24, 24), dtype=np.uint8)).save(path)
        paths.append(str(path))
    cohort, table = pd.DataFrame({"path": paths}), study / "data" / "pairs.parquet"
    view = image_array(cohort, table, 24, progress=False)
    assert isinstance(view, inputs.FileImages) and view.shape == (40, 24, 24) and len(view) == 40
    assert not (study / "image-cache").exists()
    expected = np.stack([np.asarray(Image.open(p)) for p in paths])  # lossless: the files' own pixels
    np.testing.assert_array_equal(np.asarray(view), expected)
    rows = np.array([39, 0, 7, 7, 12, 3, 30, 1, 2, 5, 8, 9])  # repeated and unordered rows, split across threads
    np.testing.assert_array_equal(view[rows], expected[rows])
    np.testing.assert_array_equal(view[5:9], expected[5:9])
    np.testing.assert_array_equal(view[np.array([4])], expected[[4]])
    assert view[np.array([], dtype=int)].shape == (0, 24, 24)
    np.testing.assert_array_equal(view[3], expected[3])
    cached = image_array(cohort, table, 16, progress=False)  # another size: decoded and resized once, into the cache
    assert isinstance(cached, inputs.CachedImages) and (study / "image-cache").exists()
    os.remove(paths[3])
    with pytest.raises(RadfairInputError, match="w3.png"):
        image_array(cohort, table, 24, progress=False)

"""`train-reconstructor` runs on the paired images written by `radfair degrade xray`."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from radfair.degradation.run import degrade_xray
from radfair.execution import RunSpec, execute
from radfair.training.checkpoint import load_checkpoint
from radfair.training.reconstruct_run import RECONSTRUCT, ReconstructorRunConfig


@pytest.fixture(scope="module")
def degraded(split_all, tmp_path_factory):
    folder = tmp_path_factory.mktemp("degraded")
    cohort = pd.read_parquet(split_all)
    small = pd.concat([g.head(24 if name == "train" else 8) for name, g in cohort[cohort["dataset"] == "chexpert"].groupby("split")])
    small.to_parquet(folder / "cohort.parquet")
    degrade_xray(folder / "cohort.parquet", folder / "out", [3000.0], size=32, batch=16)
    return folder


@pytest.mark.parametrize("kind", ["unet", "pix2pix", "irsde"])
def test_each_reconstructor_trains_as_a_run_and_beats_nothing_worse_than_its_start(kind, degraded, tmp_path):
    config = ReconstructorRunConfig(
        degraded=str(degraded / "out" / "degraded.parquet"), level="xray_physical_3000", split_cohort=str(degraded / "cohort.parquet"),
        reconstructor={"kind": kind, "widths": [8, 16], "bottleneck": 32, "disc_widths": [8, 16, 32], "sde_steps": 5, "time_dim": 16,
                       "optim": {"lr": 1e-3, "weight_decay": 0.0}},
        image_size=32, batch_size=8, loop={"epochs": 2, "patience": None})
    spec = RunSpec("train-reconstructor", config.model_dump(mode="json"), {"degraded": config.degraded}, cpus=1)
    outcome = execute(spec, tmp_path / kind, progress=False)
    assert outcome.status == "done"
    history = pd.read_csv(tmp_path / kind / "history.csv")
    assert len(history) == 2 and history["val_loss"].notna().all()
    best = load_checkpoint(tmp_path / kind / "checkpoints" / "best.pt")
    assert best["epoch"] == int(history["val_loss"].idxmin()) + 1
    assert all(torch.isfinite(v).all() for v in best["modules"]["model"].values())
    recon = pd.read_parquet(tmp_path / kind / "reconstructed.parquet")
    assert set(recon["split"]) == {"test"} and len(recon) == 8  # only the scored split is written
    assert all(__import__("pathlib").Path(p).is_file() for p in recon["path"])
    assert recon["psnr"].notna().all() and recon["ssim"].between(-1, 1).all()
    assert execute(spec, tmp_path / kind, progress=False).status == "skipped"
    # a `reconstruct` run of the finished run writes the same images (same pairs, batches and sampling seeds)
    again = RECONSTRUCT.spec({"run": str(tmp_path / kind)}, device="cpu")
    assert execute(again, tmp_path / f"{kind}-again", progress=False).status == "done"
    redone = pd.read_parquet(tmp_path / f"{kind}-again" / "reconstructed.parquet")
    assert redone["image_id"].tolist() == recon["image_id"].tolist()
    np.testing.assert_allclose(redone["psnr"], recon["psnr"], rtol=1e-6)
    for a, b in zip(recon["path"], redone["path"], strict=True):
        np.testing.assert_array_equal(np.asarray(Image.open(a)), np.asarray(Image.open(b)))
    val = RECONSTRUCT.spec({"run": str(tmp_path / kind), "splits": ["val"]}, device="cpu")
    execute(val, tmp_path / f"{kind}-val", progress=False)
    assert set(pd.read_parquet(tmp_path / f"{kind}-val" / "reconstructed.parquet")["split"]) == {"val"}

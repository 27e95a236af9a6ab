"""Study 2's scoring runs reconstruct into scratch: the same scores and image quality as scoring stored reconstructions,
and nothing left on disk but a few examples."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from radfair.degradation.run import degrade_xray
from radfair.execution import RunSpec, execute
from radfair.execution.store import RunStore
from radfair.studies.reconstruction.scoring import predict_spec
from radfair.training.classify import predict_cohort, train
from radfair.training.reconstruct_run import ReconstructorRunConfig

RECON = {"kind": "unet", "widths": [4, 8], "bottleneck": 8, "optim": {"lr": 1e-3, "weight_decay": 0.0}}
LABELS = ["edema", "cardiomegaly"]


@pytest.fixture(scope="module")
def trained(split_all, tmp_path_factory):
    """A degraded set, a train-reconstructor run that also writes its test reconstructions (the old way, kept as the
    reference) and an image classifier."""
    folder = tmp_path_factory.mktemp("scoring")
    cohort = pd.read_parquet(split_all)
    small = pd.concat([g.head(16 if name == "train" else 8 if name == "val" else 12)
                       for name, g in cohort[cohort["dataset"] == "chexpert"].groupby("split")])
    small.to_parquet(folder / "cohort.parquet")
    degrade_xray(folder / "cohort.parquet", folder / "out", [3000.0], size=32, batch=16)
    store = RunStore(folder / "runs")
    config = ReconstructorRunConfig(degraded=str(folder / "out" / "degraded.parquet"), level="xray_physical_3000",
                                    split_cohort=str(folder / "cohort.parquet"), reconstructor=RECON, image_size=32, batch_size=8,
                                    loop={"epochs": 1, "patience": None})  # reconstruct_splits: the test split (default)
    recon = RunSpec("train-reconstructor", config.model_dump(mode="json"), {}, cpus=1)
    assert execute(recon, store.run_dir(recon), progress=False).status == "done"
    classifier = RunSpec("train-classifier", {}, {}, cpus=1)  # only its folder is named by the scoring spec
    outcome = train(store.run_dir(classifier), cohort=folder / "cohort.parquet", input="images", model="densenet121",
                    image_size=32, labels=LABELS, batch_size=8, cpus=1, progress=False, loop={"epochs": 1, "patience": None})
    assert outcome.status == "done"
    return folder, store, recon, classifier


def test_a_scoring_run_equals_scoring_the_stored_reconstructions_and_keeps_only_examples(trained):
    folder, store, recon, classifier = trained
    stored = pd.read_parquet(store.output(recon, "reconstructed"))  # written by the training run itself
    test_ids = sorted(stored["image_id"].astype(str))
    keep = [test_ids[-1]]
    spec = predict_spec(store, classifier, str(folder / "cohort.parquet"), recon, "cpu", "score", keep)
    run = store.run_dir(spec)
    assert execute(spec, run, progress=False).status == "done"

    # the old path: the classifier cohort with each test image replaced by the stored reconstruction, scored
    cohort = pd.read_parquet(folder / "cohort.parquet").drop(columns="path").merge(stored[["image_id", "path"]], on="image_id")
    cohort.to_parquet(folder / "old_cohort.parquet")
    old = predict_cohort(store.run_dir(classifier), folder / "old_cohort.parquet", folder / "old_scored.parquet", progress=False,
                         persist=False)
    new = pd.read_parquet(store.output(spec, "scored"))
    columns = [f"p_{k}" for k in LABELS]
    pd.testing.assert_frame_equal(new.sort_values("image_id").reset_index(drop=True)[["image_id", *columns]],
                                  old.sort_values("image_id").reset_index(drop=True)[["image_id", *columns]])

    quality = pd.read_parquet(store.output(spec, "reconstructed")).set_index("image_id")
    reference = stored.set_index("image_id").loc[quality.index]
    for metric in ("psnr", "ssim", "psnr_degraded", "ssim_degraded"):  # float32 sums: another thread count, ~1e-10 apart
        np.testing.assert_allclose(quality[metric].to_numpy(), reference[metric].to_numpy(), rtol=1e-7)
    kept = quality["path"].dropna()
    assert sorted(map(str, kept.index)) == sorted({test_ids[0], test_ids[-1]})  # the first test image and `keep`
    assert all(str(p).startswith(str(run / "examples")) for p in kept)
    assert sorted(p.name for p in (run / "examples").iterdir()) == sorted(p.split("/")[-1] for p in kept)
    assert not (run / "scratch").exists() and not (run / "reconstructed").exists()
    image_cache = folder / "runs" / ".." / "image-cache"
    assert not any("scratch" in str(p) for p in image_cache.rglob("*"))  # scored without entering the image cache

"""``train-mitigated-reconstructor`` on NIfTI volume pairs (UCSF-PDGM, reconstruction paper §3.5): the base MRI
reconstructor's slices, the frozen tumour segmenter (or slice classifier) downstream, whole volumes out."""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
import torch

from radfair.degradation.run import degrade_mri
from radfair.errors import RadfairInputError
from radfair.execution import RunSpec, execute
from radfair.mitigation import MitigatedReconstructorRunConfig
from radfair.training.checkpoint import load_checkpoint
from radfair.training.mri_downstream import run_spec
from radfair.training.reconstruct_run import RECONSTRUCT, ReconstructorRunConfig

RECON = {"kind": "unet", "widths": [4, 8], "bottleneck": 8, "optim": {"lr": 1e-3, "weight_decay": 0.0}}
# the paper's protocol on 8-slice volumes: train on every slice, score a fixed range whatever the mask
SLICES = {"size": 32, "train": {"include_empty": True}, "inference": {"include_empty": True, "slice_range": [2, 6]}}
ONCE = {"epochs": 1, "patience": None}


@pytest.fixture(scope="module")
def mri_finished(ucsf, tmp_path_factory):
    """Degraded volumes (R = 4), a finished train-reconstructor run on their slices, a finished tumour segmenter."""
    folder = tmp_path_factory.mktemp("mri-mitigation")
    degrade_mri(ucsf, folder / "degraded", [4.0])
    base = ReconstructorRunConfig(degraded=str(folder / "degraded" / "degraded.parquet"), level="mri_golden_angle_R4",
                                  split_cohort=str(ucsf), reconstructor=RECON, image_size=32, batch_size=8, loop=ONCE,
                                  volumes={"size": 32, "include_empty": True})
    assert execute(RunSpec("train-reconstructor", base.model_dump(mode="json"), {}, cpus=1), folder / "base",
                   progress=False).status == "done"
    segmenter = run_spec("train-segmenter", cpus=1, cohort=str(ucsf), widths=[8, 16], bottleneck=32, slices=SLICES, batch_size=4,
                         eval_batch_size=8, loop={"epochs": 2, "patience": None})
    assert execute(segmenter, folder / "segmenter", progress=False).status == "done"
    return folder, base


def _config(folder, base, strategy: str, weight: float = 1.0, epochs: int = 2, **fields) -> MitigatedReconstructorRunConfig:
    return MitigatedReconstructorRunConfig(
        **base.model_dump(exclude={"loop", "reconstruct_splits"}), base_run=str(folder / "base"),
        **({"segmenter_run": str(folder / "segmenter")} | fields),
        mitigation={"strategy": strategy, "weight": weight, "task_weight": weight, "attributes": ["sex"], "adversary_hidden": [8],
                    "task": "classification" if "classifier_run" in fields else "segmentation"},
        loop={"epochs": epochs, "patience": None, "monitor": "objective"})


def _execute(config, run):
    return execute(RunSpec("train-mitigated-reconstructor", config.model_dump(mode="json"), {}, cpus=1), run, progress=False)


def _reconstructed(run, folder) -> pd.DataFrame:
    """The test volumes of a finished mitigation run, written by a ``reconstruct`` run (the sweep runs write none)."""
    assert execute(RECONSTRUCT.spec({"run": str(run)}, cpus=1), folder, progress=False).status == "done"
    return pd.read_parquet(folder / "reconstructed.parquet")


@pytest.mark.parametrize("strategy", ["eodd", "adversarial"])
def test_segmenter_mitigation_writes_volumes_like_the_standard_run_and_validation_dice(mri_finished, tmp_path, strategy):
    folder, base = mri_finished
    config = _config(folder, base, strategy)
    run = tmp_path / strategy
    assert _execute(config, run).status == "done"
    history = pd.read_csv(run / "history.csv")
    assert len(history) == 2 and history["val_objective"].notna().all() and history["train_fair"].notna().all()
    best = load_checkpoint(run / "checkpoints" / "best.pt")
    assert best["epoch"] == int(history["val_objective"].idxmin()) + 1
    assert not (run / "reconstructed.parquet").exists() and not (run / "scratch").exists()  # validation volumes: scratch
    recon = _reconstructed(run, tmp_path / f"{strategy}-test")
    reference = pd.read_parquet(folder / "base" / "reconstructed.parquet")
    assert list(recon.columns) == list(reference.columns) and recon["image_id"].tolist() == reference["image_id"].tolist()
    for path, degraded in zip(recon["path"], recon["path_degraded"], strict=True):
        assert path.endswith(".nii.gz") and nib.load(path).shape == nib.load(degraded).shape
        assert nib.load(path).get_data_dtype() == np.uint16  # radfair.io.write_unit_volume, as the base run writes them
    validation = json.loads((run / "validation.json").read_text())
    assert validation["performance_key"] == "val_dice" and validation["fairness_key"] == "val_dice_gap"
    assert 0 <= validation["val_dice"] <= 1 and 0 <= validation["val_dice_gap"] <= 1 and validation["val_psnr"] > 0
    assert validation["task"] == "segmentation" and set(validation["dice_gap"]) == {"sex"}
    scored = pd.read_parquet(run / "validation_scores.parquet")  # as score-volumes scores them
    assert set(scored["split"]) == {"val"} and validation["val_dice"] == pytest.approx(scored["dice"].mean())
    assert "NaN" not in (run / "validation.json").read_text()
    assert _execute(config, run).status == "skipped"  # resumed: nothing retrains


def test_best_epoch_reconstructs_the_volumes(mri_finished, tmp_path, monkeypatch, last_weights):
    """REFERENCE.md bug 11: the "best" weights were the last. Make epoch 2 worse on validation by construction."""
    from radfair.training import loop
    from radfair.training.reconstruct_volumes import _quantised
    from radfair.training.reconstruction import build_reconstructor
    from radfair.training.volumes import unit_volume

    folder, base = mri_finished
    original, calls = loop.evaluate, {"n": 0}

    def worse_after_epoch_one(*args, **kwargs):
        means = original(*args, **kwargs)
        calls["n"] += 1
        return {**means, "objective": means["objective"] + (1000.0 if calls["n"] > 1 else 0.0)}

    monkeypatch.setattr(loop, "evaluate", worse_after_epoch_one)
    run = tmp_path / "run"
    config = _config(folder, base, "eodd", 50.0)
    assert _execute(config, run).status == "done"
    best, last = load_checkpoint(run / "checkpoints" / "best.pt"), load_checkpoint(run / "checkpoints" / "last.pt")
    assert best["epoch"] == 1 and last["epoch"] == 2
    assert any(not torch.equal(best["modules"]["model"][k], v) for k, v in last_weights.items())
    net = build_reconstructor(config.reconstructor).net.eval()
    net.load_state_dict(best["modules"]["model"])
    row = _reconstructed(run, tmp_path / "test").iloc[0]
    with torch.no_grad():
        expected = net(_quantised(unit_volume(row["path_degraded"]))).clamp(0, 1)[:, 0].numpy()
    saved = np.moveaxis(np.asarray(nib.load(row["path"]).dataobj), -1, 0)
    np.testing.assert_allclose(saved, expected, atol=1e-5)  # the saved volume comes from best.pt


def test_slice_classifier_can_be_the_downstream(mri_finished, ucsf, tmp_path):
    folder, base = mri_finished
    classifier = run_spec("train-slice-classifier", cpus=1, cohort=str(ucsf), model="resnet18", slices=SLICES, batch_size=4,
                          eval_batch_size=8, optim={"lr": 1e-3, "weight_decay": 0.0}, loop=ONCE)
    assert execute(classifier, tmp_path / "classifier", progress=False).status == "done"
    config = _config(folder, base, "eodd", epochs=1, classifier_run=str(tmp_path / "classifier"), labels=["high_grade"])
    assert _execute(config, tmp_path / "run").status == "done"
    validation = json.loads((tmp_path / "run" / "validation.json").read_text())
    assert validation["performance_key"] == "val_auroc" and validation["fairness_key"] == "val_eodd"
    assert set(validation["eodd"]) == {"sex"} and set(validation["auroc"]) == {"high_grade"}


def test_missing_or_mismatched_downstream_is_a_one_line_input_error(mri_finished, tmp_path):
    folder, base = mri_finished
    no_segmenter = _config(folder, base, "eodd").model_copy(update={"segmenter_run": None})
    with pytest.raises(RadfairInputError, match="segmenter_run: missing"):
        _execute(no_segmenter, tmp_path / "a")
    other_slices = _config(folder, base, "eodd").model_copy(update={"volumes": base.volumes.model_copy(update={"include_empty": False})})
    with pytest.raises(RadfairInputError, match="volumes settings"):
        _execute(other_slices, tmp_path / "b")

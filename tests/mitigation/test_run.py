"""The ``train-mitigated-reconstructor`` run kind end to end on a tiny synthetic set (32×32)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from radfair.degradation.run import degrade_xray
from radfair.errors import RadfairInputError
from radfair.execution import RunSpec, execute
from radfair.mitigation import MitigatedReconstructorRunConfig
from radfair.training.checkpoint import load_checkpoint
from radfair.training.classify import train
from radfair.training.reconstruct_run import RECONSTRUCT, ReconstructorRunConfig

RECON = {"kind": "unet", "widths": [4, 8], "bottleneck": 8, "optim": {"lr": 1e-3, "weight_decay": 0.0}}
LABELS = ["edema", "cardiomegaly"]


@pytest.fixture(scope="module")
def finished(split_all, tmp_path_factory):
    """A degraded set, a finished train-reconstructor run and a finished image train-classifier run."""
    folder = tmp_path_factory.mktemp("mitigation-run")
    cohort = pd.read_parquet(split_all)
    small = pd.concat([g.head(24 if name == "train" else 20 if name == "val" else 4) for name, g in cohort[cohort["dataset"] == "chexpert"].groupby("split")])
    small.to_parquet(folder / "cohort.parquet")
    degrade_xray(folder / "cohort.parquet", folder / "out", [3000.0], size=32, batch=16)
    base = ReconstructorRunConfig(degraded=str(folder / "out" / "degraded.parquet"), level="xray_physical_3000",
                                  split_cohort=str(folder / "cohort.parquet"), reconstructor=RECON, image_size=32, batch_size=8,
                                  loop={"epochs": 1, "patience": None})
    assert execute(RunSpec("train-reconstructor", base.model_dump(mode="json"), {}, cpus=1), folder / "base", progress=False).status == "done"
    outcome = train(folder / "classifier", cohort=folder / "cohort.parquet", input="images", model="densenet121", image_size=32,
                    labels=LABELS, batch_size=8, cpus=1, progress=False, loop={"epochs": 1, "patience": None})
    assert outcome.status == "done"
    return folder, base


def _config(folder: Path, base: ReconstructorRunConfig, strategy: str, weight: float = 1.0) -> MitigatedReconstructorRunConfig:
    return MitigatedReconstructorRunConfig(
        **base.model_dump(exclude={"loop", "reconstruct_splits"}), base_run=str(folder / "base"), classifier_run=str(folder / "classifier"),
        labels=LABELS, mitigation={"strategy": strategy, "weight": weight, "attributes": ["sex", "age_group"],
                                   "adversary_hidden": [8]},
        loop={"epochs": 2, "patience": None, "monitor": "objective"})


def _reconstructed(run: Path, folder: Path) -> pd.DataFrame:
    """The test reconstructions of a finished mitigation run, written by a ``reconstruct`` run (the sweep runs write none)."""
    assert execute(RECONSTRUCT.spec({"run": str(run)}, cpus=1), folder, progress=False).status == "done"
    return pd.read_parquet(folder / "reconstructed.parquet")


@pytest.mark.parametrize("strategy", ["eodd", "adversarial", "reweighting"])
def test_mitigated_run_writes_the_reconstructor_outputs_and_validation(finished, tmp_path, strategy):
    folder, base = finished
    config = _config(folder, base, strategy)
    spec = RunSpec("train-mitigated-reconstructor", config.model_dump(mode="json"), {}, cpus=1)
    run = tmp_path / strategy
    assert execute(spec, run, progress=False).status == "done"
    history = pd.read_csv(run / "history.csv")
    assert len(history) == 2 and history["val_objective"].notna().all()
    best = load_checkpoint(run / "checkpoints" / "best.pt")
    assert best["epoch"] == int(history["val_objective"].idxmin()) + 1  # the best epoch, not the last
    if strategy == "adversarial":
        assert "adversary" in best["modules"]
        assert load_checkpoint(run / "checkpoints" / "last.pt")["done"]  # finished: history only, no optimiser state
    if strategy == "eodd":
        assert "tau" in best["modules"]["threshold"]
    assert not (run / "reconstructed.parquet").exists() and not (run / "scratch").exists()  # validation images: scratch
    recon = _reconstructed(run, tmp_path / f"{strategy}-test")
    reference = pd.read_parquet(folder / "base" / "reconstructed.parquet")
    assert list(recon.columns) == list(reference.columns) and len(recon) == len(reference)
    validation = json.loads((run / "validation.json").read_text())
    assert validation["monitor"] == "val_objective" and validation["best_epoch"] == best["epoch"]
    assert np.isfinite(validation["val_psnr"]) and 0 <= validation["val_auroc"] <= 1
    assert 0 <= validation["val_eodd"] <= 1 and set(validation["eodd"]) == {"sex", "age_group"}
    assert "NaN" not in (run / "validation.json").read_text()
    assert execute(spec, run, progress=False).status == "skipped"


def test_fine_tuning_starts_from_the_base_runs_best_weights_and_lambda_matters(finished, tmp_path):
    folder, base = finished
    base_best = load_checkpoint(folder / "base" / "checkpoints" / "best.pt")["modules"]["model"]
    deltas = []
    for weight in (0.0, 100.0):
        config = MitigatedReconstructorRunConfig.model_validate(
            {**_config(folder, base, "eodd", weight).model_dump(), "loop": {"epochs": 1, "patience": None, "monitor": "objective"}})
        spec = RunSpec("train-mitigated-reconstructor", config.model_dump(mode="json"), {}, cpus=1)
        assert execute(spec, tmp_path / str(weight), progress=False).status == "done"
        tuned = load_checkpoint(tmp_path / str(weight) / "checkpoints" / "best.pt")["modules"]["model"]
        deltas.append(torch.cat([(tuned[k] - base_best[k]).flatten() for k in base_best]))
    assert all(d.abs().max() < 0.1 for d in deltas)  # one epoch of fine-tuning from the base weights, not a fresh net
    assert not torch.allclose(deltas[0], deltas[1])


def test_config_rejects_a_monitor_other_than_the_objective(finished):
    folder, base = finished
    with pytest.raises(ValueError, match="objective"):
        MitigatedReconstructorRunConfig.model_validate({**_config(folder, base, "eodd").model_dump(), "loop": {"monitor": "loss"}})


def test_best_checkpoint_is_the_best_epoch_and_reconstructs(finished, tmp_path, monkeypatch, last_weights):
    """REFERENCE.md bug 11: the "best" weights were the last. Make epoch 2 worse on validation by construction."""
    from radfair.degradation.quality import psnr
    from radfair.mitigation import _attach
    from radfair.readers import read_gray
    from radfair.training.reconstruction import build_reconstructor

    folder, base = finished
    original, calls = _attach.MitigatedStep.eval_step, {"n": 0}

    def worse_after_epoch_one(self, batch):
        values = original(self, batch)
        calls["n"] += 1
        if calls["n"] > 3:  # 20 validation rows in batches of 8: three per epoch
            values["objective"] = values["objective"] + 1000.0
        return values

    monkeypatch.setattr(_attach.MitigatedStep, "eval_step", worse_after_epoch_one)
    config = _config(folder, base, "adversarial", 50.0)
    run = tmp_path / "run"
    assert execute(RunSpec("train-mitigated-reconstructor", config.model_dump(mode="json"), {}, cpus=1), run,
                   progress=False).status == "done"
    best = load_checkpoint(run / "checkpoints" / "best.pt")
    last = load_checkpoint(run / "checkpoints" / "last.pt")
    assert best["epoch"] == 1 and last["epoch"] == 2
    assert any(not torch.equal(best["modules"]["model"][k], v) for k, v in last_weights.items())
    net = build_reconstructor(config.reconstructor).net.eval()
    row = _reconstructed(run, tmp_path / "test").iloc[0]
    degraded = torch.from_numpy(read_gray(row["path_degraded"])).float()[None, None]
    clean = torch.from_numpy(read_gray(row["path_clean"])).float()[None, None]
    degraded, clean = ((t * 255).round() / 255 for t in (degraded, clean))  # the uint8 images the run reads

    def psnr_with(weights):
        net.load_state_dict(weights)
        with torch.no_grad():
            return float(psnr(net(degraded).clamp(0, 1), clean, 1.0)[0])

    best_psnr, last_psnr = psnr_with(best["modules"]["model"]), psnr_with(last_weights)
    assert row["psnr"] == pytest.approx(best_psnr, abs=1e-5)  # the saved reconstruction comes from best.pt
    assert abs(row["psnr"] - last_psnr) > 1e-4


@pytest.mark.parametrize("kind", ["pix2pix", "irsde"])
def test_gan_and_diffusion_reconstructors_fine_tune_as_runs(finished, tmp_path, kind):
    folder, unet_base = finished
    recon = {**RECON, "kind": kind, "disc_widths": [4, 8, 8], "sde_steps": 5, "time_dim": 8}
    base = unet_base.model_copy(update={"reconstructor": unet_base.reconstructor.model_validate(recon)})
    base_dir = tmp_path / "base"
    assert execute(RunSpec("train-reconstructor", base.model_dump(mode="json"), {}, cpus=1), base_dir, progress=False).status == "done"
    config = MitigatedReconstructorRunConfig.model_validate(
        {**_config(folder, base, "adversarial").model_dump(), "base_run": str(base_dir),
         "loop": {"epochs": 1, "patience": None, "monitor": "objective"}})
    run = tmp_path / "run"
    assert execute(RunSpec("train-mitigated-reconstructor", config.model_dump(mode="json"), {}, cpus=1), run,
                   progress=False).status == "done"
    history = pd.read_csv(run / "history.csv")
    assert history["val_objective"].notna().all() and history["train_fair"].notna().all()
    assert len(_reconstructed(run, tmp_path / "test")) == len(pd.read_parquet(base_dir / "reconstructed.parquet"))
    assert json.loads((run / "validation.json").read_text())["val_psnr"] > 0


def test_base_run_with_other_reconstructor_settings_is_refused(finished, tmp_path):
    folder, base = finished
    other = {**_config(folder, base, "eodd").model_dump(), "reconstructor": {**RECON, "widths": [4, 16]}}
    config = MitigatedReconstructorRunConfig.model_validate(other)
    with pytest.raises(RadfairInputError, match="reconstructor settings differ"):
        execute(RunSpec("train-mitigated-reconstructor", config.model_dump(mode="json"), {}, cpus=1), tmp_path / "r", progress=False)

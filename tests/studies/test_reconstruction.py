"""Study 2 (X-ray part) end to end on the synthetic CheXpert release, and its analysis conventions."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from radfair.studies.reconstruction import ReconstructionConfig, run_study
from radfair.studies.reconstruction.analysis import adjust_grid
from radfair.studies.reconstruction.data import add_age_binary

NARROW = {"widths": [8, 16], "bottleneck": 32, "disc_widths": [8, 16, 32], "sde_steps": 4, "time_dim": 16,
          "optim": {"lr": 1e-3, "weight_decay": 0.0}}


def test_age_is_split_at_the_dataset_median():
    df = add_age_binary(pd.DataFrame({"age": [30.0, 50.0, 60.0, 70.0, np.nan]}))
    assert df["age_binary"].tolist() == ["<55", "<55", ">=55", ">=55", None]


def test_grid_adjustment_covers_every_row_and_ignores_nan():
    table = pd.DataFrame({"p_value": [0.01, 0.04, np.nan, 0.03]})
    adjusted = adjust_grid(table)
    assert adjusted["p_holm"].tolist()[:2] == pytest.approx([0.03, 0.06]) and np.isnan(adjusted["p_holm"][2])
    assert (adjusted["p_bh"].dropna() >= table["p_value"].dropna()).all()


@pytest.mark.slow
def test_xray_study_end_to_end_thresholds_from_clean_val_and_a_rerun_recomputes_nothing(tmp_path, synth_root):
    root, _ = synth_root
    config = ReconstructionConfig(
        releases=str(root),
        xray={"labels": ["pleural_effusion", "cardiomegaly", "edema"],
              "degradation": {"photons": [3000], "size": 32},
              "classifier": {"batch_size": 32, "optim": {"lr": 1e-3}, "loop": {"epochs": 1, "patience": None}},
              "reconstructors": {k: {"kind": k, **NARROW} for k in ("unet", "pix2pix", "irsde")},
              "training": {"batch_size": 16, "loop": {"epochs": 1, "patience": None}}},
        analysis={"bootstrap": 50, "attributes": ["sex", "age_binary", "race"]})
    result = run_study(config, tmp_path / "s2", progress=False, log=lambda m: None)
    out = tmp_path / "s2"
    shift = pd.read_csv(out / "bias_shift.csv")
    assert set(shift["reconstructor"]) == {"unet", "pix2pix", "irsde"}
    assert {"eodd_worst", "eodd_mean", "eop"} <= set(shift["metric"]) and set(shift["attribute"]) == {"sex", "age_binary", "race"}
    assert shift["p_holm"].dropna().ge(shift["p_value"].dropna()).all()
    perf = pd.read_csv(out / "performance.csv")
    assert {"auc", "psnr", "ssim"} <= set(perf["metric"])
    thresholds = pd.read_csv(out / "thresholds_clean_val.csv")
    assert list(thresholds["label"]) == ["pleural_effusion", "cardiomegaly", "edema"]
    study = json.loads((out / "study.json").read_text())
    assert "clean validation" in study["conventions"]["thresholds"]
    split = pd.read_parquet(out / "data" / "xray_split.parquet")
    recon_patients = set(split.loc[split["recon_split"] == "reconstruction", "patient_id"])
    classifier_patients = set(pd.read_parquet(out / "data" / "xray_classifier.parquet").query("split == 'train'")["patient_id"])
    assert recon_patients and classifier_patients and not recon_patients & classifier_patients
    again = run_study(config, out, progress=False, log=lambda m: None)
    pd.testing.assert_frame_equal(again["bias_shift"], result["bias_shift"])

"""Both studies on a dataset other than the paper's: NIH ChestX-ray14, the real 64x64 fixture (tests/fixtures/NOTICE.md)
for Study 2's X-ray part and the synthetic NIH-format release for Study 1. Nothing is downloaded."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from pydantic import ValidationError

from radfair.studies.reconstruction import ReconstructionConfig
from radfair.studies.reconstruction import run_study as run_study2

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
NIH = FIXTURES / "nih_cxr14_64px"
# the real fixture's findings with at least 12 positive images of 162
NIH_LABELS = ["atelectasis", "cardiomegaly", "pleural_effusion", "infiltration", "nodule"]
TINY = {"widths": [8, 16], "bottleneck": 32, "optim": {"lr": 1e-3, "weight_decay": 0.0}}
ONCE = {"epochs": 1, "patience": None}


def _study2_config(**xray) -> ReconstructionConfig:
    return ReconstructionConfig(
        releases=str(FIXTURES), mri=None, split={"fractions": [0.5, 0.2, 0.3], "reconstruction_share": 0.5, "seed": 0},
        xray={"source": "nih-cxr14", "root": str(NIH), "labels": NIH_LABELS, "degradation": {"photons": [3000], "size": 32},
              "classifier": {"batch_size": 32, "optim": {"lr": 1e-3}, "loop": ONCE},
              "reconstructors": {"unet": {"kind": "unet", **TINY}}, "training": {"batch_size": 16, "loop": ONCE}, **xray},
        analysis={"bootstrap": 50, "attributes": ["sex", "age_binary"]})


def test_study2_xray_part_takes_its_dataset_labels_and_mitigation_names_from_the_registry():
    config = ReconstructionConfig(releases=".", mri=None, xray={"source": "nih-cxr14"})
    assert "infiltration" in config.xray.labels and "no_finding" not in config.xray.labels  # NIH's own findings
    assert ReconstructionConfig(releases=".").xray.labels[0] == "atelectasis"  # CheXpert: the paper's 12, as before
    ReconstructionConfig(releases=".", mitigation={"datasets": ["nih-cxr14"], "weights_by_dataset": {"nih-cxr14": [1.0]}})
    with pytest.raises(ValidationError, match="not a registered"):
        ReconstructionConfig(releases=".", mitigation={"datasets": ["nih"]})
    with pytest.raises(ValidationError, match="declares no labels"):
        ReconstructionConfig(releases=".", xray={"source": "manifest"})


@pytest.mark.slow
def test_study2_one_level_xray_run_on_the_real_nih_images(tmp_path):
    out = tmp_path / "s2"
    result = run_study2(_study2_config(), out, progress=False, log=lambda m: None)
    for name in ("bias_shift.csv", "performance.csv", "study.json", "table7_nih-cxr14.md", "fig4_bias_change_nih-cxr14_eodd_worst.png",
                 "examples_nih-cxr14.png", "thresholds_clean_val_nih-cxr14.csv"):
        assert (out / name).is_file() and (out / name).stat().st_size > 0, name
    shift = pd.read_csv(out / "bias_shift.csv")
    assert set(shift["dataset"]) == {"nih-cxr14"} and set(shift["level"]) == {"xray_physical_3000"}
    assert set(shift["attribute"]) <= {"sex", "age_binary"} and "sex" in set(shift["attribute"])
    assert set(shift["label"]) <= set(NIH_LABELS) and (shift["family"] == "confirmatory").any()
    perf = pd.read_csv(out / "performance.csv")
    assert set(perf["dataset"]) == {"nih-cxr14"} and {"auc", "psnr", "ssim"} <= set(perf["metric"])
    psnr = perf[perf["metric"] == "psnr"].iloc[0]
    assert 10 < psnr["baseline"] < 60 and 10 < psnr["reconstructed"] < 60  # dB on real radiographs
    study = json.loads((out / "study.json").read_text())
    assert list(study["data"]) == ["nih-cxr14"] and study["config"]["xray"]["source"] == "nih-cxr14"
    assert set(study["runs"]["nih-cxr14"]) == {"downstream/classifier", "unet/xray_physical_3000/standard"}
    assert "nih-cxr14: xray_physical_3000" in study["multiple_testing"]["family"]
    split = pd.read_parquet(out / "data" / "xray_split.parquet")
    assert len(split) == 162 and split["patient_id"].nunique() == 93 and split["path"].str.contains("nih_cxr14_64px").all()
    assert not result["bias_shift"].empty

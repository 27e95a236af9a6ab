"""Both studies on a dataset other than the paper's: NIH ChestX-ray14, the real 64x64 fixture (tests/fixtures/NOTICE.md;
162 images of 93 patients) through Study 2's X-ray part (with its mitigation) and Study 1's two arms (the embedding arm
from `radfair embed`). Nothing is downloaded."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import torch
from pydantic import ValidationError
from typer.testing import CliRunner

from radfair.cli import app
from radfair.errors import RadfairInputError
from radfair.studies.emb_vs_img import EmbVsImgConfig
from radfair.studies.emb_vs_img import run_study as run_study1
from radfair.studies.emb_vs_img.data import prepare_data
from radfair.studies.emb_vs_img.run import plan_runs
from radfair.studies.reconstruction import ReconstructionConfig
from radfair.studies.reconstruction import run_study as run_study2
from radfair.studies.reconstruction.config import MitigationStudy
from tests.training.test_embed import TinyEncoder  # a frozen local encoder of 32-wide vectors

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
NIH = FIXTURES / "nih_cxr14_64px"
# the real fixture's findings with at least 12 positive images of 162
NIH_LABELS = ["atelectasis", "cardiomegaly", "pleural_effusion", "infiltration", "nodule"]
TINY = {"widths": [8, 16], "bottleneck": 32, "optim": {"lr": 1e-3, "weight_decay": 0.0}}
ONCE = {"epochs": 1, "patience": None}
runner = CliRunner()


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


def test_nih_reconstruction_config_and_its_synthetic_nih_release_size(tmp_path):
    from radfair.data.synthetic import generate
    from radfair.studies.emb_vs_img.data import ensure_releases
    from radfair.studies.reconstruction.config import load_config

    path = Path(__file__).resolve().parents[2] / "configs" / "nih-reconstruction.yaml"
    config = load_config(path)
    assert config.xray.source == "nih-cxr14" and config.mri is None and config.synthetic.nih_patients == 500
    result = runner.invoke(app, ["study", "reconstruction", "--config", str(path), "--out", str(tmp_path / "plan"), "--plan"])
    assert result.exit_code == 0, result.output
    runs = json.loads((tmp_path / "plan" / "plan.json").read_text())["runs"]
    assert {r["dataset"] for r in runs} == {"nih-cxr14"} and len(runs) == 1 + 2 * 3 * 2  # classifier, (train, score) x 3 x 2 levels
    generate(tmp_path / "rel", patients=20, seed=0, image_size=32, mri_patients=0, nih_patients=12)
    same = ReconstructionConfig(releases=str(tmp_path / "rel"), mri=None, xray={"source": "nih-cxr14"},
                                synthetic={"patients": 20, "seed": 0, "image_size": 32, "mri_patients": 0, "nih_patients": 12})
    ensure_releases(same, log=lambda m: None)
    other = same.model_copy(update={"synthetic": same.synthetic.model_copy(update={"nih_patients": 500})})
    with pytest.raises(RadfairInputError, match="nih_patients=12.*nih_patients=500"):
        ensure_releases(other, log=lambda m: None)


@pytest.mark.slow
def test_study2_one_level_xray_run_on_the_real_nih_images(tmp_path):
    out = tmp_path / "s2"
    config = _study2_config().model_copy(update={"mitigation": MitigationStudy(
        datasets=["nih-cxr14"], strategies=["eodd"], weights=[1.0], epochs=1, patience=None, attributes=["sex"])})
    result = run_study2(config, out, progress=False, log=lambda m: None)
    for name in ("bias_shift.csv", "performance.csv", "study.json", "table7_nih-cxr14.md", "fig4_bias_change_nih-cxr14_eodd_worst.png",
                 "examples_nih-cxr14.png", "thresholds_clean_val_nih-cxr14.csv", "mitigation_sweep.csv", "fig11_lambda_eodd_auroc.png"):
        assert (out / name).is_file() and (out / name).stat().st_size > 0, name
    shift = pd.read_csv(out / "bias_shift.csv")
    assert set(shift["dataset"]) == {"nih-cxr14"} and set(shift["level"]) == {"xray_physical_3000"}
    assert set(shift["mitigation"]) == {"standard", "standard-finetune", "eodd"}  # the X-ray mitigation keyed by the dataset
    assert set(pd.read_csv(out / "mitigation_sweep.csv")["dataset"]) == {"nih-cxr14"}
    assert set(shift["attribute"]) <= {"sex", "age_binary"} and "sex" in set(shift["attribute"])
    assert set(shift["label"]) <= set(NIH_LABELS) and (shift["family"] == "confirmatory").any()
    perf = pd.read_csv(out / "performance.csv")
    assert set(perf["dataset"]) == {"nih-cxr14"} and {"auc", "psnr", "ssim"} <= set(perf["metric"])
    psnr = perf[perf["metric"] == "psnr"].iloc[0]
    assert 10 < psnr["baseline"] < 60 and 10 < psnr["reconstructed"] < 60  # dB on real radiographs
    study = json.loads((out / "study.json").read_text())
    assert list(study["data"]) == ["nih-cxr14"] and study["config"]["xray"]["source"] == "nih-cxr14"
    assert set(study["runs"]["nih-cxr14"]) == {"downstream/classifier", *(f"unet/xray_physical_3000/{m}" for m in
                                                                          ("standard", "standard-finetune", "eodd"))}
    assert "nih-cxr14: xray_physical_3000" in study["multiple_testing"]["family"]
    split = pd.read_parquet(out / "data" / "xray_split.parquet")
    assert len(split) == 162 and split["patient_id"].nunique() == 93 and split["path"].str.contains("nih_cxr14_64px").all()
    assert not result["bias_shift"].empty


def _study1_config(tmp_path, **changes) -> EmbVsImgConfig:
    settings = dict(
        releases=str(tmp_path / "no-releases"), datasets=["nih-cxr14"], roots={"nih-cxr14": str(NIH)}, seeds=[0, 1],
        labels=[*NIH_LABELS, "no_finding"], attributes=["sex", "age_group"], split={"fractions": (0.4, 0.2, 0.4), "seed": 0},
        bootstrap=50, missing_embeddings="error",
        arms={"emb": {"model": "mlp", "hidden": [16], "optim": {"lr": 3e-3}, "loop": {"epochs": 3, "patience": None}},
              "img": {"model": "densenet121", "image_size": 32, "batch_size": 32, "loop": {"epochs": 1, "patience": None}}})
    return EmbVsImgConfig(**{**settings, **changes})


def test_study1_image_arm_alone_needs_no_embedding_store(tmp_path):
    config = _study1_config(tmp_path, arms={"img": {"model": "densenet121", "image_size": 32}})
    manifest = prepare_data(config, tmp_path / "s1", log=lambda m: None)
    split = pd.read_parquet(manifest["splits"]["nih-cxr14"])
    assert len(split) == 162 and manifest["dropped_without_embedding"] == {} and "embedding_width" not in manifest
    assert [p.spec.config["input"] for p in plan_runs(config, manifest, 1)] == ["images", "images"]


@pytest.mark.slow
def test_study1_on_the_real_nih_images_with_an_embedding_arm_from_radfair_embed(tmp_path):
    config = _study1_config(tmp_path)
    with pytest.raises(RadfairInputError, match="162 of 162 nih-cxr14 images have no embedding.*radfair embed"):
        run_study1(config, tmp_path / "s1", progress=False, log=lambda m: None)
    cohort = tmp_path / "cohort.parquet"
    assert runner.invoke(app, ["cohort", "--source", "nih-cxr14", "--root", str(NIH), "--out", str(cohort)]).exit_code == 0
    torch.manual_seed(0)
    torch.jit.script(TinyEncoder()).save(str(tmp_path / "enc.ts"))
    result = runner.invoke(app, ["embed", "--encoder", str(tmp_path / "enc.ts"), "--cohort", str(cohort), "--out", str(tmp_path / "store"),
                                 "--image-size", "32"])
    assert result.exit_code == 0, result.output
    out = tmp_path / "s1"
    tables = run_study1(config.model_copy(update={"embeddings": str(tmp_path / "store")}), out, progress=False, log=lambda m: None)
    for name in ("auc.csv", "table3.md", "table4.md", "disparities.csv", "arm_comparison.csv", "cost.csv", "study.json",
                 "fig1_nih-cxr14_emb_sex.png", "fig1_nih-cxr14_img_age_group.png"):
        assert (out / name).is_file(), name
    auc = pd.read_csv(out / "auc.csv")
    assert set(auc["dataset"]) == {"nih-cxr14"} and {"emb", "img"} <= set(auc["model"])
    study = json.loads((out / "study.json").read_text())
    assert study["data"]["embedding_width"] == 32 and study["data"]["dropped_without_embedding"] == {"nih-cxr14": 0}
    assert len(study["runs"]) == 4
    tests = [set(pd.read_parquet(out / r["scored"]).query("split == 'test'")["image_id"]) for r in study["runs"]]
    assert all(t == tests[0] for t in tests)  # both arms, every seed: the same real test images
    cost = tables["cost"].set_index(["dataset", "arm"])
    assert cost.loc[("nih-cxr14", "emb"), "forward_macs"] == 32 * 16 + 16 * (len(NIH_LABELS) + 1)  # the store's width, not 1376

"""``radfair demo`` end to end with tiny study configs: Study 1, the audit of a trained model, Study 2 with mitigation,
three reports; a second run reuses every finished run."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from radfair.demo_full import run_full_demo
from radfair.studies.emb_vs_img import EmbVsImgConfig
from radfair.studies.reconstruction import ReconstructionConfig

NARROW = {"widths": [8, 16], "bottleneck": 32, "sde_steps": 4, "time_dim": 16, "optim": {"lr": 1e-3, "weight_decay": 0.0}}
ONCE = {"epochs": 1, "patience": None}


@pytest.mark.slow
def test_full_demo_writes_three_reports_and_a_rerun_trains_nothing(tmp_path, synth_root):
    root, _ = synth_root
    study1 = EmbVsImgConfig(releases=str(root), datasets=["all"], seeds=[0], labels=["edema", "pleural_effusion", "no_finding"],
                            split={"fractions": (0.3, 0.2, 0.5), "seed": 0},
                            arms={"emb": {"model": "mlp", "hidden": [16], "optim": {"lr": 3e-3}, "loop": {"epochs": 2, "patience": None}}})
    study2 = ReconstructionConfig(
        releases=str(root), mri=None,
        xray={"labels": ["pleural_effusion", "edema", "cardiomegaly"], "degradation": {"photons": [10000, 3000], "size": 32},
              "classifier": {"batch_size": 32, "optim": {"lr": 1e-3}, "loop": ONCE},
              "reconstructors": {"unet": {"kind": "unet", **NARROW}}, "training": {"batch_size": 16, "loop": ONCE}},
        mitigation={"weights": [0.1, 1.0], "epochs": 1, "patience": None, "settings": {"adversary_hidden": [8]}},
        analysis={"bootstrap": 50, "attributes": ["sex", "age_binary"]})
    out = tmp_path / "demo"
    first = run_full_demo(out, study1=study1, study2=study2, bootstrap=50, progress=False)
    for folder in ("audit", "study1", "study2"):
        page = (out / folder / "report.html").read_text()
        assert "<table" in page and "<img" in page and "https://" not in page
    assert json.loads((out / "audit" / "audit.json").read_text())["config"]["bootstrap"] == 50
    s2 = out / "study2"
    for name in ("table3_shift_by_mitigation.md", "table4_mitigation_cost.md", "fig11_lambda_eodd_auroc.png",
                 "fig12_lambda_adversarial_auroc.png", "fig13_lambda_eodd_psnr.png", "fig14_lambda_adversarial_psnr.png",
                 "fig15_mitigation_performance.png", "mitigation_sweep.csv"):
        assert (s2 / name).is_file(), name
    shift = pd.read_csv(s2 / "bias_shift.csv")
    assert set(shift["mitigation"]) == {"standard", "standard-finetune", "reweighting", "eodd", "adversarial"}
    assert set(shift["family"]) == {"confirmatory", "exploratory"}
    versus = pd.read_csv(s2 / "mitigation_vs_standard.csv")  # each strategy against the same-budget fine-tune (primary), paired
    assert set(versus["mitigation"]) == {"reweighting", "eodd", "adversarial"} and versus["p_holm"].notna().any()
    assert set(versus.loc[versus["comparison"] == "primary", "reference"]) == {"standard-finetune"}
    record = json.loads((s2 / "study.json").read_text())["multiple_testing"]
    assert record["size"] > 0 and record["p_value_floor"] < 0.05 / record["size"] and record["holm_can_fire"]
    assert not (out / "study1" / "arm_comparison.csv").exists()  # one arm: nothing to compare, no stale file
    sweep = pd.read_csv(s2 / "mitigation_sweep.csv")
    chosen = sweep[sweep["chosen"]]
    assert sorted(chosen["strategy"]) == ["adversarial", "eodd", "reweighting"]  # one λ per strategy, never the reference
    assert set(chosen["chosen_by"]) <= {"rule", "fallback"} and chosen["reason"].str.len().gt(0).all()
    assert "Table 3" in (s2 / "report.html").read_text()
    again = run_full_demo(out, study1=study1, study2=study2, bootstrap=50, progress=False)
    assert again["timings"]["total_s"] < first["timings"]["total_s"]
    trained = [json.loads(p.read_text())["attempts"] for p in (out / "study2" / "runs").glob("*/run.json")]
    assert all(len(a) == 1 for a in trained)  # nothing ran twice

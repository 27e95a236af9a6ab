"""Study 1: shared split, seed intervals, declared groups, table layouts, Figure 1 order, config errors, end to end."""

from __future__ import annotations

import json
import time

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from radfair.errors import RadfairInputError
from radfair.studies.emb_vs_img import EmbVsImgConfig, load_config, run_study
from radfair.studies.emb_vs_img.evaluate import aggregate
from radfair.studies.emb_vs_img.figures import group_points, label_order
from radfair.studies.emb_vs_img.tables import table3, table4


def fake_audit(seed_values: dict[tuple[str, str], float], auc: dict[str, float], labels=("edema", "no_finding")) -> dict:
    """One run's engine tables with given (group, label) disparities for attribute 'sex'."""
    disp = pd.DataFrame([{"label": label, "attribute": "sex", "group": group, "share_of_positives": 0.5, "tpr_disparity": v}
                         for (group, label), v in seed_values.items()])
    gm = disp.assign(n_pos=10)[["attribute", "group", "label", "n_pos"]]
    gaps = disp.groupby("label")["tpr_disparity"].agg(lambda v: v.max() - v.min())
    summary = pd.DataFrame([{"attribute": "sex", "average_gap": gaps.drop("no_finding", errors="ignore").mean()}])
    return {"performance": pd.DataFrame({"label": list(labels), "auc": [auc[k] for k in labels]}),
            "disparities": disp, "group_metrics": gm, "summary": summary, "warnings": []}


def test_seed_intervals_are_student_t_and_declared_groups_are_never_dropped():
    female = [-0.10, -0.14, -0.08, -0.12, -0.11]
    runs = [fake_audit({("Female", "edema"): f, ("Male", "edema"): -f, ("Female", "no_finding"): 0.0, ("Male", "no_finding"): 0.0},
                       {"edema": 0.80 + 0.01 * i, "no_finding": 0.7}) for i, f in enumerate(female)]
    out = aggregate(runs, "mimic", "emb", ["sex", "race"], ["no_finding"])
    row = out["disparities"].query("group == 'Female' and label == 'edema'").iloc[0]
    half = stats.t.ppf(0.975, 4) * np.std(female, ddof=1) / np.sqrt(5)
    assert stats.t.ppf(0.975, 4) == pytest.approx(2.776, abs=1e-3)
    assert row.disparity_mean == pytest.approx(np.mean(female))
    assert (row.ci_low, row.ci_high) == pytest.approx((np.mean(female) - half, np.mean(female) + half))
    auc = out["auc"].set_index("label").loc["edema"]
    assert auc.auc_mean == pytest.approx(0.82) and auc.n_seeds == 5
    gap = out["gaps"].set_index("label").loc["edema", "gap"]
    assert gap == pytest.approx(2 * -np.mean(female))  # gap of the seed means
    summary = out["summary"].iloc[0]
    assert summary.average_gap == pytest.approx(np.mean([2 * -f for f in female]))
    assert summary.unfavorable == "Female (1/1)" and summary.favorable == "Male (1/1)"
    # race was declared but has no values at all: reported in the notes, not silently absent
    assert any("race has no values" in n for n in out["notes"])


def test_a_declared_group_with_no_rows_is_reported_with_nan():
    runs = [fake_audit({("Male", "edema"): 0.0, ("Female", "edema"): 0.0}, {"edema": 0.8, "no_finding": 0.7}, labels=("edema",))
            for _ in range(3)]
    for r in runs:
        r["disparities"]["attribute"] = "age_group"
        r["disparities"]["group"] = r["disparities"]["group"].map({"Male": "40-60", "Female": "60-80"})
        r["summary"]["attribute"] = "age_group"
        r["performance"] = r["performance"].head(1)
    out = aggregate(runs, "mimic", "img", ["age_group"], ["no_finding"])
    groups = out["disparities"]["group"].tolist()
    assert groups == ["0-20", "20-40", "40-60", "60-80", "80+"]
    empty = out["disparities"].set_index("group").loc["80+"]
    assert np.isnan(empty.disparity_mean) and empty.n_seeds == 0
    assert any("age_group=80+ has no test rows" in n for n in out["notes"])


def test_table3_and_table4_layouts_mark_the_better_arm():
    auc = pd.DataFrame([
        {"dataset": "mimic", "model": "emb", "label": "edema", "auc_mean": 0.80, "auc_ci_low": 0.78, "auc_ci_high": 0.82},
        {"dataset": "mimic", "model": "img", "label": "edema", "auc_mean": 0.85, "auc_ci_low": 0.83, "auc_ci_high": 0.87},
    ])
    md = table3(auc, ["emb", "img"]).splitlines()
    assert md[0] == "| Label | MIMIC emb | MIMIC img |"
    assert md[2] == "| edema | 0.800 [0.780, 0.820] | **0.850 [0.830, 0.870]** |"
    summary = pd.DataFrame([
        {"attribute": "sex", "dataset": "all", "model": m, "average_gap": g, "ci_low": g - 0.01, "ci_high": g + 0.01,
         "lowest_label": "edema", "lowest_gap": 0.01, "highest_label": "pneumonia", "highest_gap": 0.2,
         "unfavorable": "Female (9/13)", "favorable": "Male (9/13)"} for m, g in (("emb", 0.05), ("img", 0.07))])
    md4 = table4(summary, ["emb", "img"]).splitlines()
    assert md4[0].startswith("| Attribute | Dataset | Model | Average gap | Lowest (label: gap) | Highest (label: gap) |")
    assert "| sex | ALL | **emb** | 0.050 [0.040, 0.060] | edema: 0.010 | pneumonia: 0.200 | Female (9/13) | Male (9/13) |" in md4


def test_figure1_orders_findings_by_gap_and_never_shifts_values_to_another_finding():
    gaps = pd.DataFrame({"label": ["a", "b", "c", "d"], "gap": [0.3, 0.1, np.nan, 0.2]})
    assert label_order(gaps) == ["b", "d", "a", "c"]
    disp = pd.DataFrame({"group": ["F", "F", "F", "M", "M"], "label": ["a", "b", "d", "a", "d"],
                         "disparity_mean": [0.1, np.nan, -0.2, 0.3, 0.4]})
    x_of = {label: i for i, label in enumerate(label_order(gaps))}
    points = {group: dict(zip(rows["label"], x, strict=True)) for group, rows, x in group_points(disp, ["F", "M"], x_of)}
    assert points == {"F": {"a": 2.0, "d": 1.0}, "M": {"a": 2.0, "d": 1.0}}  # 'b' missing for F shifts nothing


def test_config_unknown_key_and_wrong_type_are_one_line_errors(tmp_path):
    (tmp_path / "c.yaml").write_text("releases: x\nseedz: [1]\n")
    with pytest.raises(RadfairInputError, match=r"c.yaml: unknown key 'seedz'"):
        load_config(tmp_path / "c.yaml")
    (tmp_path / "d.yaml").write_text("releases: x\nseeds: many\n")
    with pytest.raises(RadfairInputError, match=r"d.yaml: seeds: .*list"):
        load_config(tmp_path / "d.yaml")


@pytest.mark.slow
def test_tiny_study_end_to_end_shares_one_test_set_and_a_rerun_reuses_every_run(tmp_path, synth_root):
    root, _ = synth_root
    config = EmbVsImgConfig(
        releases=str(root), datasets=["mimic", "chexpert", "all"], seeds=[0, 1], labels=["edema", "pleural_effusion", "no_finding"],
        split={"fractions": (0.3, 0.2, 0.5), "seed": 0},
        arms={"emb": {"model": "mlp", "hidden": [32, 16], "optim": {"lr": 3e-3}, "loop": {"epochs": 3, "patience": None}},
              "img": {"model": "densenet121", "image_size": 32, "batch_size": 32, "loop": {"epochs": 1, "patience": None}}})
    tables = run_study(config, tmp_path / "s1", progress=False, log=lambda m: None)
    out = tmp_path / "s1"
    for name in ("auc.csv", "table3.md", "fairness_summary.csv", "table4.md", "disparities.csv", "gaps.csv", "cost.csv",
                 "study.json", "fig1_all_emb_sex.png", "fig1_mimic_img_insurance.png", "fig1_chexpert_img_race.png"):
        assert (out / name).is_file(), name
    assert not (out / "fig1_chexpert_emb_insurance.png").exists()  # CheXpert has no insurance
    study = json.loads((out / "study.json").read_text())
    assert len(study["runs"]) == 3 * 2 * 2
    for dataset in ("mimic", "chexpert", "all"):
        tests = [set(pd.read_parquet(out / "runs" / r["run_id"] / "scored.parquet").query("split == 'test'")["image_id"])
                 for r in study["runs"] if r["dataset"] == dataset]
        assert all(t == tests[0] for t in tests)  # every arm and seed: the same test images
    all_test = tests[0]
    mimic_test = set(pd.read_parquet(out / "data" / "split_mimic.parquet").query("split == 'test'")["image_id"])
    assert mimic_test <= all_test  # ALL is the union of the per-source splits
    cost = tables["cost"].set_index(["dataset", "arm"])
    assert cost.loc[("all", "emb"), "forward_macs"] == 1376 * 32 + 32 * 16 + 16 * 3
    assert cost.loc[("all", "img/emb ratio"), "train_samples_per_s"] > 1

    start = time.perf_counter()
    again = run_study(config, out, progress=False, log=lambda m: None)
    assert again["timings"]["runs_trained"] == 0 and again["timings"]["runs_skipped"] == 12
    assert time.perf_counter() - start < 60
    pd.testing.assert_frame_equal(again["summary"], tables["summary"])


def test_existing_synthetic_releases_with_other_settings_are_refused(tmp_path):
    from radfair.data.synthetic import generate
    from radfair.errors import RadfairInputError
    from radfair.studies.emb_vs_img.data import ensure_releases
    from radfair.studies.reconstruction.config import ReconstructionConfig

    generate(tmp_path / "rel", patients=40, seed=1, image_size=32, mri_patients=2, mri_shape=(32, 32, 8))
    same = ReconstructionConfig(releases=str(tmp_path / "rel"), synthetic={"patients": 40, "seed": 1, "image_size": 32, "mri_patients": 2})
    ensure_releases(same, log=lambda m: None)
    other = same.model_copy(update={"synthetic": same.synthetic.model_copy(update={"mri_patients": 120})})
    with pytest.raises(RadfairInputError, match="mri_patients=2.*mri_patients=120"):
        ensure_releases(other, log=lambda m: None)
    # releases written by an older generator (no generator_version: version 1) are not reused either
    truth_path = tmp_path / "rel" / "ground_truth.json"
    truth = json.loads(truth_path.read_text())
    truth.pop("generator_version")
    truth_path.write_text(json.dumps(truth))
    with pytest.raises(RadfairInputError, match="generator_version=1.*generator_version=2"):
        ensure_releases(same, log=lambda m: None)

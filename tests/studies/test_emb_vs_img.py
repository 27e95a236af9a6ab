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
from radfair.studies.emb_vs_img.evaluate import adjust_comparison, evaluate_dataset
from radfair.studies.emb_vs_img.figures import group_points, label_order
from radfair.studies.emb_vs_img.tables import table3, table4


def scored_run(seed: int, shift: float, n: int = 400, labels=("edema", "no_finding")) -> pd.DataFrame:
    """One run's scored table on a fixed test set (the same patients for every run); ``shift`` lowers Female scores."""
    rng = np.random.default_rng(100)  # the data: identical in every run
    sex = np.where(np.arange(n) % 2 == 0, "Male", "Female")
    age = np.where(np.arange(n) % 3 == 0, "40-60", "60-80")
    table = pd.DataFrame({"image_id": [f"i{k}" for k in range(n)], "patient_id": [f"p{k // 2}" for k in range(n)],
                          "split": np.where(np.arange(n) // 2 % 4 == 0, "val", "test"), "sex": sex, "age_group": age})
    run_rng = np.random.default_rng(seed)  # the model: differs per run
    for label in labels:
        y = (rng.random(n) < 0.4).astype(float)
        score = 0.35 * y + 0.65 * rng.random(n) + 0.1 * run_rng.standard_normal(n) - shift * (sex == "Female") * y
        table[f"y_{label}"], table[f"p_{label}"] = y, np.clip(score, 0, 1)
    return table


def _tpr_disparity(table: pd.DataFrame, label: str, threshold: float = 0.5) -> float:
    """Female TPR - Male TPR on the test rows, computed independently with pandas."""
    test = table[(table["split"] == "test") & (table[f"y_{label}"] == 1)]
    tpr = (test[f"p_{label}"] >= threshold).groupby(test["sex"]).mean()
    return float(tpr["Female"] - tpr["Male"])


def test_point_estimates_are_seed_means_and_intervals_carry_sampling_and_seed_variance():
    runs = {("emb", s): scored_run(s, 0.0) for s in range(5)} | {("img", s): scored_run(10 + s, 0.25) for s in range(5)}
    out = evaluate_dataset(runs, "mimic", ["sex", "age_group", "race"], threshold="0.5", bootstrap=200, seed=0)
    disp = out["disparities"].set_index(["model", "label", "group"])
    for arm in ("emb", "img"):
        expected = np.mean([_tpr_disparity(runs[(arm, s)], "edema") for s in range(5)])
        row = disp.loc[(arm, "edema", "Female")]
        assert row.disparity_mean == pytest.approx(expected)
        assert -1 <= row.ci_low <= row.disparity_mean <= row.ci_high <= 1
        # the interval is wider than the seeds-only t-interval: it includes test-set sampling
        per_seed = [_tpr_disparity(runs[(arm, s)], "edema") for s in range(5)]
        t_half = stats.t.ppf(0.975, 4) * np.std(per_seed, ddof=1) / np.sqrt(5)
        assert row.ci_high - row.ci_low > 2 * t_half
        gap = out["gaps"].set_index(["model", "attribute", "label"]).loc[(arm, "sex", "edema")]
        assert gap.gap == pytest.approx(2 * abs(expected))  # gap of the seed means (binary: 2 |disparity|)
        assert 0 <= gap.ci_low <= gap.gap <= gap.ci_high <= 2 and gap.ci_low <= gap.gap_bc <= gap.ci_high
    summary = out["summary"].set_index(["model", "attribute"])
    assert summary.loc[("img", "sex"), "unfavorable"] == "Female (1/1)"  # sign counting: only edema is a summary label
    assert summary.loc[("emb", "sex"), "average_gap"] == pytest.approx(out["gaps"].set_index(["model", "attribute", "label"]).loc[("emb", "sex", "edema"), "gap"])
    # race was declared but has no values at all: reported in the notes, not silently absent
    assert any("race has no values" in n for n in out["notes"])
    # declared age groups without test rows are kept as NaN rows with a note
    age = out["disparities"].query("attribute == 'age_group' and model == 'emb' and label == 'edema'")
    assert age["group"].tolist() == ["0-20", "20-40", "40-60", "60-80", "80+"]
    assert np.isnan(age.set_index("group").loc["80+", "disparity_mean"])
    assert any("age_group=80+ has no test rows" in n for n in out["notes"])
    comp = adjust_comparison(out["comparison"]).set_index(["metric", "attribute", "label", "group"])
    row = comp.loc[("disparity", "sex", "edema", "Female")]
    assert row.delta == pytest.approx(row.emb - row.img)
    assert row.ci_low <= row.delta <= row.ci_high and 0 <= row.p_value <= 1
    # the planted shift makes img less fair on sex: the paired test sees it
    avg = comp.loc[("average_gap", "sex", "(average)", "")]
    assert avg.delta < 0 and avg.p_value < 0.05
    assert set(comp.index.get_level_values("metric")) == {"auc", "disparity", "gap", "average_gap"}


def test_same_seed_same_numbers_and_conventions_by_name():
    runs = {("emb", s): scored_run(s, 0.0) for s in range(2)} | {("img", s): scored_run(5 + s, 0.1) for s in range(2)}
    a = evaluate_dataset(runs, "mimic", ["sex"], threshold="0.5", bootstrap=50, seed=3)
    b = evaluate_dataset(runs, "mimic", ["sex"], threshold="0.5", bootstrap=50, seed=3)
    pd.testing.assert_frame_equal(a["comparison"], b["comparison"])
    per_seed = evaluate_dataset(runs, "mimic", ["sex"], threshold="0.5", bootstrap=50, seed=3, averaging="per-seed")
    gaps = [2 * abs(_tpr_disparity(runs[("emb", s)], "edema")) for s in range(2)]
    assert per_seed["gaps"].set_index(["model", "label"]).loc[("emb", "edema"), "gap"] == pytest.approx(np.mean(gaps))
    with pytest.raises(ValueError, match="averaging"):
        evaluate_dataset(runs, "mimic", ["sex"], averaging="median")
    with pytest.raises(ValueError, match="counting"):
        evaluate_dataset(runs, "mimic", ["sex"], counting="majority")


def test_table3_and_table4_layouts_mark_the_better_arm():
    auc = pd.DataFrame([
        {"dataset": "mimic", "model": "emb", "label": "edema", "auc_mean": 0.80, "auc_ci_low": 0.78, "auc_ci_high": 0.82},
        {"dataset": "mimic", "model": "img", "label": "edema", "auc_mean": 0.85, "auc_ci_low": 0.83, "auc_ci_high": 0.87},
    ])
    comparison = pd.DataFrame([{"dataset": "mimic", "attribute": "(all)", "label": "edema", "metric": "auc", "p_holm": 0.001}])
    md = table3(auc, ["emb", "img"], comparison).splitlines()
    assert md[0] == "| Label | MIMIC emb | MIMIC img |"
    assert md[2] == "| edema | 0.800 [0.780, 0.820] | **0.850 [0.830, 0.870]** |"
    summary = pd.DataFrame([
        {"attribute": "sex", "dataset": "all", "model": m, "average_gap": g, "ci_low": g - 0.01, "ci_high": g + 0.01,
         "lowest_label": "edema", "lowest_gap": 0.01, "highest_label": "pneumonia", "highest_gap": 0.2,
         "unfavorable": "Female (9/13)", "favorable": "Male (9/13)"} for m, g in (("emb", 0.05), ("img", 0.07))])
    summary["average_gap_bc"] = summary["average_gap"]
    comparison = pd.DataFrame([{"dataset": "all", "attribute": "sex", "label": "(average)", "metric": "average_gap", "p_holm": p}
                               for p in (0.01,)])
    md4 = table4(summary, ["emb", "img"], comparison).splitlines()
    assert md4[0].startswith("| Attribute | Dataset | Model | Average gap | Bias-corrected | Lowest (label: gap) | Highest (label: gap) |")
    assert "| sex | ALL | **emb** | **0.050 [0.040, 0.060]** | 0.050 | edema: 0.010 | pneumonia: 0.200 | Female (9/13) | Male (9/13) |" in md4
    # not significant after Holm: no arm is bold
    md4 = table4(summary, ["emb", "img"], comparison.assign(p_holm=0.2))
    assert "**" not in md4.split("\n\n")[0]


def test_figure1_orders_findings_by_gap_and_never_shifts_values_to_another_finding():
    gaps = pd.DataFrame({"label": ["a", "b", "c", "d"], "gap": [0.3, 0.1, np.nan, 0.2]})
    assert label_order(gaps) == ["b", "d", "a", "c"]
    disp = pd.DataFrame({"group": ["F", "F", "F", "M", "M"], "label": ["a", "b", "d", "a", "d"],
                         "disparity_mean": [0.1, np.nan, -0.2, 0.3, 0.4]})
    x_of = {label: i for i, label in enumerate(label_order(gaps))}
    points = {group: dict(zip(rows["label"], x, strict=True)) for group, rows, x in group_points(disp, ["F", "M"], x_of)}
    assert points == {"F": {"a": 2.0, "d": 1.0}, "M": {"a": 2.0, "d": 1.0}}  # 'b' missing for F shifts nothing


def test_embedding_arms_train_their_seeds_together_unless_told_and_image_arms_cannot(tmp_path):
    config = EmbVsImgConfig(releases="x")
    assert config.arms["emb"].trains_together and not config.arms["img"].trains_together
    assert not EmbVsImgConfig(releases="x", arms={"emb": {"model": "mlp", "ensemble": False}}).arms["emb"].trains_together
    (tmp_path / "c.yaml").write_text("releases: x\narms: {img: {model: densenet121, ensemble: true}}\n")
    with pytest.raises(RadfairInputError, match="ensemble: true needs an embedding model"):
        load_config(tmp_path / "c.yaml")


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
    for name in ("auc.csv", "table3.md", "fairness_summary.csv", "table4.md", "disparities.csv", "gaps.csv", "cost.csv", "arm_comparison.csv",
                 "study.json", "fig1_all_emb_sex.png", "fig1_mimic_img_insurance.png", "fig1_chexpert_img_race.png"):
        assert (out / name).is_file(), name
    assert not (out / "fig1_chexpert_emb_insurance.png").exists()  # CheXpert has no insurance
    study = json.loads((out / "study.json").read_text())
    assert len(study["runs"]) == 3 * 2 * 2  # one entry per (dataset, arm, seed)
    emb = [r for r in study["runs"] if r["arm"] == "emb"]
    assert {r["kind"] for r in emb} == {"train-classifier-ensemble"} and len({r["run_id"] for r in emb}) == 3  # seeds together
    assert {r["kind"] for r in study["runs"] if r["arm"] == "img"} == {"train-classifier"}
    assert len({r["scored"] for r in study["runs"]}) == 12
    for dataset in ("mimic", "chexpert", "all"):
        tests = [set(pd.read_parquet(out / r["scored"]).query("split == 'test'")["image_id"]) for r in study["runs"] if r["dataset"] == dataset]
        assert all(t == tests[0] for t in tests)  # every arm and seed: the same test images
    all_test = tests[0]
    mimic_test = set(pd.read_parquet(out / "data" / "split_mimic.parquet").query("split == 'test'")["image_id"])
    assert mimic_test <= all_test  # ALL is the union of the per-source splits
    cost = tables["cost"].set_index(["dataset", "arm"])
    assert cost.loc[("all", "emb"), "forward_macs"] == 1376 * 32 + 32 * 16 + 16 * 3
    assert cost.loc[("all", "img/emb ratio"), "train_samples_per_s"] > 1

    start = time.perf_counter()
    again = run_study(config, out, progress=False, log=lambda m: None)
    assert again["timings"]["runs_trained"] == 0 and again["timings"]["runs_skipped"] == 3 + 6  # 3 ensembles, 6 image runs
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

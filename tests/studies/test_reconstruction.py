"""Study 2 (X-ray part) end to end on the synthetic CheXpert release, and its analysis conventions."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from radfair.errors import RadfairInputError
from radfair.studies.reconstruction import ReconstructionConfig, run_study
from radfair.studies.reconstruction.analysis import adjust_grid
from radfair.studies.reconstruction.data import add_age_binary

NARROW = {"widths": [8, 16], "bottleneck": 32, "disc_widths": [8, 16, 32], "sde_steps": 4, "time_dim": 16,
          "optim": {"lr": 1e-3, "weight_decay": 0.0}}


def test_age_is_split_at_the_dataset_median():
    df = add_age_binary(pd.DataFrame({"age": [30.0, 50.0, 60.0, 70.0, np.nan]}), "image-median")
    assert df["age_binary"].tolist() == ["<55", "<55", ">=55", ">=55", None]


def test_age_is_dichotomised_per_patient_at_the_patient_median():
    # patient a has three images: the image median (60) would differ from the patient median (50)
    df = pd.DataFrame({"patient_id": ["a", "a", "a", "b", "c", "d"], "age": [70.0, 70.0, 70.0, 30.0, 50.0, np.nan]})
    assert add_age_binary(df)["age_binary"].tolist() == [">50", ">50", ">50", "<=50", "<=50", None]


def test_the_fairness_views_keep_each_datasets_middle_level():
    from radfair.studies.reconstruction.outputs import at_levels
    from radfair.studies.reconstruction.tables import table2_shift_by_reconstructor

    shift = pd.DataFrame({"dataset": ["chexpert"] * 3 + ["ucsf-pdgm"] * 2, "level": ["p100k", "p10k", "p3k", "R4", "R8"],
                          "label": ["edema"] * 3 + ["tumour_segmentation"] * 2, "metric": ["eodd_worst"] * 3 + ["ser"] * 2,
                          "mitigation": "standard", "reconstructor": "unet", "attribute": "sex", "pct_change": [1.0, 2.0, 30.0, 4.0, 50.0]})
    middle = at_levels(shift, {"chexpert": "p10k", "ucsf-pdgm": "R8"})
    assert middle["pct_change"].tolist() == [2.0, 50.0]
    assert "| Median % change | 26.00 |" in table2_shift_by_reconstructor(middle)
    assert "| Median % change | 4.00 |" in table2_shift_by_reconstructor(shift)


def test_subgroup_counts_add_up_per_split_and_list_every_subgroup():
    from radfair.studies.reconstruction.tables import subgroup_counts

    split = pd.DataFrame({"patient_id": ["a", "a", "b", "c", "d", "e"], "split": ["train", "train", "train", "val", "test", "test"],
                          "sex": ["Female", "Female", "Male", "Male", "Female", None],
                          "age_binary": ["<=62", "<=62", ">62", ">62", "<=62", ">62"],
                          "race": ["AI/AN", "AI/AN", "White", None, "White", "White"]})
    counts = subgroup_counts(split, ["sex", "age_binary"], "race")
    assert list(counts.columns) == ["split", "sex", "age_binary", "AI/AN", "White", "unknown", "total"]
    totals = counts[counts["sex"] == "total"].set_index("split")["total"]
    assert totals.to_dict() == {"all": 5, "train": 2, "val": 1, "test": 2}  # patients, not images
    test = counts[(counts["split"] == "test") & (counts["sex"] != "total")]
    assert test["total"].tolist() == [1, 0, 1] and test["sex"].tolist() == ["Female", "Male", "unknown"]  # zeros kept
    assert counts.loc[(counts["split"] == "all") & (counts["sex"] == "Female"), "AI/AN"].tolist() == [1]
    assert subgroup_counts(split, ["age_binary"], None)["total"].tolist()[:3] == [2, 3, 5]


def test_race_merged_follows_the_scheme_and_stays_out_of_the_confirmatory_family():
    from types import SimpleNamespace

    from radfair.studies.reconstruction.analysis import confirmatory_mask
    from radfair.studies.reconstruction.data import add_race_merged
    from radfair.studies.reconstruction.tables import bias_rows

    cohort = add_race_merged(pd.DataFrame({"race": ["AI/AN", "NH/PI", "Black", None]}), "table5")
    assert cohort["race_merged"].tolist() == ["Other", "Other", "Black", None]
    rows = pd.DataFrame({"dataset": "chexpert", "level": "L", "mitigation": "standard", "label": "edema", "metric": "eodd_worst",
                         "attribute": ["sex", "race", "race_merged"], "pct_change": [1.0, 2.0, 3.0]})
    family = SimpleNamespace(metrics=["eodd_worst"], mitigation=["standard"], levels="all")
    assert confirmatory_mask(rows, family, {}).tolist() == [True, True, False]
    assert bias_rows(rows)["attribute"].tolist() == ["sex", "race"]
    assert bias_rows(rows, variant="race_merged")["attribute"].tolist() == ["sex", "race_merged"]  # Figure 18's rows


def test_grid_adjustment_covers_every_row_and_ignores_nan():
    table = pd.DataFrame({"p_value": [0.01, 0.04, np.nan, 0.03]})
    adjusted = adjust_grid(table)
    assert adjusted["p_holm"].tolist()[:2] == pytest.approx([0.03, 0.06]) and np.isnan(adjusted["p_holm"][2])
    assert (adjusted["p_bh"].dropna() >= table["p_value"].dropna()).all()


def test_thresholds_come_from_clean_validation_rows_only(tmp_path):
    from radfair.fairness import choose_threshold
    from radfair.studies.reconstruction.analysis import clean_thresholds

    rng = np.random.default_rng(0)
    n = 400
    split = np.where(np.arange(n) < 200, "val", "test")
    y = rng.integers(0, 2, n).astype(float)
    p = np.clip(0.3 * y + rng.uniform(0, 0.7, n) + np.where(split == "test", 0.25, 0.0), 0, 1)  # test scores shifted up
    clean = pd.DataFrame({"split": split, "y_edema": y, "p_edema": p})
    path, labels, undefined = clean_thresholds(clean, ["edema"], "balanced", tmp_path / "t.csv")
    chosen = pd.read_csv(path).set_index("label").loc["edema", "threshold"]
    val = split == "val"
    assert chosen == pytest.approx(choose_threshold(y[val], p[val], "balanced"))
    assert chosen != pytest.approx(choose_threshold(y[~val], p[~val], "balanced"))
    assert labels == ["edema"] and undefined == []


@pytest.fixture(scope="module")
def study2_root(tmp_path_factory):
    """Releases with enough UCSF-PDGM volumes (30) for a split with val and test patients of both sexes."""
    from radfair.data.synthetic import generate

    root = tmp_path_factory.mktemp("study2") / "releases"
    generate(root, patients=200, seed=3, image_size=32, mri_patients=30, mri_shape=(32, 32, 8))
    return root


def _config(root, **changes) -> ReconstructionConfig:
    recons = {k: {"kind": k, **NARROW} for k in ("unet", "pix2pix", "irsde")}
    once = {"epochs": 1, "patience": None}
    settings = dict(
        releases=str(root),
        xray={"labels": ["pleural_effusion", "cardiomegaly", "edema"], "degradation": {"photons": [3000], "size": 32},
              "classifier": {"batch_size": 32, "optim": {"lr": 1e-3}, "loop": once},
              "reconstructors": recons, "training": {"batch_size": 16, "loop": once}},
        mri={"degradation": {"accelerations": [4]},
             "slices": {"size": 32, "inference": {"include_empty": True, "slice_range": [2, 6]}},  # 8-slice volumes
             "classifier": {"model": "resnet18", "loop": once},
             "segmenter": {"widths": [8, 16], "bottleneck": 32, "loop": once},
             "reconstructors": recons, "training": {"batch_size": 16, "loop": once}},
        analysis={"bootstrap": 50, "attributes": ["sex", "age_binary", "race", "race_merged"]})
    return ReconstructionConfig(**{**settings, **changes})


PAPER_FILES = ["bias_shift.csv", "performance.csv", "table1_baseline_fairness.md", "table2_shift_by_reconstructor.md",
               "table7_chexpert.md", "table8_ucsf.md", "fig2_performance_vs_noise.png", "fig3_bias_change_hist.png",
               "fig4_bias_change_chexpert_eodd_worst.png", "fig4_bias_change_chexpert_eop.png",
               "fig5_bias_change_ucsf_delta_dice.png", "fig5_bias_change_ucsf_ser.png", "examples_chexpert.png",
               "examples_ucsf.png", "gradcam_chexpert.png", "fig10_classification_vs_noise_ucsf.png", "table5_subgroups_chexpert.md",
               "table6_subgroups_ucsf.md", "fig18_bias_change_hist_race_merged.png", "fig19_bias_change_chexpert_race_merged_eodd_worst.png",
               "study.json"]


@pytest.mark.slow
def test_study_end_to_end_both_datasets_thresholds_from_clean_val_and_a_rerun_recomputes_nothing(tmp_path, study2_root):
    config = _config(study2_root)
    result = run_study(config, tmp_path / "s2", progress=False, log=lambda m: None)
    out = tmp_path / "s2"
    for name in PAPER_FILES:
        assert (out / name).is_file() and (out / name).stat().st_size > 0, name
    shift = pd.read_csv(out / "bias_shift.csv")
    assert set(shift["dataset"]) == {"chexpert", "ucsf-pdgm"} and set(shift["mitigation"]) == {"standard"}
    assert set(shift["reconstructor"]) == {"unet", "pix2pix", "irsde"}
    xray = shift[shift["dataset"] == "chexpert"]
    assert {"eodd_worst", "eodd_mean", "eop"} <= set(xray["metric"])
    assert set(xray["attribute"]) == {"sex", "age_binary", "race", "race_merged"}
    seg = shift[shift["label"] == "tumour_segmentation"]
    assert set(seg["metric"]) == {"delta_dice", "ser"} and "race" not in set(seg["attribute"])  # UCSF-PDGM records no race
    confirmatory = shift[shift["family"] == "confirmatory"]
    assert len(confirmatory) and set(confirmatory["metric"]) <= {"eodd_worst", "ser"}
    assert "race_merged" not in set(confirmatory["attribute"])  # the appendix's re-grouping is exploratory
    tested = confirmatory.dropna(subset=["p_value"])
    assert len(tested) and (tested["p_holm"] >= tested["p_value"]).all()
    assert shift.loc[shift["family"] == "exploratory", "p_holm"].isna().all()  # exploratory rows: BH only
    perf = pd.read_csv(out / "performance.csv")
    assert {"auc", "psnr", "ssim", "dice"} <= set(perf["metric"])
    thresholds = pd.read_csv(out / "thresholds_clean_val_chexpert.csv")
    assert list(thresholds["label"]) == ["pleural_effusion", "cardiomegaly", "edema"]
    study = json.loads((out / "study.json").read_text())
    assert "clean validation" in study["conventions"]["thresholds"]
    for dataset in ("xray", "mri"):
        split = pd.read_parquet(out / "data" / f"{dataset}_split.parquet")
        recon_patients = set(split.loc[split["recon_split"] == "reconstruction", "patient_id"])
        downstream = "xray_classifier" if dataset == "xray" else "mri_downstream"
        downstream_patients = set(pd.read_parquet(out / "data" / f"{downstream}.parquet").query("split == 'train'")["patient_id"])
        assert recon_patients and downstream_patients and not recon_patients & downstream_patients
    table2 = (out / "table2_shift_by_reconstructor.md").read_text()  # the paper's scope first, then every level pooled
    level = shift.loc[shift["dataset"] == "chexpert", "level"].iloc[0]
    assert f"at the middle level (chexpert: {level}" in table2 and "## Every level pooled (exploratory)" in table2
    xray_split = pd.read_parquet(out / "data" / "xray_split.parquet")
    assert set(xray_split["race"].dropna()) <= {"AI/AN", "Asian", "Black", "NH/PI", "Other", "White"}  # Table 5's groups
    assert set(xray_split["race_merged"].dropna()) <= {"Asian", "Black", "Other", "White"}
    assert "race_merged" not in (out / "table1_baseline_fairness.md").read_text()
    table5 = (out / "table5_subgroups_chexpert.md").read_text()
    assert "| all | total |" in table5 and f"| {xray_split['patient_id'].nunique()} |" in table5
    table7 = (out / "table7_chexpert.md").read_text()
    assert "| nan" not in table7 and "pleural_effusion" in table7
    # no stored reconstructions: each scoring run reconstructed the test images into scratch and kept a few examples
    runs = out / "runs"
    assert not list(runs.glob("*/reconstructed/*")) and not list(runs.glob("*/scratch"))
    kept = list(runs.glob("*/examples/*.png")) + list(runs.glob("*/examples/*.nii.gz"))
    scored_reconstructions = 2 * 3 * len(set(shift["level"]))  # two datasets' levels x three reconstructors (approx.)
    assert 0 < len(kept) <= 2 * scored_reconstructions
    again = run_study(config, out, progress=False, log=lambda m: None)
    pd.testing.assert_frame_equal(again["bias_shift"], result["bias_shift"])


@pytest.mark.slow
def test_ucsf_mitigation_joins_the_grid_scored_by_both_frozen_models(tmp_path, study2_root):
    """UCSF-PDGM reconstructors fine-tuned against the frozen segmenter (paper §3.5, Figure 5): chosen runs keyed
    (reconstructor, level, strategy), scored by both frozen models, in bias_shift, performance and Tables 3–4."""
    config = _config(study2_root, xray=None,
                     mitigation={"datasets": ["ucsf-pdgm"], "weights": [1.0], "reconstructors": ["unet"], "epochs": 1, "patience": None,
                                 "attributes": ["sex", "age_binary"], "settings": {"adversary_hidden": [8]}})
    settings = config.model_dump()
    settings["mri"]["reconstructors"] = {"unet": settings["mri"]["reconstructors"]["unet"]}
    config = ReconstructionConfig.model_validate(settings)
    out = tmp_path / "s2"
    run_study(config, out, progress=False, log=lambda m: None)
    shift = pd.read_csv(out / "bias_shift.csv")
    mitigated = shift[shift["mitigation"] != "standard"]
    assert set(mitigated["dataset"]) == {"ucsf-pdgm"}
    assert set(mitigated["mitigation"]) == {"reweighting", "eodd", "adversarial", "standard-finetune"}
    assert {"delta_dice", "ser"} <= set(mitigated["metric"]) and "tumour_segmentation" in set(mitigated["label"])
    perf = pd.read_csv(out / "performance.csv")
    assert {"dice", "psnr"} <= set(perf.loc[perf["mitigation"] == "eodd", "metric"])
    versus = pd.read_csv(out / "mitigation_vs_standard.csv")
    assert set(versus["dataset"]) == {"ucsf-pdgm"} and "ser" in set(versus["metric"])
    # primary: each strategy against the same-budget standard fine-tune; secondary: against the original reconstructor
    primary = versus[versus["comparison"] == "primary"]
    assert set(primary["reference"]) == {"standard-finetune"} and set(primary["mitigation"]) == {"reweighting", "eodd", "adversarial"}
    assert set(versus.loc[versus["comparison"] == "secondary", "reference"]) == {"standard"}
    sweep = pd.read_csv(out / "mitigation_sweep.csv")
    assert set(sweep["dataset"]) == {"ucsf-pdgm"} and set(sweep["performance_key"]) == {"val_dice"}
    assert sweep["val_dice"].between(0, 1).all() and sorted(sweep.loc[sweep["chosen"], "strategy"]) == ["adversarial", "eodd", "reweighting"]
    assert "UCSF-PDGM" in (out / "table4_mitigation_cost.md").read_text() and "eodd" in (out / "table3_shift_by_mitigation.md").read_text()
    assert (out / "fig5_bias_change_ucsf_ser.png").is_file() and (out / "fig15_mitigation_performance.png").is_file()
    with pytest.raises(RadfairInputError, match="mitigation.datasets"):
        run_study(config.model_copy(update={"mitigation": config.mitigation.model_copy(update={"datasets": ["chexpert"]})}),
                  tmp_path / "bad", progress=False, log=lambda m: None)


def test_mitigation_scope_names_parts_and_levels_and_rejects_unknown_keys(tmp_path):
    from pydantic import ValidationError

    from radfair.studies.reconstruction.mitigate import check_scope, mitigation_levels
    from radfair.studies.reconstruction.mri import MriPart
    from radfair.studies.reconstruction.xray import XrayPart

    config = _config(tmp_path, mitigation={"datasets": ["chexpert", "ucsf-pdgm"], "levels": ["mri_golden_angle_R4"]})
    parts = [XrayPart(config, tmp_path, tmp_path), MriPart(config, tmp_path, tmp_path)]
    check_scope(config.mitigation, parts)
    assert mitigation_levels(parts[0], config.mitigation) == ["xray_physical_3000"]  # none of its levels named: the middle
    assert mitigation_levels(parts[1], config.mitigation) == ["mri_golden_angle_R4"]
    with pytest.raises(RadfairInputError, match="mitigation.levels"):
        check_scope(config.mitigation.model_copy(update={"levels": ["mri_golden_angle_R99"]}), parts)
    with pytest.raises(ValidationError, match="dataset"):
        _config(tmp_path, mitigation={"dataset": ["ucsf-pdgm"]})


def test_lambda_chosen_once_on_the_unet_is_reused_for_every_reconstructor(tmp_path, monkeypatch):
    """mitigation.lambda_from: unet (the paper): every reconstructor gets the U-Net's λ; without it, each its own."""
    import json as _json
    from types import SimpleNamespace

    from radfair.studies.reconstruction import mitigate
    from radfair.studies.reconstruction.config import MitigationStudy

    # validation sweeps: the U-Net is fairest at λ=0.1, Pix2Pix at λ=1
    eodd = {("unet", 0.01): 0.20, ("unet", 0.1): 0.10, ("unet", 1.0): 0.15,
            ("pix2pix", 0.01): 0.20, ("pix2pix", 0.1): 0.18, ("pix2pix", 1.0): 0.12}
    specs, files = {}, {}
    for kind in ("unet", "pix2pix"):
        entries = [("standard-finetune", 0.0, 0.25)] + [("eodd", w, eodd[(kind, w)]) for w in (0.01, 0.1, 1.0)]
        for strategy, weight, value in entries:
            run_id = f"{kind}-{strategy}-{weight}"
            path = tmp_path / f"{run_id}.json"
            path.write_text(_json.dumps({"val_psnr": 30.0, "val_auroc": 0.8, "val_eodd": value}))
            specs[(kind, "lvl", strategy, weight)] = SimpleNamespace(run_id=run_id)
            files[run_id] = path
    monkeypatch.setattr(mitigate, "RunStore", lambda store: SimpleNamespace(output=lambda spec, name: files[spec.run_id]))
    own, _ = mitigate.choose_runs(specs, tmp_path, MitigationStudy(), "chexpert")
    assert own[("pix2pix", "lvl", "eodd")].run_id == "pix2pix-eodd-1.0" and own[("unet", "lvl", "eodd")].run_id == "unet-eodd-0.1"
    once, sweep = mitigate.choose_runs(specs, tmp_path, MitigationStudy(lambda_from="unet"), "chexpert")
    assert once[("pix2pix", "lvl", "eodd")].run_id == "pix2pix-eodd-0.1"
    chosen = sweep[sweep["chosen"] & (sweep["reconstructor"] == "pix2pix")]
    assert len(chosen) == 1 and chosen["chosen_by"].item() == "from unet"
    assert once[("unet", "lvl", "standard-finetune")].run_id == "unet-standard-finetune-0.0"

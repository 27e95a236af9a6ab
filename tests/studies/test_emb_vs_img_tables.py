"""Study 1's Tables 1-2 (datasets, subgroups, splits) from the study's own split files, against hand counts."""

from __future__ import annotations

import pandas as pd
import pytest

from radfair.studies.emb_vs_img.config import EmbVsImgConfig
from radfair.studies.emb_vs_img.run import write_data_tables
from radfair.studies.emb_vs_img.tables import table1_frame, table2_frame


def cohorts() -> dict[str, pd.DataFrame]:
    mimic = pd.DataFrame({"image_id": [f"m{i}" for i in range(8)], "patient_id": ["p1", "p1", "p2", "p3", "p4", "p4", "p5", "p6"],
                          "split": ["train"] * 5 + ["val", "test", "test"],
                          "sex": ["Female", "Female", "Male", "Male", "Male", "Male", None, "Female"],
                          "race": ["White", "White", "Black", None, "Asian", "Asian", "White", "White"],
                          "insurance": ["Medicare"] * 4 + ["Other"] * 4})
    chexpert = pd.DataFrame({"image_id": ["c0", "c1", "c2", "c3"], "patient_id": ["q1", "q2", "q3", "q3"],
                             "split": ["train", "train", "val", "test"], "sex": ["Male", "Female", "Male", "Male"],
                             "race": ["Asian", "White", "White", "White"], "insurance": [None] * 4})
    return {"mimic": mimic, "chexpert": chexpert}


def test_table1_shares_are_of_the_images_with_a_known_value():
    table = table1_frame(cohorts(), ["sex", "race", "insurance"]).set_index(["Subgroup", "Attribute"])
    assert table.loc[("", "# Images"), "MIMIC"] == "8" and table.loc[("", "# Patients"), "MIMIC"] == "6"
    assert table.loc[("sex", "Male"), "MIMIC"] == "57.1 %"  # 4 of the 7 images with a known sex
    assert table.loc[("sex", "unknown"), "MIMIC"] == "12.5 % of all"
    assert table.loc[("race", "White"), "CXP"] == "75.0 %"
    assert table.loc[("insurance", "Medicare"), "CXP"] == ""  # CheXpert has no insurance
    assert list(table.loc["sex"].index[:2]) == ["Male", "Female"]  # the canonical order, not alphabetical


def test_table2_counts_images_per_split_beside_the_papers(tmp_path):
    table = table2_frame(cohorts()).set_index("Dataset")
    assert table.loc["MIMIC", ["Training", "Validation", "Test"]].tolist() == ["5", "1", "2"]
    assert table.loc["CXP", "Paper (train / val / test)"] == "178,402 / 22,085 / 22,073"
    paths = {}
    for name, frame in cohorts().items():
        paths[name] = str(tmp_path / f"split_{name}.parquet")
        frame.to_parquet(paths[name])
    config = EmbVsImgConfig(datasets=["mimic", "chexpert"], attributes=["sex", "race"], releases=str(tmp_path))
    write_data_tables(config, {"splits": paths}, tmp_path)
    assert "| MIMIC | 5 | 1 | 2 | 6 |" in (tmp_path / "table2.md").read_text()
    assert "# Table 1" in (tmp_path / "table1.md").read_text()
    config = config.model_copy(update={"attributes": ["sex", "insurance"], "attributes_by_dataset": {"mimic": ["sex"]}})
    write_data_tables(config, {"splits": paths}, tmp_path)
    table1 = pd.read_csv(tmp_path / "table1.csv").set_index(["Subgroup", "Attribute"])
    assert ("insurance", "Medicare") not in table1.index  # not analysed for MIMIC, CheXpert has none


def test_the_auc_table_carries_each_seeds_test_auroc():
    from sklearn.metrics import roc_auc_score

    from radfair.studies.emb_vs_img.evaluate import evaluate_dataset
    from tests.studies.test_emb_vs_img import scored_run

    runs = {("emb", s): scored_run(s, 0.0) for s in (0, 3)}
    auc = evaluate_dataset(runs, "mimic", ["sex"], threshold="0.5", bootstrap=20, seed=0)["auc"].set_index("label")
    for s in (0, 3):
        test = runs[("emb", s)].query("split == 'test'")
        assert auc.loc["edema", f"auc_seed{s}"] == pytest.approx(roc_auc_score(test["y_edema"], test["p_edema"]))
    assert auc.loc["edema", "auc_mean"] == pytest.approx((auc.loc["edema", "auc_seed0"] + auc.loc["edema", "auc_seed3"]) / 2)

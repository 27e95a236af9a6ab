"""NIH ChestX-ray14 and the generic manifest: formats, rules, errors (synthetic and hand-written files)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from radfair.data.cohort import build_cohort
from radfair.data.nih_cxr14 import LABELS, load_nih_cxr14
from radfair.data.splits import split_cohort_file
from radfair.data.synthetic.releases import NIH_HEADER
from radfair.errors import RadfairInputError, RadfairWarning


def _release(folder, rows, header=NIH_HEADER, images=None, lists=None):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "Data_Entry_2017_v2020.csv").write_text("\n".join([header] + rows) + "\n")
    for name in images if images is not None else [r.split(",")[0] for r in rows]:
        (folder / "images_001" / "images").mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.zeros((8, 8), np.uint8)).save(folder / "images_001" / "images" / name)
    for name, names in (lists or {}).items():
        (folder / name).write_text("".join(f"{n}\n" for n in names))
    return folder


ROWS = ["00000001_000.png,Cardiomegaly|Effusion,0,1,57,M,PA,2682,2749,0.143,0.143",
        "00000001_001.png,No Finding,1,1,58,M,AP,2894,2729,0.143,0.143",
        "00000002_000.png,Infiltration,0,2,80,F,PA,2500,2048,0.171,0.171"]


def test_split_header_labels_ids_and_official_split(tmp_path):
    _release(tmp_path / "nih", ROWS, lists={"train_val_list.txt": ["00000001_000.png", "00000001_001.png"],
                                            "test_list.txt": ["00000002_000.png"]})
    df, prov = load_nih_cxr14(tmp_path)
    assert list(df["patient_id"]) == ["nih-cxr14:00000001"] * 2 + ["nih-cxr14:00000002"]
    assert list(df["age"]) == [57.0, 58.0, 80.0] and list(df["sex"]) == ["Male", "Male", "Female"]
    assert set(df["view"]) == {"frontal"} and list(df["view_position"]) == ["PA", "AP", "PA"]
    assert list(df["y_pleural_effusion"]) == [1.0, 0.0, 0.0] and list(df["y_cardiomegaly"]) == [1.0, 0.0, 0.0]
    assert list(df["y_infiltration"]) == [0.0, 0.0, 1.0] and list(df["y_no_finding"]) == [0.0, 1.0, 0.0]
    assert {f"y_{k}" for k in LABELS} <= set(df.columns) and list(df["official_split"]) == ["train", "train", "test"]
    cohort, meta = build_cohort("nih-cxr14", tmp_path)
    assert meta["split_rule"] == "official"
    from radfair.data.cohort import save_cohort

    save_cohort(cohort, meta, tmp_path / "c.parquet")
    split = split_cohort_file(tmp_path / "c.parquet", tmp_path / "s.parquet")
    assert split.loc[split["patient_id"] == "nih-cxr14:00000002", "split"].eq("test").all()


def test_the_2017_file_with_impossible_ages_and_a_trailing_comma(tmp_path):
    rows = [r + "," for r in ROWS[:2]] + ["00000002_000.png,No Finding,0,2,414,F,PA,2500,2048,0.171,0.171,"]
    _release(tmp_path, rows, header=NIH_HEADER + ",")
    (tmp_path / "Data_Entry_2017_v2020.csv").rename(tmp_path / "Data_Entry_2017.csv")
    with pytest.raises(RadfairInputError, match=r"Data_Entry_2017.csv: column 'Patient Age'.*414.*v2020.csv corrects"):
        load_nih_cxr14(tmp_path)


@pytest.mark.parametrize("row, match", [
    ("00000003_000.png,Cardiomegally,0,3,50,M,PA,1,1,1,1", "Finding Labels.*Cardiomegally"),
    ("00000003_000.png,No Finding,0,3,50,M,LL,1,1,1,1", "View Position.*LL.*expected PA or AP"),
    ("00000003_000.png,No Finding,0,x3,50,M,PA,1,1,1,1", "Patient ID.*x3"),
])
def test_bad_values_are_one_line_errors(tmp_path, row, match):
    _release(tmp_path, ROWS + [row])
    with pytest.raises(RadfairInputError, match=match):
        load_nih_cxr14(tmp_path)


def test_rows_without_an_image_are_dropped_with_a_count(tmp_path):
    _release(tmp_path, ROWS, images=["00000001_000.png", "00000002_000.png"])
    with pytest.warns(RadfairWarning, match="1 of 3 image.*00000001_001.png.*dropped"):
        df, prov = load_nih_cxr14(tmp_path)
    assert len(df) == 2 and prov["rows_dropped_no_image"] == 1


def test_manifest_relative_and_absolute_paths_attributes_and_labels(tmp_path):
    for name in ("a.png", "b.png", "c.png"):
        Image.fromarray(np.zeros((8, 8), np.uint8)).save(tmp_path / name)
    table = pd.DataFrame({"path": ["a.png", str(tmp_path / "b.png"), "c.png"], "patient_id": ["p1", "p1", "p2"],
                          "sex": ["F", "female", "Unknown"], "age": [30, 31, ""], "site": ["A", "B", "unknown"],
                          "y_nodule": [1, 0, None]})
    table.to_csv(tmp_path / "hospital.csv", index=False)
    cohort, meta = build_cohort("manifest", tmp_path / "hospital.csv")
    assert list(cohort["image_id"]) == ["hospital:a.png", f"hospital:{tmp_path / 'b.png'}", "hospital:c.png"]
    assert list(cohort["sex"][:2]) == ["Female", "Female"] and pd.isna(cohort["sex"][2]) and list(cohort["site"]) == ["A", "B", None]
    assert cohort["y_nodule"].tolist()[:2] == [1.0, 0.0] and np.isnan(cohort["y_nodule"].iloc[2])
    assert cohort["patient_id"].nunique() == 2 and set(cohort["view"]) == {"frontal"}


@pytest.mark.parametrize("column, value, match", [
    ("path", "missing.png", "missing.png: file not found.*line 2"),
    ("age", "thirty", "column 'age'"),
    ("y_nodule", 2, "y_nodule.*expected 1, 0 or blank"),
    ("image_id", "i2", "image_id.*i2"),
])
def test_manifest_errors(tmp_path, column, value, match):
    for name in ("a.png", "b.png"):
        Image.fromarray(np.zeros((8, 8), np.uint8)).save(tmp_path / name)
    table = pd.DataFrame({"path": ["a.png", "b.png"], "patient_id": ["p1", "p2"], "image_id": ["i1", "i2"], "age": [30, 40],
                          "y_nodule": [1, 0]}).astype(object)
    table.loc[0, column] = value
    table.to_csv(tmp_path / "m.csv", index=False)
    with pytest.raises(RadfairInputError, match=match):
        build_cohort("manifest", tmp_path / "m.csv")

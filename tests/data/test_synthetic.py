import hashlib
import time

import numpy as np
import pandas as pd
import pytest

from radfair.data.cohort import build_cohort
from radfair.data.schema import LABELS
from radfair.data.synthetic import cxr, generate, mri
from radfair.errors import RadfairInputError
from tests.conftest import SYNTH_KW


def _digest(root, names):
    h = hashlib.sha256()
    for name in names:
        h.update((root / name).read_bytes())
    return h.hexdigest()


TABLES = [
    "chexpert/CheXpert-v1.0/train.csv",
    "ground_truth_labels.csv.gz",
    "ucsf-pdgm/UCSF-PDGM-metadata_v2.csv",
    "mimic-cxr-jpg/2.0.0/mimic-cxr-2.0.0-metadata.csv.gz",
    "mimiciv/2.2/hosp/admissions.csv.gz",
]


def test_same_seed_same_files_and_other_seed_differs(tmp_path):
    kw = dict(SYNTH_KW, patients=60, mri_patients=2)
    generate(tmp_path / "a", **kw)
    time.sleep(1.1)  # a timestamp anywhere in the output would now differ
    generate(tmp_path / "b", **kw)
    generate(tmp_path / "c", **dict(kw, seed=kw["seed"] + 1))
    assert _digest(tmp_path / "a", TABLES) == _digest(tmp_path / "b", TABLES)
    assert _digest(tmp_path / "a", TABLES) != _digest(tmp_path / "c", TABLES)
    a = pd.read_csv(tmp_path / "a/chexpert/CheXpert-v1.0/train.csv")
    first = a["Path"].iloc[0]
    assert (tmp_path / "a/chexpert" / first).read_bytes() == (tmp_path / "b/chexpert" / first).read_bytes()


def test_every_release_is_written_and_loads(synth_root):
    root, truth = synth_root
    for source in ("chexpert", "mimic", "all", "ucsf-pdgm"):
        cohort, meta = build_cohort(source, root)
        assert len(cohort) > 0 and meta["source"] == source
    assert truth["patients"]["chexpert"] + truth["patients"]["mimic"] == SYNTH_KW["patients"]
    assert (root / "chexpert-embeddings/train.npz").is_file()
    assert any((root / "mimic-cxr-embeddings/files").rglob("*.tfrecord"))


def test_demographics_follow_table1(synth_root):
    root, _ = synth_root
    cohort, _ = build_cohort("mimic", root)
    patients = cohort.drop_duplicates("patient_id")
    assert patients["sex"].eq("Male").mean() == pytest.approx(0.541, abs=0.08)
    assert patients["race"].eq("Black").mean() == pytest.approx(0.161, abs=0.06)


def test_refuses_to_overwrite_without_flag(tmp_path):
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "keep.txt").write_text("mine")
    with pytest.raises(RadfairInputError, match="--overwrite"):
        generate(tmp_path / "x", **dict(SYNTH_KW, patients=30, mri_patients=0))
    assert (tmp_path / "x" / "keep.txt").read_text() == "mine"


def _region_contrast(sex: str) -> float:
    """Mean intensity difference effusion vs no effusion, lower lung zone, same geometry."""
    rng = np.random.default_rng(0)
    findings = pd.DataFrame(0, index=range(2), columns=list(LABELS))
    findings.loc[1, "pleural_effusion"] = 1
    params = cxr.draw_parameters(findings, np.array([sex, sex]), rng)
    for key in params:
        if not key.startswith("has_"):
            params[key] = np.repeat(params[key][:1], 2)
    params["breast"] = np.full(2, cxr.BREAST_ATTENUATION if sex == "Female" else 0.0)
    params["effusion_side"], params["effusion_bilateral"], params["effusion_level"] = np.ones(2), np.ones(2), np.full(2, 0.3)
    img = cxr.display(cxr.attenuation(params, 128))
    zone = np.s_[92:101, 79:98]  # y in [0.45, 0.6], x in [0.25, 0.55]: fully under breast tissue
    return float(img[1][zone].mean() - img[0][zone].mean())


def test_planted_breast_tissue_lowers_lower_zone_contrast():
    male, female = _region_contrast("Male"), _region_contrast("Female")
    assert male > 0.02
    # contrast ratio equals the documented factor exp(-(1 + shadow) b) (up to the soft breast edges)
    assert female / male == pytest.approx(cxr.lower_zone_contrast(cxr.BREAST_ATTENUATION), abs=0.1)


def test_planted_under_labelling_recovered_from_the_files(synth_root):
    root, truth = synth_root
    cohort, _ = build_cohort("all", root, uncertain="ones")
    true = pd.read_csv(root / "ground_truth_labels.csv.gz").set_index("image_id").loc[cohort["image_id"]]
    names = [k for k in LABELS if k not in ("no_finding",)]
    t = true[[f"true_{k}" for k in names]].to_numpy() == 1
    recorded = cohort[[f"y_{k}" for k in names]].to_numpy() == 1
    missed = (t & ~recorded).sum(axis=1) / np.maximum(t.sum(axis=1), 1)
    weight = t.sum(axis=1)
    by_race = pd.DataFrame({"race": cohort["race"].to_numpy(), "missed": missed * weight, "w": weight}).groupby("race").sum()
    rate = by_race["missed"] / by_race["w"]
    assert rate["Black"] > rate["White"] + 0.05
    measured = truth["mechanisms"]["under_labelling"]["measured_blank_share_of_true_positives"]["race"]
    assert measured["Black"] > measured["White"]


def test_mri_leukoaraiosis_grows_with_age_and_masks_follow_grade():
    assert mri.leukoaraiosis_strength(np.array([40, 65, 90])).tolist() == pytest.approx([0, mri.LEUKOARAIOSIS / 2, mri.LEUKOARAIOSIS])
    rng = np.random.default_rng(0)
    row = pd.Series({"age": 70, "grade": 4, "tumor_type": "Glioblastoma, IDH-wildtype"})
    vol, mask = mri.phantom(row, (32, 32, 16), rng)
    assert set(np.unique(mask)) == {0, 1, 2, 4}
    assert vol[mask == 2].mean() > vol[mask == 0].mean()

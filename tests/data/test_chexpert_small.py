"""Issue 12 item 7: the CheXpert-v1.0-small release, with the race file beside or above it."""

from __future__ import annotations

import shutil

import pandas as pd
import pytest

from radfair.data.cohort import build_cohort
from radfair.data.synthetic import generate


@pytest.fixture(scope="module")
def full(tmp_path_factory):
    release = tmp_path_factory.mktemp("small") / "rel"
    generate(release, patients=20, seed=3, image_size=32, mri_patients=0)
    return release / "chexpert"


def _small(full, dest):
    """The full release rewritten as CheXpert-v1.0-small (folder and every Path value)."""
    shutil.copytree(full / "CheXpert-v1.0", dest / "CheXpert-v1.0-small")
    for name in ("train.csv", "valid.csv"):
        csv = dest / "CheXpert-v1.0-small" / name
        df = pd.read_csv(csv)
        df["Path"] = df["Path"].str.replace("CheXpert-v1.0/", "CheXpert-v1.0-small/", regex=False)
        df.to_csv(csv, index=False)
    return dest


@pytest.mark.parametrize("demo_at", ["beside", "above", "two_above", "inside"])
def test_chexpert_small_release_is_read_like_the_full_one(full, tmp_path, demo_at):
    top = tmp_path / "data" / "stanford"
    release = _small(full, top / "chexpert")
    target = {"beside": release, "above": release.parent, "two_above": release.parent.parent,
              "inside": release / "CheXpert-v1.0-small"}[demo_at]
    shutil.copy(full / "CHEXPERT DEMO.xlsx", target / "CHEXPERT DEMO.xlsx")
    small, meta = build_cohort("chexpert", tmp_path)
    reference, _ = build_cohort("chexpert", full.parent)
    assert meta["provenance"]["chexpert"]["release"] == str(release)
    assert small["image_id"].str.startswith("chexpert:CheXpert-v1.0-small/").all()
    assert all(p.endswith(".jpg") and "CheXpert-v1.0-small" in p and pd.io.common.file_exists(p) for p in small["path"])
    columns = ["sex", "age", "race", "y_edema"]
    pd.testing.assert_frame_equal(small[columns].reset_index(drop=True), reference[columns].reset_index(drop=True))

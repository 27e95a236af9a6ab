"""Shared fixtures: one small synthetic release tree per test session (fastMRI-style mock data)."""

from __future__ import annotations

import pytest

from radfair.data.synthetic import generate

SYNTH_KW = dict(patients=600, seed=7, image_size=32, mri_patients=6, mri_shape=(32, 32, 8))


@pytest.fixture(scope="session")
def synth_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("synth") / "releases"
    truth = generate(root, **SYNTH_KW)
    return root, truth


@pytest.fixture(scope="session")
def split_all(synth_root, tmp_path_factory):
    """The ALL cohort (CheXpert + MIMIC) of the session's synthetic releases, split 80/10/10 by patient."""
    from radfair.data.cohort import build_cohort, save_cohort
    from radfair.data.splits import split_cohort_file

    root, _ = synth_root
    folder = tmp_path_factory.mktemp("cohorts")
    cohort, meta = build_cohort("all", root)
    save_cohort(cohort, meta, folder / "all.parquet")
    split_cohort_file(folder / "all.parquet", folder / "split_all.parquet", seed=0)
    return folder / "split_all.parquet"


@pytest.fixture(scope="session")
def ucsf(synth_root, tmp_path_factory):
    """The synthetic UCSF-PDGM cohort (6 patients of 32x32x8), split by patient 1/3 each; the first split seed
    whose val and test splits both hold both sexes (so an audit by sex is possible)."""
    from radfair.data.cohort import build_cohort, save_cohort
    from radfair.data.splits import split_cohort_file

    root, _ = synth_root
    folder = tmp_path_factory.mktemp("ucsf")
    cohort, meta = build_cohort("ucsf-pdgm", root)
    save_cohort(cohort, meta, folder / "cohort.parquet")
    for seed in range(50):
        split = split_cohort_file(folder / "cohort.parquet", folder / "split.parquet", fractions=(0.34, 0.33, 0.33), seed=seed)
        if all(split.loc[split["split"] == s, "sex"].nunique() == 2 for s in ("val", "test")):
            return folder / "split.parquet"
    pytest.skip("no split seed puts both sexes in val and test")

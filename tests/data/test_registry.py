"""The dataset registry: a dataset declared in one module runs through cohort and split; every registered dataset
with a synthetic release round-trips it (the registry's contract test)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from radfair.cli import app
from radfair.data import registry
from radfair.data.cohort import build_cohort
from radfair.data.discover import find_release
from radfair.errors import RadfairInputError

runner = CliRunner()


def test_builtins_are_registered_with_their_declarations():
    known = registry.datasets()
    assert {"chexpert", "mimic", "all", "ucsf-pdgm", "nih-cxr14", "manifest"} <= set(known)
    assert known["all"].parts == ("chexpert", "mimic")
    assert known["nih-cxr14"].labels["pleural_effusion"] == "Effusion" and known["nih-cxr14"].split_rule == "official"
    assert known["ucsf-pdgm"].modality == "mri"
    assert "nih-cxr14" in registry.release_markers() and "mimic-iv" in registry.release_markers()


def test_unknown_source_is_one_line_listing_the_registered_datasets(tmp_path):
    with pytest.raises(RadfairInputError, match="'padchest' is not valid; expected .*nih-cxr14.*manifest"):
        build_cohort("padchest", tmp_path)


def test_a_dataset_declared_in_one_module_runs_through_cohort_and_split(tmp_path):
    from tests.data.toy_dataset import write_toy_release

    write_toy_release(tmp_path / "downloads" / "toy")
    assert find_release(tmp_path, "toy-cxr") == tmp_path / "downloads" / "toy"
    r = runner.invoke(app, ["datasets"])
    assert r.exit_code == 0 and "toy-cxr" in r.output
    r = runner.invoke(app, ["cohort", "--source", "toy-cxr", "--root", str(tmp_path), "--out", str(tmp_path / "c.parquet")])
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["split", "--cohort", str(tmp_path / "c.parquet"), "--out", str(tmp_path / "s.parquet"),
                            "--fractions", "0.5,0.25,0.25"])
    assert r.exit_code == 0, r.output
    split = pd.read_parquet(tmp_path / "s.parquet")
    assert len(split) == 24 and split.groupby("patient_id")["split"].nunique().max() == 1
    assert set(split["split"]) == {"train", "val", "test"} and split["y_toy_finding"].isin([0.0, 1.0]).all()


def _declared(name: str) -> list[registry.Dataset]:
    d = registry.get(name)
    return [registry.get(p) for p in d.parts] if d.parts else [d]


@pytest.mark.parametrize("name", [n for n, d in registry.datasets().items() if d.synthetic or d.parts])
def test_every_dataset_round_trips_its_synthetic_release(name, synth_root):
    """Contract: the loader reads the generator's release, one row per frontal image written, with every declared
    label and attribute column, the dataset's name, and image files that exist."""
    root, truth = synth_root
    dataset = registry.get(name)
    cohort, meta = build_cohort(name, root, views="all")
    assert meta["split_rule"] == dataset.split_rule
    parts = _declared(name)
    assert set(cohort["dataset"]) == {p.name for p in parts}
    for column in [f"y_{label}" for label in dataset.label_names()] + [a for a in dataset.attributes]:
        assert column in cohort.columns, column
    for attribute in dataset.attributes:
        assert cohort[attribute].notna().any(), attribute
    assert all(Path(p).is_file() for p in cohort["path"].sample(min(20, len(cohort)), random_state=0))
    expected = {"chexpert": None, "mimic": None, "ucsf-pdgm": truth["patients"]["ucsf-pdgm"],
                "nih-cxr14": truth["nih_cxr14_images"]}
    if name in ("ucsf-pdgm", "nih-cxr14"):
        assert len(cohort) == expected[name]
    if name == "all":
        assert len(cohort) == truth["images"]


def test_study_configs_accept_registered_datasets_only():
    from pydantic import ValidationError

    from radfair.studies.emb_vs_img.config import EmbVsImgConfig
    from radfair.studies.reconstruction.config import ReconstructionConfig, XrayStudy

    assert EmbVsImgConfig(releases="r", datasets=["nih-cxr14", "all"]).datasets == ["nih-cxr14", "all"]
    with pytest.raises(ValidationError, match="not a registered xray dataset"):
        EmbVsImgConfig(releases="r", datasets=["ucsf-pdgm"])
    nih = XrayStudy(source="nih-cxr14")
    assert "infiltration" in nih.labels and "no_finding" not in nih.labels and "pleural_effusion" in nih.labels
    assert XrayStudy().labels[0] == "atelectasis" and len(XrayStudy().labels) == 12
    with pytest.raises(ValidationError, match="not a registered mri dataset"):
        ReconstructionConfig(releases="r", mri={"source": "chexpert"})

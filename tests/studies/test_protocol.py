"""The paper configs resolve to the papers' settings (table transcribed in radfair.studies.protocol, with sections)."""

import pytest

from radfair.studies.emb_vs_img.config import load_config as load_study1
from radfair.studies.protocol import PAPER_SETTINGS, deviations, resolved_settings
from radfair.studies.reconstruction.config import load_config as load_study2

# Spot values typed here from the papers, independently of the table (a typo in the table fails one or the other).
PAPER = {
    "reconstruction": {"xray.reconstructors.unet.optim.lr": 1e-3, "xray.reconstructors.pix2pix.batch_size": 32,
                       "xray.reconstructors.irsde.loop.epochs": 40, "mri.reconstructors.irsde.loop.epochs": 300,
                       "xray.classifier.image_size": 224, "xray.classifier.loop.epochs": 50, "split.shared_training": ["mri"],
                       "mri.segmenter.pixel_loss": "l1", "analysis.age_split": "patient-median",
                       "mri.slices.train.include_empty": True, "mri.slices.inference.slice_range": [60, 130]},
    "emb-vs-img": {"arms.emb.batch_size": 48, "arms.img.image_size": 224, "split.fractions": [0.8, 0.1, 0.1]},
}


def _dump(study, name):
    config = load_study2(f"configs/{name}.yaml").effective() if study == "reconstruction" else load_study1(f"configs/{name}.yaml")
    return config.model_dump(mode="json")


@pytest.mark.parametrize("study,name", [("reconstruction", "paper-reconstruction"), ("emb-vs-img", "paper-emb-vs-img")])
def test_paper_config_resolves_to_every_published_setting(study, name):
    rows = resolved_settings(study, _dump(study, name))
    assert all(row["source"] for row in rows)
    wrong = [(r["setting"], r["paper"], r["radfair"]) for r in rows if not r["matches"]]
    assert not wrong
    table = {r["setting"]: r["paper"] for r in rows}
    for setting, value in PAPER[study].items():
        assert table[setting] == pytest.approx(value) if isinstance(value, float) else table[setting] == value


@pytest.mark.parametrize("study,name", [("reconstruction", "demo-reconstruction"), ("emb-vs-img", "demo-emb-vs-img")])
def test_demo_departures_are_listed_with_the_demo_purpose(study, name):
    listed = deviations(study, _dump(study, name))
    own = [d for d in listed if d["source"] != "known"]
    assert own and all(d["why"].startswith("demo") and d["paper"] != d["radfair"] for d in own)
    assert {"setting", "paper", "radfair", "why"} <= set(listed[0])


def test_paper_configs_list_what_no_setting_removes():
    study2 = {d["setting"] for d in deviations("reconstruction", _dump("reconstruction", "paper-reconstruction"))}
    assert {"LPIPS (Tables 7-8)", "xray.classifier.weights", "mri.classifier.weights"} <= study2  # no weights file: random init, named
    study1 = {d["setting"] for d in deviations("emb-vs-img", _dump("emb-vs-img", "paper-emb-vs-img"))}
    assert "image baselines (MIMIC, CXP)" in study1
    assert "seed training" in study1  # the embeddings arm's seeds trained together: named, with what differs (dropout)
    separate = _dump("emb-vs-img", "paper-emb-vs-img")
    separate["arms"]["emb"]["ensemble"] = False
    assert "seed training" not in {d["setting"] for d in deviations("emb-vs-img", separate)}


def test_a_user_override_is_named_as_one():
    config = _dump("reconstruction", "paper-reconstruction")
    config["mri"]["segmenter"]["pixel_loss"] = "bce"
    listed = {d["setting"]: d for d in deviations("reconstruction", config)}
    assert listed["mri.segmenter.pixel_loss"]["why"].startswith("user override")
    assert len(PAPER_SETTINGS["reconstruction"]) > 60

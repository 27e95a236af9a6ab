"""`radfair study ... --plan`: writes plan.json (runs, deviations, estimate) from the config alone, no data, no GPU."""

import json

import pytest
from typer.testing import CliRunner

from radfair.cli import app

runner = CliRunner()


@pytest.mark.parametrize("study", ["emb-vs-img", "reconstruction"])
def test_plan_needs_no_data_and_lists_runs_deviations_and_estimate(study, tmp_path):
    r = runner.invoke(app, ["study", study, "--config", f"configs/paper-{study}.yaml", "--out", str(tmp_path), "--plan", "--device", "cuda"])
    assert r.exit_code == 0, r.output
    plan = json.loads((tmp_path / "plan.json").read_text())
    assert plan["device"] == "cuda" and plan["runs"] and plan["deviations"]
    run = plan["runs"][0]
    assert {"kind", "dataset", "model", "level", "seed", "settings", "resources"} <= set(run) and run["resources"]["gpus"] > 0
    assert {"images", "gpu_hours", "disk_gb"} <= set(plan["estimate"])
    assert "deviations from the paper" in r.output and not (tmp_path / "runs").exists()


def test_plan_of_study2_uses_each_reconstructors_own_settings(tmp_path):
    runner.invoke(app, ["study", "reconstruction", "--config", "configs/paper-reconstruction.yaml", "--out", str(tmp_path), "--plan"])
    runs = json.loads((tmp_path / "plan.json").read_text())["runs"]
    epochs = {(r["dataset"], r["model"]): r["settings"]["loop"]["epochs"] for r in runs if r["kind"] == "train-reconstructor"}
    assert epochs[("chexpert", "irsde")] == 40 and epochs[("ucsf-pdgm", "irsde")] == 300 and epochs[("chexpert", "pix2pix")] == 200


def test_device_without_plan_is_one_line_error(tmp_path):
    r = runner.invoke(app, ["study", "reconstruction", "--config", "configs/paper-reconstruction.yaml", "--out", str(tmp_path), "--device", "cuda"])
    assert r.exit_code == 2 and "error: --device" in r.output


def test_plan_counts_images_from_the_releases_when_they_are_on_disk(tmp_path, synth_root):
    """With the releases there, the plan counts each dataset's split from their metadata (the same patient-level
    split the study makes); without them, the paper's Table 2, and it says which."""
    from radfair.studies.emb_vs_img.config import EmbVsImgConfig
    from radfair.studies.emb_vs_img.data import prepare_data
    from radfair.studies.plan import write_plan

    root, _ = synth_root
    config = EmbVsImgConfig(releases=str(root), datasets=["mimic", "chexpert", "all"], arms={"img": {"model": "densenet121"}})
    plan = write_plan("emb-vs-img", config, tmp_path / "plan")
    images = plan["estimate"]["images"]
    manifest = prepare_data(config, tmp_path / "study", log=lambda m: None)
    for dataset in ("mimic", "chexpert", "all"):
        assert images["train images per run"][dataset] == manifest["counts"][dataset]["images"]["train"]
        assert images["source"][dataset].startswith("counted from the release metadata")
    absent = write_plan("emb-vs-img", config.model_copy(update={"releases": str(tmp_path / "nowhere")}), tmp_path / "plan2")
    assert absent["estimate"]["images"]["train images per run"]["mimic"] == 182_896
    assert absent["estimate"]["images"]["source"]["mimic"] == "the paper's Table 2 (release not on disk)"


def test_plan_disk_counts_what_each_stage_writes(tmp_path):
    """Every image degraded at every level (plus its clean working copy); reconstructions live in the scoring runs'
    scratch only (one test set per running job); caches and checkpoints are counted (raw bytes, an upper bound)."""
    runner.invoke(app, ["study", "reconstruction", "--config", "configs/paper-reconstruction.yaml", "--out", str(tmp_path), "--plan"])
    plan = json.loads((tmp_path / "plan.json").read_text())
    disk, runs = plan["estimate"]["disk_gb"], plan["runs"]
    images, test, size = 224_316, int(224_316 * 0.2), 256 ** 2
    assert disk["xray_clean_and_degraded_gb"] == round(images * size * 4 / 1e9, 1)
    # no reconstruction is stored: each scoring run reconstructs the test set into scratch (jobs: 1 at a time)
    assert disk["xray_reconstructed_gb"] == round(test * size / 1e9, 1)
    assert not any("mitigation_reconstructed" in k for k in disk) and not any(r["kind"] == "reconstruct" for r in runs)
    scored = sum(r["kind"] == "predict-classifier" and r["dataset"] == "chexpert" for r in runs)
    assert scored == 3 * 3 + 3 * 4  # 3 reconstructors x 3 levels; per reconstructor the fine-tune and each strategy's choice
    # the reconstructors read the working-size PNGs themselves; only the classifier's 224² copies are cached
    assert disk["xray_image_cache_gb"] == round((images - int(int(images * 0.7) * 0.7)) * 224 ** 2 / 1e9, 1)
    # best.pt of every run (float32 weights) plus one training run's last.pt with Adam's moments (jobs: 1)
    assert 0 < disk["xray_checkpoints_gb"] < 8 and 0 < disk["mri_checkpoints_gb"] < 8
    voxels = 240 ** 2 * 155  # UCSF-PDGM's own grid; uint16 volumes: 2 bytes a voxel
    assert disk["mri_clean_and_degraded_gb"] == round(501 * voxels * 2 * 4 / 1e9, 1)
    # downstream slices at slices.size, the reconstructors' clean + three levels at the volumes' own size
    assert disk["mri_slice_cache_gb"] == round(501 * 155 * (plan["config"]["mri"]["slices"]["size"] ** 2 + 240 ** 2 * 4) / 1e9, 1)
    assert sum(disk.values()) <= 150  # issue 19: Study 2's paper config within 150 GB of caches and outputs


def test_the_mri_grid_is_read_from_the_first_volume_when_the_release_is_on_disk(synth_root):
    import nibabel as nib

    from radfair.data.cohort import build_cohort
    from radfair.studies.plan import volume_grid

    root, _ = synth_root
    release = next(p for p in root.iterdir() if "ucsf" in p.name.lower())
    first = nib.load(str(build_cohort("ucsf-pdgm", str(release))[0]["path"].iloc[0])).shape
    assert volume_grid("ucsf-pdgm", str(release)) == (first[0], first[2]) and first[0] != 240  # the synthetic phantoms' grid
    assert volume_grid("ucsf-pdgm", str(root / "nowhere")) is None

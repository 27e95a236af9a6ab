"""UCSF-PDGM downstream models of Study 2: slice cache, median aggregation, the two run kinds, frozen scoring."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
import torch

from radfair.degradation.run import degrade_mri
from radfair.errors import RadfairInputError
from radfair.execution import KINDS, execute, read_record
from radfair.fairness import AuditConfig, run_audit
from radfair.readers import read_nifti
from radfair.training.checkpoint import load_checkpoint
from radfair.training.inputs import resize_to_uint8
from radfair.training.mri_downstream import (
    aggregate_patients,
    dice_from_counts,
    run_spec,
    score_volumes,
    soft_dice_loss,
)
from radfair.training.segmenter import segmentation_table
from radfair.training.volumes import (
    DownstreamSlices,
    SegmentationBatches,
    SliceSelection,
    SliceSettings,
    selected_rows,
    slice_arrays,
    unit_volume,
)

TUMOUR = {"size": 32, "min_tumour_pixels": 1}  # the slices with tumour (cache tests)
# the paper's protocol on 8-slice volumes: train on every slice, infer on a fixed range whatever the mask
SLICES = {"size": 32, "train": {"include_empty": True}, "inference": {"include_empty": True, "slice_range": [2, 6]}}
FAST_LOOP = {"epochs": 2, "patience": None}


def test_slice_cache_has_aligned_images_and_masks(ucsf):
    cohort = pd.read_parquet(ucsf)
    data = slice_arrays(cohort, ucsf, SliceSettings(**TUMOUR), progress=False)
    n = len(data.index)
    assert data.images.shape == data.masks.shape == (n, 32, 32) and data.images.dtype == data.masks.dtype == np.uint8
    assert list(data.index.columns) == ["image_id", "patient_id", "slice", "tumour_pixels"]
    assert set(data.index["image_id"]) <= set(cohort["image_id"]) and n > 0
    paths = cohort.set_index("image_id")
    for i, row in data.index.iterrows():
        vol = unit_volume(paths.loc[row["image_id"], "path"])
        mask = read_nifti(paths.loc[row["image_id"], "mask_path"])[0][..., row["slice"]] > 0
        np.testing.assert_array_equal(data.images[i], resize_to_uint8(vol[..., row["slice"]], 32))
        np.testing.assert_array_equal(data.masks[i], mask.astype(np.uint8))  # same size: nearest = identity
        assert data.masks[i].sum() == row["tumour_pixels"] >= 1
    # every kept slice of a volume, and only those: all slices with tumour
    for image_id, group in data.index.groupby("image_id"):
        labels = read_nifti(paths.loc[image_id, "mask_path"])[0]
        assert group["slice"].tolist() == [z for z in range(labels.shape[-1]) if (labels[..., z] > 0).any()]
    # cached: a second call reads the same files; other settings make another cache
    again = slice_arrays(cohort, ucsf, SliceSettings(**TUMOUR), progress=False)
    assert again.images.filename == data.images.filename
    everything = slice_arrays(cohort, ucsf, SliceSettings(size=16, include_empty=True), progress=False)
    assert everything.images.shape == (6 * 8, 16, 16) and set(everything.masks.ravel()) <= {0, 1}


def test_slice_cache_refuses_bad_input(ucsf, tmp_path):
    cohort = pd.read_parquet(ucsf)
    with pytest.raises(RadfairInputError, match="mask_path"):
        slice_arrays(cohort.drop(columns=["mask_path"]), ucsf, SliceSettings(**TUMOUR), progress=False)
    with pytest.raises(RadfairInputError, match="min_tumour_pixels"):
        slice_arrays(cohort, ucsf, SliceSettings(size=32, min_tumour_pixels=-1), progress=False)
    flat = tmp_path / "flat.nii.gz"
    nib.save(nib.Nifti1Image(np.zeros((32, 32), np.uint8), np.eye(4)), flat)
    with pytest.raises(RadfairInputError, match="flat.nii.gz.*3-D volume"):
        slice_arrays(cohort.assign(mask_path=str(flat)), ucsf, SliceSettings(**TUMOUR), progress=False)
    broken = tmp_path / "broken.nii.gz"
    broken.write_bytes(b"not a volume")
    bad = cohort.assign(path=[str(broken)] + cohort["path"].tolist()[1:])
    bad.to_parquet(tmp_path / "bad.parquet")
    with pytest.raises(RadfairInputError, match="broken.nii.gz"):
        slice_arrays(bad, tmp_path / "bad.parquet", SliceSettings(**TUMOUR), progress=False)


def test_a_selection_covers_another_only_when_it_keeps_every_slice_the_other_keeps():
    every, paper = SliceSelection(include_empty=True), SliceSelection(include_empty=True, slice_range=(60, 130))
    tumour, big_tumour = SliceSelection(min_tumour_pixels=1), SliceSelection(min_tumour_pixels=5)
    assert every.covers(paper) and every.covers(tumour) and tumour.covers(big_tumour)
    assert not paper.covers(every) and not tumour.covers(paper) and not big_tumour.covers(tumour)
    assert not SliceSelection(include_empty=True, slice_range=(61, 130)).covers(paper)
    z, pixels = np.arange(8), np.array([0, 3, 0, 7, 1, 0, 0, 2])
    assert np.flatnonzero(paper.keep(z + 58, pixels)).tolist() == [2, 3, 4, 5, 6, 7]  # slices 60..65: the mask plays no part
    assert np.flatnonzero(big_tumour.keep(z, pixels)).tolist() == [3]
    with pytest.raises(RadfairInputError, match="slices.inference.slice_range"):
        DownstreamSlices(inference={"slice_range": (5, 5)}).check()


def test_inference_rows_of_the_training_cache_are_the_inference_cache(ucsf):
    """The paper's inference slices taken from the every-slice training cache equal a cache built for them alone."""
    cohort = pd.read_parquet(ucsf)
    slices = DownstreamSlices.model_validate(SLICES)
    every = slice_arrays(cohort, ucsf, slices.training(), progress=False)
    assert len(every) == 6 * 8  # every slice of every volume, tumour or not
    rows = selected_rows(every, slices.inference, cohort["image_id"][cohort["split"] == "test"])
    alone = slice_arrays(cohort[cohort["split"] == "test"].reset_index(drop=True), ucsf, slices.inferring(), progress=False)
    pd.testing.assert_frame_equal(every.index.iloc[rows].reset_index(drop=True), alone.index)
    np.testing.assert_array_equal(every.images[rows], alone.images)
    assert alone.index.groupby("image_id")["slice"].apply(list).map([2, 3, 4, 5].__eq__).all()


def test_patient_dice_is_the_mean_of_its_slice_dice_then_groups_average_patients():
    """Hand computation: per-slice Dice (empty truth and prediction: NaN, left out), mean per patient, mean per group."""
    from radfair.fairness import dice, group_dice

    def masks(*cells):  # one 2x2 mask per slice from its pixel list
        out = np.zeros((len(cells), 2, 2), bool)
        for i, pixels in enumerate(cells):
            for r, c in pixels:
                out[i, r, c] = True
        return out

    truth = masks([(0, 0), (0, 1)], [(0, 0)], [], [], [(1, 1)], [])
    pred = masks([(0, 0)], [(0, 0)], [], [(1, 0)], [], [])
    per_slice = dice(pred, truth, "both_empty_nan")
    np.testing.assert_allclose(per_slice, [2 / 3, 1.0, np.nan, 0.0, 0.0, np.nan])  # 2*1/(1+2); perfect; both empty; FP; FN
    counts = pd.DataFrame({"patient_id": ["a", "a", "a", "b", "b", "c"], "dice_slice": per_slice,
                           "intersection": (pred & truth).sum((1, 2)), "pred_pixels": pred.sum((1, 2)),
                           "true_pixels": truth.sum((1, 2))})
    cohort = pd.DataFrame({"image_id": ["ia", "ib", "ic"], "patient_id": ["a", "b", "c"], "split": "test", "sex": ["F", "F", "M"]})
    table = segmentation_table(cohort, np.arange(3), counts).set_index("patient_id")
    assert table.loc["a", "dice"] == pytest.approx((2 / 3 + 1.0) / 2) and table.loc["a", "n_dice_slices"] == 2
    assert table.loc["b", "dice"] == 0.0 and np.isnan(table.loc["c", "dice"]) and table["n_slices"].tolist() == [3, 2, 1]
    assert table.loc["a", "dice_volume"] == pytest.approx(2 * 2 / (2 + 3))  # the stacked slices, for comparison
    groups = group_dice(table["dice"].to_numpy(), np.array([0, 0, 1]), 2)[0]
    np.testing.assert_allclose(groups, [((2 / 3 + 1.0) / 2 + 0.0) / 2, np.nan])  # patient c (no defined slice) drops out
    ignore = dice(pred, truth, "ignore_empty")
    assert np.isnan(ignore[3]) and dice(pred, truth, "empty_is_one")[2] == 1.0  # the other conventions, for contrast


def test_patient_score_is_the_median_of_its_slices():
    slices = pd.DataFrame({"patient_id": ["a", "a", "a", "b", "b", "c"],
                           "p_high_grade": [0.1, 0.9, 0.4, 0.2, 0.6, 0.7],
                           "p_glioblastoma": [0.5, 0.3, 0.8, 1.0, 0.0, 0.25]})
    out = aggregate_patients(slices, ["high_grade", "glioblastoma"]).set_index("patient_id")
    assert out.loc["a", "p_high_grade"] == 0.4 and out.loc["a", "p_glioblastoma"] == 0.5
    assert out.loc["b", "p_high_grade"] == pytest.approx(0.4) and out.loc["b", "p_glioblastoma"] == 0.5
    assert out.loc["c", "p_high_grade"] == 0.7 and out["n_slices"].tolist() == [3, 2, 1]


def test_dice_from_counts_and_soft_dice():
    np.testing.assert_allclose(dice_from_counts([2, 0, 0], [3, 1, 0], [3, 0, 0]), [2 / 3, 0.0, np.nan])
    target = torch.zeros(2, 1, 8, 8)
    target[:, :, 2:5, 2:5] = 1
    perfect = torch.where(target > 0, 20.0, -20.0)
    assert soft_dice_loss(perfect, target) < 1e-3 < soft_dice_loss(-perfect, target)


def test_segmentation_batches_replay_their_seeded_order(ucsf):
    data = slice_arrays(pd.read_parquet(ucsf), ucsf, SliceSettings(**TUMOUR), progress=False)
    batches = SegmentationBatches(data.images, data.masks, 2, shuffle=True, seed=3)
    first = [b["index"].tolist() for b in batches.epoch(1)]
    assert [b["index"].tolist() for b in batches.epoch(1, start=1)] == first[1:]
    batch = next(batches.epoch(0))
    assert batch["x"].shape == batch["mask"].shape == (2, 1, 32, 32) and float(batch["x"].max()) <= 1.0


@pytest.fixture(scope="module")
def classifier_run(ucsf, tmp_path_factory):
    spec = run_spec("train-slice-classifier", cpus=1, cohort=str(ucsf), model="resnet18", slices=SLICES, batch_size=4,
                    eval_batch_size=8, optim={"lr": 1e-3, "weight_decay": 0.0}, loop=FAST_LOOP)
    run_dir = tmp_path_factory.mktemp("runs") / "classifier"
    return spec, run_dir, execute(spec, run_dir, progress=False)


@pytest.fixture(scope="module")
def segmenter_run(ucsf, tmp_path_factory):
    spec = run_spec("train-segmenter", cpus=1, cohort=str(ucsf), widths=[8, 16], bottleneck=32, slices=SLICES, batch_size=4,
                    eval_batch_size=8, loop=FAST_LOOP)
    run_dir = tmp_path_factory.mktemp("runs") / "segmenter"
    return spec, run_dir, execute(spec, run_dir, progress=False)


def test_run_kinds_are_declared_next_to_their_code():
    assert KINDS["train-slice-classifier"].module == "radfair.training.slice_classifier"
    assert KINDS["train-segmenter"].module == "radfair.training.segmenter"


def test_each_mri_run_records_exactly_its_declared_outputs(classifier_run, segmenter_run):
    for spec, run_dir, _ in (classifier_run, segmenter_run):
        outputs = read_record(run_dir)["outputs"]
        assert {n: e["path"] for n, e in outputs.items()} == dict(KINDS[spec.kind].outputs)
        assert all((run_dir / e["path"]).is_file() for e in outputs.values())


def test_slice_classifier_run_scores_val_and_test_patients_by_median(classifier_run, ucsf):
    spec, run_dir, outcome = classifier_run
    assert outcome.status == "done"
    assert len(pd.read_csv(run_dir / "history.csv")) == 2 and load_checkpoint(run_dir / "checkpoints" / "best.pt") is not None
    cohort = pd.read_parquet(ucsf)
    scored = pd.read_parquet(run_dir / "scored.parquet")
    expected = cohort.loc[cohort["split"].isin(["val", "test"]), "image_id"].tolist()
    assert scored["image_id"].tolist() == expected and scored["patient_id"].is_unique
    for column in ("image_id", "patient_id", "split", "sex", "age", "age_group", "y_high_grade", "y_glioblastoma",
                   "p_high_grade", "p_glioblastoma"):
        assert column in scored.columns
    assert scored[["p_high_grade", "p_glioblastoma"]].stack().between(0, 1).all()
    slices = pd.read_parquet(run_dir / "slice_scores.parquet")
    assert (slices.groupby("image_id")["slice"].apply(list).map([2, 3, 4, 5].__eq__)).all()  # the inference range, no mask
    assert set(slices["image_id"]) == set(expected) and (slices["tumour_pixels"] == 0).any()
    medians = slices.groupby("patient_id")[["p_high_grade", "p_glioblastoma"]].median()
    np.testing.assert_allclose(scored.set_index("patient_id")[medians.columns].loc[medians.index], medians)
    assert (scored.set_index("patient_id")["n_slices"] == slices.groupby("patient_id").size()).all()
    with pytest.warns(Warning):  # tiny data: every patient is high grade, so no threshold (NaN metrics, warned)
        result = run_audit(scored, AuditConfig(attributes=["sex"], bootstrap=0, threshold="balanced"))
    assert result["audit"]["test_patients"] == int((scored["split"] == "test").sum())
    assert execute(spec, run_dir, progress=False).status == "skipped"


def test_segmenter_run_writes_patient_dice_recomputable_from_counts(segmenter_run, ucsf):
    spec, run_dir, outcome = segmenter_run
    assert outcome.status == "done"
    table = pd.read_parquet(run_dir / "segmentation.parquet")
    cohort = pd.read_parquet(ucsf)
    assert table["image_id"].tolist() == cohort.loc[cohort["split"].isin(["val", "test"]), "image_id"].tolist()
    assert {"image_id", "patient_id", "split", "sex", "age", "age_group", "dice", "n_dice_slices", "dice_volume", "intersection",
            "pred_pixels", "true_pixels", "n_slices"} <= set(table.columns)
    assert table["dice"].dropna().between(0, 1).all() and (table["n_slices"] == 4).all()  # slices 2-5 of every volume
    assert (table["n_dice_slices"] <= table["n_slices"]).all()
    total = table["pred_pixels"] + table["true_pixels"]
    np.testing.assert_allclose(table["dice_volume"], np.where(total > 0, 2 * table["intersection"] / total.where(total > 0, 1), np.nan))
    assert (table["intersection"] <= table[["pred_pixels", "true_pixels"]].min(axis=1)).all()
    assert execute(spec, run_dir, progress=False).status == "skipped"


def test_frozen_models_score_clean_and_degraded_volumes(classifier_run, segmenter_run, ucsf, tmp_path):
    _, classifier_dir, _ = classifier_run
    _, segmenter_dir, _ = segmenter_run
    # the clean cohort through score_volumes gives exactly the run's own tables (same preprocessing, best checkpoint)
    clean = score_volumes(classifier_dir, ucsf, tmp_path / "clean_scored.parquet", progress=False)
    pd.testing.assert_frame_equal(clean, pd.read_parquet(classifier_dir / "scored.parquet"))
    clean_seg = score_volumes(segmenter_dir, ucsf, tmp_path / "clean_seg.parquet", progress=False)
    pd.testing.assert_frame_equal(clean_seg, pd.read_parquet(segmenter_dir / "segmentation.parquet"))
    # degraded copies (radial undersampling, R = 4), read from degraded.parquet's path_degraded
    degrade_mri(ucsf, tmp_path / "degraded", [4.0])
    table = tmp_path / "degraded" / "degraded.parquet"
    scored = score_volumes(classifier_dir, table, tmp_path / "deg_scored.parquet", column="path_degraded", progress=False)
    assert scored["image_id"].tolist() == clean["image_id"].tolist()
    assert scored[["p_high_grade", "p_glioblastoma"]].stack().between(0, 1).all()
    assert not np.allclose(scored["p_high_grade"], clean["p_high_grade"], atol=0, rtol=0)
    assert (scored["n_slices"] == clean["n_slices"]).all()  # the same inference slices: paired
    with pytest.warns(Warning):
        run_audit(scored, AuditConfig(attributes=["sex"], bootstrap=0, threshold="balanced"), compare=clean)
    seg = score_volumes(segmenter_dir, table, tmp_path / "deg_seg.parquet", column="path_degraded", progress=False)
    assert seg["image_id"].tolist() == clean_seg["image_id"].tolist() and seg["dice"].dropna().between(0, 1).all()
    assert (seg["true_pixels"] == clean_seg["true_pixels"]).all()
    with pytest.raises(RadfairInputError, match="level"):
        score_volumes(classifier_dir, table, tmp_path / "x.parquet", column="path_degraded", level="mri_golden_angle_R9",
                      progress=False)
    with pytest.raises(RadfairInputError, match="path_reconstructed"):
        score_volumes(classifier_dir, table, tmp_path / "x.parquet", column="path_reconstructed", progress=False)


def test_a_volume_without_kept_slices_is_warned_not_silently_dropped(ucsf, tmp_path):
    cohort = pd.read_parquet(ucsf)
    index = slice_arrays(cohort, ucsf, SliceSettings(**TUMOUR), progress=False).index
    largest = index.groupby("image_id")["tumour_pixels"].max()
    threshold = int(largest.min()) + 1  # drops the volume(s) whose largest tumour slice is the smallest
    dropped = set(largest.index[largest < threshold])
    kept_splits = set(cohort.loc[~cohort["image_id"].isin(dropped), "split"])
    if not {"train", "val"} <= kept_splits:
        pytest.skip("the smallest tumours hold every train or val volume")
    # training on tumour slices only (does not cover the inference range: a second cache); inference 6-10 of 8 slices
    slices = {"size": 32, "train": {"min_tumour_pixels": threshold}, "inference": {"include_empty": True, "slice_range": [6, 10]}}
    spec = run_spec("train-segmenter", cpus=1, cohort=str(ucsf), widths=[8], bottleneck=8, slices=slices, batch_size=4,
                    loop={"epochs": 1, "patience": None})
    with pytest.warns(Warning, match=f"{len(dropped)} volume.*slices.train"):
        assert execute(spec, tmp_path / "run", progress=False).status == "done"
    table = pd.read_parquet(tmp_path / "run" / "segmentation.parquet")
    expected = cohort.loc[cohort["split"].isin(["val", "test"]), "image_id"]
    assert table["image_id"].tolist() == expected.tolist() and (table["n_slices"] == 2).all()  # inference: no mask
    assert "have no slice kept by slices.train" in (tmp_path / "run" / "run.log").read_text()
    # the paper's range on 8-slice volumes, taken from the every-slice training cache: no slice for any volume
    beyond = {"size": 32, "train": {"include_empty": True}, "inference": {"include_empty": True, "slice_range": [60, 130]}}
    spec = run_spec("train-segmenter", cpus=1, cohort=str(ucsf), widths=[8], bottleneck=8, slices=beyond, batch_size=4,
                    loop={"epochs": 1, "patience": None})
    with pytest.warns(Warning, match=f"{len(expected)} volume.*slices.inference"):
        assert execute(spec, tmp_path / "beyond", progress=False).status == "done"
    assert pd.read_parquet(tmp_path / "beyond" / "segmentation.parquet").empty


def test_the_segmenter_with_batchnorm_learns_where_the_plain_unet_diverged():
    """Mostly-background slices (1 % tumour) and Adam at 3e-3, the demo's setting: the BatchNorm U-Net's loss falls
    and its logits stay finite and moderate (the BatchNorm-free U-Net's logits went to about -1e13 within 20 steps on
    the demo and every prediction was empty)."""
    from radfair.models.mri import build_segmenter
    from radfair.training.segmenter import SegmenterStep
    from radfair.training.steps import OptimConfig, make_optimizer

    g = torch.Generator().manual_seed(0)
    x = torch.rand(64, 1, 32, 32, generator=g) * 0.5
    mask = torch.zeros(64, 1, 32, 32)
    mask[:, :, 12:15, 12:15] = 1.0  # a bright 3x3 "tumour" on every slice (0.9 % of the pixels)
    x = x + 0.5 * mask
    torch.manual_seed(0)
    net = build_segmenter([8, 16], 32, norm=True)
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in net.modules())
    step = SegmenterStep(net, make_optimizer(net.parameters(), OptimConfig(lr=3e-3, weight_decay=0.0)), "l1", 0.5)
    losses = [float(step.train_step({"x": x[i:i + 8], "mask": mask[i:i + 8]})["loss"]) for _ in range(25) for i in range(0, 64, 8)]
    assert np.mean(losses[-8:]) < 0.3 * np.mean(losses[:8])  # measured: 0.75 -> 0.10
    net.eval()
    with torch.no_grad():
        logits = net(x[:8])
    assert torch.isfinite(logits).all() and logits.abs().max() < 1e3
    assert (logits[:, :, 12:15, 12:15] > 0).float().mean() > 0.5  # the tumour is found


def test_the_segmenter_starts_from_a_local_state_dict(tmp_path):
    from radfair.models.mri import build_segmenter
    from radfair.training.segmenter import SegmenterRunConfig, _segmenter

    torch.manual_seed(5)
    source = build_segmenter([4, 8], 8, norm=True)
    torch.save(source.state_dict(), tmp_path / "unet.pt")
    config = SegmenterRunConfig(cohort="x.parquet", widths=[4, 8], bottleneck=8, weights=str(tmp_path / "unet.pt"))
    step = _segmenter(config, "cpu", log=lambda m: None)
    assert all(torch.equal(a, b) for a, b in zip(step.net.state_dict().values(), source.state_dict().values(), strict=True))

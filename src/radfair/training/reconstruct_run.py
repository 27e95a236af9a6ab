"""The ``train-reconstructor`` run kind: a reconstructor trained on the paired images of ``radfair degrade``.

Reads ``degraded.parquet`` (``image_id, level, path_clean, path_degraded``), keeps one degradation level and
the images of the patients chosen for reconstructor training (``split_cohort`` rows with ``split == train``
and, if the column exists, ``recon_split`` in (reconstruction, both); validation on ``split == val``), caches both
image sets once, and trains with the shared loop. Then the **best** checkpoint reconstructs every test image
(:data:`SCORED_SPLITS`; IR-SDE: one seeded sampling chain per batch). Outputs: ``history.csv``, the best checkpoint,
``reconstructed/<key>.png`` and ``reconstructed.parquet`` (image_id, split, path = the reconstruction,
path_clean, path_degraded, psnr, ssim, psnr_degraded, ssim_degraded), the input of the downstream models.

With ``volumes`` set (UCSF-PDGM, ``radfair degrade mri``), the pairs are NIfTI volumes: the reconstructor
trains on their kept axial slices (:mod:`radfair.training.volumes`, tumour slices at the volumes' own
in-plane size) and then reconstructs every slice of each test volume into ``reconstructed/<key>.nii.gz``
(:mod:`radfair.training.reconstruct_volumes`), which the frozen MRI models score like any volume.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from ..config import StrictModel
from ..degradation.quality import psnr, ssim
from ..degradation.run import image_key, save_png
from ..errors import EMPTY_AFTER_FILTER, MISSING_COLUMNS, RadfairInputError
from ..execution.kinds import declare
from ..io import read_table, write_table
from .checkpoint import load_checkpoint
from .inputs import PairedImageBatches, RowView, image_array
from .loop import LoopConfig, fit
from .reconstruct_volumes import reconstruct_volumes, volume_training_pairs
from .reconstruction import ReconstructorConfig, build_reconstructor
from .volumes import SliceSettings

#: The splits whose reconstructions are written: the analysis scores test images only (thresholds come from the clean
#: validation images), so validation reconstructions would be written for nothing.
SCORED_SPLITS = ("test",)


class ReconstructorRunConfig(StrictModel):
    """``reconstruct_splits``: the splits the best checkpoint reconstructs into the run folder when training ends; Study 2
    sets none (its scoring runs reconstruct the test images themselves, into scratch: :func:`reconstruct_finished`)."""

    degraded: str
    level: str
    split_cohort: str
    reconstructor: ReconstructorConfig
    image_size: int = 256
    batch_size: int = 16
    seed: int = 0
    loop: LoopConfig = LoopConfig(epochs=50, patience=5)
    volumes: SliceSettings | None = None  # NIfTI pairs: train on kept axial slices, reconstruct whole volumes
    reconstruct_splits: tuple[str, ...] = SCORED_SPLITS


def paired_rows(config: ReconstructorRunConfig, columns: Sequence[str] = ()) -> tuple[pd.DataFrame, str]:
    """The pairs of one level with their split (and ``columns`` of the split cohort, e.g. labels and
    attributes, which replace same-named columns of the degraded table); the table is written beside the run
    for caching."""
    table = read_table(config.degraded, "degraded table (radfair degrade)")
    needed = ["image_id", "level", "path_clean", "path_degraded"]
    missing = [c for c in needed if c not in table.columns]
    if missing:
        raise RadfairInputError(MISSING_COLUMNS.format(path=config.degraded, columns=missing, expected=needed))
    split = read_table(config.split_cohort, "split cohort")
    absent = [c for c in columns if c not in split.columns]
    if absent:
        raise RadfairInputError(MISSING_COLUMNS.format(path=config.split_cohort, columns=absent, expected=list(columns)))
    table = table.drop(columns=[c for c in columns if c in table.columns])  # the split cohort's values win
    keep = ["image_id", "split"] + [c for c in ("recon_split", "patient_id", "mask_path") if c in split.columns and c not in table.columns]
    keep += [c for c in columns if c not in keep]
    pairs = table[table["level"] == config.level].merge(split[keep], on="image_id", how="inner")
    if pairs.empty:
        raise RadfairInputError(EMPTY_AFTER_FILTER.format(path=config.degraded, step=f"keeping level {config.level!r} and cohort images"))
    return pairs.reset_index(drop=True), config.level


def saved_pairs(pairs: pd.DataFrame, run_dir: Path) -> tuple[pd.DataFrame, Path]:
    """A run's pairs, written once to ``run_dir/pairs.parquet`` and read back from there (a resumed run keeps the rows
    it started with); returns the table and its path (the image caches' reference file)."""
    path = run_dir / "pairs.parquet"
    if not path.is_file():
        write_table(pairs, path)
    return pd.read_parquet(path), path


def image_pairs(config: ReconstructorRunConfig, pairs: pd.DataFrame, pairs_path: Path, progress: bool):
    """The (degraded, clean) uint8 images of every pair at ``config.image_size``, from the shared image cache."""
    return tuple(image_array(pairs, pairs_path, config.image_size, column=column, progress=progress)
                 for column in ("path_degraded", "path_clean"))


def pair_batches(degraded, clean, config: ReconstructorRunConfig, device):
    """``batches(mask, train)``: the (degraded, clean) pairs of the rows in ``mask``, shuffled per epoch when ``train``."""
    def batches(mask, train):
        rows = np.flatnonzero(mask)
        return PairedImageBatches(RowView(degraded, rows), RowView(clean, rows), config.batch_size, shuffle=train,
                                  seed=config.seed, device=device)

    return batches


def reconstructor_on(config: ReconstructorRunConfig, device):
    """The reconstructor step of ``config`` (initialised from ``config.seed``) with every module on ``device``."""
    step = build_reconstructor(config.reconstructor, config.seed)
    for module in step.modules.values():
        module.to(device)
    if hasattr(step, "to"):
        step.to(device)
    return step


def run_reconstructor_training(config_dict: dict, ctx) -> dict[str, str]:
    """The ``train-reconstructor`` run: train on the reconstruction patients' pairs, reconstruct val and test."""
    config = ReconstructorRunConfig.model_validate(config_dict)
    pairs, pairs_path = saved_pairs(paired_rows(config)[0], ctx.run_dir)
    if config.volumes is None:
        items = pairs
        degraded, clean = image_pairs(config, pairs, pairs_path, ctx.progress)
    else:
        slices = volume_training_pairs(pairs, pairs_path, config.volumes, progress=ctx.progress)
        items, degraded, clean = slices.items, slices.degraded, slices.clean
    train_mask, val_mask = training_masks(items)
    device = torch.device(ctx.device)
    batches = pair_batches(degraded, clean, config, device)
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        step = reconstructor_on(config, device)
        ctx.log(f"{config.reconstructor.kind} on {config.level}: {int(train_mask.sum())} train / {int(val_mask.sum())} val pairs")
        result = fit(step, batches(train_mask, True), batches(val_mask, False), config.loop, ctx.run_dir, device=device,
                     progress=ctx.progress, log=ctx.log)
    write_table(pd.DataFrame(result.history), ctx.run_dir / "history.csv")
    outputs = dict(TRAIN_RECONSTRUCTOR.outputs)
    if config.reconstruct_splits:
        reconstruct_best(step, pairs, batches, config, ctx.run_dir, device, splits=config.reconstruct_splits, progress=ctx.progress)
    else:
        outputs.pop("reconstructed")
    return outputs


TRAIN_RECONSTRUCTOR = declare(
    "train-reconstructor", settings=ReconstructorRunConfig, function=run_reconstructor_training,
    outputs={"history": "history.csv", "best_checkpoint": "checkpoints/best.pt", "reconstructed": "reconstructed.parquet"},
    optional=("reconstructed",))

class ReconstructSettings(StrictModel):
    """``run``: a finished ``train-reconstructor`` or ``train-mitigated-reconstructor`` run folder; ``splits``: the
    splits whose images (or volumes) its best checkpoint reconstructs."""

    run: str
    splits: tuple[str, ...] = SCORED_SPLITS


def run_reconstruct(config_dict: dict, ctx) -> dict[str, str]:
    """The ``reconstruct`` run: a finished reconstructor's best checkpoint reconstructs the pairs of ``splits``.

    Mitigation sweeps (:mod:`radfair.mitigation`) train many λ and keep one: only the chosen runs are reconstructed,
    by this run kind, instead of every sweep run writing its own test reconstructions. Same pairs, batches and
    sampling seeds as the training run's own reconstruction (:func:`reconstruct_with_best`), so the images are the
    ones that run would have written.
    """
    settings = ReconstructSettings.model_validate(config_dict)
    reconstruct_finished(settings.run, settings.splits, ctx.run_dir, ctx.device, progress=ctx.progress)
    return dict(RECONSTRUCT.outputs)


def reconstruct_finished(run: str | Path, splits: Sequence[str], run_dir: Path, device: str, *, folder: Path | None = None,
                         progress: bool = True) -> pd.DataFrame:
    """The best checkpoint of the finished reconstructor ``run`` (``train-reconstructor`` or
    ``train-mitigated-reconstructor``) reconstructs its pairs of ``splits`` into ``folder`` (default ``run_dir``):
    images or NIfTI volumes under ``reconstructed/`` and ``reconstructed.parquet`` (with PSNR/SSIM), which is returned.

    Same pairs, batches and sampling seeds as the training run's own reconstruction, so the images are the ones it
    would have written. ``run_dir`` (the calling run's folder) holds the pairs table."""
    from ..execution.store import require_record, run_output

    record = require_record(run, {TRAIN_RECONSTRUCTOR.name, "train-mitigated-reconstructor"})
    config = ReconstructorRunConfig.model_validate({k: v for k, v in record["config"].items()
                                                    if k in ReconstructorRunConfig.model_fields})
    best_path = run_output(run, "best_checkpoint")
    pairs, pairs_path = saved_pairs(paired_rows(config)[0], run_dir)
    torch_device = torch.device(device)
    step = reconstructor_on(config, torch_device)
    batches = (pair_batches(*image_pairs(config, pairs, pairs_path, progress), config, torch_device)
               if config.volumes is None else None)  # volumes are read whole by reconstruct_volumes
    return reconstruct_best(step, pairs, batches, config, run_dir, torch_device, splits=splits, folder=folder, best=best_path,
                            progress=progress)


RECONSTRUCT = declare("reconstruct", settings=ReconstructSettings, function=run_reconstruct, gpu=0.5,
                      outputs={"reconstructed": "reconstructed.parquet"})


def training_masks(items: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Rows that train the reconstructor (``split == train`` and, if present, ``recon_split`` reconstruction or both)
    and its validation rows (``split == val``)."""
    train_mask = (items["split"] == "train").to_numpy().copy()
    if "recon_split" in items.columns:
        train_mask &= items["recon_split"].isin(["reconstruction", "both"]).to_numpy()
    return train_mask, (items["split"] == "val").to_numpy()


def load_best(step, run_dir, best=None) -> dict:
    """Load ``run_dir/checkpoints/best.pt`` (or the checkpoint file ``best``) into every module of ``step`` (eval
    mode; a checkpoint's other modules, e.g. a mitigation run's adversary, are not read); return the checkpoint."""
    best = load_checkpoint(best or run_dir / "checkpoints" / "best.pt")
    if best is None:
        raise RuntimeError("no epoch produced a finite validation score; nothing to reconstruct (training diverged)")
    for name, module in step.modules.items():
        module.load_state_dict(best["modules"][name])
        module.eval()
    return best


def reconstruct_with_best(step, pairs: pd.DataFrame, batches, run_dir, seed: int, *, splits: Sequence[str] = SCORED_SPLITS,
                          folder=None, best=None) -> pd.DataFrame:
    """With the best checkpoint, reconstruct the image pairs of ``splits`` (``batches(mask, train=False)``) into
    ``folder`` (default ``run_dir``): ``reconstructed/<key>.png`` and ``reconstructed.parquet``."""
    load_best(step, run_dir, best)
    folder = Path(folder or run_dir)
    scored = pairs["split"].isin(tuple(splits)).to_numpy()
    table = reconstruct_pairs(step, pairs[scored], batches(scored, False), folder / "reconstructed", seed)
    write_table(table, folder / "reconstructed.parquet")
    return table


def reconstruct_best(step, pairs: pd.DataFrame, batches, config: ReconstructorRunConfig, run_dir, device, *,
                     splits: Sequence[str], folder=None, best=None, progress: bool = True) -> pd.DataFrame:
    """With the best checkpoint, reconstruct the pairs of ``splits``: images (:func:`reconstruct_with_best`, from
    ``batches``) or, with ``config.volumes``, whole NIfTI volumes (:func:`reconstruct_volumes_with_best`)."""
    if config.volumes is None:
        return reconstruct_with_best(step, pairs, batches, run_dir, config.seed, splits=splits, folder=folder, best=best)
    return reconstruct_volumes_with_best(step, pairs, run_dir, config.seed, config.batch_size, device, progress=progress,
                                         splits=splits, folder=folder, best=best)


def reconstruct_volumes_with_best(step, pairs: pd.DataFrame, run_dir, seed: int, batch_size: int, device, *,
                                  progress: bool = True, splits: Sequence[str] = SCORED_SPLITS, folder=None,
                                  best=None) -> pd.DataFrame:
    """With the best checkpoint, reconstruct every slice of the volume pairs of ``splits`` into NIfTI volumes in
    ``folder`` (default ``run_dir``) and write ``reconstructed.parquet`` there
    (:func:`radfair.training.reconstruct_volumes.reconstruct_volumes`)."""
    load_best(step, run_dir, best)
    folder = Path(folder or run_dir)
    scored = pairs["split"].isin(tuple(splits)).to_numpy()
    table = reconstruct_volumes(step, pairs[scored], folder / "reconstructed", seed, batch_size, device, progress=progress)
    write_table(table, folder / "reconstructed.parquet")
    return table


@torch.no_grad()
def reconstruct_pairs(step, rows: pd.DataFrame, batches: PairedImageBatches, folder, seed: int) -> pd.DataFrame:
    """Reconstruct every pair in ``batches`` (rows in the same order); save PNGs; PSNR/SSIM against clean."""
    out, position = [], 0
    for number, batch in enumerate(batches.epoch(0)):
        generator = torch.Generator(device=batch["degraded"].device).manual_seed(seed * 1_000_003 + number)
        recon = step.reconstruct(batch["degraded"], generator).clamp(0, 1)
        part = rows.iloc[position:position + batch["size"]]
        position += batch["size"]
        for image_id, image in zip(part["image_id"], recon, strict=True):
            save_png(folder / f"{image_key(image_id)}.png", image)
        out.append(part[["image_id", "split", "path_clean", "path_degraded"]].assign(
            path=[str(folder / f"{image_key(i)}.png") for i in part["image_id"]],
            psnr=psnr(recon, batch["clean"], 1.0).cpu().numpy(), ssim=ssim(recon, batch["clean"], 1.0).cpu().numpy(),
            psnr_degraded=psnr(batch["degraded"], batch["clean"], 1.0).cpu().numpy(),
            ssim_degraded=ssim(batch["degraded"], batch["clean"], 1.0).cpu().numpy()))
    return pd.concat(out, ignore_index=True)


__all__ = ["RECONSTRUCT", "ReconstructSettings", "SCORED_SPLITS", "ReconstructorRunConfig", "reconstruct_best", "reconstruct_finished", "run_reconstruct", "image_pairs", "load_best", "pair_batches", "reconstructor_on", "saved_pairs", "paired_rows", "reconstruct_pairs", "reconstruct_volumes_with_best", "reconstruct_with_best",
           "TRAIN_RECONSTRUCTOR", "run_reconstructor_training",
           "training_masks"]

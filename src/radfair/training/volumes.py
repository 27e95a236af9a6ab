"""Axial slices of NIfTI volumes (UCSF-PDGM FLAIR and tumour masks), decoded once into uint8 memmaps.

Preprocessing (reconstruction paper, appendix "Diagnostic Hyperparameters"; the same for clean, degraded and
reconstructed volumes, so a frozen model sees every input the same way):

* each volume is read with :func:`radfair.readers.read_nifti` and scaled by its maximum to [0, 1] (as
  ``radfair degrade mri`` does; values below 0 are clipped);
* axial slices are taken along the last NIfTI axis and resized bilinearly (antialiased, in float) to
  ``size`` x ``size``, then quantised to uint8 (:func:`radfair.training.inputs.resize_to_uint8`);
* the tumour mask is BraTS labels > 0, resized with nearest neighbours and stored as 0/1;
* a slice is kept by a :class:`SliceSelection`: when its resized mask has at least ``min_tumour_pixels`` tumour
  pixels (or always, with ``include_empty``), optionally only within ``slice_range``. The downstream models
  (:class:`DownstreamSlices`) have one selection for training and one for inference; the paper trains on every
  slice and infers on every slice of 60-130, whatever the mask (appendix "Diagnostic Hyperparameters").

The cache (the study's ``image-cache/volume-slices``, see :func:`slice_arrays`) holds
``slices-<key>.npy`` (images), ``slices-<key>.mask.npy`` and ``slices-<key>.index.parquet`` (one row per
slice: ``image_id, patient_id, slice, tumour_pixels``). The key is the table file's sha256, the rows' image
and mask paths, the image column and the settings; building is file-locked and resumable per volume.
"""

from __future__ import annotations

import hashlib
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from PIL import Image
from rich.progress import Progress

from ..config import StrictModel
from ..errors import BAD_OPTION, MISSING_COLUMNS, NULL_VALUES, RadfairInputError
from ..io import write_table
from ..readers import read_nifti
from .inputs import IndexBatches, _key, _locked, file_identity, image_cache_root, resize_to_uint8


class SliceSelection(StrictModel):
    """Which axial slices of a volume are kept (hashed into the cache key and the run id).

    ``include_empty``: every slice, whatever its mask (``min_tumour_pixels`` is then not used); else the slices
    whose resized tumour mask has at least ``max(min_tumour_pixels, 1)`` pixels. ``slice_range``: [first, last)
    axial slice numbers (None = all)."""

    min_tumour_pixels: int = 1
    include_empty: bool = False
    slice_range: tuple[int, int] | None = None

    def check(self, option: str = "slices"):
        """Raise :class:`RadfairInputError` naming ``option`` for a negative pixel count or an empty/negative range."""
        if self.min_tumour_pixels < 0:
            raise RadfairInputError(BAD_OPTION.format(option=f"{option}.min_tumour_pixels", value=self.min_tumour_pixels,
                                                      expected="a number >= 0"))
        if self.slice_range is not None and not 0 <= self.slice_range[0] < self.slice_range[1]:
            raise RadfairInputError(BAD_OPTION.format(option=f"{option}.slice_range", value=list(self.slice_range),
                                                      expected="[first, last) with 0 <= first < last"))
        return self

    def keep(self, z: np.ndarray, tumour_pixels: np.ndarray) -> np.ndarray:
        """Boolean (n,): which of the slices numbered ``z`` (n,) with ``tumour_pixels`` (n,) this selection keeps."""
        z, counts = np.asarray(z), np.asarray(tumour_pixels)
        keep = np.ones(len(z), bool) if self.include_empty else counts >= max(self.min_tumour_pixels, 1)
        if self.slice_range is not None:
            keep &= (z >= self.slice_range[0]) & (z < self.slice_range[1])
        return keep

    def covers(self, other: SliceSelection) -> bool:
        """True when every slice ``other`` keeps is kept here too (whatever the volumes), so ``other``'s slices
        can be taken from a cache built with this selection."""
        if self.slice_range is not None and (other.slice_range is None or other.slice_range[0] < self.slice_range[0]
                                             or other.slice_range[1] > self.slice_range[1]):
            return False
        return self.include_empty or (not other.include_empty and max(other.min_tumour_pixels, 1) >= max(self.min_tumour_pixels, 1))


class SliceSettings(SliceSelection):
    """A :class:`SliceSelection` at a size: what one slice cache holds (hashed into the cache key and the run id)."""

    size: int = 256

    def check(self, option: str = "slices") -> SliceSettings:
        if self.size < 16:
            raise RadfairInputError(BAD_OPTION.format(option=f"{option}.size", value=self.size, expected="at least 16 pixels"))
        super().check(option)
        return self


class DownstreamSlices(StrictModel):
    """The slices of the UCSF-PDGM downstream models (slice classifier, segmenter): one size, a ``train`` selection
    (training and the validation loss) and an ``inference`` selection (every score and Dice a run or a frozen
    model reports). Defaults: the paper's (appendix "Diagnostic Hyperparameters": "trained on a per-slice level
    using all available MRI slices"; "At inference ... slices 60-130"), so no selection uses the ground-truth mask
    at inference."""

    size: int = 256
    train: SliceSelection = SliceSelection(include_empty=True)
    inference: SliceSelection = SliceSelection(include_empty=True, slice_range=(60, 130))

    def check(self, option: str = "slices") -> DownstreamSlices:
        """Raise :class:`RadfairInputError` naming the option for a size under 16 or a bad selection."""
        SliceSettings(size=self.size).check(option)
        self.train.check(f"{option}.train")
        self.inference.check(f"{option}.inference")
        return self

    def training(self) -> SliceSettings:
        """The training selection at ``size`` (what the training cache holds)."""
        return SliceSettings(size=self.size, **self.train.model_dump())

    def inferring(self) -> SliceSettings:
        """The inference selection at ``size``."""
        return SliceSettings(size=self.size, **self.inference.model_dump())


@dataclass
class SliceData:
    """Slices of a table's volumes: ``images`` and ``masks`` (n, s, s) uint8 memmaps, ``index`` one row per slice."""

    images: np.ndarray
    masks: np.ndarray
    index: pd.DataFrame

    def __len__(self) -> int:
        return len(self.index)


def unit_volume(path: str) -> np.ndarray:
    """A volume scaled by its maximum to [0, 1] (negative values clipped), float32."""
    vol, _ = read_nifti(path)
    vol = np.asarray(vol, dtype=np.float32)
    peak = float(vol.max()) if vol.size else 0.0
    return np.clip(vol / peak if peak > 0 else vol, 0.0, 1.0)


def tumour_slices(path: str, size: int) -> np.ndarray:
    """(Z, size, size) uint8 0/1 tumour masks (label > 0) of a BraTS label volume, nearest-neighbour resized."""
    labels, _ = read_nifti(path)
    tumour = (np.asarray(labels) > 0).astype(np.uint8)
    out = np.zeros((tumour.shape[-1], size, size), np.uint8)
    for z in range(tumour.shape[-1]):
        out[z] = np.asarray(Image.fromarray(np.ascontiguousarray(tumour[..., z])).resize((size, size), Image.NEAREST))
    return out


def _kept(masks: np.ndarray, settings: SliceSelection) -> np.ndarray:
    return np.flatnonzero(settings.keep(np.arange(len(masks)), masks.sum(axis=(1, 2))))


def selected_rows(data: SliceData, selection: SliceSelection, image_ids=None) -> np.ndarray:
    """Positions (into ``data``) of the cached slices ``selection`` keeps, optionally only of volumes ``image_ids``.

    Exact when the cache's own selection covers ``selection`` (:meth:`SliceSelection.covers`): the index holds
    each slice's number and tumour pixel count, the rule's only inputs."""
    keep = selection.keep(data.index["slice"].to_numpy(), data.index["tumour_pixels"].to_numpy())
    if image_ids is not None:
        keep &= data.index["image_id"].astype(str).isin({str(i) for i in image_ids}).to_numpy()
    return np.flatnonzero(keep)


def check_volume_table(table: pd.DataFrame, path, column: str, mask_column: str = "mask_path") -> None:
    """The table needs ``image_id``, ``patient_id``, the image column and the mask column, none blank."""
    needed = ["image_id", "patient_id", column, mask_column]
    missing = [c for c in needed if c not in table.columns]
    if missing:
        raise RadfairInputError(MISSING_COLUMNS.format(path=path, columns=missing, expected=f"{needed} (NIfTI volumes and tumour masks)"))
    for name in needed:
        blank = table[name].isna() | (table[name].astype("string").str.strip() == "")
        if blank.any():
            raise RadfairInputError(NULL_VALUES.format(path=path, column=name, count=int(blank.sum())))
    duplicated = table["image_id"][table["image_id"].duplicated()]
    if len(duplicated):
        raise RadfairInputError(f"{path}: duplicate image_id value(s) {list(duplicated.unique()[:5])}; each volume must appear once")


def slice_arrays(table: pd.DataFrame, table_path: str | Path, settings: SliceSettings, *, column: str = "path",
                 mask_column: str = "mask_path", threads: int = 2, progress: bool = True, persist: bool = True) -> SliceData:
    """The kept axial slices of every volume in ``table[column]`` with their tumour masks, decoded once and cached.

    The cache is keyed by what it holds (the rows' ids and volume files, each file's size and modification time, the
    slice settings) and lives in the study's shared image cache (:func:`radfair.training.inputs.image_cache_root`,
    never inside a run folder), so every run that slices the same volumes the same way reads one copy.
    ``persist=False`` (volumes read once, e.g. reconstructions in a scoring run's scratch folder): the slices are
    built beside ``table_path`` instead (``volume-slices/``, removed with that folder), never in the shared cache.
    """
    settings.check()
    check_volume_table(table, table_path, column, mask_column)
    rows = table[["image_id", "patient_id", column, mask_column]].astype(str).reset_index(drop=True)
    digest = hashlib.sha256(pd.util.hash_pandas_object(rows, index=False).to_numpy().tobytes()).hexdigest()
    files = [[file_identity(p, f"a volume named in {table_path}")[1:] for p in pair]  # (size, mtime) of volume and mask
             for pair in zip(rows[column], rows[mask_column], strict=True)]
    key = _key("slices", digest, files, column, mask_column, settings.model_dump(mode="json"), "F-bilinear/nearest")
    folder = (image_cache_root(table_path) if persist else Path(table_path).parent) / "volume-slices"
    folder.mkdir(parents=True, exist_ok=True)
    final = folder / f"slices{settings.size}-{key}.npy"
    mask_final, index_path = final.with_suffix(".mask.npy"), final.with_suffix(".index.parquet")
    with _locked(final):
        if not (final.is_file() and mask_final.is_file() and index_path.is_file()):
            _build(rows, column, mask_column, settings, final, mask_final, index_path, threads, progress)
    index = pd.read_parquet(index_path)
    return SliceData(np.load(final, mmap_mode="r"), np.load(mask_final, mmap_mode="r"), index)


def _build(rows: pd.DataFrame, column: str, mask_column: str, settings: SliceSettings, final: Path, mask_final: Path,
           index_path: Path, threads: int, progress: bool) -> None:
    size = settings.size
    plan_path = final.with_suffix(".plan.parquet")
    with Progress(transient=True, disable=not progress) as bar, ThreadPoolExecutor(max(threads, 1)) as pool:
        if plan_path.is_file():
            plan = pd.read_parquet(plan_path)
        else:  # pass 1: which slices each volume keeps (masks only)
            task = bar.add_task("reading tumour masks (once)", total=len(rows))
            parts = []
            for i, masks in enumerate(pool.map(lambda p: tumour_slices(p, size), rows[mask_column])):
                kept = _kept(masks, settings)
                parts.append(pd.DataFrame({"image_id": rows["image_id"][i], "patient_id": rows["patient_id"][i], "slice": kept,
                                           "tumour_pixels": masks[kept].sum(axis=(1, 2)).astype(np.int64),
                                           "n_slices": len(masks)}))
                bar.update(task, advance=1)
            plan = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(
                columns=["image_id", "patient_id", "slice", "tumour_pixels", "n_slices"])
            write_table(plan, plan_path)
        # pass 2: image slices (and their masks), one volume at a time, resumable
        partial, mask_partial = final.with_suffix(".partial.npy"), final.with_suffix(".mask.partial.npy")
        done_marker = final.with_suffix(".done.txt")
        resume = partial.is_file() and mask_partial.is_file() and done_marker.is_file()
        mode = "r+" if resume else "w+"
        images = np.lib.format.open_memmap(partial, mode=mode, dtype=np.uint8, shape=(len(plan), size, size))
        masks = np.lib.format.open_memmap(mask_partial, mode=mode, dtype=np.uint8, shape=(len(plan), size, size))
        done = int(done_marker.read_text()) if resume else 0
        starts = np.concatenate([[0], np.cumsum(plan.groupby("image_id", sort=False).size().reindex(rows["image_id"]).fillna(0).to_numpy(int))])
        task = bar.add_task(f"decoding volume slices to {size}x{size} (once)", total=len(rows), completed=done)

        def decode(i: int) -> tuple[np.ndarray, np.ndarray]:
            kept = plan["slice"].to_numpy()[starts[i]:starts[i + 1]]
            vol = unit_volume(rows[column][i])
            mask = tumour_slices(rows[mask_column][i], size)
            if vol.shape[-1] != len(mask):
                raise RadfairInputError(f"{rows[column][i]}: {vol.shape[-1]} axial slices but its tumour mask "
                                        f"{rows[mask_column][i]} has {len(mask)}; expected the same volume grid")
            return np.stack([resize_to_uint8(vol[..., z], size) for z in kept]) if len(kept) else None, mask[kept]

        for i, (image, mask) in enumerate(pool.map(decode, range(done, len(rows))), start=done):
            if image is not None:
                images[starts[i]:starts[i + 1]], masks[starts[i]:starts[i + 1]] = image, mask
                images.flush()
                masks.flush()
            done_marker.write_text(str(i + 1))
            bar.update(task, completed=i + 1)
    del images, masks
    write_table(plan.drop(columns=["n_slices"]), index_path)
    os.replace(mask_partial, mask_final)
    os.replace(partial, final)
    done_marker.unlink(missing_ok=True)
    plan_path.unlink(missing_ok=True)


class SegmentationBatches(IndexBatches):
    """(image, tumour mask) slices as (b, 1, s, s) float tensors: ``x`` in [0, 1], ``mask`` 0/1."""

    def __init__(self, images: np.ndarray, masks: np.ndarray, batch_size: int, *, shuffle: bool, seed: int = 0,
                 device: torch.device | str = "cpu"):
        super().__init__(images, torch.zeros(len(masks), 0), batch_size, shuffle=shuffle, seed=seed, device=device, prefetch=True)
        self.masks = masks

    def _batch(self, idx: torch.Tensor) -> dict:
        rows = idx.numpy()
        x = torch.from_numpy(np.ascontiguousarray(self.x[rows])).unsqueeze(1).float().div_(255.0)
        mask = torch.from_numpy(np.ascontiguousarray(self.masks[rows])).unsqueeze(1).float()
        if self.device.type != "cpu":
            x, mask = (t.pin_memory().to(self.device, non_blocking=True) for t in (x, mask))
        return {"x": x, "mask": mask, "index": idx, "size": len(idx)}


__all__ = ["DownstreamSlices", "SegmentationBatches", "SliceData", "SliceSelection", "SliceSettings", "check_volume_table",
           "selected_rows", "slice_arrays", "tumour_slices", "unit_volume"]

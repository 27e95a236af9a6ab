"""Reconstructors on MRI volumes (reconstruction paper §3.1–3.2, UCSF-PDGM): slice pairs in, whole volumes out.

Training pairs are the kept axial slices (:func:`radfair.training.volumes.slice_arrays`: tumour slices chosen
with the true masks, each volume scaled by its maximum, uint8) of the degraded and the clean volume of each
pair of ``radfair degrade mri``, at the volumes' own in-plane size so no resampling enters the comparison.

Reconstruction runs over **every** axial slice of a test volume (the downstream models scale each volume
by its maximum, so the whole volume matters), with the same preprocessing as training (scale by the
maximum, quantise to 8 bits), and writes ``<key>.nii.gz`` (uint16 scaled by its maximum,
:func:`radfair.io.write_unit_volume`) with the degraded volume's affine. PSNR is over the
whole volume against the clean one scaled the same way; SSIM is the mean over slices (as ``radfair degrade``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import torch
from rich.progress import Progress

from ..degradation.quality import psnr, ssim
from ..degradation.run import image_key
from ..errors import RadfairInputError
from ..io import write_unit_volume
from ..readers import read_nifti
from .volumes import SliceSettings, slice_arrays, unit_volume

VOLUME_SIZE_MISMATCH = ("{path}: volumes are {shape} in-plane; the reconstructor's volumes.size is {size} — set it to the "
                        "volumes' in-plane size (reconstructed volumes keep the degraded volume's grid)")


@dataclass
class SlicePairs:
    """Kept axial slices of (degraded, clean) volume pairs: ``items`` one row per slice (``image_id, slice`` and the
    pair's split columns), ``degraded``/``clean`` uint8 (n, s, s), ``masks`` their 0/1 tumour masks (n, s, s)."""

    items: pd.DataFrame
    degraded: np.ndarray
    clean: np.ndarray
    masks: np.ndarray


def volume_training_pairs(pairs: pd.DataFrame, pairs_path: str | Path, settings: SliceSettings, *, columns=(),
                          progress: bool = True) -> SlicePairs:
    """The kept slices of every pair, with the pair's split columns (and ``columns`` of ``pairs``, e.g. labels and
    attributes for mitigation, §3.5) on each slice's item row."""
    shape = nib.load(str(pairs["path_degraded"].iloc[0])).shape[:2]
    if tuple(shape) != (settings.size, settings.size):
        raise RadfairInputError(VOLUME_SIZE_MISMATCH.format(path=pairs["path_degraded"].iloc[0], shape=tuple(shape),
                                                            size=settings.size))
    degraded = slice_arrays(pairs, pairs_path, settings, column="path_degraded", progress=progress)
    clean = slice_arrays(pairs, pairs_path, settings, column="path_clean", progress=progress)
    if not degraded.index[["image_id", "slice"]].equals(clean.index[["image_id", "slice"]]):
        raise RuntimeError("degraded and clean slice caches disagree on the kept slices (they share the masks)")
    keep = [c for c in ("image_id", "split", "recon_split") if c in pairs.columns]
    keep += [c for c in columns if c not in keep]
    items = degraded.index[["image_id", "slice"]].merge(pairs[keep], on="image_id", how="left", validate="many_to_one")
    return SlicePairs(items, degraded.images, clean.images, degraded.masks)


def _quantised(volume: np.ndarray) -> torch.Tensor:
    """(Z, 1, X, Y) float tensor of a unit volume's axial slices, quantised to 8 bits as the training cache is."""
    slices = np.moveaxis(volume, -1, 0)
    return torch.from_numpy(np.round(np.clip(slices, 0, 1) * 255).astype(np.float32) / 255.0)[:, None]


@torch.no_grad()
def reconstruct_volumes(step, rows: pd.DataFrame, folder: str | Path, seed: int, batch_size: int, device, *,
                        progress: bool = True) -> pd.DataFrame:
    """Reconstruct every slice of each row's ``path_degraded``; save NIfTI; volume PSNR and mean slice SSIM."""
    folder, device, out = Path(folder), torch.device(device), []
    with Progress(transient=True, disable=not progress) as bar:
        task = bar.add_task("reconstructing volumes", total=len(rows))
        for number, row in enumerate(rows.itertuples(index=False)):
            degraded = _quantised(unit_volume(row.path_degraded))
            clean = _quantised(unit_volume(row.path_clean))
            parts = []
            for start in range(0, len(degraded), batch_size):
                generator = torch.Generator(device=device).manual_seed(seed * 1_000_003 + number * 10_007 + start)
                parts.append(step.reconstruct(degraded[start:start + batch_size].to(device), generator).clamp(0, 1).cpu())
            recon = torch.cat(parts)
            path = folder / f"{image_key(row.image_id)}.nii.gz"
            _, affine = read_nifti(row.path_degraded)
            write_unit_volume(path, np.moveaxis(recon[:, 0].numpy(), 0, -1), affine)
            out.append({"image_id": row.image_id, "split": row.split, "path": str(path), "path_clean": row.path_clean,
                        "path_degraded": row.path_degraded,
                        "psnr": float(psnr(recon.reshape(1, -1), clean.reshape(1, -1), 1.0)[0]),
                        "ssim": float(ssim(recon, clean, 1.0).mean()),
                        "psnr_degraded": float(psnr(degraded.reshape(1, -1), clean.reshape(1, -1), 1.0)[0]),
                        "ssim_degraded": float(ssim(degraded, clean, 1.0).mean())})
            bar.advance(task)
    return pd.DataFrame(out)


__all__ = ["SlicePairs", "reconstruct_volumes", "volume_training_pairs"]

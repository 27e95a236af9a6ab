"""``radfair degrade``: apply an operator to every image of a cohort, resumably.

Work is cut into chunks (a batch of X-ray images, or one MRI volume) per degradation level. Each
finished chunk writes its images and then, atomically, a small part table under ``OUT/parts/``; a
rerun skips chunks whose part exists, so a crash never redoes finished work and never leaves a
half-written table. Each chunk's noise comes from its own generator seeded by (seed, level, chunk),
so a resumed run gives the same numbers as an uninterrupted one.

Outputs: ``OUT/clean/`` (paired clean images at the working size, for training reconstructors),
``OUT/<level>/`` (degraded images), ``OUT/degraded.parquet|csv`` (image_id, level, paths, PSNR,
SSIM, plus the cohort's attribute columns) and ``OUT/quality_summary.csv`` (mean PSNR/SSIM per level
and per group).
"""

from __future__ import annotations

import functools
import hashlib
import re
from collections.abc import Callable
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from PIL import Image
from rich.progress import Progress

from ..errors import BAD_OPTION, MISSING_COLUMNS, MISSING_FILE, RadfairInputError
from ..io import atomic_path, read_table, write_table
from .mri import MASKS, Undersample
from .quality import psnr, ssim
from .xray import MODES, LowDoseXray

ATTRIBUTES = ("sex", "age_group", "race", "insurance")


def image_key(image_id: str) -> str:
    """A file-name-safe, collision-free key for an image id."""
    digest = hashlib.sha1(image_id.encode()).hexdigest()[:8]
    return re.sub(r"[^A-Za-z0-9._-]+", "_", image_id)[-80:] + "-" + digest


def _seed(*parts) -> int:
    return int.from_bytes(hashlib.blake2b(repr(parts).encode(), digest_size=8).digest(), "little") & (2**63 - 1)


def _load_cohort(path, limit: int | None) -> pd.DataFrame:
    cohort = read_table(path, "cohort table")
    missing = [c for c in ("image_id", "path") if c not in cohort.columns]
    if missing:
        raise RadfairInputError(MISSING_COLUMNS.format(path=path, columns=missing, expected=["image_id", "path"]))
    return cohort.head(limit) if limit else cohort


def _read_gray(path: str) -> np.ndarray:
    if not Path(path).is_file():
        raise RadfairInputError(MISSING_FILE.format(path=path, what="image listed in the cohort"))
    return np.asarray(Image.open(path).convert("L"), dtype=np.float32) / 255.0


def save_png(path: Path, image: torch.Tensor) -> None:
    array = (image.squeeze().clamp(0, 1).cpu().numpy() * 255 + 0.5).astype(np.uint8)
    with atomic_path(path) as tmp:
        Image.fromarray(array).save(tmp, format="PNG")


def _run_chunks(out: Path, jobs: list[tuple[str, int, Callable[[], pd.DataFrame]]], description: str) -> pd.DataFrame:
    """Run (level, chunk, work) jobs whose part file is missing; return all parts concatenated."""
    parts_dir = out / "parts"
    parts_dir.mkdir(parents=True, exist_ok=True)
    frames = []
    with Progress(transient=True) as progress:
        task = progress.add_task(description, total=len(jobs))
        for level, chunk, work in jobs:
            part = parts_dir / f"{level}_{chunk:06d}.parquet"
            if not part.is_file():
                write_table(work(), part)
            frames.append(pd.read_parquet(part))
            progress.advance(task)
    return pd.concat(frames, ignore_index=True)


def _finish(out: Path, table: pd.DataFrame, cohort: pd.DataFrame) -> pd.DataFrame:
    attrs = [a for a in ATTRIBUTES if a in cohort.columns]
    table = table.merge(cohort[["image_id"] + attrs], on="image_id", how="left")
    write_table(table, out / "degraded.parquet")
    write_table(table, out / "degraded.csv")
    rows = [table.groupby("level", sort=False)[["psnr", "ssim"]].mean().reset_index().assign(attribute="(all)", group="(all)")]
    for attribute in attrs:
        grouped = table.dropna(subset=[attribute]).groupby(["level", attribute], sort=False)[["psnr", "ssim"]].mean().reset_index()
        rows.append(grouped.rename(columns={attribute: "group"}).assign(attribute=attribute))
    summary = pd.concat(rows, ignore_index=True)[["level", "attribute", "group", "psnr", "ssim"]]
    write_table(summary, out / "quality_summary.csv")
    return table


def degrade_xray(cohort_path, out, photons: list[float], mode: str = "physical", size: int = 256, batch: int = 16,
                 seed: int = 0, limit: int | None = None, device: str = "cpu") -> pd.DataFrame:
    """Low-dose X-ray for every image of a cohort at each photon count."""
    if mode not in MODES:
        raise RadfairInputError(BAD_OPTION.format(option="--mode", value=mode, expected=list(MODES)))
    if not photons or min(photons) <= 0:
        raise RadfairInputError(BAD_OPTION.format(option="--photons", value=photons, expected="positive photon counts, e.g. 100000,10000,3000"))
    out = Path(out)
    cohort = _load_cohort(cohort_path, limit)
    ids, paths = cohort["image_id"].tolist(), cohort["path"].tolist()
    starts = list(range(0, len(ids), batch))

    @functools.lru_cache(maxsize=1)  # jobs run chunk by chunk, so every level reuses the batch just read
    def clean_batch(start: int) -> torch.Tensor:
        images = [torch.from_numpy(_read_gray(p))[None, None] for p in paths[start : start + batch]]
        resized = [F.interpolate(x, size=(size, size), mode="bilinear", antialias=True, align_corners=False) for x in images]
        return torch.cat(resized).clamp(0, 1).to(device)

    def work(level: str, n0: float, chunk: int, start: int) -> pd.DataFrame:
        clean = clean_batch(start)
        op = LowDoseXray(photons=n0, mode=mode, size=size, n_angles=size).to(device)
        generator = torch.Generator(device=device).manual_seed(_seed(seed, "xray", mode, n0, chunk))
        degraded = op(clean, generator=generator)
        rows = []
        for j, image_id in enumerate(ids[start : start + batch]):
            key = image_key(image_id)
            clean_path, degraded_path = out / "clean" / f"{key}.png", out / level / f"{key}.png"
            if not clean_path.is_file():
                save_png(clean_path, clean[j])
            save_png(degraded_path, degraded[j])
            rows.append({"image_id": image_id, "level": level, "photons": n0, "path_clean": str(clean_path),
                         "path_degraded": str(degraded_path)})
        table = pd.DataFrame(rows)
        table["psnr"] = psnr(degraded, clean, 1.0).cpu().numpy()
        table["ssim"] = ssim(degraded, clean, 1.0).cpu().numpy()
        return table

    levels = [(f"xray_{mode}_{int(n0)}", n0) for n0 in photons]
    jobs = [(level, c, (lambda level=level, n0=n0, c=c, s=s: work(level, n0, c, s)))
            for c, s in enumerate(starts) for level, n0 in levels]
    return _finish(out, _run_chunks(out, jobs, f"low-dose X-ray ({mode})"), cohort)


def degrade_mri(cohort_path, out, accelerations: list[float], mask: str = "golden_angle", n_rays: int | None = None,
                seed: int = 0, limit: int | None = None, device: str = "cpu") -> pd.DataFrame:
    """Radially undersampled, zero-filled MRI for every volume of a cohort at each acceleration.

    Volumes are scaled to [0, 1] by their maximum; axial slices (the last NIfTI axis) are undersampled.
    """
    if mask not in MASKS:
        raise RadfairInputError(BAD_OPTION.format(option="--mask", value=mask, expected=list(MASKS)))
    if not accelerations or min(accelerations) <= 1:
        raise RadfairInputError(BAD_OPTION.format(option="--acceleration", value=accelerations, expected="factors above 1, e.g. 4,8,16"))
    out = Path(out)
    cohort = _load_cohort(cohort_path, limit)

    def work(acc: float, chunk: int) -> pd.DataFrame:
        row = cohort.iloc[chunk]
        if not Path(row["path"]).is_file():
            raise RadfairInputError(MISSING_FILE.format(path=row["path"], what="volume listed in the cohort"))
        nii = nib.load(row["path"])
        vol = np.asarray(nii.get_fdata(), dtype=np.float64)
        vol = vol / vol.max() if vol.max() > 0 else vol
        slices = torch.from_numpy(np.moveaxis(vol, -1, 0))[:, None].to(device)  # (Z, 1, X, Y)
        op = Undersample(vol.shape[:2], acceleration=acc, mask=mask, n_rays=n_rays).to(device)
        degraded = op(slices, generator=torch.Generator(device=device).manual_seed(_seed(seed, "mri", acc, chunk)))
        level = f"mri_{mask}_R{acc:g}"
        key = image_key(row["image_id"])
        clean_path, degraded_path = out / "clean" / f"{key}.nii.gz", out / level / f"{key}.nii.gz"
        for path, data in ((clean_path, vol), (degraded_path, np.moveaxis(degraded[:, 0].cpu().numpy(), 0, -1))):
            if path == clean_path and path.is_file():
                continue
            with atomic_path(path, suffix=".nii.gz") as tmp:
                nib.save(nib.Nifti1Image(data.astype(np.float32), nii.affine), tmp)
        return pd.DataFrame([{"image_id": row["image_id"], "level": level, "acceleration": acc,
                              "sampled_fraction": op.sampled_fraction, "path_clean": str(clean_path),
                              "path_degraded": str(degraded_path),
                              "psnr": float(psnr(degraded.reshape(1, -1), slices.reshape(1, -1), 1.0)[0]),
                              "ssim": float(ssim(degraded, slices, 1.0).mean())}])

    jobs = [(f"mri_{mask}_R{acc:g}", c, (lambda acc=acc, c=c: work(acc, c))) for acc in accelerations for c in range(len(cohort))]
    return _finish(out, _run_chunks(out, jobs, f"undersampled MRI ({mask})"), cohort)

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

import contextlib
import functools
import hashlib
import json
import math
import re
import shutil
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from PIL import Image
from rich.progress import Progress

from ..errors import (
    BAD_OPTION,
    BAD_VALUES,
    DUPLICATE_IDS,
    EMPTY_AFTER_FILTER,
    MISSING_COLUMNS,
    MISSING_FILE,
    NULL_VALUES,
    STALE_OUTPUT,
    UNWRITABLE,
    RadfairInputError,
    RadfairWarning,
    preview,
)
from ..io import atomic_path, output_folder, read_table, write_json, write_table, write_unit_volume
from ..readers import decoding, read_gray, read_nifti
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


MANIFEST = "manifest.json"
VOLUME_SUFFIXES = (".nii", ".nii.gz")


def _load_cohort(path, limit: int | None, volumes: bool) -> pd.DataFrame:
    """The cohort rows to degrade; ids unique, every listed file present and of the right kind."""
    if limit is not None and limit < 1:
        raise RadfairInputError(BAD_OPTION.format(option="--limit", value=limit, expected="a positive number of rows"))
    cohort = read_table(path, "cohort table")
    missing = [c for c in ("image_id", "path") if c not in cohort.columns]
    if missing:
        raise RadfairInputError(MISSING_COLUMNS.format(path=path, columns=missing, expected=["image_id", "path"]))
    if cohort.empty:
        raise RadfairInputError(EMPTY_AFTER_FILTER.format(path=path, step="loading (the cohort is empty)"))
    for column in ("image_id", "path"):
        blank = cohort[column].isna() | (cohort[column].astype("string").str.strip() == "")
        if blank.any():
            raise RadfairInputError(NULL_VALUES.format(path=path, column=column, count=int(blank.sum())))
    duplicated = cohort["image_id"][cohort["image_id"].duplicated()]
    if len(duplicated):
        raise RadfairInputError(DUPLICATE_IDS.format(path=path, column="image_id", values=preview(duplicated)))
    cohort = cohort.head(limit) if limit else cohort
    kind = cohort["path"].astype(str).str.lower().str.endswith(VOLUME_SUFFIXES)
    wrong = cohort["path"][~kind] if volumes else cohort["path"][kind]
    if len(wrong):
        expected = "NIfTI volumes (.nii/.nii.gz)" if volumes else "PNG/JPEG images (use `radfair degrade mri` for volumes)"
        raise RadfairInputError(BAD_VALUES.format(path=path, column="path", values=preview(wrong), expected=f"expected {expected}"))
    absent = [p for p in cohort["path"] if not Path(p).is_file()]
    if absent:
        raise RadfairInputError(MISSING_FILE.format(path=absent[0], what=f"listed in {path}; {len(absent)} missing"))
    return cohort.reset_index(drop=True)


def _sha256(path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _setting(name: str, value) -> str:
    shown = ",".join(f"{v:g}" for v in value) if isinstance(value, list) else ("(none)" if value is None else value)
    return f"--{name.replace('_', '-')} {shown}"


def claim_output(out: Path, command: str, settings: dict, cohort_path, overwrite: bool) -> bool:
    """Make ``out`` this run's resumable folder; return whether it was created by this run.

    ``OUT/manifest.json`` records the command, its settings and the cohort's checksum. A rerun with
    the same ones resumes; with any other it is refused (or, with ``overwrite``, the folder is
    replaced), so one folder never mixes results made under different settings.
    """
    manifest = {"command": command, "settings": settings, "cohort_sha256": _sha256(cohort_path)}
    if out.exists() and not out.is_dir():
        raise RadfairInputError(UNWRITABLE.format(path=out, expected="a folder", reason="a file of that name exists"))
    created = not out.exists() or not any(out.iterdir())
    if not created:
        record = out / MANIFEST
        if overwrite:
            if not (record.is_file() or (out / "parts").is_dir()):
                raise RadfairInputError(f"{out}: not made by radfair {command}; --overwrite only replaces such folders")
            shutil.rmtree(out)
            created = True
        elif not record.is_file():
            raise RadfairInputError(STALE_OUTPUT.format(path=out, setting=f"unknown settings (no {MANIFEST})"))
        else:
            with decoding(record, "a radfair manifest (JSON)"):
                old = json.loads(record.read_text())
            stale = _first_difference(old, manifest)
            if stale:
                raise RadfairInputError(STALE_OUTPUT.format(path=out, setting=stale))
    output_folder(out)
    write_json(out / MANIFEST, manifest)
    return created


def _first_difference(old: dict, new: dict) -> str | None:
    if old.get("command") != new["command"]:
        return f"radfair {old.get('command')}"
    for name, value in new["settings"].items():
        if old.get("settings", {}).get(name, "missing") != value:
            return _setting(name, old.get("settings", {}).get(name))
    if old.get("cohort_sha256") != new["cohort_sha256"]:
        return f"another --cohort (sha256 {str(old.get('cohort_sha256'))[:12]}...)"
    return None


@contextlib.contextmanager
def _owned(out: Path, created: bool):
    """Remove ``out`` again if this run created it and failed before finishing any chunk."""
    try:
        yield
    except BaseException:
        if created and not any((out / "parts").glob("*.parquet")):
            shutil.rmtree(out, ignore_errors=True)
        raise


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


#: A PSNR or SSIM that is not a finite number (NaN from a NaN image, +inf from an exact copy).
NON_FINITE_METRIC = ("{path}: {count} image(s) {ids} have a PSNR or SSIM that is not a finite number; "
                     "the means in quality_summary.csv leave them out and count them in n_not_finite")


def _mean_block(frame: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """Mean PSNR/SSIM over finite values per ``keys``, with ``n`` rows and ``n_not_finite`` left out."""
    finite = frame.assign(psnr=frame["psnr"].where(np.isfinite(frame["psnr"])),
                          ssim=frame["ssim"].where(np.isfinite(frame["ssim"])))
    bad = ~(np.isfinite(frame["psnr"]) & np.isfinite(frame["ssim"]))
    grouped = finite.assign(_bad=bad.astype(int)).groupby(keys, sort=False)
    block = grouped[["psnr", "ssim"]].mean()
    block["n"] = grouped.size()
    block["n_not_finite"] = grouped["_bad"].sum()
    return block.reset_index()


def _finish(out: Path, table: pd.DataFrame, cohort: pd.DataFrame) -> pd.DataFrame:
    """Write degraded.parquet/csv and quality_summary.csv (level, attribute, group, psnr, ssim, n,
    n_not_finite). A PSNR/SSIM that is NaN or infinite is never averaged silently: the means use the
    finite values only, ``n_not_finite`` counts the others, and one RadfairWarning names them."""
    attrs = [a for a in ATTRIBUTES if a in cohort.columns]
    table = table.merge(cohort[["image_id"] + attrs], on="image_id", how="left")
    write_table(table, out / "degraded.parquet")
    write_table(table, out / "degraded.csv")
    bad = table[~(np.isfinite(table["psnr"]) & np.isfinite(table["ssim"]))]
    if len(bad):
        warnings.warn(NON_FINITE_METRIC.format(path=out / "degraded.csv", count=len(bad), ids=preview(bad["image_id"])),
                      RadfairWarning, stacklevel=3)
    rows = [_mean_block(table, ["level"]).assign(attribute="(all)", group="(all)")]
    for attribute in attrs:
        grouped = _mean_block(table.dropna(subset=[attribute]), ["level", attribute])
        rows.append(grouped.rename(columns={attribute: "group"}).assign(attribute=attribute))
    summary = pd.concat(rows, ignore_index=True)[["level", "attribute", "group", "psnr", "ssim", "n", "n_not_finite"]]
    write_table(summary, out / "quality_summary.csv")
    return table


def degrade_xray(cohort_path, out, photons: list[float], mode: str = "physical", size: int = 256, batch: int = 16,
                 seed: int = 0, limit: int | None = None, device: str = "cpu", overwrite: bool = False) -> pd.DataFrame:
    """Low-dose X-ray for every image of a cohort at each photon count."""
    if mode not in MODES:
        raise RadfairInputError(BAD_OPTION.format(option="--mode", value=mode, expected=list(MODES)))
    if not photons or not all(math.isfinite(n) and n > 0 for n in photons):
        raise RadfairInputError(BAD_OPTION.format(option="--photons", value=photons, expected="positive photon counts, e.g. 100000,10000,3000"))
    if size < 16 or batch < 1:
        bad = ("--size", size, "at least 16 pixels") if size < 16 else ("--batch", batch, "at least 1")
        raise RadfairInputError(BAD_OPTION.format(option=bad[0], value=bad[1], expected=bad[2]))
    out = Path(out)
    cohort = _load_cohort(cohort_path, limit, volumes=False)
    settings = {"mode": mode, "photons": list(map(float, photons)), "size": size, "batch": batch, "seed": seed,
                "limit": limit, "device": device}
    created = claim_output(out, "degrade xray", settings, cohort_path, overwrite)
    ids, paths = cohort["image_id"].tolist(), cohort["path"].tolist()
    starts = list(range(0, len(ids), batch))

    @functools.lru_cache(maxsize=1)  # jobs run chunk by chunk, so every level reuses the batch just read
    def clean_batch(start: int) -> torch.Tensor:
        images = [torch.from_numpy(read_gray(p))[None, None] for p in paths[start : start + batch]]
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
    with _owned(out, created):
        return _finish(out, _run_chunks(out, jobs, f"low-dose X-ray ({mode})"), cohort)


def degrade_mri(cohort_path, out, accelerations: list[float], mask: str = "golden_angle", n_rays: int | None = None,
                seed: int = 0, limit: int | None = None, device: str = "cpu", overwrite: bool = False) -> pd.DataFrame:
    """Radially undersampled, zero-filled MRI for every volume of a cohort at each acceleration.

    Volumes are read by :func:`radfair.readers.read_nifti` (NaN voxels -> 0 with a warning), scaled to
    [0, 1] by their maximum; axial slices (the last NIfTI axis) are undersampled. The clean and undersampled
    volumes are written as uint16 NIfTI scaled by their maximum (:func:`radfair.io.write_unit_volume`).
    """
    if mask not in MASKS:
        raise RadfairInputError(BAD_OPTION.format(option="--mask", value=mask, expected=list(MASKS)))
    if not accelerations or not all(math.isfinite(r) and r > 1 for r in accelerations):
        raise RadfairInputError(BAD_OPTION.format(option="--acceleration", value=accelerations, expected="factors above 1, e.g. 4,8,16"))
    if n_rays is not None and n_rays < 1:
        raise RadfairInputError(BAD_OPTION.format(option="--n-rays", value=n_rays, expected="a positive number of rays"))
    out = Path(out)
    cohort = _load_cohort(cohort_path, limit, volumes=True)
    settings = {"mask": mask, "acceleration": list(map(float, accelerations)), "n_rays": n_rays, "seed": seed,
                "limit": limit, "device": device}
    created = claim_output(out, "degrade mri", settings, cohort_path, overwrite)

    def work(acc: float, chunk: int) -> pd.DataFrame:
        row = cohort.iloc[chunk]
        vol, affine = read_nifti(row["path"])
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
            write_unit_volume(path, data, affine)
        return pd.DataFrame([{"image_id": row["image_id"], "level": level, "acceleration": acc,
                              "sampled_fraction": op.sampled_fraction, "path_clean": str(clean_path),
                              "path_degraded": str(degraded_path),
                              "psnr": float(psnr(degraded.reshape(1, -1), slices.reshape(1, -1), 1.0)[0]),
                              "ssim": float(ssim(degraded, slices, 1.0).mean())}])

    jobs = [(f"mri_{mask}_R{acc:g}", c, (lambda acc=acc, c=c: work(acc, c))) for acc in accelerations for c in range(len(cohort))]
    with _owned(out, created):
        return _finish(out, _run_chunks(out, jobs, f"undersampled MRI ({mask})"), cohort)

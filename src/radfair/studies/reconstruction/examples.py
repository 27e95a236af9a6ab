"""Example images (the paper's Figures 6–9) and a Grad-CAM comparison, from the study's own test images.

``examples_<dataset>.png``: one test image (X-ray) or the axial slice with the most tumour of one test volume
(MRI), one row per level: clean, degraded, then each standard reconstruction with its PSNR against clean.
``gradcam_<dataset>.png`` (X-ray part): Grad-CAM (MONAI) of the frozen classifier for one finding on the clean image and on
each reconstruction at the noisiest level, same image, same colour scale.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import torch  # noqa: E402

from ...readers import read_gray, read_nifti  # noqa: E402
from ...training.inputs import resize_to_uint8, scale_pixels  # noqa: E402
from ...training.volumes import unit_volume  # noqa: E402
from .figures import save  # noqa: E402
from .tables import DATASET_NAMES, RECON_NAMES  # noqa: E402


def _psnr(x: np.ndarray, ref: np.ndarray) -> float:
    mse = float(np.mean((x.astype(float) - ref.astype(float)) ** 2))
    return 10 * np.log10(1 / mse) if mse > 0 else float("inf")


def _loader(volumes: bool, mask_path: str | None):
    """A function path -> 2-D image in [0, 1]: the PNG itself, or the tumour-richest slice of a volume."""
    if not volumes:
        return lambda path: read_gray(path)
    mask, _ = read_nifti(mask_path)
    z = int(np.argmax((np.asarray(mask) > 0).sum(axis=(0, 1))))
    return lambda path: unit_volume(path)[..., z]


def examples_figure(dataset: str, recon_tables: dict[tuple[str, str], Path], split: pd.DataFrame, path: Path) -> None:
    """``recon_tables``: (reconstructor, level) -> that reconstruction's ``reconstructed.parquet`` (its scoring run's:
    every test image's PSNR/SSIM, ``path`` set for the images kept, among them the first test image by id)."""
    tables = {key: pd.read_parquet(p) for key, p in recon_tables.items()}
    first = next(iter(tables.values()))
    image_id = sorted(first.loc[(first["split"] == "test") & first["path"].notna(), "image_id"], key=str)[0]
    volumes = str(first.loc[first["path"].notna(), "path"].iloc[0]).endswith((".nii", ".nii.gz"))
    mask_path = split.set_index("image_id").loc[image_id, "mask_path"] if volumes else None
    load = _loader(volumes, mask_path)
    levels = list(dict.fromkeys(level for _, level in tables))
    kinds = list(dict.fromkeys(kind for kind, _ in tables))
    fig, axes = plt.subplots(len(levels), 2 + len(kinds), figsize=(2.2 * (2 + len(kinds)), 2.3 * len(levels)), squeeze=False)
    for row, level in zip(axes, levels, strict=True):
        any_row = tables[(kinds[0], level)].set_index("image_id").loc[image_id]
        clean = load(any_row["path_clean"])
        panels = [("clean", clean), (f"degraded {_psnr(load(any_row['path_degraded']), clean):.1f} dB", load(any_row["path_degraded"]))]
        for kind in kinds:
            if (kind, level) in tables:
                image = load(tables[(kind, level)].set_index("image_id").loc[image_id, "path"])
                panels.append((f"{RECON_NAMES.get(kind, kind)} {_psnr(image, clean):.1f} dB", image))
        for ax, (title, image) in zip(row, panels, strict=False):
            ax.imshow(image, cmap="gray", vmin=0, vmax=1)
            ax.set_title(title, fontsize=8)
            ax.axis("off")
        row[0].text(-0.08, 0.5, level, transform=row[0].transAxes, rotation=90, va="center", ha="right", fontsize=8)
    fig.suptitle(f"{DATASET_NAMES.get(dataset, dataset)}: test image {image_id} (PSNR against the clean image)", fontsize=9)
    save(fig, path)


def gradcam_figure(model: torch.nn.Module, labels: list[str], label: str, size: int, images: dict[str, str], path: Path,
                   target_layer: str = "backbone.features.denseblock3", scaling: str = "standard") -> None:
    """Grad-CAM of ``label`` on each of ``images`` (name -> PNG path), preprocessed as the classifier was trained."""
    from monai.visualize import GradCAM

    cam = GradCAM(nn_module=model, target_layers=target_layer)
    index = labels.index(label)
    fig, axes = plt.subplots(1, len(images), figsize=(2.4 * len(images), 2.6), squeeze=False)
    for ax, (name, image_path) in zip(axes[0], images.items(), strict=True):
        grey = resize_to_uint8(read_gray(image_path), size).astype(np.float32) / 255.0
        x = scale_pixels(torch.from_numpy(grey)[None, None], scaling).requires_grad_(True)
        heat = cam(x, class_idx=index)[0, 0].detach().numpy()
        with torch.no_grad():
            score = torch.sigmoid(model(x))[0, index].item()
        ax.imshow(grey, cmap="gray", vmin=0, vmax=1)
        ax.imshow(heat, cmap="jet", alpha=0.35, vmin=0, vmax=1)
        ax.set_title(f"{name}\np({label}) = {score:.2f}", fontsize=8)
        ax.axis("off")
    fig.suptitle(f"Grad-CAM ({target_layer}) of the frozen classifier for {label}", fontsize=9)
    save(fig, path)


__all__ = ["examples_figure", "gradcam_figure"]
